"""Run-file bookkeeping of the training callbacks: resume truncation, best score, panels."""

import csv
import json

import keras
import numpy as np
import pytest

from pose_keras.callbacks import (
    BestCheckpoint,
    StopOnNaN,
    TrainingDivergedError,
    heatmap_panels,
    resume_epoch,
    truncate_run_logs,
    write_json_atomic,
)


def write_log(path, epochs):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "loss", "val_pckh"])
        for epoch in epochs:
            writer.writerow([epoch, 10.0 - epoch, 5.0 * epoch])


def test_truncate_run_logs_drops_the_unfinished_epoch_everywhere(tmp_path):
    write_log(tmp_path / "log.csv", [0, 1, 2])
    write_json_atomic(
        tmp_path / "metrics.json",
        {"monitor": "val_pckh", "epochs": [{"epoch": e, "val_pckh": 5.0 * e} for e in range(3)]},
    )
    truncate_run_logs(tmp_path, 2)
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["epoch", "loss", "val_pckh"], ["0", "10.0", "0.0"], ["1", "9.0", "5.0"]]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["epochs"]] == [0, 1]
    assert metrics["monitor"] == "val_pckh"
    assert not list(tmp_path.glob("*.tmp*"))


def test_resume_epoch_reads_the_backup_metadata(tmp_path):
    assert resume_epoch(tmp_path / "backup") == 0
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    assert resume_epoch(backup) == 0  # no weights file: nothing to resume from
    (backup / "latest.weights.h5").write_bytes(b"")
    assert resume_epoch(backup) == 3
    (backup / "training_metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable backup metadata"):
        resume_epoch(backup)


def small_model():
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Conv2D(2, 1, name="heatmaps")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_best_checkpoint_keeps_its_best_across_restarts(tmp_path):
    model = small_model()
    best = BestCheckpoint(tmp_path / "best.keras", "val_pckh")
    best.set_model(model)
    best.on_train_begin()
    best.on_epoch_end(0, {"val_pckh": 40.0})
    first_mtime = (tmp_path / "best.keras").stat().st_mtime_ns
    best.on_epoch_end(1, {"val_pckh": float("nan")})
    best.on_epoch_end(2, {"val_pckh": 30.0})
    assert (tmp_path / "best.keras").stat().st_mtime_ns == first_mtime
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 0, "val_pckh": 40.0}

    # A new process (resumed run) starts from the recorded best, not from -inf.
    restarted = BestCheckpoint(tmp_path / "best.keras", "val_pckh")
    restarted.set_model(model)
    restarted.on_train_begin()
    assert restarted.best == 40.0 and restarted.best_epoch == 0
    restarted.on_epoch_end(3, {"val_pckh": 35.0})
    assert (tmp_path / "best.keras").stat().st_mtime_ns == first_mtime
    restarted.on_epoch_end(4, {"val_pckh": 45.0})
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 4, "val_pckh": 45.0}


def test_best_checkpoint_repairs_a_kill_between_backup_and_checkpoint(tmp_path):
    # metrics.json says the last completed epoch (2) was the best, best.json still says 0:
    # the restored weights are epoch 2's, so they become best.keras at train begin.
    model = small_model()
    model.save(tmp_path / "best.keras")
    write_json_atomic(tmp_path / "best.json", {"epoch": 0, "val_pckh": 40.0})
    write_json_atomic(
        tmp_path / "metrics.json",
        {
            "epochs": [
                {"epoch": 0, "val_pckh": 40.0},
                {"epoch": 1, "val_pckh": 38.0},
                {"epoch": 2, "val_pckh": 50.0},
            ]
        },
    )
    best = BestCheckpoint(tmp_path / "best.keras", "val_pckh", tmp_path / "metrics.json")
    best.set_model(model)
    best.on_train_begin()
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 2, "val_pckh": 50.0}
    assert keras.saving.load_model(tmp_path / "best.keras", safe_mode=True) is not None


def test_stop_on_nan_raises_with_epoch_batch_and_advice(tmp_path):
    model = small_model()
    guard = StopOnNaN(tmp_path)
    guard.set_model(model)
    guard.on_epoch_begin(4)
    guard.on_batch_end(6, {"loss": 1.5})
    with pytest.raises(TrainingDivergedError, match=r"nan at batch 8 \(epoch 5\).*learning_rate"):
        guard.on_batch_end(7, {"loss": float("nan")})
    guard.on_epoch_end(4)  # finite weights: nothing to report
    model.get_layer("heatmaps").kernel.assign(np.full((1, 1, 3, 2), np.inf, "float32"))
    with pytest.raises(TrainingDivergedError, match="heatmaps/kernel is no longer finite"):
        guard.on_epoch_end(4)


def test_heatmap_panels_put_crop_prediction_and_target_side_by_side():
    images = np.full((2, 16, 16, 3), 100.0, "float32")
    predicted = np.zeros((2, 4, 4, 3), "float32")
    target = np.zeros((2, 4, 4, 3), "float32")
    target[:, 1, 2, 0] = 1.0
    panels = heatmap_panels(images, predicted, target)
    assert panels.shape == (2, 16, 48, 3) and panels.dtype == np.uint8
    np.testing.assert_array_equal(panels[:, :, :16], 100)
    # The target panel is hottest (red in the JET colour map) where the peak is.
    target_panel = panels[0, :, 32:].astype(int)
    y, x = np.unravel_index(np.argmax(target_panel[..., 0] - target_panel[..., 2]), (16, 16))
    assert 4 <= y <= 7 and 8 <= x <= 11
