"""Python UDFs, in the Model group: a file of the user's functions run before the model (on each record) and
after it (on each prediction row). Google's templates call the file and the function before the model
pythonExternalTextTransformGcsPath and pythonExternalTextTransformFunctionName; these names are shorter and
their own (python_udf_...), and each help text names Google's parameter it stands for (docs/udf.md maps them)."""

from __future__ import annotations

from pipeline.launch.parameters.base import FIELD_NAME, GCS_PATH, MODEL, Parameter

FUNCTION_NAME = rf"^{FIELD_NAME}$"  # a Python identifier

UDF_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        name="python_udf_gcs_path",
        label="Python UDF file",
        help="A Python file (gs://, or a local path for a local run) defining the functions named by "
        "python_udf_function_name and python_udf_output_function_name; read once at launch and run on every "
        "worker. It may import what the template's image has (numpy, pyarrow, tensorflow, apache_beam, ...). "
        "Google's templates call it pythonExternalTextTransformGcsPath.",
        param_type="GCS_READ_FILE",
        group=MODEL,
        regexes=(GCS_PATH,),
        example="gs://my-bucket/udf/transform.py",
    ),
    Parameter(
        name="python_udf_function_name",
        label="UDF run before the model",
        help="The function of python_udf_gcs_path run on each record before the model: it takes the record's "
        "fields as a dict and returns the record to feed (fields by input name), a list of records, or None to "
        "drop it. What it raises is the record's dead letter. Google's templates call it "
        "pythonExternalTextTransformFunctionName.",
        param_type="TEXT",
        group=MODEL,
        regexes=(FUNCTION_NAME,),
        example="prepare",
    ),
    Parameter(
        name="python_udf_output_function_name",
        label="UDF run after the model",
        help="The function of python_udf_gcs_path run on each prediction row before it is written: it takes "
        "the row as a dict and returns the row to write (for a table or Parquet output, one that fits its "
        "columns). What it raises is the record's dead letter.",
        param_type="TEXT",
        group=MODEL,
        regexes=(FUNCTION_NAME,),
        example="finish",
    ),
)
