"""Where a model's files are and which format they are in, told from what exists at the path; and
copying a model's files (all of them, and only them) to a local folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ModelError
from pipeline.model.files import ModelFormat, ModelLocation, copy_to_local, locate_model
from pipeline.model.signatures import read_signature


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def model_error(path: Path | str) -> str:
    with pytest.raises(ModelError) as error:
        locate_model(str(path))
    message = str(error.value)
    assert "\n" not in message
    return message


def test_format_detection(tiny_models, tmp_path):
    assert locate_model(str(tiny_models["keras"])).format is ModelFormat.KERAS
    assert locate_model(str(tiny_models["tf1"])).format is ModelFormat.TF1_CHECKPOINT
    assert locate_model(str(tiny_models["saved_model_flat"]) + "/").format is ModelFormat.SAVED_MODEL
    with pytest.raises(ModelError, match="nothing exists"):
        locate_model(str(tmp_path / "missing"))
    with pytest.raises(ModelError, match="not a SavedModel directory"):
        locate_model(str(tmp_path))
    with pytest.raises(ModelError, match="HDF5"):
        locate_model(str(tmp_path / "model.h5"))
    with pytest.raises(ModelError, match=r"no such \.keras file"):
        locate_model(str(tmp_path / "model.keras"))


@pytest.mark.parametrize(
    ("name", "suffix", "model_format"),
    [
        ("keras", "", ModelFormat.KERAS),
        ("saved_model_flat", "", ModelFormat.SAVED_MODEL),
        ("saved_model_flat", "/", ModelFormat.SAVED_MODEL),
        ("tf1", "", ModelFormat.TF1_CHECKPOINT),  # the prefix .../export, export.meta beside it
    ],
)
def test_each_format_is_located_at_its_path_as_given(tiny_models, name, suffix, model_format):
    given = str(tiny_models[name]) + suffix
    assert locate_model(given) == ModelLocation(model_format, str(tiny_models[name]), given)


def test_a_tf1_folder_is_located_at_the_prefix_its_checkpoint_file_names(tiny_models):
    """The 2017 sample's `--model $BUCKET/model` after `gsutil cp export* $BUCKET/model/`."""
    folder = str(tiny_models["tf1"].parent) + "/"
    assert locate_model(folder) == ModelLocation(ModelFormat.TF1_CHECKPOINT, str(tiny_models["tf1"]), folder)


def checkpoint_folder(folder: Path, *metas: str, state: str | None = None) -> Path:
    """A folder of empty TF1 files: detection looks at names only."""
    folder.mkdir()
    for prefix in metas:
        for suffix in (".meta", ".index", ".data-00000-of-00001"):
            (folder / (prefix + suffix)).write_bytes(b"")
    if state is not None:
        (folder / "checkpoint").write_text(f'model_checkpoint_path: "{state}"\nall_model_checkpoint_paths: "{state}"\n')
    return folder


def test_a_checkpoint_file_written_on_another_machine_names_the_prefix_beside_it(tmp_path):
    """Training machines write absolute paths; the files sit beside the `checkpoint` file here."""
    folder = checkpoint_folder(
        tmp_path / "model", "model.ckpt-100", "model.ckpt-200", state="/home/trainer/model.ckpt-200"
    )
    assert locate_model(str(folder)).path == str(folder / "model.ckpt-200")


def test_a_folder_with_one_meta_file_and_no_checkpoint_file_is_that_checkpoint(tmp_path):
    folder = checkpoint_folder(tmp_path / "model", "export")
    assert locate_model(str(folder)) == ModelLocation(ModelFormat.TF1_CHECKPOINT, str(folder / "export"), str(folder))


def test_a_checkpoint_file_naming_a_missing_prefix_falls_back_to_the_one_meta_file(tmp_path):
    folder = checkpoint_folder(tmp_path / "model", "export", state="/elsewhere/model.ckpt-9")
    assert locate_model(str(folder)).path == str(folder / "export")


def test_a_folder_of_several_checkpoints_without_a_checkpoint_file_is_ambiguous(tmp_path):
    folder = checkpoint_folder(tmp_path / "model", "b", "a")
    assert model_error(folder) == (
        f"--model={folder}: the folder holds several TF1 checkpoints (a.meta, b.meta); give one prefix"
    )


@pytest.mark.parametrize("name", ["model.h5", "model.hdf5", "model.h5/"])
def test_hdf5_files_are_refused_before_looking_at_them(tmp_path, name):
    """HDF5 Keras files can run code on load; refused whether they exist or not."""
    path = str(tmp_path / name.rstrip("/")) + ("/" if name.endswith("/") else "")
    assert model_error(path) == (
        f"--model={path}: HDF5 Keras files are not supported (they can run code on load); "
        "re-save the model with model.save('model.keras')"
    )


def test_a_missing_keras_file_is_named(tmp_path):
    assert model_error(tmp_path / "model.keras") == f"--model={tmp_path / 'model.keras'}: no such .keras file"


@pytest.mark.parametrize("kind", ["empty folder", "folder of other files", "plain file"])
def test_something_that_is_not_a_model_is_told_from_nothing_at_all(tmp_path, kind):
    path = tmp_path / "model"
    if kind == "plain file":
        path.write_bytes(b"weights?")
    else:
        path.mkdir()
        if kind == "folder of other files":
            (path / "variables").mkdir()
            (path / "README.md").write_text("a model")
    assert model_error(path) == (
        f"--model={path}: not a SavedModel directory (no saved_model.pb), a .keras file, "
        "or a TF1 checkpoint (no .meta file in the folder or beside the prefix)"
    )
    assert model_error(tmp_path / "nothing") == f"--model={tmp_path / 'nothing'}: nothing exists at this path"


@pytest.mark.parametrize(
    ("path", "local"), [("/models/m.keras", True), ("file:///models/m.keras", True), ("gs://b/m.keras", False)]
)
def test_is_local_tells_local_paths_from_remote_filesystems(path, local):
    assert ModelLocation(ModelFormat.KERAS, path, path).is_local is local


# ------------------------------------------------------------------ copy_to_local


def test_a_savedmodel_is_copied_with_its_whole_tree(tiny_models, tmp_path):
    source = tiny_models["saved_model_flat"]
    copied = copy_to_local(locate_model(str(source)), str(tmp_path))
    assert copied == str(tmp_path / source.name)
    assert files_under(Path(copied)) == files_under(source)
    assert "variables/variables.index" in files_under(Path(copied))
    assert read_signature(locate_model(copied)).inputs == read_signature(locate_model(str(source))).inputs


def test_a_tf1_checkpoint_is_copied_as_its_prefixs_files_only(tiny_models, tmp_path):
    """The prefix's .meta, .index and .data files: not the `checkpoint` file, not other checkpoints."""
    prefix = tiny_models["tf1"]
    copied = copy_to_local(locate_model(str(prefix.parent)), str(tmp_path))
    assert copied == str(tmp_path / "export")
    expected = {path.name: path.read_bytes() for path in prefix.parent.glob("export.*")}
    assert sorted(expected) == ["export.data-00000-of-00001", "export.index", "export.meta"]
    assert files_under(tmp_path) == expected


def test_a_keras_file_is_copied_alone(tiny_models, tmp_path):
    source = tiny_models["keras"]
    copied = copy_to_local(locate_model(str(source)), str(tmp_path))
    assert copied == str(tmp_path / "tiny.keras")
    assert files_under(tmp_path) == {"tiny.keras": source.read_bytes()}


def test_a_location_with_no_files_left_is_a_model_error(tmp_path):
    gone = ModelLocation(ModelFormat.SAVED_MODEL, str(tmp_path / "gone"), "gs://b/gone")
    with pytest.raises(ModelError) as error:
        copy_to_local(gone, str(tmp_path / "target"))
    assert str(error.value) == "--model=gs://b/gone: no files found to copy"


# ------------------------------------------------------------------ on gs://, the GCS emulator


def upload(folder: Path, uri: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    for name, data in files_under(folder).items():
        with FileSystems.create(f"{uri}/{name}") as handle:
            handle.write(data)


@pytest.mark.emulators
def test_models_on_gcs_are_located_and_copied_to_local_files(cloud_emulators, tiny_models, tmp_path):
    """TensorFlow's loaders read local paths reliably; a remote model is copied first."""
    root = f"gs://{cloud_emulators.bucket}/test-files-{tmp_path.name}"
    upload(tiny_models["saved_model_flat"], f"{root}/saved")
    upload(tiny_models["tf1"].parent, f"{root}/tf1")

    saved = locate_model(f"{root}/saved/")
    assert saved == ModelLocation(ModelFormat.SAVED_MODEL, f"{root}/saved", f"{root}/saved/")
    assert not saved.is_local
    copied = copy_to_local(saved, str(tmp_path / "saved-copy"))
    assert copied == str(tmp_path / "saved-copy" / "saved")
    assert files_under(Path(copied)) == files_under(tiny_models["saved_model_flat"])

    checkpoint = locate_model(f"{root}/tf1")
    assert checkpoint == ModelLocation(ModelFormat.TF1_CHECKPOINT, f"{root}/tf1/export", f"{root}/tf1")
    copied = copy_to_local(checkpoint, str(tmp_path / "tf1-copy"))
    assert copied == str(tmp_path / "tf1-copy" / "export")
    assert sorted(files_under(tmp_path / "tf1-copy")) == ["export.data-00000-of-00001", "export.index", "export.meta"]


# ------------------------------------------------------------------ the signature to call


@pytest.fixture
def fake_models(tmp_path) -> dict[str, Path]:
    """One model of each format as empty files: locating looks at names only."""
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "export.meta").write_bytes(b"")
    return {"saved": tmp_path / "saved", "keras": tmp_path / "model.keras", "tf1": tmp_path / "export"}


@pytest.mark.parametrize("name", ["saved", "keras", "tf1"])
def test_every_format_is_called_through_serving_default_unless_told(fake_models, name):
    assert locate_model(str(fake_models[name])).signature_name == "serving_default"
    assert locate_model(str(fake_models[name]), "serving_default").signature_name == "serving_default"


def test_a_savedmodels_location_keeps_the_signature_named(fake_models):
    given = str(fake_models["saved"]) + "/"
    assert locate_model(given, "predict") == ModelLocation(
        ModelFormat.SAVED_MODEL, str(fake_models["saved"]), given, "predict"
    )


@pytest.mark.parametrize(("name", "kind"), [("keras", "Keras .keras file"), ("tf1", "TF1 checkpoint")])
def test_a_signature_other_than_the_default_is_refused_for_keras_files_and_tf1_checkpoints(fake_models, name, kind):
    with pytest.raises(ModelError) as error:
        locate_model(str(fake_models[name]), "predict")
    assert str(error.value) == (
        f"--signature_name=predict: a {kind} has only the 'serving_default' signature; other signatures are a "
        "SavedModel's"
    )


def test_a_missing_model_is_reported_before_its_signature(tmp_path):
    with pytest.raises(ModelError) as error:
        locate_model(str(tmp_path / "nothing"), "predict")
    assert str(error.value) == f"--model={tmp_path / 'nothing'}: nothing exists at this path"
