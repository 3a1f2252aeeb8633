"""`python -m pose_keras.fit`: train the multi-scale supervised hourglass.

Examples:

    python -m pose_keras.fit                                  # the embedded synthetic default
    python -m pose_keras.fit --config mpii.json               # your TFRecords
    python -m pose_keras.fit --config mpii.json --set train.batch_size=32 \\
        --set train.distribution=mirrored --set train.mixed_precision=true

From a notebook:

>>> from pose_keras.config import Config  # doctest: +SKIP
>>> result = fit(Config.preset("synthetic").with_overrides(["train.epochs=2"]))  # doctest: +SKIP
>>> result.metrics["best"]  # doctest: +SKIP
{'epoch': 1, 'val_pckh': 31.4}

The recipe (docs/training.md): Adam (paper §3: lr 5e-4 "with decay"; the decay is ours:
`train.lr_schedule`, cosine to 1% by default) on the loss of `pose_keras.losses` (Eq. 1 on
every output, summed), the augmented batches of `pose_keras.pipeline`, and after every epoch
the validation PCKh (PCK for torso-normalised joint sets) of the decoded prediction
heatmaps in original image coordinates. Everything goes into the run directory of
`pose_keras.runs` (`train.run_dir`). A run that is killed resumes where its last completed
epoch ended when the same command is run again.

Every check of the configuration against the data, the model's outputs and the run
directory happens before any work (`check_config`): a bad value stops the command with a
one-line reason and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

from pose_keras import cli, files, runs
from pose_keras.config import Config
from pose_keras.joints import MPII, JointSet

# Keras, TensorFlow and the modules that import them are imported inside the functions, so
# that `python -m pose_keras.fit` can quiet TensorFlow's C++ logs before it loads and can
# reject a bad command line without loading it.

# What may differ between an unfinished run's config.json and the command that resumes it:
# the length and pace of training and the hardware, not the model, data or loss.
RESUMABLE_KEYS = (
    "train.epochs",
    "train.learning_rate",
    "train.lr_schedule",
    "train.batch_size",
    "train.steps_per_epoch",
    "train.jit_compile",
    "train.distribution",
    "data.cache_dir",
    "data.shuffle_buffer",
    "data.deterministic",
    "data.verify_checksums",
)
# Files a run writes; a fresh start removes leftovers of an earlier unfinished run.
RUN_FILES = (
    runs.CONFIG_FILE,
    runs.JOINTS_FILE,
    runs.MODEL_FILE,
    runs.BEST_FILE,
    "best.json",
    runs.METRICS_FILE,
    runs.LOG_FILE,
)
RUN_FOLDERS = (runs.TENSORBOARD_DIR, runs.BACKUP_DIR)
# A resumed run draws a fresh shuffle/augmentation stream: seed + this x resume epoch.
RESUME_SEED_STRIDE = 1009


@dataclasses.dataclass
class TrainingPlan:
    """What `check_config` established before any work.

    Attributes:
        config: Config.
        run_dir: Path. Where this process writes (a worker sub-folder for non-chief
            workers of a multi-worker run).
        joint_set: JointSet of the data (and the model's heatmap channels).
        train_pattern: str or None. None = the synthetic training split.
        val_pattern: str or None. None = the synthetic validation split.
        initial_epoch: int. Epochs already completed (0 for a fresh run).
        is_chief: bool. Writes the run directory named in the config.
        resuming: bool. Continue the unfinished run in `run_dir` (False: start afresh,
            removing an earlier run's files).
    """

    config: Config
    run_dir: Path
    joint_set: JointSet
    train_pattern: str | None
    val_pattern: str | None
    initial_epoch: int
    is_chief: bool = True
    resuming: bool = False

    @property
    def synthetic(self) -> bool:
        return self.train_pattern is None


@dataclasses.dataclass
class FitResult:
    """What `fit` returns.

    Attributes:
        run_dir: Path. The run directory.
        history: dict. Keras history of this call (epochs run by it only).
        metrics: dict. The content of `metrics.json` (every epoch of the run).
        initial_epoch: int. Epochs that were already done when this call started.
        model: the trained `MultiScaleHourglass` (final weights).
    """

    run_dir: Path
    history: dict
    metrics: dict
    initial_epoch: int
    model: object


def worker_role(distribution: str) -> tuple[bool, str]:
    """(is_chief, task name) of this process in a multi-worker run (from `TF_CONFIG`)."""
    if distribution != "multiworker":
        return True, "chief"
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}).") from None
    task = tf_config.get("task", {})
    task_type, task_index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = "chief" in tf_config.get("cluster", {})
    is_chief = task_type == "chief" or (task_type == "worker" and task_index == 0 and not has_chief)
    return is_chief, f"{task_type}{task_index}"


def _config_differences(stored: Config, requested: Config) -> list[str]:
    differences = []
    stored_dict, requested_dict = stored.to_dict(), requested.to_dict()
    for section, values in requested_dict.items():
        for key, value in values.items():
            dotted = f"{section}.{key}"
            if dotted in RESUMABLE_KEYS or dotted == "train.run_dir":
                continue
            if stored_dict[section].get(key) != value:
                differences.append(f"{dotted}: {stored_dict[section].get(key)!r} -> {value!r}")
    return differences


def _check_data(config: Config):
    """Joint set and split patterns (None = synthetic), from the manifests only."""
    data = config.data
    if bool(data.train_records) != bool(data.val_records):
        missing = "data.val_records" if data.train_records else "data.train_records"
        raise ValueError(
            f"{missing} is empty: give both the training and the validation split (the "
            "synthetic dataset is used only when both are empty)."
        )
    if not data.train_records:
        if data.joints not in ("mpii", "auto"):
            raise ValueError(
                f"data.joints={data.joints!r} but the synthetic dataset (data.train_records "
                "and data.val_records empty) has the 16 MPII joints."
            )
        if config.model.num_joints != MPII.num_joints:
            raise ValueError(
                f"model.num_joints={config.model.num_joints} but the synthetic dataset has "
                f"{MPII.num_joints} MPII joints."
            )
        if config.train.steps_per_epoch == 0 and data.synthetic_train < config.train.batch_size:
            raise ValueError(
                f"data.synthetic_train={data.synthetic_train} is smaller than "
                f"train.batch_size={config.train.batch_size}."
            )
        return MPII, None, None
    from pose_keras import pipeline

    joint_sets = []
    for key, pattern in (("train_records", data.train_records), ("val_records", data.val_records)):
        try:
            split = pipeline.resolve_split(pattern)
        except FileNotFoundError as error:
            raise ValueError(f"data.{key}: {error}") from None
        joint_sets.append(pipeline.resolve_joint_set(config, split))
        problem = pipeline.person_centred_problem(config, split)
        if problem:
            raise ValueError(
                f"data.{key}={pattern!r}: {problem}; remake them with `python -m "
                "tfrecords_tools.recrop` and this configuration, or train on the original split."
            )
        if key == "train_records" and config.train.steps_per_epoch == 0:
            if split.count < config.train.batch_size:
                raise ValueError(
                    f"data.train_records: {split.count} people, fewer than "
                    f"train.batch_size={config.train.batch_size}."
                )
    if joint_sets[0].names != joint_sets[1].names:
        raise ValueError(
            f"data.train_records holds joint set {joint_sets[0].name!r} but data.val_records "
            f"holds {joint_sets[1].name!r}."
        )
    return joint_sets[0], data.train_records, data.val_records


def check_config(config: Config, overwrite: bool = False) -> TrainingPlan:
    """Check everything that can be checked before any work; touch nothing.

    Checks: loss weights against the model's outputs, record splits (manifests exist,
    joint sets agree with `data.joints` and `model.num_joints`), and the run directory: a
    run with a backup is resumed (its `config.json` must match except for
    `RESUMABLE_KEYS`), a finished run is only replaced with `overwrite`.

    Raises:
        ValueError: with a one-line reason.
    """
    from pose_keras.losses import resolve_loss_weights
    from pose_keras.model import output_names

    # The same resolution `losses.build_losses` makes when `fit` compiles, here only as a
    # check: unknown output names stop the command before any work.
    resolve_loss_weights(config.train.loss_weights, output_names(config.model))
    joint_set, train_pattern, val_pattern = _check_data(config)

    is_chief, task = worker_role(config.train.distribution)
    run_dir = Path(config.train.run_dir)
    if not is_chief:
        run_dir = run_dir / "workers" / task
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"train.run_dir={str(run_dir)!r} exists and is not a folder.")
    files.check_output_dir(run_dir, "train.run_dir")
    from pose_keras.callbacks import resume_epoch

    initial_epoch = 0
    backup = run_dir / runs.BACKUP_DIR
    resuming = backup.exists() and not overwrite
    if resuming:
        initial_epoch = resume_epoch(backup)
        stored_path = run_dir / runs.CONFIG_FILE
        if not stored_path.exists():
            raise ValueError(
                f"{run_dir} has a backup but no {runs.CONFIG_FILE}; pass --overwrite to start over."
            )
        differences = _config_differences(Config.from_json(stored_path), config)
        if differences:
            raise ValueError(
                f"{run_dir} holds an unfinished run with another configuration "
                f"({'; '.join(differences)}); rerun with its config.json to resume, pass "
                "--overwrite to start over, or choose another train.run_dir."
            )
    elif (run_dir / runs.MODEL_FILE).exists() and not overwrite:
        raise ValueError(
            f"{run_dir} already holds a finished run ({runs.MODEL_FILE}); pass --overwrite to "
            "train from scratch, or choose another train.run_dir."
        )
    return TrainingPlan(
        config=config,
        run_dir=run_dir,
        joint_set=joint_set,
        train_pattern=train_pattern,
        val_pattern=val_pattern,
        initial_epoch=initial_epoch,
        is_chief=is_chief,
        resuming=resuming,
    )


def prepare_run_dir(plan: TrainingPlan) -> None:
    """Fresh start: remove an earlier run's files. Resume: drop the unfinished epoch's logs."""
    from pose_keras.callbacks import truncate_run_logs

    run_dir = plan.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if not plan.resuming:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        for name in RUN_FOLDERS:
            shutil.rmtree(run_dir / name, ignore_errors=True)
    else:
        truncate_run_logs(run_dir, plan.initial_epoch, runs.METRICS_FILE, runs.LOG_FILE)
    plan.config.to_json(run_dir / runs.CONFIG_FILE)
    files.write_json_atomic(run_dir / runs.JOINTS_FILE, plan.joint_set.to_dict())


def learning_rate_schedule(train_config, steps_per_epoch: int):
    """The learning rate (a float or a Keras schedule over optimizer steps).

    The paper (§3) gives Adam, 5e-4, "with decay" and no schedule; ours:

    - `"cosine"` (default): cosine decay from `learning_rate` to 1% of it over all
      `epochs * steps_per_epoch` steps (Loshchilov & Hutter's SGDR without restarts).
    - `"step"`: x0.1 after 60% and again after 90% of the steps (the usual hourglass drops).
    - `"constant"`: no decay.

    The schedule runs on the optimizer's step counter, which the backup restores, so a
    resumed run continues at the same point of the schedule.
    """
    import keras

    rate = float(train_config.learning_rate)
    total = max(1, int(train_config.epochs) * int(steps_per_epoch))
    if train_config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, decay_steps=total, alpha=0.01)
    if train_config.lr_schedule == "step":
        boundaries = sorted({max(1, int(0.6 * total)), max(2, int(0.9 * total))})
        values = [rate * 0.1**index for index in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    return rate


def build_training_state(model, dataset):
    """Create the compiled loss's per-output trackers before the train step is traced.

    Keras builds them lazily inside the first trace when no distribution strategy is set,
    and a `tf.function` that creates variables is traced a second time: for these
    many-output models that doubled the first step's tracing (measured on a 1-stack
    64 px model: train_step traced 2 times, 66 of the 124 s of a 2-epoch test run). Keras
    does this same symbolic build itself under a distribution strategy
    (`Trainer._symbolic_build`, from the dataset's element spec: nothing runs).
    """
    import keras

    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is None:  # another Keras: it builds in the trace, as before
        return
    specs = dataset.element_spec
    batch = keras.tree.map_structure(
        lambda spec: keras.KerasTensor(tuple(spec.shape), spec.dtype.name), specs
    )
    symbolic_build(data_batch=batch)
    if getattr(model, "_distribute_strategy", None) is not None:
        # Under a strategy Keras would build again in `fit`, from the first distributed
        # batch averaged over the replicas; with MultiWorkerMirroredStrategy that average
        # fails on the nested per-replica batch ("Attempt to convert a value (PerReplica:
        # ...)", keras-team/keras#20585, open). The build is done: skip Keras' repeat.
        model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def multiworker_train_step(model) -> None:
    """Let Keras 3 average a multi-worker train step's logs.

    Under MultiWorkerMirroredStrategy Keras reduces each log value with `strategy.reduce(
    "MEAN", value, axis=0)`, which fails on the scalar losses ("Invalid reduction
    dimension 0 for input with 0 dimensions", keras-team/keras#20585). Each replica's
    values are given shape (1,); the reduction over replicas and that axis makes them
    scalars again, so the logs are what one worker would log.
    """
    import keras

    step = model.train_step

    def train_step(data):
        return {name: keras.ops.reshape(value, (1,)) for name, value in step(data).items()}

    model.train_step = train_step


def distribution_strategy(name: str):
    """`tf.distribute` strategy for `train.distribution`.

    - `"none"`: TensorFlow's default strategy (one device).
    - `"mirrored"`: `tf.distribute.MirroredStrategy`, every GPU of this host (the CPU when
      there is none); synchronous data parallelism.
    - `"multiworker"`: `tf.distribute.MultiWorkerMirroredStrategy`; the cluster comes from
      the `TF_CONFIG` environment variable, and every worker runs the same command.

    `train.batch_size` is the global batch: each of R replicas gets batch_size / R.
    """
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def validation_evaluator(model_config, joint_set: JointSet, dataset, image_count: int = 4):
    """A function `evaluate(model) -> dict` scoring the prediction output on `dataset`.

    Decodes the prediction heatmaps (`model.prediction_name`) with the inference stage,
    `pose_keras.inference` (arg-max with the quarter-pixel shift, back through
    each crop's matrix to image px; no flip test, to keep epochs short) and scores them with
    `pose_keras.metrics.evaluate_keypoints`: PCKh@0.5 with the MPII head-box normaliser, or
    PCK@0.2 with the torso normaliser (SPEC §4), pooled Mean as in the official kit.

    Args:
        model_config: ModelConfig. Input size.
        joint_set: JointSet. Normaliser, table groups, scored joints.
        dataset: tf.data.Dataset of (images, meta) from `pipeline.validation_dataset`.
        image_count: int. Crops kept for the TensorBoard heatmap image. Default 4.

    Returns:
        callable(model) -> dict: "mean" (percent), "columns" (table columns, percent),
        "joints" (name -> percent or None), "people", "auc", "occlusion", and "images",
        "predicted", "target" (the first `image_count` crops, their predicted and target
        heatmaps).
    """
    import numpy as np

    from pose_keras import metrics as metrics_module
    from pose_keras.inference import inference_of
    from pose_keras.targets import heatmap_px_from_input_px, joint_weights, render_heatmaps
    from pose_keras.transforms import apply_affine

    input_size = model_config.input_size

    def target_heatmaps(crop_matrices, keypoints_px, visibility, size):
        keypoints_input_px = apply_affine(crop_matrices, keypoints_px).astype("float32")
        heatmaps = render_heatmaps(
            heatmap_px_from_input_px(keypoints_input_px, input_size, size), size, 1.0
        )
        weights = joint_weights(keypoints_input_px, visibility, input_size)
        return (heatmaps * weights[:, None, None, :]).numpy()

    def evaluate(model):
        keypoints, ground_truth, visibility, normalizers = [], [], [], []
        sample = None
        for batch_images, meta in dataset:
            batch_images = batch_images.numpy()
            crop_matrices = meta["crop_matrix"].numpy()
            predictions = inference_of(model, joint_set).predict_crops(
                batch_images, crop_matrices, flip=False, batch_size=len(batch_images)
            )
            keypoints.append(predictions.keypoints)
            ground_truth.append(meta["keypoints"].numpy())
            visibility.append(meta["visibility"].numpy())
            normalizers.append(meta["normalize"].numpy())
            if sample is None:
                count = min(image_count, len(batch_images))
                sample = {
                    "images": batch_images[:count],
                    "predicted": predictions.heatmaps[:count],
                    "target": target_heatmaps(
                        crop_matrices[:count],
                        ground_truth[-1][:count],
                        visibility[-1][:count],
                        predictions.heatmaps.shape[1],
                    ),
                }
        evaluation = metrics_module.evaluate_keypoints(
            np.concatenate(keypoints),
            np.concatenate(ground_truth),
            np.concatenate(visibility),
            np.concatenate(normalizers),
            joint_set,
        ).to_dict()
        mean = evaluation["columns"][metrics_module.MEAN]
        return {
            "mean": float("nan") if mean is None else mean,
            "columns": evaluation["columns"],
            "joints": evaluation["per_joint"],
            "people": evaluation["people"],
            "auc": evaluation["auc"],
            "occlusion": evaluation["occlusion"],
            "mean_px_error": evaluation["mean_px_error"],
            **(sample or {"images": None}),
        }

    return evaluate


def tensorboard_available() -> bool:
    """True when the `tensorboard` package (needed by `tf.summary`) is installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _verbosity(verbose):
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def fit(config: Config, callbacks=(), overwrite: bool = False, verbose="auto") -> FitResult:
    """Train a model as `config` says and write its run directory; resume if it is unfinished.

    Args:
        config: Config. The whole configuration (`Config.preset("synthetic")` is the
            embedded default).
        callbacks: extra Keras callbacks, run after pose_keras' own. Default none.
        overwrite: bool. Start from scratch even if `train.run_dir` holds a finished or
            unfinished run. Default False.
        verbose: "auto", 0, 1 or 2. Keras progress output; "auto" = a progress bar on a
            terminal, one line per epoch otherwise.

    Returns:
        FitResult.

    Raises:
        ValueError: a bad configuration, found before any work (see `check_config`).
        TrainingDivergedError: the loss or the weights became NaN/Inf.
    """
    plan = check_config(config, overwrite=overwrite)
    return _run(plan, list(callbacks), _verbosity(verbose))


def _run(plan: TrainingPlan, extra_callbacks, verbose) -> FitResult:
    import keras

    from pose_keras import callbacks as pose_callbacks
    from pose_keras import pipeline
    from pose_keras.losses import build_losses
    from pose_keras.model import build_model
    from pose_keras.optimizer import Adam

    config, run_dir = plan.config, plan.run_dir
    train = config.train
    strategy = distribution_strategy(train.distribution)
    replicas = strategy.num_replicas_in_sync
    if train.batch_size % replicas:
        raise ValueError(
            f"train.batch_size={train.batch_size} (the global batch) must be a multiple of "
            f"the {replicas} replicas of train.distribution={train.distribution!r}."
        )

    train_pattern, val_pattern = plan.train_pattern, plan.val_pattern
    if plan.synthetic:
        from pose_keras.synthetic import ensure_synthetic

        train_pattern, val_pattern = ensure_synthetic(config)
    people = pipeline.count_people(train_pattern)
    steps_per_epoch = train.steps_per_epoch or max(1, people // train.batch_size)
    seed = train.seed + RESUME_SEED_STRIDE * plan.initial_epoch
    train_data = pipeline.training_dataset(config, train_pattern, seed=seed)
    if train.distribution == "multiworker":
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        train_data = train_data.with_options(options)
    val_data = pipeline.validation_dataset(config, val_pattern)

    previous_policy = keras.config.dtype_policy()
    if train.mixed_precision:
        keras.config.set_dtype_policy(f"mixed_{train.mixed_precision_dtype}")
    try:
        keras.utils.set_random_seed(train.seed)
        with strategy.scope():
            model = build_model(config.model)
            losses, loss_weights = build_losses(config.model, train)
            optimizer = Adam(learning_rate_schedule(train, steps_per_epoch))
            model.compile(
                optimizer=optimizer,
                loss=losses,
                loss_weights=loss_weights,
                jit_compile=train.jit_compile,
            )
            # Build the optimizer's slots now: the backup restores into them, and the first
            # train step is not traced twice.
            model.optimizer.build(model.trainable_variables)
            build_training_state(model, train_data)
            if train.distribution == "multiworker":
                multiworker_train_step(model)
    finally:
        keras.config.set_dtype_policy(previous_policy)

    joint_set = plan.joint_set
    monitor = pose_callbacks.monitor_name(joint_set)
    evaluate = validation_evaluator(config.model, joint_set, val_data)
    tensorboard_dir = run_dir / runs.TENSORBOARD_DIR
    with_tensorboard = tensorboard_available()
    if not with_tensorboard:
        print("note: TensorBoard logs skipped (pip install tensorboard to get them).")
    callback_list = [
        pose_callbacks.StopOnNaN(run_dir),
        pose_callbacks.ValidationPCK(
            evaluate,
            joint_set,
            run_dir / runs.METRICS_FILE,
            planned_epochs=train.epochs,
            image_dir=tensorboard_dir / "heatmaps" if with_tensorboard else None,
        ),
        keras.callbacks.CSVLogger(str(run_dir / runs.LOG_FILE), append=True),
        *(
            [keras.callbacks.TensorBoard(str(tensorboard_dir), write_graph=False)]
            if with_tensorboard
            else []
        ),
        keras.callbacks.BackupAndRestore(str(run_dir / runs.BACKUP_DIR), double_checkpoint=True),
        pose_callbacks.BestCheckpoint(
            run_dir / runs.BEST_FILE, monitor, metrics_path=run_dir / runs.METRICS_FILE
        ),
        *extra_callbacks,
    ]

    # Only now, with the data checked, the datasets built and the model compiled, is an
    # earlier run's output removed (--overwrite) or its logs truncated (resume).
    prepare_run_dir(plan)
    people_line = f"{people} training people, {steps_per_epoch} steps of {train.batch_size}"
    if plan.initial_epoch >= train.epochs:
        print(f"{run_dir}: all {train.epochs} epochs were done; writing the final model.")
    elif plan.initial_epoch:
        print(
            f"{run_dir}: resuming from epoch {plan.initial_epoch + 1} of {train.epochs} "
            f"(epochs 1-{plan.initial_epoch} restored from {runs.BACKUP_DIR}/); {people_line}.",
            flush=True,
        )
    else:
        print(
            f"{run_dir}: training {train.epochs} epochs; {people_line}; {monitor} on "
            f"{pipeline.count_people(val_pattern)} validation people after each epoch.",
            flush=True,
        )
    start = time.monotonic()
    history = model.fit(
        train_data,
        epochs=train.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callback_list,
        verbose=verbose,
        shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a tf.data.Dataset
    )
    pose_callbacks.save_model_atomic(model, run_dir / runs.MODEL_FILE)
    metrics = files.read_json(run_dir / runs.METRICS_FILE) or {}
    metrics["seconds_this_call"] = round(time.monotonic() - start, 1)
    pose_callbacks.write_json_atomic(run_dir / runs.METRICS_FILE, metrics)
    best = metrics.get("best", {})
    print(
        f"{run_dir}: done in {time.monotonic() - start:.0f} s; best {monitor} "
        f"{best.get(monitor, float('nan')):.1f} at epoch {best.get('epoch', -1) + 1}; "
        f"final model {run_dir / runs.MODEL_FILE}.",
        flush=True,
    )
    return FitResult(
        run_dir=run_dir,
        history=dict(history.history),
        metrics=metrics,
        initial_epoch=plan.initial_epoch,
        model=model,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.fit",
        description="Train the multi-scale supervised stacked hourglass. With no argument: "
        "generate (or reuse) the synthetic dataset and train the small 'synthetic' preset "
        "into runs/synthetic. Rerunning the same command after an interruption resumes the "
        "run. See docs/training.md.",
    )
    cli.add_config_arguments(parser, default_preset="synthetic")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Start from scratch even if train.run_dir holds a finished or unfinished run.",
    )
    parser.add_argument(
        "--verbose",
        choices=("auto", "0", "1", "2"),
        default="auto",
        help="Keras progress: 1 = progress bar, 2 = one line per epoch, 0 = silent. "
        "Default: a bar on a terminal, one line per epoch otherwise.",
    )
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        config = cli.config_from_arguments(args, default_preset="synthetic")
        plan = check_config(config, overwrite=args.overwrite)
    except ValueError as error:
        return cli.error_exit(error)
    from pose_keras.callbacks import TrainingDivergedError

    try:
        _run(plan, [], _verbosity(args.verbose))
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # bad records found while reading (pipeline)
        return cli.error_exit(error)
    except OSError as error:  # a full disk or a vanished folder while writing the run
        print(f"error: {files.describe_os_error(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        from pose_keras.pipeline import describe_data_error

        line = describe_data_error(error)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: rerun the same command to resume {plan.run_dir} from its last "
            "completed epoch.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
