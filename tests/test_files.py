"""files.py: atomic files and folders (a failed write leaves the previous one as it was)."""

import pytest

from pose_keras import files, serving


def write_version(target, writer, overwrite):
    """What the exporters do: `writer(folder)` inside `files.atomic_dir`."""
    with files.atomic_dir(target, overwrite) as directory:
        writer(directory)


def test_version_folders_are_written_atomically_and_overwrite_replaces(tmp_path):
    target = tmp_path / "pose" / "1"

    def write(content):
        def writer(directory):
            directory.mkdir(parents=True)
            (directory / "saved_model.pb").write_text(content)

        return writer

    write_version(target, write("first"), overwrite=False)
    assert serving.resolve_version(target.parent) == 2
    with pytest.raises(FileExistsError, match="--overwrite"):
        serving.resolve_version(target.parent, 1)

    def failing(directory):
        write("partial")(directory)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_version(target, failing, overwrite=True)
    assert (target / "saved_model.pb").read_text() == "first"  # the old version survives
    write_version(target, write("second"), overwrite=True)
    assert (target / "saved_model.pb").read_text() == "second"
    assert sorted(path.name for path in target.parent.iterdir()) == ["1"]


def test_a_folder_that_appears_meanwhile_is_not_replaced_without_overwrite(tmp_path):
    target = tmp_path / "1"
    with pytest.raises(FileExistsError, match="appeared while it was written"):
        with files.atomic_dir(target) as directory:
            directory.mkdir()
            target.mkdir()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["1"]


def test_write_text_atomic_leaves_no_temporary_file(tmp_path):
    from pose_keras.config import Config

    path = tmp_path / "config.json"
    Config().to_json(path)
    assert Config.from_json(path) == Config()
    assert [child.name for child in tmp_path.iterdir()] == ["config.json"]
