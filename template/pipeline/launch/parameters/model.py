"""The Model group: which model, which of its signatures, how a stream looks for new versions, and how many
copies of it a worker VM keeps."""

from __future__ import annotations

from pipeline.launch.parameters.base import (
    DEFAULT_MODEL_POLL_S,
    GCS_PATH,
    MODEL,
    POSITIVE_INTEGER,
    SIGNATURE_NAME,
    STREAMING,
    EnumOption,
    Parameter,
)
from pipeline.model.files import DEFAULT_SIGNATURE
from pipeline.model.memory import AUTO, MODEL_COPIES, PER_PROCESS, PER_VM

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
    Parameter(
        name="model_copies",
        label="Model copies per worker",
        help="Dataflow runs one Python process per vCPU of a worker VM. 'per_process': each process loads its "
        "own copy of the model (fastest where memory allows); 'per_vm': one copy per VM, served to all its "
        "processes (Beam's share_model_across_processes), for models too large for a copy per process; "
        "'auto' chooses by the model's size on disk and the worker machine type's memory "
        "(docs/performance.md, Model memory per VM), and refuses at launch a model too large for the worker "
        "even as one copy per VM. "
        "GPU workers always keep one copy per VM; a local run keeps one per process unless told per_vm.",
        param_type="ENUM",
        group=MODEL,
        default=AUTO,
        regexes=(rf"^({'|'.join(MODEL_COPIES)})$",),
        enum_options=(
            EnumOption(AUTO, "Automatic", "By the model's size and the worker's memory"),
            EnumOption(PER_PROCESS, "One per process", "Each SDK process loads the model"),
            EnumOption(PER_VM, "One per VM", "One copy shared by the VM's processes"),
        ),
        example=PER_VM,
    ),
)
