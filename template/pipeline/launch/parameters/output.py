"""The Output group: where predictions and dead letters go, and what their rows hold."""

from __future__ import annotations

from pipeline.config import JSONL_OUTPUT, PARQUET_OUTPUT, IoKind
from pipeline.launch.parameters.base import (
    BATCH,
    DEFAULT_WINDOW_S,
    FIELD_LIST,
    GCS_PATH,
    GCS_PATH_OR_TABLE,
    GCS_PATH_TABLE_OR_TOPIC,
    KIND_ALIASES,
    KIND_PATTERN,
    OUTPUT,
    POSITIVE_INTEGER,
    STREAMING,
    TABLE_KINDS,
    TABLE_SPEC,
    TEXT_KINDS,
    TOPIC,
    EnumOption,
    Parameter,
)

OUTPUT_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        name="sink",
        label="Output kind",
        help="Where predictions go: 'text' (JSON lines; in a streaming job, files per window), 'bigquery' (a "
        "table created if needed: truncated on write in a batch job, rows added as they come in a streaming "
        "one) or 'pubsub' (a topic, one message per prediction; streaming jobs). Defaults to the kind of "
        "source, except that a topic projects/<p>/topics/<t> is published to, and a Pub/Sub source's table "
        "output is a table.",
        param_type="ENUM",
        group=OUTPUT,
        regexes=(KIND_PATTERN,),
        enum_options=(
            EnumOption("text", "Text files", "One JSON object per line, sharded files under the output prefix"),
            EnumOption("bigquery", "BigQuery table", "A column per output, schema from the model"),
            EnumOption("pubsub", "Pub/Sub topic", "One message per prediction, the JSON row", (STREAMING,)),
        ),
        aliases=KIND_ALIASES,
        example="bigquery",
        # The batch form preselects files, which shows their picker (output_files); the command line still
        # infers the kind from --output when --sink is not given.
        shown_default={BATCH: "text"},
    ),
    Parameter(
        name="output",
        label="Output prefix, table or topic",
        help="For sink=text, the prefix of the prediction files, such as gs://bucket/out/predictions; for "
        "sink=bigquery, a table project:dataset.table or dataset.table; for sink=pubsub, a topic "
        "projects/<project>/topics/<topic>.",
        param_type="TEXT",
        group=OUTPUT,
        required_unless="an output picker gives it",
        regexes=(GCS_PATH_OR_TABLE,),
        streaming_regexes=(GCS_PATH_TABLE_OR_TOPIC,),
        example="gs://my-bucket/mnist/predictions",
    ),
    Parameter(
        name="output_files",
        label="Output files",
        help="For sink=text, the prefix of the prediction files picked in Cloud Storage: the same as output.",
        param_type="GCS_WRITE_FILE",
        group=OUTPUT,
        regexes=(GCS_PATH,),
        parent_name="sink",
        parent_trigger_values=TEXT_KINDS,
        example="gs://my-bucket/mnist/predictions",
        picks_for="output",
    ),
    Parameter(
        name="output_format",
        label="Format of the prediction files",
        help="For sink=text in a batch job, what the prediction files are: 'jsonl' (a JSON object per line, "
        "<output>-SSSSS-of-NNNNN.jsonl) or 'parquet' (<output>-SSSSS-of-NNNNN.parquet, snappy, with the "
        "columns and types of the BigQuery table the same job would write). Dead letters stay JSON lines.",
        param_type="ENUM",
        group=OUTPUT,
        default=JSONL_OUTPUT,
        regexes=(rf"^({JSONL_OUTPUT}|{PARQUET_OUTPUT})$",),
        enum_options=(
            EnumOption(JSONL_OUTPUT, "JSON Lines", "One JSON object per line"),
            EnumOption(PARQUET_OUTPUT, "Parquet", "Columns typed as the BigQuery table's, snappy"),
        ),
        parent_name="sink",
        parent_trigger_values=TEXT_KINDS,
        example=PARQUET_OUTPUT,
        modes=(BATCH,),
    ),
    Parameter(
        name="output_table",
        label="Output table",
        help="For sink=bigquery, the prediction table picked in BigQuery: the same as output.",
        param_type="BIGQUERY_TABLE",
        group=OUTPUT,
        regexes=(rf"^{TABLE_SPEC[1:-1]}$",),
        parent_name="sink",
        parent_trigger_values=TABLE_KINDS,
        example="my-project:mnist.predict",
        picks_for="output",
    ),
    Parameter(
        name="output_topic",
        label="Output topic",
        help="For sink=pubsub, the topic picked in Pub/Sub: the same as output.",
        param_type="PUBSUB_TOPIC",
        group=OUTPUT,
        regexes=(TOPIC,),
        parent_name="sink",
        parent_trigger_values=(IoKind.PUBSUB.value,),
        example="projects/my-project/topics/mnist-predictions",
        modes=(STREAMING,),
        picks_for="output",
    ),
    Parameter(
        name="dead_letter",
        label="Dead-letter prefix, table or topic",
        help="Where records that cannot be predicted go, with the reason. Defaults to <output>_error_records "
        "(files for a text sink, a table for a BigQuery sink, a topic for a Pub/Sub sink).",
        param_type="TEXT",
        group=OUTPUT,
        regexes=(GCS_PATH_OR_TABLE,),
        streaming_regexes=(GCS_PATH_TABLE_OR_TOPIC,),
        example="gs://my-bucket/mnist/rejected",
    ),
    Parameter(
        name="included_fields",
        label="Input fields copied to the output",
        help="Comma-separated input fields copied into each prediction row beside the model's outputs, to join "
        "predictions back to their records (what this template always called included fields; Vertex AI's "
        "includedFields, the fields fed to the model, are instance_fields).",
        param_type="TEXT",
        group=OUTPUT,
        regexes=(FIELD_LIST,),
        example="species,island",
    ),
    Parameter(
        name="output_shape",
        label="Shape of output rows",
        help="'rows': the key, one field per output (or the classifier's prediction, confidence and pred0..N), "
        "and the included fields; 'vertex': each line as Vertex AI batch prediction writes it, "
        '{"instance": ..., "prediction": ...} (or "key" for "instance" where key_field is given), dead letters '
        'as {"instance": ..., "error": {"code": <google.rpc.Code>, "message": ...}}, and in BigQuery Vertex AI\'s '
        "predictions and errors tables (see docs/vertex-ai.md).",
        param_type="ENUM",
        group=OUTPUT,
        default="rows",
        regexes=(r"^(rows|vertex)$",),
        enum_options=(
            EnumOption("rows", "Rows", "A field per output, and the included fields"),
            EnumOption("vertex", "Vertex AI", "instance (or key) and prediction, as Vertex AI writes them"),
        ),
        example="vertex",
    ),
    Parameter(
        name="vertex_error",
        label="Vertex AI error lines",
        help="With output_shape=vertex, the error of each JSON dead letter: 'code' (default) as the "
        'BatchPredictionJob reference describes it, "error": {"code": 3, "message": ...}; or \'status\' as the '
        'PredictionResult schema does, "error": {"status": "INVALID_ARGUMENT", "message": ...}. BigQuery\'s '
        "errors table always has errors.code and errors.message.",
        param_type="ENUM",
        group=OUTPUT,
        regexes=(r"^(code|status)$",),
        enum_options=(
            EnumOption("code", "Code", "google.rpc.Status: the numeric code and the message"),
            EnumOption("status", "Status", "The code's name (INVALID_ARGUMENT, INTERNAL, ...) and the message"),
        ),
        parent_name="output_shape",
        parent_trigger_values=("vertex",),
        example="status",
    ),
    Parameter(
        name="existing_tables",
        label="Existing output tables",
        help="What a batch job with a BigQuery sink does with prediction and dead-letter tables that exist at "
        "launch: 'replace' them (after every write succeeded), or 'refuse' to start, as Vertex AI, which writes "
        "new tables only. Default: refuse with output_shape=vertex, replace otherwise.",
        param_type="ENUM",
        group=OUTPUT,
        regexes=(r"^(refuse|replace)$",),
        enum_options=(
            EnumOption("refuse", "Refuse", "Stop at launch if a table exists, as Vertex AI does"),
            EnumOption("replace", "Replace", "Replace the tables' rows once the job has written every row"),
        ),
        example="replace",
        modes=(BATCH,),
    ),
    Parameter(
        name="window_seconds",
        label="Seconds of records per output file",
        help="In a streaming job with a text sink (or text dead letters), the length of the windows whose "
        "records are written to files of their own.",
        param_type="NUMBER",
        group=OUTPUT,
        default=DEFAULT_WINDOW_S,
        regexes=(POSITIVE_INTEGER,),
        example="60",
        modes=(STREAMING,),
    ),
)
