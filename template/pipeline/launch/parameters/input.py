"""The Input group: where records come from, what they are, and which of their fields feed the model."""

from __future__ import annotations

from pipeline.config import IoKind
from pipeline.launch.parameters.base import (
    BATCH,
    FIELD_LIST,
    FIELD_NAME,
    FORMAT_PATTERN,
    GCS_PATH,
    GCS_PATH_OR_TABLE,
    INPUT,
    KIND_ALIASES,
    KIND_PATTERN,
    STREAMING,
    STREAMING_FORMATS,
    SUBSCRIPTION,
    TABLE_KINDS,
    TABLE_SPEC,
    TEXT_KINDS,
    EnumOption,
    Parameter,
)

INPUT_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        name="source",
        label="Input kind",
        help="Where records come from: 'text' (files, local or gs://, in the format --format names; gzip and "
        "other compression detected from the name), 'bigquery' (a table or query, columns fed to the model "
        "by name) or 'pubsub' (a subscription, one record per message: a streaming job). Defaults to the kind "
        "the input names: a subscription projects/<p>/subscriptions/<s> is read as a stream, anything else "
        "as files. The 2017 sample's 'cs' and 'bq' are accepted.",
        param_type="ENUM",
        group=INPUT,
        regexes=(KIND_PATTERN,),
        enum_options=(
            EnumOption("text", "Files", "Records in files, local or gs://, optionally compressed", (BATCH,)),
            EnumOption(
                "bigquery", "BigQuery table", "Rows of a table or query, columns fed to the model by name", (BATCH,)
            ),
            EnumOption("pubsub", "Pub/Sub subscription", "One record per message, scored as it comes", (STREAMING,)),
        ),
        aliases=KIND_ALIASES,
        example="text",
        streaming_regexes=(r"^pubsub$",),
        shown_default={BATCH: "text", STREAMING: "pubsub"},
    ),
    Parameter(
        name="input",
        label="Input files, table or subscription",
        help="For source=text, a file pattern such as gs://bucket/images*.txt.gz, or a folder (every file under "
        "it but names starting with _ or .); for source=bigquery, a table "
        "project:dataset.table or dataset.table (not needed when query is set); for source=pubsub, a "
        "subscription projects/<project>/subscriptions/<subscription>. In the Console, the picker of the "
        "chosen kind fills it instead.",
        param_type="TEXT",
        group=INPUT,
        required_unless="query or an input picker gives it",
        regexes=(GCS_PATH_OR_TABLE,),
        streaming_regexes=(SUBSCRIPTION,),
        example="gs://my-bucket/mnist/images.txt.gz",
    ),
    Parameter(
        name="input_files",
        label="Input files",
        help="For source=text, the input files picked in Cloud Storage (a pattern such as "
        "gs://bucket/images*.txt.gz may be typed): the same as input.",
        param_type="GCS_READ_FILE",
        group=INPUT,
        regexes=(GCS_PATH,),
        parent_name="source",
        parent_trigger_values=TEXT_KINDS,
        example="gs://my-bucket/mnist/images.txt.gz",
        modes=(BATCH,),
        picks_for="input",
    ),
    Parameter(
        name="input_table",
        label="Input table",
        help="For source=bigquery, the input table picked in BigQuery: the same as input.",
        param_type="BIGQUERY_TABLE",
        group=INPUT,
        regexes=(rf"^{TABLE_SPEC[1:-1]}$",),
        parent_name="source",
        parent_trigger_values=TABLE_KINDS,
        example="my-project:mnist.images",
        modes=(BATCH,),
        picks_for="input",
    ),
    Parameter(
        name="input_subscription",
        label="Input subscription",
        help="For source=pubsub, the subscription picked in Pub/Sub: the same as input.",
        param_type="PUBSUB_SUBSCRIPTION",
        group=INPUT,
        regexes=(SUBSCRIPTION,),
        parent_name="source",
        parent_trigger_values=(IoKind.PUBSUB.value,),
        example="projects/my-project/subscriptions/mnist-images-sub",
        modes=(STREAMING,),
        picks_for="input",
    ),
    Parameter(
        name="format",
        label="Record format",
        help="For source=text: 'key_values' (the 2017 sample's key:v0,v1,... lines), 'jsonl' (a JSON object or "
        "array per line), 'csv' (a header row, then a row per instance), 'tfrecord' (serialized tf.train.Examples, "
        "fed as bytes), 'files' (each file one instance, fed as bytes), 'parquet' or 'avro' (columns fed by name, "
        "as a table's) or 'auto': from the file name, .gz and the like ignored (.jsonl/.json, .csv, .tfrecord(s), "
        ".png/.jpg/.jpeg/.gif/.bmp, .parquet, .avro; key_values otherwise). "
        "For source=pubsub, what each message's body is: 'jsonl' (a JSON object; 'auto' means this), "
        "'key_values' (one key:v0,v1,... line) or 'files' (the bytes, such as a PNG).",
        param_type="ENUM",
        group=INPUT,
        default="auto",
        regexes=(FORMAT_PATTERN,),
        streaming_regexes=(rf"^({'|'.join(STREAMING_FORMATS)})$",),
        enum_options=(
            EnumOption("auto", "From the file name", "Detected from the extension; key_values otherwise", (BATCH,)),
            EnumOption("auto", "JSON", "Each message a JSON object, fields by input name", (STREAMING,)),
            EnumOption("key_values", "key:v0,v1,... lines", "The 2017 sample's lines: an integer key, values"),
            EnumOption("jsonl", "JSON Lines", "A JSON object (fields by input name) or array per record"),
            EnumOption("csv", "CSV", "A header row; unquoted values are numbers, quoted ones text", (BATCH,)),
            EnumOption(
                "tfrecord", "TFRecord", "Serialized tf.train.Examples, fed as bytes to one string input", (BATCH,)
            ),
            EnumOption("files", "Whole files or message bodies", "Each file or message one instance, fed as bytes"),
            EnumOption("parquet", "Parquet", "Columns fed to the model by name; row groups read in parallel", (BATCH,)),
            EnumOption("avro", "Avro", "Avro object container files, fields fed to the model by name", (BATCH,)),
        ),
        parent_name="source",
        parent_trigger_values=(*TEXT_KINDS, IoKind.PUBSUB.value),
        example="jsonl",
    ),
    Parameter(
        name="query",
        label="BigQuery query",
        help="For source=bigquery, a GoogleSQL query read instead of a table; its columns are fed to the model "
        "by name (key and image for the 2017 sample's model).",
        param_type="TEXT",
        group=INPUT,
        parent_name="source",
        parent_trigger_values=TABLE_KINDS,
        example="SELECT key, image FROM mnist.images WHERE key < 1000",
        modes=(BATCH,),
    ),
    Parameter(
        name="key_field",
        label="Key field",
        help="The field or column that identifies an instance (default: key): copied to the output, and fed to "
        "the model only if its signature has an input of that name. Records without one are keyed by position "
        "(file:line; file@byte, where the line starts, for every line of an uncompressed file of 80 MB or more, "
        "read in ranges; file:index, the file's path, or a message's id). With output_shape=vertex it is Vertex AI's "
        "keyField: given, 'key' replaces the instance in the output; not given, there is no key field.",
        param_type="TEXT",
        group=INPUT,
        regexes=(rf"^{FIELD_NAME}$",),
        example="id",
    ),
    Parameter(
        name="instance_fields",
        label="Fields fed to the model",
        help="Vertex AI's includedFields: the only fields of each record fed to the model (all by default); with "
        "instance_type=array, also the order of the array's values. Not to be confused with included_fields, "
        "which are copied to the output.",
        param_type="TEXT",
        group=INPUT,
        regexes=(FIELD_LIST,),
        example="bill_length_mm,bill_depth_mm",
    ),
    Parameter(
        name="excluded_fields",
        label="Fields not fed to the model",
        help="Vertex AI's excludedFields: every field but these is fed to the model; where records have no key "
        "field, the excluded fields are copied to the output instead, to join predictions back.",
        param_type="TEXT",
        group=INPUT,
        regexes=(FIELD_LIST,),
        example="species,island",
    ),
    Parameter(
        name="instance_type",
        label="Instance shape",
        help="Vertex AI's instanceType: 'object' feeds each field to the model input of its name; 'array' feeds "
        "the chosen fields (instance_fields, in order, or every field but excluded_fields, in the record's "
        "order) as one array to a model with a single input. Default: Vertex AI's with output_shape=vertex "
        "(array for CSV and BigQuery rows), otherwise object; a JSON array record is fed as it is either way.",
        param_type="ENUM",
        group=INPUT,
        regexes=(r"^(object|array)$",),
        enum_options=(
            EnumOption("object", "Object", "Each field to the model input of its name"),
            EnumOption("array", "Array", "The chosen fields, in order, as one array to a single-input model"),
        ),
        example="array",
    ),
)
