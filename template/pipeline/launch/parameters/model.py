"""The Model group: which model, which of its signatures, and how a stream looks for new versions."""

from __future__ import annotations

from pipeline.launch.parameters.base import (
    DEFAULT_MODEL_POLL_S,
    GCS_PATH,
    MODEL,
    POSITIVE_INTEGER,
    SIGNATURE_NAME,
    STREAMING,
    Parameter,
)
from pipeline.model.files import DEFAULT_SIGNATURE

MODEL_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        name="model",
        label="Model location",
        help="A TF2 SavedModel directory, a .keras file, or a TF1 checkpoint (its folder, or its prefix …/export "
        "with export.meta beside it), local or gs://; or a folder of numbered versions of one of these "
        "(model/1/, model/2/, ... as TensorFlow Serving lays them out), of which the highest is served.",
        param_type="GCS_READ_FOLDER",
        group=MODEL,
        required=True,
        regexes=(GCS_PATH,),
        example="gs://my-bucket/mnist/model",
    ),
    Parameter(
        name="signature_name",
        label="Serving signature",
        help=f"The SavedModel signature to call (Vertex AI's choice of signature); a .keras file or TF1 "
        f"checkpoint has only {DEFAULT_SIGNATURE}.",
        param_type="TEXT",
        group=MODEL,
        default=DEFAULT_SIGNATURE,
        regexes=(SIGNATURE_NAME,),
        example="serving_preprocessed",
    ),
    Parameter(
        name="model_poll_seconds",
        label="Seconds between looks for a new model version",
        help="In a streaming job with a versioned model folder, how often each worker looks for a higher "
        "version; a new one is loaded beside the old and serves every batch after the switch.",
        param_type="NUMBER",
        group=MODEL,
        default=DEFAULT_MODEL_POLL_S,
        regexes=(POSITIVE_INTEGER,),
        example="60",
        modes=(STREAMING,),
    ),
)
