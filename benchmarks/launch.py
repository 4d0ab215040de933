"""How long a Flex Template launch of this template takes, and how much memory it needs.

Runs main.py the way the Flex Template launcher does (DataflowRunner, template mode, the image's
layout and environment; see tests/launcher.py) against the GCS emulator and the fake GCE metadata
server, for each model format, and prints wall time and the launch process's peak RSS. The model
is read for its signature only, never its weights.

    python benchmarks/launch.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import SAMPLE_IMAGES, SAMPLE_MODEL  # noqa: E402
from tests.emulators import PROJECT, _stop, start_gcs_emulator  # noqa: E402
from tests.google_fakes import FakeMetadataServer  # noqa: E402
from tests.launch_fixtures import LAUNCH_BUCKET, upload  # noqa: E402
from tests.launcher import FlexTemplateLauncher, LaunchEnvironment  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="launch-bench-") as work, FakeMetadataServer(PROJECT) as metadata:
        work_dir = Path(work)
        gcs = start_gcs_emulator(work_dir / "gcs")
        try:
            gcs.create_bucket(LAUNCH_BUCKET)
            images = upload(gcs, SAMPLE_IMAGES, "samples/images.txt.gz")
            models = {
                "SavedModel (13 MB)": upload(gcs, SAMPLE_MODEL, "samples/model"),
                "TF1 metagraph (seed)": upload(gcs, ROOT / "samples/seed-model", "samples/seed-model"),
            }
            launcher = FlexTemplateLauncher(work_dir, gcs, metadata)
            print(f"{'model':<22} {'launch s (median)':>18} {'peak RSS MB':>12}")
            for name, model in models.items():
                walls, peaks = [], []
                for round_number in range(args.rounds):
                    environment = LaunchEnvironment(
                        PROJECT, LAUNCH_BUCKET, job_name=f"bench-{round_number}", launch_id=f"bench-{round_number}"
                    )
                    parameters = {"input": images, "output": f"gs://{LAUNCH_BUCKET}/out/p", "model": model}
                    launch = launcher.launch(parameters, environment)
                    if launch.returncode != 0:
                        print(launch.output[-3000:], file=sys.stderr)
                        return 1
                    walls.append(launch.wall_s)
                    peaks.append(launch.peak_rss_mb)
                print(f"{name:<22} {statistics.median(walls):>18.1f} {max(peaks):>12.0f}")
        finally:
            _stop(gcs.proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
