"""TensorFlow imported once and quietly, and a GPU job that refuses to run on the CPU.

What native code writes to fd 2 can only be seen from outside the process, so the import is
checked in fresh interpreters, each with TensorFlow not yet imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.errors import NoGpuError
from pipeline.model.runtime import TEMPLATE_VARIANT_VARIABLE, import_tensorflow, require_gpu
from tests.conftest import ROOT

_IMPORT_QUIETLY = """
import sys
from pipeline.model.runtime import import_tensorflow
tf = import_tensorflow()
assert import_tensorflow() is tf
print("stderr works again", file=sys.stderr)
print(tf.__name__)
"""
_IMPORT_PLAINLY = "import tensorflow as tf; tf.config.list_physical_devices(); print(tf.__name__)"


def start_python(code: str, *path: Path) -> subprocess.Popen:
    """A fresh interpreter running `code`, with `path` then the template on its import path, and TensorFlow's
    native log level at its default (INFO), as on a worker."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path), str(ROOT / "template")])
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[str, str]:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stdout, stderr


def test_import_tensorflow_keeps_its_native_start_up_lines_off_stderr():
    plain, quiet = start_python(_IMPORT_PLAINLY), start_python(_IMPORT_QUIETLY)  # side by side: each takes seconds
    plain_out, plain_err = finish(plain)
    quiet_out, quiet_err = finish(quiet)
    assert plain_out == quiet_out == "tensorflow\n"
    assert plain_err.strip(), "a plain import writes start-up lines here (the test would prove nothing otherwise)"
    assert quiet_err == "stderr works again\n"


def fake_tensorflow(folder: Path, body: str) -> Path:
    """A `tensorflow` package that writes to fd 2 as native code does (os.write, below Python's sys.stderr)."""
    (folder / "tensorflow").mkdir(parents=True)
    (folder / "tensorflow" / "__init__.py").write_text(textwrap.dedent(body))
    return folder


def test_native_lines_of_the_import_and_of_the_device_probe_are_both_dropped(tmp_path):
    folder = fake_tensorflow(
        tmp_path,
        """
        import os, types
        os.write(2, b"I0000 cudart_stub.cc: Could not find cuda drivers\\n")
        def list_physical_devices(kind=None):
            os.write(2, b"E0000 cuda_executor.cc: failed call to cuInit\\n")
            return []
        config = types.SimpleNamespace(list_physical_devices=list_physical_devices)
        """,
    )
    stdout, stderr = finish(start_python(_IMPORT_QUIETLY, folder))
    assert (stdout, stderr) == ("tensorflow\n", "stderr works again\n")


def test_an_import_that_fails_raises_and_gives_stderr_back(tmp_path):
    """Only native lines are dropped: a Python error still surfaces, and fd 2 is restored after it."""
    folder = fake_tensorflow(
        tmp_path,
        """
        import os
        os.write(2, b"native noise before the failure\\n")
        raise ImportError("libcudart.so.12: cannot open shared object file")
        """,
    )
    code = """
    import sys
    from pipeline.model.runtime import import_tensorflow
    try:
        import_tensorflow()
    except ImportError as error:
        print(f"raised: {error}")
    print("stderr works again", file=sys.stderr)
    """
    stdout, stderr = finish(start_python(code, folder))
    assert stdout == "raised: libcudart.so.12: cannot open shared object file\n"
    assert stderr == "stderr works again\n"


_WITHOUT_KERAS = """
import sys
from pipeline.model.runtime import import_tensorflow, preload_tensorflow_libraries
preload_tensorflow_libraries().join()
maps = open("/proc/self/maps").read()
print("preloaded" if "libtensorflow_cc.so.2" in maps and "tensorflow" not in sys.modules else "not preloaded")
tf = import_tensorflow()
print("keras deferred" if "keras" not in sys.modules else "keras imported")
model = tf.saved_model.load(SAMPLE_MODEL)
print("saved model loads" if "serving_default" in model.signatures else "no signature")
import keras
print("keras imports later" if tf.keras.layers.Dense is keras.layers.Dense else "another keras")
"""


def test_tensorflow_imports_onto_preloaded_libraries_without_keras_which_imports_when_a_model_needs_it():
    stdout, stderr = finish(start_python(_WITHOUT_KERAS.replace("SAMPLE_MODEL", repr(str(ROOT / "samples/model")))))
    assert stdout.split("\n")[:4] == ["preloaded", "keras deferred", "saved model loads", "keras imports later"]
    assert "absl" not in stderr and "oneDNN" not in stderr  # the libraries' start-up lines, silenced as the import's


def test_import_tensorflow_returns_the_module_already_imported():
    assert import_tensorflow() is sys.modules["tensorflow"]


@pytest.fixture
def no_gpu():
    if import_tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees a GPU here: require_gpu has nothing to refuse")


@pytest.mark.parametrize(("variant", "shown"), [("cpu", "cpu"), ("gpu", "gpu"), (None, "unset")])
def test_require_gpu_refuses_to_run_on_the_cpu_naming_the_image_variant(no_gpu, monkeypatch, variant, shown):
    if variant is None:
        monkeypatch.delenv(TEMPLATE_VARIANT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(TEMPLATE_VARIANT_VARIABLE, variant)
    with pytest.raises(NoGpuError) as error:
        require_gpu("RunInference on worker-7")
    assert str(error.value) == (
        "RunInference on worker-7: the job asked for GPU workers, but TensorFlow sees no GPU on this worker "
        f"(TEMPLATE_VARIANT={shown}); check that worker_accelerator includes install-nvidia-driver and that the "
        "workers run the GPU image"
    )


def test_an_error_while_the_libraries_preload_still_reaches_stderr(tmp_path):
    """The preload silences fd 2 for the whole process while it runs: an import that fails meanwhile (here at
    once, in Beam's place) must still be told, its traceback written once the preload has given fd 2 back."""
    (tmp_path / "apache_beam").mkdir()
    (tmp_path / "apache_beam" / "__init__.py").write_text('raise ImportError("the real error")\n')
    code = """
    from pipeline.model.runtime import preload_tensorflow_libraries
    preload_tensorflow_libraries()
    import apache_beam
    """
    process = start_python(code, tmp_path)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "ImportError: the real error" in stderr
