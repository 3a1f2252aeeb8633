"""Fault class: output that cannot be written, and earlier results that must survive.

A file in the way of an output folder or a disk without room is reported by `fit`,
`predict`, `evaluate` and `export` in one line before any work. A write that fails half
way (a full disk) removes its temporary file and leaves the previous file as it was.
`fit --overwrite` checks the data before it removes the old run, and `predict` refuses to
mix a new result with an earlier one's overlays.

The full-disk cases mount a small tmpfs (root only; skipped with the reason elsewhere).
"""

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from pose_keras import evaluate, export, files, predict
from pose_keras.config import Config
from pose_keras.files import OutputPathError, check_output_dir
from pose_keras.fit import main as fit_main


def mount_tmpfs(path: Path, size_bytes: int):
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", f"pose_keras_{uuid.uuid4().hex}"]
        + [str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to simulate a full disk: {result.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system: below every command's 32 MiB free-space check."""
    disk = tmp_path / "small_disk"
    mount_tmpfs(disk, 1 << 20)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def file_in_the_way(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a folder is needed\n")
    return blocker


def test_check_output_dir_names_the_file_in_the_way(file_in_the_way):
    with pytest.raises(OutputPathError, match=rf"{file_in_the_way} is a file, not a folder"):
        check_output_dir(file_in_the_way / "runs" / "a", "train.run_dir")
    with pytest.raises(OutputPathError, match="exists and is not a folder"):
        check_output_dir(file_in_the_way)


def test_check_output_dir_measures_free_space_and_creates_nothing(tmp_path):
    target = tmp_path / "not" / "yet"
    check_output_dir(target)
    assert not (tmp_path / "not").exists()
    assert not list(tmp_path.glob(".pose_keras_probe_*"))
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(OutputPathError, match=r"MiB free on its disk, \d+ MiB needed"):
        check_output_dir(target, free_bytes=free + (1 << 30))


def test_a_failed_write_keeps_the_previous_file_and_removes_its_temporary(small_disk):
    target = small_disk / "metrics.json"
    files.write_json_atomic(target, {"epoch": 1})
    with pytest.raises(OSError, match="No space left"):
        files.write_text_atomic(target, "x" * (2 << 20))  # 2 MiB into a 1 MiB disk
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert sorted(path.name for path in small_disk.iterdir()) == ["metrics.json"]


def test_a_checkpoint_save_on_a_full_disk_keeps_the_good_checkpoint(tmp_path, tiny_model_path):
    from pose_keras.callbacks import save_model_atomic
    from pose_keras.model import MultiScaleHourglass
    from pose_keras.runs import load_model

    disk = tmp_path / "disk"
    good_size = tiny_model_path.stat().st_size
    mount_tmpfs(disk, good_size + (256 << 10))  # room for one tiny model, not a bigger one
    try:
        best = disk / "best.keras"
        shutil.copyfile(tiny_model_path, best)
        bigger = MultiScaleHourglass(
            stacks=1, channels=64, input_size=64, stem_channels=64, regression_channels=64
        )
        with pytest.raises(OSError):
            save_model_atomic(bigger, best)
        assert best.read_bytes() == tiny_model_path.read_bytes()
        assert [path.name for path in disk.iterdir()] == ["best.keras"]  # no best.tmp.keras
        assert load_model(best).channels == 16
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# --------------------------------------------------------------------------------------
# Every command checks its output folder before work
# --------------------------------------------------------------------------------------


def only_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def test_fit_reports_an_unwritable_run_dir_before_any_work(
    file_in_the_way, small_disk, tmp_path, capsys
):
    cache = tmp_path / "cache"
    for run_dir, message in [
        (file_in_the_way / "run", "is a file, not a folder"),
        (small_disk / "run", "MiB free on its disk"),
    ]:
        status = fit_main(["--set", f"train.run_dir={run_dir}", "--set", f"data.cache_dir={cache}"])
        assert status == 2
        assert message in only_line(capsys)
        assert not run_dir.exists()
    assert not cache.exists()  # nothing generated: the check came first


def test_predict_evaluate_and_export_report_an_unwritable_output_before_work(
    tiny_model_path, shared_data, file_in_the_way, small_disk, tmp_path, capsys
):
    image = shared_data / "mpii" / "images" / "005808361.jpg"
    gt = shared_data / "mpii" / "gt_valid.mat"
    predictions = tmp_path / "preds.npy"
    np.save(predictions, np.zeros((2958, 16, 2)))
    for output in (file_in_the_way / "out", small_disk / "out"):
        assert (
            predict.main(["--model", str(tiny_model_path), str(image), "--output", str(output)])
            == 2
        )
        assert "--output" in only_line(capsys)
        arguments = ["--predictions", str(predictions), "--gt", str(gt), "--output", str(output)]
        assert evaluate.main(arguments) == 2
        assert "--output" in only_line(capsys)
        assert export.main(["--model", str(tiny_model_path), "--out", str(output)]) == 2
        assert "--out" in only_line(capsys)
        assert not output.exists()


# --------------------------------------------------------------------------------------
# Earlier results survive
# --------------------------------------------------------------------------------------


def write_synthetic_split(directory: Path, count: int) -> Path:
    """A folder holding synthetic `train` and `val` splits."""
    from pose_keras.synthetic import ensure_synthetic

    config = Config().with_overrides([f"data.synthetic_train={count}", "data.synthetic_val=8"])
    ensure_synthetic(config, workers=1, output_dir=directory)
    return Path(directory)


def test_fit_overwrite_keeps_the_finished_run_when_the_data_fails_its_check(tmp_path, capsys):
    split_dir = write_synthetic_split(tmp_path / "splits", 16)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(split_dir, corrupt)
    shard = sorted(corrupt.glob("train-*.tfrecord"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern: the SHA-256 check fails
    shard.write_bytes(bytes(data))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    finished = {
        "model.keras": b"the finished model",
        "best.keras": b"the best checkpoint",
        "metrics.json": b'{"epochs": []}',
        "log.csv": b"epoch,loss\n0,1.0\n",
        "config.json": b"{}",
    }
    for name, content in finished.items():
        (run_dir / name).write_bytes(content)
    status = fit_main(
        [
            "--overwrite",
            "--set", f"train.run_dir={run_dir}",
            "--set", f"data.train_records={corrupt / 'train'}",
            "--set", f"data.val_records={corrupt / 'val'}",
            "--set", "model.input_size=64",
            "--set", "model.stacks=1",
            "--set", "model.channels=16",
            "--set", "model.stem_channels=16",
            "--set", "model.regression_channels=16",
        ]
    )  # fmt: skip
    assert status == 2
    assert shard.name in capsys.readouterr().err
    for name, content in finished.items():
        assert (run_dir / name).read_bytes() == content, name


def test_predict_refuses_to_mix_with_an_earlier_result(
    tiny_model_path, shared_data, tmp_path, capsys
):
    images = shared_data / "mpii" / "images"
    first, second = sorted(images.glob("*.jpg"))[:2]
    output = tmp_path / "predictions"
    model = ["--model", str(tiny_model_path), "--quiet", "--output", str(output)]
    assert predict.main([*model, str(first)]) == 0
    overlays = sorted(path.name for path in (output / "overlays").iterdir())
    before = (output / "keypoints.json").read_bytes()
    assert predict.main([*model, str(second)]) == 2
    assert "--overwrite" in only_line(capsys)
    assert (output / "keypoints.json").read_bytes() == before
    assert predict.main([*model, "--overwrite", str(second)]) == 0
    assert sorted(path.name for path in (output / "overlays").iterdir()) == [f"{second.stem}.png"]
    assert overlays == [f"{first.stem}.png"]
    document = json.loads((output / "keypoints.json").read_text())
    assert {Path(person["source"]).name for person in document["people"]} == {second.name}
