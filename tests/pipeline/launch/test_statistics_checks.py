"""The statistics' parameters at launch: the mode, where the stats JSON goes, the baseline read and checked, each
mistake one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from pipeline.config import IoKind, StatisticsPlan
from pipeline.data.statistics import Numbers, Strings, Summary
from pipeline.errors import LaunchError
from pipeline.launch.options import BatchPredictionOptions
from pipeline.launch.statistics_checks import plan_statistics, read_baseline, stats_problem
from pipeline.model.signatures import TensorSpec

SPECS = (TensorSpec("x", "float32", ()), TensorSpec("word", "string", ()), TensorSpec("scores", "float32", (3,)))
NAMES = {"x", "word", "scores"}


def baseline_stats() -> dict:
    run = Summary(inputs={"x": Numbers.of(np.arange(10.0)), "word": Strings.of(np.array([b"a", b"b"], dtype=object))})
    return run.finish("train.csv", "model", ended=1.0, predicts=False)


def planned(*args: str, sink: IoKind = IoKind.TEXT, output: str = "out/p", local: bool = True, streaming=False):
    options = PipelineOptions(list(args))
    return plan_statistics(
        options.view_as(BatchPredictionOptions),
        options.view_as(GoogleCloudOptions),
        sink,
        output,
        local,
        streaming,
        SPECS,
    )


def refusal(*args: str, **kwargs) -> str:
    with pytest.raises(LaunchError) as error:
        planned(*args, **kwargs)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_statistics_go_beside_a_text_output_by_default():
    assert planned() == StatisticsPlan("out/p")
    assert planned("--statistics=off") is None
    assert planned("--statistics=only") == StatisticsPlan("out/p", only=True)
    assert planned("--drift_threshold=0.1").drift_threshold == 0.1


def test_vertex_ais_shape_puts_them_in_the_outputs_folder_out_of_the_way_of_its_globs():
    assert planned("--output_shape=vertex", output="gs://b/run/prediction.results").location == (
        "gs://b/run/batch_prediction"
    )
    assert planned("--output_shape=vertex", output="out/prediction.results").location.endswith("out/batch_prediction")


def test_a_table_or_topics_statistics_go_under_the_temp_location_or_where_named(tmp_path):
    assert planned("--temp_location=gs://b/tmp/", sink=IoKind.BIGQUERY, output="p:ds.preds").location == (
        "gs://b/tmp/ds.preds"
    )
    topic = "projects/p/topics/scores"
    assert planned("--temp_location=gs://b/tmp", sink=IoKind.PUBSUB, output=topic).location == "gs://b/tmp/scores"
    named = str(tmp_path / "stats" / "nightly")
    assert planned(f"--stats_location={named}", sink=IoKind.BIGQUERY, output="ds.t").location == named
    assert planned(sink=IoKind.PUBSUB, output=topic) is None  # on by default only where they have a place
    assert "--stats_location is needed" in refusal("--statistics=on", sink=IoKind.BIGQUERY, output="ds.t")
    assert "--stats_location is needed" in refusal("--baseline=b.json", sink=IoKind.PUBSUB, output=topic)


def test_mistakes_are_one_line_each(tmp_path):
    assert "must be one of on, off, only" in refusal("--statistics=yes")
    assert "--drift_threshold=2: must be a distance above 0 and at most 1" in refusal("--drift_threshold=2")
    assert "--drift_threshold=x" in refusal("--drift_threshold=x")
    assert "--baseline=b.json: applies to statistics" in refusal("--statistics=off", "--baseline=b.json")
    assert "not a subscription" in refusal("--statistics=only", streaming=True)
    assert "a local path is lost" in refusal(f"--stats_location={tmp_path / 's'}", local=False)
    assert "is a path prefix for files, not a table" in refusal("--stats_location=ds.table")


def test_a_baseline_is_read_and_checked(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline_stats()))
    plan = planned(f"--baseline={path}", "--drift_threshold=0.25")
    assert plan is not None and plan.baseline == baseline_stats()
    assert (plan.baseline_location, plan.drift_threshold) == (str(path), 0.25)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read it"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a stats JSON (an object)"),
        (json.dumps({"schema_version": 2}), "schema_version is 2, not 1"),
        (json.dumps({"schema_version": 1, "inputs": []}), "inputs is not an object of features"),
    ],
    ids=["missing", "not-json", "a-list", "version-2", "no-inputs"],
)
def test_a_baseline_that_is_not_a_stats_json_is_refused_in_one_line(tmp_path, content, said):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    message = refusal(f"--baseline={path}")
    assert message.startswith(f"--baseline={path}: ") and said in message


def test_a_baseline_sharing_no_input_or_output_with_the_model_is_refused(tmp_path):
    stats = baseline_stats()
    stats["inputs"] = {"other": stats["inputs"]["x"]}
    path = Path(tmp_path / "b.json")
    path.write_text(json.dumps(stats))
    with pytest.raises(LaunchError, match=r"has none of this model's inputs and outputs .*; it has other"):
        read_baseline(str(path), NAMES)


def test_the_structural_check_names_what_drift_could_not_use():
    stats = baseline_stats()
    assert stats_problem(stats) is None
    broken = json.loads(json.dumps(stats))
    broken["inputs"]["x"]["histogram"]["counts"].pop()
    assert stats_problem(broken) == "inputs.x: a histogram has one edge more than counts"
    broken = json.loads(json.dumps(stats))
    broken["inputs"]["word"]["top"] = [["a"]]
    assert stats_problem(broken) == "inputs.word: top is a list of [value, count]"
    broken = json.loads(json.dumps(stats))
    broken["inputs"]["x"]["kind"] = "text"
    assert stats_problem(broken) == "inputs.x: has no kind of number, string or bytes"
    broken = json.loads(json.dumps(stats))
    broken["classes"] = {"counts": ["1"]}
    assert stats_problem(broken) == "classes has no list of counts"
