"""Training end to end: config checks, learning, resume after SIGKILL, NaN handling."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import TINY_MODEL

import pose_keras.losses  # noqa: F401  (registers HeatmapLoss for compiled loading)
from pose_keras.config import Config
from pose_keras.fit import check_config, fit, learning_rate_schedule, main
from pose_keras.runs import load_model

REPO_ROOT = Path(__file__).resolve().parents[1]


# The learning test's recipe: ~1,500 augmented crops of the tiny network, a few minutes.
LEARNING_OVERRIDES = [
    "model.channels=32",
    "model.stem_channels=32",
    "train.epochs=16",
    "train.batch_size=8",
    "train.steps_per_epoch=32",
    "train.learning_rate=2e-3",
]


@pytest.fixture(scope="module")
def synthetic_cache(tmp_path_factory):
    """A few hundred synthetic people, generated once in this process for every fit."""
    from pose_keras.synthetic import ensure_synthetic

    cache = tmp_path_factory.mktemp("synthetic_cache")
    config = Config().with_overrides(
        [f"data.cache_dir={cache}", "data.synthetic_train=256", "data.synthetic_val=48"]
    )
    ensure_synthetic(config, workers=1)
    return cache


def tiny_overrides(cache, run_dir, *extra):
    return [
        *TINY_MODEL,
        f"data.cache_dir={cache}",
        "data.synthetic_train=256",
        "data.synthetic_val=48",
        f"train.run_dir={run_dir}",
        *extra,
    ]


def set_arguments(overrides):
    return [argument for override in overrides for argument in ("--set", override)]


# --------------------------------------------------------------------------------------
# Bad configurations: rejected before any work
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--set", "train.bogus=1"], "Unknown config key 'train.bogus'"),
        (["--set", "train.learning_rate=-1"], "train.learning_rate must be > 0"),
        (["--set", "train.lr_schedule=linear"], "train.lr_schedule must be one of"),
        (["--set", "train.distribution=tpu"], "train.distribution must be one of"),
        (["--set", "train.epochs=two"], "train.epochs: cannot parse"),
        (["--set", 'train.loss_weights={"scale16": 1}'], r"\['scale16'\] match no output"),
        (["--set", "model.num_joints=14"], "model.num_joints=14 but the synthetic dataset"),
        (["--set", "data.train_records=/nowhere/train"], "data.val_records is empty"),
        (
            ["--set", "data.train_records=/nowhere/train", "--set", "data.val_records=/x/val"],
            "data.train_records: No TFRecord split at '/nowhere/train'",
        ),
        (["--config", "/nowhere/config.json"], "Config file not found"),
    ],
)
def test_bad_configuration_exits_2_with_one_line_before_any_work(
    tmp_path, capsys, arguments, message
):
    run_dir = tmp_path / "run"
    cache = tmp_path / "cache"
    base = ["--set", f"train.run_dir={run_dir}", "--set", f"data.cache_dir={cache}"]
    assert main(base + arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert re.search(message, error), error
    assert not run_dir.exists() and not cache.exists()  # no data generated, nothing written


def test_records_of_another_joint_set_are_rejected_before_training(tmp_path, capsys):
    from pose_keras.joints import LSP
    from pose_keras.records import PersonRecord, ShardedWriter

    prefix = tmp_path / "records" / "lsp"
    with ShardedWriter(prefix, LSP, "lsp") as writer:
        writer.write(
            PersonRecord(
                image_encoded=b"\xff\xd8\xff",
                image_format="jpeg",
                image_height=10,
                image_width=10,
                image_id="a.jpg",
                dataset="lsp",
                person_id=0,
                center=[5, 5],
                scale=0.05,
                keypoints=np.full((14, 2), 5.0),
                visibility=np.full(14, 2),
            )
        )
    run_dir = tmp_path / "run"
    arguments = ["--set", f"train.run_dir={run_dir}"]
    arguments += ["--set", f"data.train_records={prefix}", "--set", f"data.val_records={prefix}"]
    assert main(arguments + ["--set", "data.joints=auto"]) == 2
    assert "records hold 14 joints ('lsp') but model.num_joints=16" in capsys.readouterr().err
    assert not run_dir.exists()


def test_cli_reports_a_bad_value_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pose_keras.fit", "--set", "train.batch_size=0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: train.batch_size must be > 0, received 0."
    assert not (tmp_path / "runs").exists()


def test_learning_rate_schedules_follow_the_documented_shapes():
    def rate(schedule, step):
        return float(keras.ops.convert_to_numpy(schedule(step)))

    cosine = learning_rate_schedule(Config().train, steps_per_epoch=10)  # 100 epochs
    assert rate(cosine, 0) == pytest.approx(5e-4)
    assert rate(cosine, 500) == pytest.approx(5e-4 * (0.01 + 0.99 * 0.5))
    assert rate(cosine, 1000) == pytest.approx(5e-6)
    step = learning_rate_schedule(
        Config().with_overrides(["train.lr_schedule=step"]).train, steps_per_epoch=10
    )
    assert [rate(step, s) for s in (0, 599, 601, 899, 901)] == pytest.approx(
        [5e-4, 5e-4, 5e-5, 5e-5, 5e-6]
    )
    constant = Config().with_overrides(["train.lr_schedule=constant"]).train
    assert learning_rate_schedule(constant, 10) == 5e-4


def test_finished_runs_are_not_overwritten_by_accident(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(b"")
    config = Config.preset("synthetic").with_overrides([f"train.run_dir={run_dir}"])
    with pytest.raises(ValueError, match="already holds a finished run.*--overwrite"):
        check_config(config)
    assert check_config(config, overwrite=True).resuming is False


# --------------------------------------------------------------------------------------
# Training for real
# --------------------------------------------------------------------------------------


def read_log_epochs(path):
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_killed_run_resumes_from_its_backup_and_finishes_consistently(synthetic_cache, tmp_path):
    run_dir = tmp_path / "run"
    overrides = tiny_overrides(
        synthetic_cache, run_dir, "train.epochs=3", "train.steps_per_epoch=24", "train.batch_size=8"
    )
    command = [sys.executable, "-m", "pose_keras.fit", "--verbose", "2", *set_arguments(overrides)]
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    metadata = run_dir / "backup" / "training_metadata.json"
    with open(tmp_path / "first.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        deadline = time.monotonic() + 240
        while not metadata.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # into the second epoch (24 steps take several seconds)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    first_log = (tmp_path / "first.log").read_text()
    assert process.returncode == -signal.SIGKILL, first_log
    assert json.loads(metadata.read_text())["epoch"] == 1, first_log
    assert not (run_dir / "model.keras").exists()

    second = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming from epoch 2 of 3" in second.stdout, second.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["epochs"]] == [0, 1, 2]
    assert metrics["planned_epochs"] == 3
    assert read_log_epochs(run_dir / "log.csv") == [0, 1, 2]
    assert not (run_dir / "backup").exists()
    best = json.loads((run_dir / "best.json").read_text())
    assert best["val_pckh"] == max(entry["val_pckh"] for entry in metrics["epochs"])
    # The optimizer's step counter (and so the learning-rate schedule) came back with the
    # backup: the final model has taken all 3 x 24 steps, not only the 2 x 24 of this call.
    model = load_model(run_dir / "model.keras", compile=True)
    assert int(model.optimizer.iterations) == 3 * 24
    assert load_model(run_dir / "best.keras").output_names == model.output_names


class CorruptWeightsAtEpoch(keras.callbacks.Callback):
    """Writes NaN into one kernel when epoch `epoch` (0-based) begins, as a diverged
    update would: the next training loss is NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            kernel = self.model.get_layer("stack1_scale1_conv").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))


def test_nan_stops_training_with_a_clear_message_and_keeps_the_best_checkpoint(
    synthetic_cache, tmp_path
):
    from pose_keras.callbacks import TrainingDivergedError

    run_dir = tmp_path / "run"
    config = Config().with_overrides(
        tiny_overrides(
            synthetic_cache,
            run_dir,
            "train.epochs=3",
            "train.steps_per_epoch=4",
            "train.batch_size=8",
        )
    )
    with pytest.raises(TrainingDivergedError) as raised:
        fit(config, callbacks=[CorruptWeightsAtEpoch(1)], verbose=0)
    message = str(raised.value)
    assert "the training loss became nan at batch 1 (epoch 2)" in message
    assert "best.keras (the best epoch so far) is intact" in message
    assert "train.learning_rate" in message
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["epochs"]] == [0]
    assert read_log_epochs(run_dir / "log.csv") == [0]
    assert not (run_dir / "model.keras").exists()
    best = load_model(run_dir / "best.keras")
    kernel = keras.ops.convert_to_numpy(best.get_layer("stack1_scale1_conv").kernel)
    assert np.isfinite(kernel).all()
    # The backup holds the last finite epoch, so rerunning resumes from epoch 2.
    assert json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"] == 1


class TrainingPrecision(keras.callbacks.Callback):
    """Records, when training begins, what the trained network computes in."""

    def on_train_begin(self, logs=None):
        convolutions = [
            layer for layer in self.model.layers if isinstance(layer, keras.layers.Conv2D)
        ]
        self.conv_dtypes = {layer.compute_dtype for layer in convolutions}
        self.variable_dtypes = {variable.dtype for variable in self.model.trainable_variables}
        self.output_dtypes = {tensor.dtype for tensor in self.model.outputs}
        self.optimizer = type(self.model.optimizer).__name__


@pytest.mark.parametrize(
    "dtype,optimizer", [("float16", "LossScaleOptimizer"), ("bfloat16", "Adam")]
)
def test_mixed_precision_trains_in_16_bits_and_saves_a_float32_model(
    synthetic_cache, tmp_path, dtype, optimizer
):
    run_dir = tmp_path / "run"
    config = Config().with_overrides(
        tiny_overrides(
            synthetic_cache,
            run_dir,
            "train.epochs=1",
            "train.steps_per_epoch=3",
            "train.batch_size=8",
            "train.mixed_precision=true",
            f"train.mixed_precision_dtype={dtype}",
        )
    )
    seen = TrainingPrecision()
    result = fit(config, callbacks=[seen], verbose=0)
    # Convolutions in 16 bits; variables, heads (so the loss) in float32; float16 with
    # Keras' loss scaling around our Adam, bfloat16 (float32's exponent range) without.
    assert seen.conv_dtypes == {dtype}
    assert seen.variable_dtypes == {"float32"}
    assert seen.output_dtypes == {"float32"}
    assert seen.optimizer == optimizer
    assert np.isfinite(result.metrics["epochs"][0]["loss"])
    # The policy was only set around building the network: the caller's is back.
    assert keras.config.dtype_policy().name == "float32"
    # The saved network is rebuilt from its config in the loader's policy (float32 here):
    # the same weights, full-precision inference.
    loaded = load_model(run_dir / "model.keras")
    assert {layer.compute_dtype for layer in loaded.layers} == {"float32"}
    for trained, restored in zip(result.model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(trained), keras.ops.convert_to_numpy(restored)
        )
    images = np.random.default_rng(4).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    name = loaded.prediction_name
    mixed = keras.ops.convert_to_numpy(result.model(images, training=False)[name])
    full = keras.ops.convert_to_numpy(loaded(images, training=False)[name])
    assert mixed.dtype == full.dtype == np.float32
    # 16-bit arithmetic against float32 on the same weights: close, not equal.
    np.testing.assert_allclose(mixed, full, atol=0.05 * np.abs(full).max() + 1e-3)


# --------------------------------------------------------------------------------------
# Learning: the embedded recipe really improves the validation metric
# --------------------------------------------------------------------------------------


def untrained_pckh(config):
    """PCKh@0.5 of the model `fit` starts from (same seed), scored like the callback."""
    from pose_keras import pipeline
    from pose_keras.fit import validation_evaluator
    from pose_keras.joints import MPII
    from pose_keras.model import build_model
    from pose_keras.synthetic import ensure_synthetic

    _, val_pattern = ensure_synthetic(config, workers=1)
    keras.utils.set_random_seed(config.train.seed)
    model = build_model(config.model)
    evaluate = validation_evaluator(
        config.model, MPII, pipeline.validation_dataset(config, val_pattern)
    )
    return evaluate(model)["mean"]


def test_training_raises_validation_pckh_by_twenty_points(synthetic_cache, tmp_path):
    config = Config().with_overrides(
        tiny_overrides(
            synthetic_cache,
            tmp_path / "run",
            *LEARNING_OVERRIDES,
        )
    )
    before = untrained_pckh(config)
    result = fit(config, verbose=0)
    curve = [entry["val_pckh"] for entry in result.metrics["epochs"]]
    assert len(curve) == config.train.epochs
    # The history and metrics.json carry the same per-epoch values.
    np.testing.assert_allclose(result.history["val_pckh"], curve, rtol=1e-6, atol=1e-6)
    assert max(curve) >= before + 20, f"untrained {before:.1f}, per epoch {curve}"
    assert result.metrics["best"]["val_pckh"] == max(curve)
    # TensorBoard: scalars from Keras and, per epoch, the heatmap image summary.
    import tensorflow as tf

    image_tags = [
        value.tag
        for path in (tmp_path / "run" / "tensorboard" / "heatmaps").glob("events.out.*")
        for event in tf.compat.v1.train.summary_iterator(str(path))
        for value in event.summary.value
    ]
    assert image_tags.count("validation/input_predicted_target") == config.train.epochs
    assert list((tmp_path / "run" / "tensorboard" / "train").glob("events.out.*"))
