"""Training callbacks: validation PCK(h), best checkpoint, NaN guard, resumable run files.

`fit` puts them in this order, because Keras calls callbacks in list order and later ones
must see what earlier ones did:

1. `StopOnNaN`         stops at the first NaN/Inf loss, or at the end of an epoch whose
                       weights are no longer finite, before anything is written.
2. `ValidationPCK`     decodes the validation set, puts `val_pckh` (MPII-style joint sets)
                       or `val_pck` (torso-normalised ones) and `learning_rate` into the
                       epoch logs, writes `metrics.json` and a TensorBoard heatmap image.
3. `keras.callbacks.CSVLogger`, `keras.callbacks.TensorBoard`: see those logs.
4. `keras.callbacks.BackupAndRestore`: the commit point of an epoch.
5. `BestCheckpoint`    saves `best.keras` when the validation score improves.

Why this order makes a killed run resumable (see docs/training.md, "Resume"): an epoch
counts as done once its backup is written. A kill before that point reruns the epoch; `fit`
first drops the epoch's lines from `metrics.json` and `log.csv` (`truncate_run_logs`). A
kill after it, but before `best.keras` was updated, is repaired when the run restarts: the
restored weights are exactly that epoch's, and `BestCheckpoint.on_train_begin` saves them
if `metrics.json` says that epoch was the best. The best score so far is read back from
`best.json`, so it survives restarts (Keras' `ModelCheckpoint` forgets it).
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from pose_keras.files import atomic_path, read_json, write_json_atomic
from pose_keras.joints import HEAD_BOX, JointSet

BEST_INFO_FILE = "best.json"


class TrainingDivergedError(RuntimeError):
    """The loss or the weights became NaN or infinite."""


def save_model_atomic(model, path) -> None:
    """`model.save(path)` through a temporary `.tmp.keras` file and a rename; a failed save
    (a full disk) removes the temporary file and leaves the previous `path` as it was."""
    with atomic_path(path) as temporary:
        model.save(temporary)


def monitor_name(joint_set: JointSet) -> str:
    """`val_pckh` for head-box normalised joint sets (MPII), `val_pck` otherwise."""
    return "val_pckh" if joint_set.normalizer == HEAD_BOX else "val_pck"


def metric_threshold(joint_set: JointSet) -> float:
    """PCKh@0.5 (MPII protocol), PCK@0.2 (FLIC / LSP protocol) or PCK@0.05 of the box
    diagonal (box-normalised joint sets): `metrics.default_threshold`."""
    from pose_keras.metrics import default_threshold

    return default_threshold(joint_set)


def resume_epoch(backup_dir) -> int:
    """Epochs completed according to a `BackupAndRestore` folder (0 when there is none)."""
    metadata = Path(backup_dir) / "training_metadata.json"
    weights = Path(backup_dir) / "latest.weights.h5"
    if not metadata.exists() or not weights.exists():
        return 0
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"{metadata}: unreadable backup metadata; remove {Path(backup_dir)} to start over."
        ) from None


def truncate_run_logs(run_dir, epoch: int, metrics_file="metrics.json", log_file="log.csv"):
    """Drop every entry of epoch index >= `epoch` from `metrics.json` and `log.csv`.

    Called before a resumed run starts at epoch index `epoch` (0-based, as in Keras), so
    an epoch interrupted after it was logged but before its backup is not listed twice.
    """
    run_dir = Path(run_dir)
    metrics = read_json(run_dir / metrics_file)
    if metrics is not None:
        metrics["epochs"] = [entry for entry in metrics.get("epochs", []) if entry["epoch"] < epoch]
        write_json_atomic(run_dir / metrics_file, metrics)
    log_path = run_dir / log_file
    if log_path.exists():
        with open(log_path, newline="") as handle:
            rows = list(csv.reader(handle))
        if rows:
            header, body = rows[0], rows[1:]
            kept = [row for row in body if row and int(row[0]) < epoch]
            with atomic_path(log_path) as temporary, open(temporary, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(kept)


def _current_learning_rate(model) -> float:
    optimizer = model.optimizer
    rate = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(rate))


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Stop at the first NaN/Inf training loss, before the epoch's files are written.

    Unlike Keras' graceful `TerminateOnNaN`, it raises `TrainingDivergedError` (Keras'
    `raise_error=True` behaviour) so no `on_epoch_end` runs: no backup, metrics entry or
    checkpoint is made from diverged weights. It also checks at the end of each epoch that
    the weights are finite (the last update of an epoch can overflow after a finite loss).

    Args:
        run_dir: str or Path or None. Named in the message (where `best.keras` is).
    """

    def __init__(self, run_dir=None):
        super().__init__(raise_error=True)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _message(self, where: str) -> str:
        run = f" in {self.run_dir}" if self.run_dir is not None else ""
        best = self.run_dir / "best.keras" if self.run_dir is not None else None
        kept = (
            f"{best} (the best epoch so far) is intact"
            if best is not None and best.exists()
            else "no best checkpoint had been written yet"
        )
        return (
            f"Training diverged{run}: {where} (epoch {self.epoch + 1}). Stopped before writing "
            f"anything from the diverged weights; {kept}, and the backup of the last finite "
            "epoch is kept, so rerunning the same command resumes from it. Try a lower "
            "train.learning_rate, train.lr_schedule=step or cosine, train.loss=mse, or "
            "train.mixed_precision=false."
        )

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDivergedError(
                self._message(f"the training loss became {float(loss)} at batch {batch + 1}")
            )

    def on_epoch_end(self, epoch, logs=None):
        for variable in self.model.weights:
            if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
                raise TrainingDivergedError(
                    self._message(f"weight {variable.path} is no longer finite")
                )


class ValidationPCK(keras.callbacks.Callback):
    """PCKh (or PCK) of the prediction output on a validation set after every epoch.

    The `evaluate` function decodes the model's prediction heatmaps (`refined`, or the
    last stack's GT head) and maps them back to image px through each crop's matrix (SPEC
    §4); this callback puts the mean into the epoch logs under `monitor` (so CSVLogger,
    TensorBoard, the progress bar and `BestCheckpoint` see it), adds `learning_rate`, and
    appends the epoch to `metrics.json` (mean, table groups, per joint), written
    atomically. With `image_dir` it writes a TensorBoard image of predicted vs target
    heatmaps for the first `image_count` validation crops.

    Args:
        evaluate: callable(model) -> dict with "mean", "columns", "joints", "people",
            "auc", "occlusion", "images", "predicted", "target" (see
            `pose_keras.fit.validation_evaluator`).
        joint_set: JointSet. Names the metric and the joints.
        metrics_path: str or Path. The `metrics.json` to maintain.
        planned_epochs: int. Recorded in `metrics.json`.
        image_dir: str, Path or None. TensorBoard folder for the heatmap image summary.
        image_count: int. Crops in the image summary. Default 4.
    """

    def __init__(
        self, evaluate, joint_set, metrics_path, planned_epochs, image_dir=None, image_count=4
    ):
        super().__init__()
        self.evaluate = evaluate
        self.joint_set = joint_set
        self.metrics_path = Path(metrics_path)
        self.planned_epochs = int(planned_epochs)
        self.image_dir = image_dir
        self.image_count = image_count
        self.monitor = monitor_name(joint_set)
        self.threshold = metric_threshold(joint_set)
        self._writer = None
        self._epoch_start = None

    def header(self) -> dict:
        return {
            "metric": f"{'PCKh' if self.monitor == 'val_pckh' else 'PCK'}@{self.threshold}",
            "monitor": self.monitor,
            "threshold": self.threshold,
            "joint_set": self.joint_set.name,
            "normalizer": self.joint_set.normalizer,
            "planned_epochs": self.planned_epochs,
            "epoch_numbering": "0-based index, as the 'epoch' column of log.csv",
        }

    def on_train_begin(self, logs=None):
        existing = read_json(self.metrics_path) or {}
        self.metrics = {**existing, **self.header()}
        self.metrics.setdefault("epochs", [])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds_training = time.monotonic() - (self._epoch_start or time.monotonic())
        result = self.evaluate(self.model)
        mean = float(result["mean"])
        logs[self.monitor] = mean
        if result.get("mean_px_error") is not None:
            logs["val_mean_px_error"] = float(result["mean_px_error"])
        logs["learning_rate"] = _current_learning_rate(self.model)
        entry = {
            "epoch": int(epoch),
            self.monitor: mean if math.isfinite(mean) else None,
            "columns": result["columns"],
            "joints": result["joints"],
            "auc": result.get("auc"),
            "occlusion": result.get("occlusion"),
            "mean_px_error": result.get("mean_px_error"),
            "people": result["people"],
            "loss": float(logs["loss"]) if "loss" in logs else None,
            "learning_rate": logs["learning_rate"],
            "seconds": round(seconds_training, 2),
        }
        epochs = [item for item in self.metrics["epochs"] if item["epoch"] != epoch]
        self.metrics["epochs"] = sorted(epochs + [entry], key=lambda item: item["epoch"])
        scored = [item for item in self.metrics["epochs"] if item[self.monitor] is not None]
        if scored:
            best = max(scored, key=lambda item: item[self.monitor])
            self.metrics["best"] = {"epoch": best["epoch"], self.monitor: best[self.monitor]}
        self.metrics["last"] = {"epoch": entry["epoch"], self.monitor: entry[self.monitor]}
        write_json_atomic(self.metrics_path, self.metrics)
        if self.image_dir is not None and result.get("images") is not None:
            self._write_images(epoch, result)

    def _write_images(self, epoch, result):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.image_dir))
        panels = heatmap_panels(
            result["images"][: self.image_count],
            result["predicted"][: self.image_count],
            result["target"][: self.image_count],
        )
        with self._writer.as_default():
            tf.summary.image(
                "validation/input_predicted_target",
                panels,
                step=epoch,
                max_outputs=self.image_count,
                description="Validation crop | predicted heatmaps (max over joints) | "
                "target heatmaps",
            )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def heatmap_panels(images, predicted, target):
    """uint8 (N, S, 3S, 3) panels: crop | crop with predicted heat | crop with target heat.

    Args:
        images: float (N, S, S, 3) crops in [0, 255].
        predicted: float (N, n, n, J) predicted heatmaps.
        target: float (N, n, n, J) target heatmaps.
    """
    import cv2

    images = np.clip(np.asarray(images, dtype=np.float32), 0, 255)
    size = images.shape[1]
    panels = []
    for image, first, second in zip(images, np.asarray(predicted), np.asarray(target), strict=True):
        row = [image.astype(np.uint8)]
        for heatmaps in (first, second):
            heat = np.clip(np.max(heatmaps, axis=-1), 0.0, 1.0)
            heat = cv2.resize(heat, (size, size), interpolation=cv2.INTER_LINEAR)
            colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
            colored = colored[..., ::-1].astype(np.float32)  # BGR -> RGB
            row.append((0.5 * image + 0.5 * colored).astype(np.uint8))
        panels.append(np.concatenate(row, axis=1))
    return np.stack(panels)


class BestCheckpoint(keras.callbacks.Callback):
    """Save `best.keras` whenever the validation score improves; the best survives restarts.

    The best value is kept in `best.json` beside the checkpoint ({"epoch", monitor}), and
    read back when training (re)starts, so a resumed run only overwrites `best.keras` with
    a better model. Non-finite scores never count as an improvement.

    Args:
        path: str or Path. The checkpoint file (`run_dir/best.keras`).
        monitor: str. Log key to maximise (`val_pckh` or `val_pck`).
        metrics_path: str, Path or None. `metrics.json`; used on restart to repair a kill
            between the epoch's backup and its checkpoint (module docstring).
    """

    def __init__(self, path, monitor, metrics_path=None):
        super().__init__()
        self.path = Path(path)
        self.info_path = self.path.with_name(BEST_INFO_FILE)
        self.monitor = monitor
        self.metrics_path = Path(metrics_path) if metrics_path is not None else None
        self.best = -math.inf
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        if self.info_path.exists() and self.path.exists():
            info = json.loads(self.info_path.read_text())
            self.best, self.best_epoch = float(info[self.monitor]), int(info["epoch"])
        metrics = read_json(self.metrics_path) if self.metrics_path else None
        if not metrics or not metrics.get("epochs"):
            return
        last = metrics["epochs"][-1]
        # The restored weights are those of the last completed epoch: if it was the best
        # and its checkpoint is missing (killed in between), save it now.
        if last.get(self.monitor) is not None and last[self.monitor] > self.best:
            self._save(last["epoch"], last[self.monitor])

    def _save(self, epoch, value):
        save_model_atomic(self.model, self.path)
        self.best, self.best_epoch = float(value), int(epoch)
        write_json_atomic(self.info_path, {"epoch": self.best_epoch, self.monitor: self.best})

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        if float(value) > self.best:
            self._save(epoch, value)
