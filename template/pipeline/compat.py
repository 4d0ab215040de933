"""Every private API of Beam, TensorFlow and Keras that the template uses, fenced here, each with the
version it was checked against. `tests/pipeline/test_compat.py` fails loudly when an upgrade of
one of these packages changes what is used here: re-check each entry, then update CHECKED.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from typing import Any, BinaryIO

from apache_beam.io.tfrecordio import _TFRecordUtil
from apache_beam.ml.inference import base as _inference_base

from pipeline.errors import OutputRefused

# The installed versions these entries were checked against (package name -> version).
CHECKED = {"apache-beam": "2.77.0", "google-cloud-pubsub": "2.44.0", "keras": "3.15.1", "tensorflow": "2.21.0"}


def restore_memory_readings() -> None:
    """Beam 2.77 (`apache_beam.ml.inference.base`) imports `resource` in one try block with an optional
    torch-only module, so without torch it believes `resource` is missing and warns on every model
    load ("Resource module is not available for current platform"). The module is there on every
    platform we run on: hand it back."""
    if getattr(_inference_base, "resource", None) is None:
        _inference_base.resource = resource


def read_tfrecord(handle: BinaryIO) -> bytes | None:
    """One TFRecord record, its length and data checked against their CRC-32C (Beam 2.77's
    `_TFRecordUtil.read_record`: None at the end of the file, ValueError for a record cut short
    ("Fewer than ...") or one whose checksum does not match)."""
    return _TFRecordUtil.read_record(handle)


@contextlib.contextmanager
def variables_without_memory() -> Iterator[None]:
    """Keras 3.15 internals: variables made inside this scope are never initialised, so a model built
    from a `.keras` file's config takes no memory for its weights (`StatelessScope(initialize_variables=
    False)`); the list of uninitialised variables that Keras keeps for later is emptied on the way out
    (`global_state`), or it would hold every such model alive."""
    from keras.src.backend import StatelessScope
    from keras.src.backend.common import global_state

    try:
        with StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", [])


LOCAL_PULL_MESSAGES = 1000
LOCAL_PULL_WAIT_S = 1.0


class _PromptSubscriber:
    """A Pub/Sub SubscriberClient whose pulls take up to LOCAL_PULL_MESSAGES messages and wait at most
    LOCAL_PULL_WAIT_S seconds for the first (an empty answer when none came), for Beam's local runner."""

    def __init__(self, client: Any):
        self._client = client

    def pull(self, subscription: str, max_messages: int, timeout: float) -> Any:
        from google.api_core import exceptions
        from google.cloud.pubsub_v1 import types

        try:
            return self._client.pull(
                subscription=subscription,
                max_messages=max(max_messages, LOCAL_PULL_MESSAGES),
                timeout=min(timeout, LOCAL_PULL_WAIT_S),
            )
        except (exceptions.DeadlineExceeded, exceptions.RetryError):
            return types.PullResponse()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def pull_promptly_in_local_streaming_runs() -> None:
    """Beam 2.77's local streaming runner (`runners/direct/transform_evaluator._PubSubReadEvaluator`) pulls
    10 messages per bundle and, with none waiting, blocks 30 s in the pull, during which no timer fires:
    a local stream ran at a few hundred messages a second, and a batch's last records waited up to 30 s.
    Its subscriber client is wrapped to pull up to 1,000 and wait at most 1 s. Dataflow reads Pub/Sub
    with its own connector and is not touched."""
    from apache_beam.runners.direct.transform_evaluator import _PubSubReadEvaluator

    original = _PubSubReadEvaluator.__dict__["_get_subscriber_client"].__func__
    if getattr(original, "prompt", False):
        return

    def _get_subscriber_client(cls: Any, transform: Any) -> Any:
        return _PromptSubscriber(original(cls, transform))

    _get_subscriber_client.prompt = True  # type: ignore[attr-defined]
    setattr(_PubSubReadEvaluator, "_get_subscriber_client", classmethod(_get_subscriber_client))  # noqa: B010


def spare_repeated_work_in_local_streaming_runs() -> None:
    """Beam 2.77's local streaming runner (`runners/direct`) runs each step on each bundle afresh, and its cost per
    bundle, not per message, was most of a local stream's CPU (a flood: 1.3 ms a message, 0.17 ms of it the
    model). For each bundle of each step it inspects the signature of every method of the step's DoFn four
    times (`transforms.userstate.get_dofn_specs`, about 0.5 ms a time), and it hands every bundle a step
    makes to the next steps even when it is empty: a batch that is still filling sends an empty bundle down
    the whole graph, and each step that can make dead letters sends one down the dead-letter sink's steps.
    The specs are remembered per DoFn class (they are the defaults of its methods), and a step's empty
    output bundles are dropped (nothing in them to process; watermarks advance without them, and the runner's
    own streaming GroupByKey hands on none either). Dataflow fuses the steps and runs none of this."""
    _remember_dofn_specs()
    _drop_empty_bundles()


def _remember_dofn_specs() -> None:
    """`userstate.get_dofn_specs` remembered by the DoFn's class, unless the DoFn holds methods of its own
    (a FlatMap of a bound method, Beam's exception-handling wrapper), whose defaults may differ per instance."""
    import types

    from apache_beam.transforms import userstate

    original = userstate.get_dofn_specs
    if getattr(original, "remembered", False):
        return
    remembered: dict[type, tuple[set[Any], set[Any]]] = {}

    def get_dofn_specs(dofn: Any) -> tuple[set[Any], set[Any]]:
        if any(isinstance(value, types.MethodType) for value in getattr(dofn, "__dict__", {}).values()):
            return original(dofn)
        specs = remembered.get(type(dofn))
        if specs is None:
            specs = remembered[type(dofn)] = original(dofn)
        return set(specs[0]), set(specs[1])  # copies: callers own what they are given

    get_dofn_specs.remembered = True  # type: ignore[attr-defined]
    userstate.get_dofn_specs = get_dofn_specs


def _drop_empty_bundles() -> None:
    """`_ParDoEvaluator.finish_bundle`'s `TransformResult` without the output bundles that hold no element."""
    from apache_beam.runners.direct.transform_evaluator import _ParDoEvaluator

    original = _ParDoEvaluator.__dict__["finish_bundle"]
    if getattr(original, "drops_empty", False):
        return

    def finish_bundle(self: Any) -> Any:
        result = original(self)
        result.uncommitted_output_bundles = [b for b in result.uncommitted_output_bundles if b.has_elements()]
        return result

    finish_bundle.drops_empty = True  # type: ignore[attr-defined]
    _ParDoEvaluator.finish_bundle = finish_bundle  # type: ignore[method-assign]


def _one_line(error: Any) -> str:
    """An apitools ErrorProto of a BigQuery job as `reason (location): message`, on one line."""
    where = f" ({error.location})" if getattr(error, "location", None) else ""
    return f"{error.reason or 'no reason'}{where}: {' '.join((error.message or 'no message').split())}"


def failed_job_line(job_id: str, status: Any) -> str:
    """A failed BigQuery job's errors in one line: its `errorResult`, then each other entry of `errors`
    (where BigQuery names the file and the row position of a load it refused)."""
    errors = [status.errorResult, *[error for error in status.errors or [] if error != status.errorResult]]
    return f"BigQuery job {job_id} failed: " + " | ".join(_one_line(error) for error in errors if error is not None)


def name_refused_rows_in_failed_loads() -> None:
    """Beam 2.77's `bigquery_tools.BigQueryWrapper.wait_for_bq_job` raises for a failed job with its
    `errorResult` alone, over several lines. For a load refused for a row's content, BigQuery says there
    only "too many errors ... look into the errors[] collection": the file and the row's position are in
    `status.errors`. Wrapped so that the job fails with one line that holds them all (`failed_job_line`)."""
    from apache_beam.io.gcp import bigquery_tools

    original = bigquery_tools.BigQueryWrapper.__dict__["wait_for_bq_job"]
    if getattr(original, "names_rows", False):
        return

    def wait_for_bq_job(self: Any, job_reference: Any, sleep_duration_sec: float = 5, max_retries: int = 0) -> Any:
        try:
            return original(self, job_reference, sleep_duration_sec, max_retries)
        except RuntimeError as error:
            if "Error Result" not in str(error):  # out of retries, not a failed job
                raise
            job = self.get_job(job_reference.projectId, job_reference.jobId, job_reference.location)
            raise OutputRefused(failed_job_line(job_reference.jobId, job.status)) from error

    wait_for_bq_job.names_rows = True  # type: ignore[attr-defined]
    bigquery_tools.BigQueryWrapper.wait_for_bq_job = wait_for_bq_job  # type: ignore[method-assign]


def installed_versions() -> dict[str, Any]:
    """The installed versions of the packages in CHECKED."""
    from importlib.metadata import version

    return {name: version(name) for name in CHECKED}
