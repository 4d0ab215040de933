"""Local or remote: how the job decides whether to wait and summarise or submit and return."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.environment import is_local, runner_name


@pytest.mark.parametrize(
    ("argv", "name", "local"),
    [
        ([], "directrunner", True),
        (["--runner=DirectRunner"], "directrunner", True),
        (["--runner=direct"], "directrunner", True),
        (["--runner=prism"], "prismrunner", True),
        (["--runner=SwitchingDirectRunner"], "switchingdirectrunner", True),
        (["--runner=apache_beam.runners.direct.direct_runner.DirectRunner"], "directrunner", True),
        (["--runner=DataflowRunner"], "dataflowrunner", False),
        (["--runner=dataflow"], "dataflowrunner", False),
    ],
)
def test_runner_names_are_read_the_way_beam_reads_them(argv, name, local):
    options = PipelineOptions(argv)
    assert runner_name(options) == name
    assert is_local(options) is local
