"""`python -m pose_keras.ablate`: run a grid of trainings and collect one results table.

The paper's ablation (Ke et al. 2018, §3.2, Fig. 4) varies the number of conv-deconv stacks
and the set of supervised scales; §3.3 compares PCKh on occluded joints with and without
multi-scale supervision. This command runs such a grid through `pose_keras.fit.fit`, one
subprocess per training run, and turns every run's `metrics.json` into tables and a plot.

Examples:

    python -m pose_keras.ablate --grid study --config configs/ablation_synthetic.json \\
        --seeds 3 --jobs 2 --threads 1 --out runs/ablation
    python -m pose_keras.ablate --grid study --config configs/ablation_synthetic.json \\
        --seeds 3 --out runs/ablation --report-only --report-dir docs/ablation \\
        --doc docs/ablation.md
    python -m pose_keras.ablate --grid fig4 --config configs/mpii_paper.json --seeds 1 \\
        --set train.epochs=50 --out runs/fig4

Grids are data: `GRIDS` below, or a JSON file of the same shape,
`{"description": ..., "axes": {"section.key": [values, ...]}, "extra": [{"section.key":
value, ...}, ...]}`. The cells are every combination of the axes (in order, the last axis
varying fastest) followed by the extra cells (each a full set of overrides). Every cell runs
once per seed (`train.seed` = 0, 1, ..., N-1); all cells of seed 0 come first, so a partial
grid already holds one complete replicate.

Run directories: `OUT/cells/<cell name>/seed<k>/` (a normal `train.run_dir`). The runner
resumes: a run whose `metrics.json` lists its final epoch and whose `model.keras` exists is
skipped; an interrupted run continues from its backup (`fit` resumes it). With `--jobs N`,
N runs train at once; each run is claimed by a `running.lock` (the runner's pid), so a
second runner on the same folder takes other runs, and a lock whose runner died is taken
over. A run that failed
(diverged, bad input) leaves `failed.txt` and is skipped later unless `--retry-failed`.

What is collected (`collect_runs`, then `summarise`): the final epoch's validation PCKh
(not the best epoch: picking the best epoch on the validation set is a selection that
flatters every cell), the PCKh over annotated-but-occluded joints and over the occluded
joints whose skeleton neighbours are visible (`pose_keras.metrics.occluded_joints`), the
training seconds (sum of the epochs' training time, without validation), the parameters.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pose_keras import runs
from pose_keras.config import Config
from pose_keras.files import read_json

SCALE_SETS = ([1], [1, 2], [1, 2, 4], [1, 2, 4, 8])

# The "our own choices" cells of the study: each changes one design decision of
# `pose_keras` that the paper leaves open, on the 2-stack reference cell.
STUDY_REFERENCE = {
    "model.stacks": 2,
    "model.supervised_scales": [1, 2, 4, 8],
    "model.global_regression": True,
}

GRIDS = {
    "fig4": {
        "description": "Ke et al. Fig. 4: stacks x supervised scale sets, each with the "
        "global regression off and on.",
        "axes": {
            "model.stacks": [1, 2, 4, 8],
            "model.supervised_scales": list(SCALE_SETS),
            "model.global_regression": [False, True],
        },
    },
    "study": {
        "description": "The synthetic-data study: stacks {1, 2, 4} x the four scale sets x "
        "regression off/on, plus one cell per design choice of ours on the 2-stack "
        "reference (scales {1,2,4,8}, regression on).",
        "axes": {
            "model.stacks": [1, 2, 4],
            "model.supervised_scales": list(SCALE_SETS),
            "model.global_regression": [False, True],
        },
        "extra": [
            # Loss weighting of the scales: Keras-style mean over pixels instead of Eq. 1's sum.
            {**STUDY_REFERENCE, "train.loss": "mse"},
            {**STUDY_REFERENCE, "model.supervised_scales": [1], "train.loss": "mse"},
            # No feedback of the coarse heatmaps into the next deconv layer.
            {**STUDY_REFERENCE, "model.scale_feedback": False},
            # Nearest upsampling (Newell et al.) instead of transposed convolutions.
            {**STUDY_REFERENCE, "model.deconv": "upsample"},
            {
                **STUDY_REFERENCE,
                "model.supervised_scales": [1],
                "model.global_regression": False,
                "model.deconv": "upsample",
            },
            # The regression network: not residual, and half / double its width.
            {**STUDY_REFERENCE, "model.regression_residual": False},
            {**STUDY_REFERENCE, "model.regression_channels": 16},
            {**STUDY_REFERENCE, "model.regression_channels": 64},
        ],
    },
}

# Short names of the config keys in cell names and table columns.
LABELS = {
    "model.stacks": "stacks",
    "model.supervised_scales": "scales",
    "model.global_regression": "regression",
    "model.scale_feedback": "feedback",
    "model.deconv": "deconv",
    "model.regression_residual": "residual",
    "model.regression_channels": "regchannels",
    "model.channels": "channels",
    "model.input_size": "input",
    "train.loss": "loss",
}
CELLS_DIR = "cells"
CELL_CONFIG_FILE = "ablation_cell.json"  # the config the runner asked for
CELL_INFO_FILE = "ablation_info.json"  # written by the cell when it finishes: parameters
CELL_LOG_FILE = "fit.log"
CELL_TIME_FILE = "ablation_time.json"  # written by the runner: CPU and wall seconds used
FAILED_FILE = "failed.txt"
LOCK_FILE = "running.lock"  # the pid of the runner training this run
CONCLUSION_START, CONCLUSION_END = "<!-- conclusion:start -->", "<!-- conclusion:end -->"


# --- grids and cells --------------------------------------------------------------------


def load_grid(name_or_path) -> dict:
    """A grid from `GRIDS` by name, or from a JSON file; checked for shape."""
    if name_or_path in GRIDS:
        grid = GRIDS[name_or_path]
    else:
        path = Path(name_or_path)
        if not path.suffix == ".json":
            raise ValueError(
                f"--grid {name_or_path!r} is neither a grid name {sorted(GRIDS)} nor a .json file."
            )
        try:
            grid = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"Grid file not found: {path}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(grid, dict) or not isinstance(grid.get("axes", {}), dict):
        raise ValueError(f"grid {name_or_path!r}: expected an object with an 'axes' object.")
    unknown = sorted(set(grid) - {"description", "axes", "extra"})
    if unknown:
        raise ValueError(f"grid {name_or_path!r}: unknown key(s) {unknown}.")
    for key, values in grid.get("axes", {}).items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid {name_or_path!r}: axis {key!r} must be a non-empty list.")
    extra = grid.get("extra", [])
    if not isinstance(extra, list) or not all(isinstance(cell, dict) for cell in extra):
        raise ValueError(f"grid {name_or_path!r}: 'extra' must be a list of objects.")
    if not grid.get("axes") and not extra:
        raise ValueError(f"grid {name_or_path!r} has no cells.")
    return grid


def override_text(key: str, value) -> str:
    """`section.key=value` in the syntax of `Config.with_overrides`."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple):
        text = ",".join(str(item) for item in value)
    else:
        text = str(value)
    return f"{key}={text}"


def value_label(value) -> str:
    if isinstance(value, bool):
        return "-on" if value else "-off"
    if isinstance(value, list | tuple):
        return "-".join(str(item) for item in value)
    if isinstance(value, str):
        return f"-{value}"
    return str(value)


def cell_name(cell: dict) -> str:
    """A stable, readable folder name, e.g. `stacks2_scales1-2-4_regression-on`."""
    parts = [f"{LABELS.get(key, key.split('.')[-1])}{value_label(v)}" for key, v in cell.items()]
    return "_".join(parts).replace("/", "-")


def grid_cells(grid: dict) -> list[dict]:
    """Every cell of a grid as an ordered {key: value} dict, without duplicates."""
    axes = grid.get("axes", {})
    cells = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    cells += [dict(cell) for cell in grid.get("extra", [])]
    unique, seen = [], set()
    for cell in cells:
        name = cell_name(cell)
        if name not in seen:
            seen.add(name)
            unique.append(cell)
    return unique


class Run:
    """One training run of the grid: a cell and a seed, with its resolved config."""

    def __init__(self, cell: dict, seed: int, config: Config, run_dir: Path):
        self.cell, self.seed, self.config, self.run_dir = cell, seed, config, run_dir
        self.name = cell_name(cell)

    @property
    def label(self) -> str:
        return f"{self.name} seed {self.seed}"

    def is_finished(self) -> bool:
        """`metrics.json` lists the final epoch and `model.keras` was written."""
        metrics = read_json(self.run_dir / runs.METRICS_FILE)
        epochs = (metrics or {}).get("epochs") or []
        return (
            bool(epochs)
            and epochs[-1]["epoch"] == self.config.train.epochs - 1
            and (self.run_dir / runs.MODEL_FILE).exists()
        )

    def has_failed(self) -> bool:
        return (self.run_dir / FAILED_FILE).exists()


def plan_runs(grid: dict, base: Config, overrides, seeds: int, out) -> list[Run]:
    """Every run of the grid in execution order: seed-major, then cell order.

    Raises:
        ValueError: a cell's overrides do not make a valid config (names the cell).
    """
    out = Path(out)
    planned = []
    for seed in range(seeds):
        for cell in grid_cells(grid):
            name = cell_name(cell)
            run_dir = out / CELLS_DIR / name / f"seed{seed}"
            cell_overrides = [override_text(key, value) for key, value in cell.items()]
            try:
                config = base.with_overrides(
                    [
                        *overrides,
                        *cell_overrides,
                        f"train.seed={seed}",
                        f"train.run_dir={run_dir}",
                    ]
                )
            except ValueError as error:
                raise ValueError(f"grid cell {name}: {error}") from None
            planned.append(Run(cell, seed, config, run_dir))
    return planned


# --- running ----------------------------------------------------------------------------


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def run_grid(
    planned: list[Run], threads: int = 0, retry_failed=False, stream=None, jobs: int = 1
) -> dict:
    """Run every unfinished run of `planned`, one `fit` subprocess each; return counts.

    `jobs` runs train at once (each with `threads` TensorFlow threads); they are taken in
    plan order. Each run's output goes to its `fit.log`; one progress line per run goes to
    `stream` (which run, n of N, the estimated time left from the runs done by this call).
    A run being trained by another runner (its `running.lock` names a live process) is
    left to that runner, so two runners on one `--out` share the work instead of training
    the same run twice.

    Returns:
        {"done": finished now, "skipped": already finished, "failed": failures,
        "busy": left to another runner}.
    """
    stream = stream or sys.stdout
    total = len(planned)
    counts = {"done": 0, "skipped": 0, "failed": 0, "busy": 0}
    durations = []
    guard = threading.Lock()
    queue = iter(enumerate(planned, start=1))
    stop = threading.Event()

    def say(text):
        with guard:
            print(text, file=stream, flush=True)

    def train(index: int, run: Run) -> None:
        if run.is_finished():
            with guard:
                counts["skipped"] += 1
            return
        if run.has_failed() and not retry_failed:
            with guard:
                counts["failed"] += 1
            say(
                f"[{index}/{total}] {run.label}: failed earlier (see {run.run_dir / FAILED_FILE}); "
                "--retry-failed reruns it."
            )
            return
        owner = claim_run(run.run_dir)
        if owner:
            with guard:
                counts["busy"] += 1
            say(f"[{index}/{total}] {run.label}: being trained by another runner (pid {owner})")
            return
        try:
            with guard:
                # Every unfinished run, this one and those the other jobs are training
                # included, so that lines printed together by two jobs agree.
                remaining = sum(
                    1
                    for other in planned
                    if not other.is_finished() and (retry_failed or not other.has_failed())
                )
                mean = sum(durations) / len(durations) if durations else 0.0
            eta = (
                f"ETA {_format_seconds(remaining * mean / jobs)}"
                if durations
                else "ETA after the first run"
            )
            resume = " (resuming)" if (run.run_dir / runs.BACKUP_DIR).exists() else ""
            say(f"[{index}/{total}] {run.label}{resume}: training; {remaining} runs left, {eta}")
            start = time.monotonic()
            code = run_cell_subprocess(run, threads)
            elapsed = time.monotonic() - start
        finally:
            release_run(run.run_dir)
        if code == 0 and run.is_finished():
            row = run_row(run)
            with guard:
                durations.append(elapsed)
                counts["done"] += 1
            say(
                f"[{index}/{total}] {run.label}: PCKh {row['pckh']:.1f}, occluded "
                f"{_number_text(row['occluded_pckh'])}, {elapsed:.0f} s"
            )
        else:
            reason = last_line(run.run_dir / CELL_LOG_FILE) or f"exit code {code}"
            (run.run_dir / FAILED_FILE).write_text(f"exit code {code}: {reason}\n")
            with guard:
                counts["failed"] += 1
            say(
                f"[{index}/{total}] {run.label}: FAILED ({reason}); log {run.run_dir / CELL_LOG_FILE}"
            )

    def work() -> None:
        while not stop.is_set():
            with guard:
                item = next(queue, None)
            if item is None:
                return
            train(*item)

    if jobs <= 1:
        work()
        return counts
    workers = [threading.Thread(target=work, daemon=True) for _ in range(jobs)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            while worker.is_alive():
                worker.join(timeout=0.5)
    except BaseException:
        stop.set()  # no new runs; the training children die with this process
        raise
    return counts


def claim_run(run_dir: Path) -> int:
    """Take `run_dir` for this process: 0, or the pid of the live runner that holds it.

    The claim is `running.lock` holding the runner's pid, created exclusively. A lock left
    by a runner that died (killed, machine restarted) is taken over.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _process_alive(owner):
                return owner
            path.unlink(missing_ok=True)  # stale: its runner is gone
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return 0
    return 0


def release_run(run_dir: Path) -> None:
    (Path(run_dir) / LOCK_FILE).unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _number_text(value, digits=1) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def last_line(path) -> str:
    path = Path(path)
    if not path.exists():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or [line for line in lines if line] or [""])[-1]


def run_cell_subprocess(run: Run, threads: int) -> int:
    """Train one run in a child process (memory is freed and a kill is clean); exit code."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    (run.run_dir / FAILED_FILE).unlink(missing_ok=True)
    run.config.to_json(run.run_dir / CELL_CONFIG_FILE)
    command = [
        sys.executable,
        "-m",
        "pose_keras.ablate",
        "--cell",
        str(run.run_dir / CELL_CONFIG_FILE),
        "--threads",
        str(threads),
    ]
    environment = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
    }
    with open(run.run_dir / CELL_LOG_FILE, "a") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n")
        log.flush()
        start = time.monotonic()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        try:
            # wait4 gives this child's own CPU time (with its waited-for children, e.g.
            # synthetic-data workers), also when other runs train at the same time.
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = code = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            add_run_time(run.run_dir, cpu, time.monotonic() - start)
            return code
        except BaseException:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            raise


def add_run_time(run_dir, cpu_seconds: float, wall_seconds: float) -> None:
    """Add one training call's CPU and wall time to the run's `ablation_time.json`.

    A call that is killed together with the runner is not counted, so after an
    interruption the totals are a lower bound.
    """
    from pose_keras.callbacks import write_json_atomic

    path = Path(run_dir) / CELL_TIME_FILE
    times = read_json(path) or {"cpu_seconds": 0.0, "wall_seconds": 0.0, "calls": 0}
    times["cpu_seconds"] = round(times["cpu_seconds"] + cpu_seconds, 1)
    times["wall_seconds"] = round(times["wall_seconds"] + wall_seconds, 1)
    times["calls"] += 1
    write_json_atomic(path, times)


def _die_with_parent():
    """Linux: get SIGKILL when the runner dies, so a killed grid leaves no orphan training."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_cell(config_path, threads: int = 0) -> int:
    """The child side of `run_cell_subprocess`: `fit` one config; exit code as `fit.main`."""
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the runner died before the death signal was armed
        return 1
    try:
        config = Config.from_json(config_path)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import tensorflow as tf

    if threads:
        # TensorFlow does not read TF_NUM_INTRAOP_THREADS; set the pools before any op.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from pose_keras.callbacks import TrainingDivergedError, write_json_atomic
    from pose_keras.fit import fit

    try:
        result = fit(config, verbose=2)
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_json_atomic(
        Path(config.train.run_dir) / CELL_INFO_FILE,
        {"parameters": int(result.model.count_params()), "threads": threads},
    )
    return 0


# --- collecting -------------------------------------------------------------------------


def run_row(run: Run) -> dict:
    """One finished run as a flat row: cell values, seed, final-epoch metrics, time."""
    metrics = read_json(run.run_dir / runs.METRICS_FILE)
    monitor = metrics.get("monitor", "val_pckh")
    last = metrics["epochs"][-1]
    occlusion = last.get("occlusion") or {}
    info = read_json(run.run_dir / CELL_INFO_FILE) or {}
    times = read_json(run.run_dir / CELL_TIME_FILE) or {}
    return {
        "cell": run.name,
        "seed": run.seed,
        "pckh": last[monitor],
        "best_pckh": metrics.get("best", {}).get(monitor),
        "occluded_pckh": occlusion.get("pck"),
        "occluded_count": occlusion.get("count"),
        "inferable_pckh": occlusion.get("inferable_pck"),
        "inferable_count": occlusion.get("inferable_count"),
        "auc": last.get("auc"),
        "epochs": len(metrics["epochs"]),
        "train_seconds": round(sum(entry.get("seconds") or 0.0 for entry in metrics["epochs"]), 1),
        "cpu_seconds": times.get("cpu_seconds"),
        "wall_seconds": times.get("wall_seconds"),
        "parameters": info.get("parameters"),
    }


def varied_keys(planned: list[Run]) -> list[str]:
    """Config keys that differ between the grid's cells, in first-seen order."""
    keys = []
    for run in planned:
        for key in run.cell:
            if key not in keys:
                keys.append(key)
    return keys


def config_value(config: Config, key: str):
    section, name = key.split(".")
    value = getattr(getattr(config, section), name)
    return list(value) if isinstance(value, tuple) else value


def collect_runs(planned: list[Run]):
    """A pandas DataFrame with one row per finished run (columns: the varied keys' values
    by their `LABELS` name, then `run_row`'s fields)."""
    import pandas as pd

    keys = varied_keys(planned)
    rows = []
    for run in planned:
        if not run.is_finished():
            continue
        values = {LABELS.get(key, key): _cell_text(config_value(run.config, key)) for key in keys}
        rows.append({**values, **run_row(run)})
    columns = [LABELS.get(key, key) for key in keys] + list(_empty_row_fields())
    return pd.DataFrame(rows, columns=columns)


def _empty_row_fields():
    return (
        "cell",
        "seed",
        "pckh",
        "best_pckh",
        "occluded_pckh",
        "occluded_count",
        "inferable_pckh",
        "inferable_count",
        "auc",
        "epochs",
        "train_seconds",
        "cpu_seconds",
        "wall_seconds",
        "parameters",
    )


def _cell_text(value):
    if isinstance(value, list):
        return "{" + ",".join(str(item) for item in value) + "}"
    return value


MEASURES = ("pckh", "occluded_pckh", "inferable_pckh", "train_seconds", "cpu_seconds")


def summarise(frame, planned: list[Run]):
    """One row per cell (grid order): values, seeds done, mean and std of each measure.

    std is the sample standard deviation over seeds (ddof=1; NaN with one seed).
    """
    import pandas as pd

    keys = [LABELS.get(key, key) for key in varied_keys(planned)]
    order = list(dict.fromkeys(run.name for run in planned))
    planned_seeds = max(run.seed for run in planned) + 1
    rows = []
    for name in order:
        group = frame[frame["cell"] == name]
        reference = next(run for run in planned if run.name == name)
        row = {
            LABELS.get(key, key): _cell_text(config_value(reference.config, key))
            for key in varied_keys(planned)
        }
        row["cell"] = name
        row["seeds"] = f"{len(group)}/{planned_seeds}"
        for measure in MEASURES:
            values = group[measure].astype(float)
            row[f"{measure}_mean"] = values.mean() if len(values) else math.nan
            row[f"{measure}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        parameters = group["parameters"].dropna()
        row["parameters"] = int(parameters.iloc[0]) if len(parameters) else None
        rows.append(row)
    columns = keys + ["cell", "seeds"]
    columns += [f"{measure}_{kind}" for measure in MEASURES for kind in ("mean", "std")]
    return pd.DataFrame(rows, columns=columns + ["parameters"])


def mean_std_text(mean, std, digits=1) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def cells_markdown(summary, planned: list[Run]) -> str:
    """The cell table: varied values, seeds, PCKh, occluded PCKh, training minutes."""
    keys = [LABELS.get(key, key) for key in varied_keys(planned)]
    header = keys + [
        "seeds",
        "PCKh@0.5",
        "occluded",
        "occluded, inferable",
        "train min",
        "CPU min",
        "params",
    ]
    rows = []
    for _, row in summary.iterrows():
        rows.append(
            [_bool_text(row[key]) for key in keys]
            + [
                row["seeds"],
                mean_std_text(row["pckh_mean"], row["pckh_std"]),
                mean_std_text(row["occluded_pckh_mean"], row["occluded_pckh_std"]),
                mean_std_text(row["inferable_pckh_mean"], row["inferable_pckh_std"]),
                mean_std_text(row["train_seconds_mean"] / 60, row["train_seconds_std"] / 60),
                mean_std_text(row["cpu_seconds_mean"] / 60, row["cpu_seconds_std"] / 60),
                "–"
                if row["parameters"] is None or row["parameters"] != row["parameters"]
                else f"{int(row['parameters']):,}",
            ]
        )
    return markdown_table(header, rows)


def _bool_text(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


# --- the study's views: Fig. 4, §3.3, effects ---------------------------------------------

AXIS_STACKS, AXIS_SCALES, AXIS_REGRESSION = (
    "model.stacks",
    "model.supervised_scales",
    "model.global_regression",
)


def has_fig4_axes(grid: dict) -> bool:
    return AXIS_STACKS in grid.get("axes", {}) and AXIS_SCALES in grid.get("axes", {})


def axis_rows(summary, grid: dict):
    """Summary rows of the axes cells (not the extra cells), or None without Fig. 4 axes."""
    if not has_fig4_axes(grid):
        return None
    axis_names = {cell_name(cell) for cell in grid_cells({"axes": grid["axes"]})}
    return summary[summary["cell"].isin(axis_names)]


def regression_values(grid: dict) -> list:
    return list(grid["axes"].get(AXIS_REGRESSION, [None]))


def _scales_text(scales) -> str:
    return "{" + ",".join(str(scale) for scale in scales) + "}"


def occlusion_markdown(summary, grid: dict) -> str:
    """§3.3: PCKh@0.5 on occluded joints (all / inferable), stacks x scales x regression."""
    rows_frame = axis_rows(summary, grid)
    if rows_frame is None:
        return ""
    regressions = regression_values(grid)
    header = ["stacks", "scales"]
    for regression in regressions:
        suffix = "" if regression is None else f", regression {_bool_text(regression)}"
        header += [f"occluded{suffix}", f"inferable{suffix}"]
    rows = []
    for stacks in grid["axes"][AXIS_STACKS]:
        for scales in grid["axes"][AXIS_SCALES]:
            row = [stacks, _scales_text(scales)]
            for regression in regressions:
                cell = _axis_cell(stacks, scales, regression)
                match = rows_frame[rows_frame["cell"] == cell_name_in(grid, cell)]
                if (
                    len(match)
                    and match.iloc[0]["occluded_pckh_mean"] == match.iloc[0]["occluded_pckh_mean"]
                ):
                    item = match.iloc[0]
                    row += [
                        f"{mean_std_text(item['occluded_pckh_mean'], item['occluded_pckh_std'])} ({item['seeds']})",
                        mean_std_text(item["inferable_pckh_mean"], item["inferable_pckh_std"]),
                    ]
                else:
                    row += ["–", "–"]
            rows.append(row)
    return markdown_table(header, rows)


def _axis_cell(stacks, scales, regression) -> dict:
    cell = {AXIS_STACKS: stacks, AXIS_SCALES: list(scales)}
    if regression is not None:
        cell[AXIS_REGRESSION] = regression
    return cell


def cell_name_in(grid: dict, cell: dict) -> str:
    """The name of `cell` with its keys in the grid's axis order (as `grid_cells` names it)."""
    order = list(grid.get("axes", {})) + [key for key in cell if key not in grid.get("axes", {})]
    return cell_name({key: cell[key] for key in order if key in cell})


def plot_fig4(summary, grid: dict, path, measure="pckh", title=None) -> bool:
    """Fig. 4 style: PCKh vs stacks, one line per scale set, error bars = std over seeds,
    one panel per regression setting. False (nothing drawn) when there is nothing to draw."""
    rows_frame = axis_rows(summary, grid)
    if rows_frame is None or rows_frame[f"{measure}_mean"].isna().all():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regressions = regression_values(grid)
    figure, axes = plt.subplots(
        1, len(regressions), figsize=(5.0 * len(regressions), 3.8), sharey=True, squeeze=False
    )
    stacks_values = list(grid["axes"][AXIS_STACKS])
    for axis, regression in zip(axes[0], regressions, strict=True):
        for index, scales in enumerate(grid["axes"][AXIS_SCALES]):
            names = [
                cell_name_in(grid, _axis_cell(stacks, scales, regression))
                for stacks in stacks_values
            ]
            points = rows_frame.set_index("cell").reindex(names)
            points["stacks"] = stacks_values
            points = points.dropna(subset=[f"{measure}_mean"])
            if not len(points):
                continue
            axis.errorbar(
                points["stacks"],
                points[f"{measure}_mean"],
                yerr=points[f"{measure}_std"].fillna(0.0),
                marker="o",
                capsize=3,
                color=f"C{index}",  # the same colour for a scale set in every panel
                label=f"scales {_scales_text(scales)}",
            )
        axis.set_xscale("log", base=2)
        axis.set_xticks(stacks_values, [str(value) for value in stacks_values])
        axis.set_xlim(min(stacks_values) / 1.4, max(stacks_values) * 1.4)
        axis.set_xlabel("conv-deconv stacks")
        if regression is not None:
            axis.set_title(f"global regression {_bool_text(regression)}", fontsize=10)
        axis.grid(alpha=0.3)
    labels = {"pckh": "validation PCKh@0.5 (%)", "occluded_pckh": "PCKh@0.5, occluded joints (%)"}
    axes[0][0].set_ylabel(labels.get(measure, measure))
    legend = {}  # every scale set drawn in any panel, in grid order
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes[0][-1].legend(legend.values(), legend.keys(), loc="lower right", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def compare(summary, first: str, second: str, measure="pckh"):
    """(mean of `second` - mean of `first`, standard error of that difference, seeds done
    of each) over the finished seeds, or None when either has no finished run.

    The standard error is sqrt(s1^2/n1 + s2^2/n2) with the sample std over seeds; NaN when a
    side has fewer than two seeds.
    """
    rows = summary.set_index("cell")
    if first not in rows.index or second not in rows.index:
        return None
    a, b = rows.loc[first], rows.loc[second]
    means = (a[f"{measure}_mean"], b[f"{measure}_mean"])
    if any(value != value for value in means):  # NaN: no finished run
        return None
    counts = [int(str(row["seeds"]).split("/")[0]) for row in (a, b)]
    difference = float(means[1] - means[0])
    if min(counts) < 2:
        return difference, math.nan, counts
    error = math.sqrt(a[f"{measure}_std"] ** 2 / counts[0] + b[f"{measure}_std"] ** 2 / counts[1])
    return difference, error, counts


def comparison_pairs(grid: dict) -> list[tuple[str, str, str]]:
    """(what changes, first cell name, second cell name) for every question of the study:
    each larger scale set against GT only, regression off -> on, one more stack level, and
    every extra cell against the axes cell it modifies."""
    pairs = []
    axes = grid.get("axes", {})
    if has_fig4_axes(grid):
        stacks_values, scale_sets = axes[AXIS_STACKS], axes[AXIS_SCALES]
        regressions = regression_values(grid)

        def name(stacks, scales, regression):
            return cell_name_in(grid, _axis_cell(stacks, scales, regression))

        def where(stacks=None, scales=None, regression=None):
            parts = [f"stacks {stacks}" if stacks is not None else None]
            parts.append(f"scales {_scales_text(scales)}" if scales is not None else None)
            parts.append(f"regression {_bool_text(regression)}" if regression is not None else None)
            return ", ".join(part for part in parts if part)

        ground_truth_only = [scales for scales in scale_sets if list(scales) == [1]]
        for stacks in stacks_values:
            for regression in regressions:
                for scales in scale_sets:
                    if ground_truth_only and list(scales) != [1]:
                        pairs.append(
                            (
                                f"scales {{1}} -> {_scales_text(scales)}; {where(stacks, None, regression)}",
                                name(stacks, [1], regression),
                                name(stacks, scales, regression),
                            )
                        )
        if False in regressions and True in regressions:
            for stacks in stacks_values:
                for scales in scale_sets:
                    pairs.append(
                        (
                            f"regression off -> on; {where(stacks, scales)}",
                            name(stacks, scales, False),
                            name(stacks, scales, True),
                        )
                    )
        for fewer, more in itertools.pairwise(stacks_values):
            for scales in scale_sets:
                for regression in regressions:
                    pairs.append(
                        (
                            f"stacks {fewer} -> {more}; {where(None, scales, regression)}",
                            name(fewer, scales, regression),
                            name(more, scales, regression),
                        )
                    )
    axis_names = {cell_name(cell) for cell in grid_cells({"axes": axes})} if axes else set()
    for cell in grid.get("extra", []):
        changed = [key for key in cell if key not in axes]
        reference = cell_name_in(grid, {key: value for key, value in cell.items() if key in axes})
        if changed and reference in axis_names:
            change = ", ".join(override_text(key, cell[key]) for key in changed)
            pairs.append((f"{change}; on {reference}", reference, cell_name(cell)))
    return pairs


def effects_frame(summary, grid: dict):
    """Every comparison of `comparison_pairs` with both sides finished, as a DataFrame."""
    import pandas as pd

    rows = []
    for what, first, second in comparison_pairs(grid):
        for measure in ("pckh", "occluded_pckh"):
            result = compare(summary, first, second, measure)
            if result is None:
                continue
            difference, error, counts = result
            rows.append(
                {
                    "change": what,
                    "measure": measure,
                    "difference": round(difference, 2),
                    "standard_error": round(error, 2) if error == error else math.nan,
                    "beyond_2se": None if error != error else bool(abs(difference) > 2 * error),
                    "seeds": f"{counts[0]} / {counts[1]}",
                }
            )
    columns = ["change", "measure", "difference", "standard_error", "beyond_2se", "seeds"]
    return pd.DataFrame(rows, columns=columns)


def effects_markdown(effects) -> str:
    if not len(effects):
        return "No pair of cells has finished runs on both sides yet.\n"
    names = {"pckh": "PCKh", "occluded_pckh": "occluded PCKh"}
    rows = [
        [
            row["change"],
            names[row["measure"]],
            f"{row['difference']:+.1f}",
            "–"
            if row["standard_error"] != row["standard_error"]
            else f"{row['standard_error']:.1f}",
            "–" if row["beyond_2se"] is None else ("yes" if row["beyond_2se"] else "no"),
            row["seeds"],
        ]
        for _, row in effects.iterrows()
    ]
    return markdown_table(
        ["change", "measure", "difference", "std. error", "beyond 2 s.e.", "seeds"], rows
    )


# --- the report -------------------------------------------------------------------------

REPORT_FILES = {
    "runs": "runs.csv",
    "cells": "cells.csv",
    "cells_md": "cells.md",
    "occlusion_md": "occlusion.md",
    "effects": "effects.csv",
    "effects_md": "effects.md",
    "plot": "fig4.png",
    "plot_occluded": "fig4_occluded.png",
}


def write_report(planned, grid, report_dir, commands=(), doc=None, grid_name="") -> dict:
    """Collect every finished run and write the tables, the plots and optionally the doc.

    Files in `report_dir`: `runs.csv` (one row per finished run), `cells.csv` (mean and
    std per cell), `cells.md`, `occlusion.md`, `effects.csv` / `.md`, `fig4.png` and
    `fig4_occluded.png`. With `doc`, a markdown document with the commands, the status
    (runs done of planned), the tables and plots; the part between `CONCLUSION_START` and
    `CONCLUSION_END` of an existing doc (the hand-written conclusion) is kept.

    Returns:
        {"runs": finished runs, "planned": planned runs, "files": [paths written]}.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    frame = collect_runs(planned)
    summary = summarise(frame, planned)
    effects = effects_frame(summary, grid)
    paths = {key: report_dir / name for key, name in REPORT_FILES.items()}
    frame.to_csv(paths["runs"], index=False)
    summary.to_csv(paths["cells"], index=False, float_format="%.3f")
    effects.to_csv(paths["effects"], index=False)
    tables = {
        "cells_md": cells_markdown(summary, planned),
        "occlusion_md": occlusion_markdown(summary, grid),
        "effects_md": effects_markdown(effects),
    }
    for key, text in tables.items():
        paths[key].write_text(text)
    written = [paths[key] for key in ("runs", "cells", "effects", *tables)]
    done = f"{len(frame)} of {len(planned)} runs"
    for key, measure in (("plot", "pckh"), ("plot_occluded", "occluded_pckh")):
        if plot_fig4(summary, grid, paths[key], measure, title=f"{grid_name} ({done})"):
            written.append(paths[key])
        else:
            paths[key].unlink(missing_ok=True)
    if doc is not None:
        write_doc(Path(doc), planned, grid, summary, frame, tables, paths, commands, grid_name)
        written.append(Path(doc))
    return {"runs": len(frame), "planned": len(planned), "files": written}


def seed_spread(summary) -> str:
    """One sentence on the spread over seeds of the cells with at least two seeds."""
    stds = summary["pckh_std"].dropna()
    occluded = summary["occluded_pckh_std"].dropna()
    if not len(stds):
        return "No cell has two finished seeds yet: no spread to report."
    return (
        f"Over the {len(stds)} cells with at least two finished seeds, the standard deviation "
        f"of the final PCKh over seeds is {stds.median():.1f} points (median; range "
        f"{stds.min():.1f}-{stds.max():.1f}); on the occluded joints {occluded.median():.1f} "
        f"(range {occluded.min():.1f}-{occluded.max():.1f})."
    )


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start.parent).replace(os.sep, "/")


def write_doc(doc: Path, planned, grid, summary, frame, tables, paths, commands, grid_name):
    conclusion = f"{CONCLUSION_START}\n_(No conclusion written yet.)_\n{CONCLUSION_END}"
    if doc.exists():
        text = doc.read_text()
        if CONCLUSION_START in text and CONCLUSION_END in text:
            start = text.index(CONCLUSION_START)
            conclusion = text[start : text.index(CONCLUSION_END) + len(CONCLUSION_END)]
    config = planned[0].config
    seeds = max(run.seed for run in planned) + 1
    cells = len(planned) // seeds
    finished_seeds = frame.groupby("seed").size().to_dict() if len(frame) else {}
    status = "complete" if len(frame) == len(planned) else "PARTIAL"
    seed_status = ", ".join(
        f"seed {seed}: {finished_seeds.get(seed, 0)}/{cells}" for seed in range(seeds)
    )
    base = [
        f"input {config.model.input_size} px",
        f"C={config.model.channels}",
        f"stem {config.model.stem_channels}",
        f"regression width {config.model.regression_channels}",
        f"{config.data.synthetic_train} training / {config.data.synthetic_val} validation "
        "synthetic people",
        f"{config.train.epochs} epochs x {config.train.steps_per_epoch or 'all'} steps of "
        f"{config.train.batch_size}",
        f"Adam {config.train.learning_rate:g}, {config.train.lr_schedule}",
        f"loss {config.train.loss}",
    ]
    lines = [
        f"# Ablation: grid `{grid_name}`",
        "",
        "Generated by `python -m pose_keras.ablate ... --report-only --doc` from the runs' "
        "`metrics.json` (numbers = "
        f"[`{_relative(paths['cells'], doc)}`]({_relative(paths['cells'], doc)}); per run: "
        f"[`{_relative(paths['runs'], doc)}`]({_relative(paths['runs'], doc)})). Only the "
        "conclusion block is written by hand; regenerating keeps it.",
        "",
        f"**Status: {status}, {len(frame)} of {len(planned)} runs finished** ({cells} cells x "
        f"{seeds} seeds; {seed_status}).",
        "",
        "## Commands",
        "",
        "```",
        *commands,
        "```",
        "",
        f"Grid: {grid.get('description', '')}",
        "",
        f"Base configuration of every cell: {'; '.join(base)}.",
        "Each cell changes only the keys in its name. PCKh is the final epoch's validation "
        "PCKh@0.5 (no flip test; not the best epoch), mean ± sample std over the finished "
        "seeds. *occluded*: PCKh@0.5 over annotated-but-occluded joints; *inferable*: those "
        "whose skeleton neighbours are visible (paper §3.3). *train min*: the epochs' "
        "training time per run (wall clock, without validation); *CPU min*: CPU time of the "
        "whole run (start-up, graph tracing, training, validation).",
        "",
        "## Results",
        "",
        tables["cells_md"],
    ]
    if paths["plot"].exists():
        lines += [
            "## Fig. 4 on the synthetic data",
            "",
            f"![PCKh vs stacks]({_relative(paths['plot'], doc)})",
            "",
        ]
    if tables["occlusion_md"]:
        lines += ["## Occluded joints (paper §3.3)", "", tables["occlusion_md"]]
        if paths["plot_occluded"].exists():
            lines += [f"![occluded PCKh vs stacks]({_relative(paths['plot_occluded'], doc)})", ""]
    lines += [
        "## Effects and seed spread",
        "",
        "Difference of means (second minus first) with its standard error over seeds; "
        '"beyond 2 s.e." (the difference exceeds twice its standard error) is a rough guide '
        "to a difference beyond the seed noise, not a significance test. " + seed_spread(summary),
        "",
        tables["effects_md"],
        "## Conclusion",
        "",
        conclusion,
        "",
    ]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines))


# --- command line -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.ablate",
        description="Run a grid of trainings (one pose_keras.fit subprocess per cell and "
        "seed; rerunning resumes) and collect their metrics into tables, a Fig. 4-style "
        "plot and the occlusion comparison. See docs/ablation.md.",
    )
    parser.add_argument(
        "--grid",
        help=f"A grid name ({', '.join(sorted(GRIDS))}) or a JSON grid file "
        '({"axes": {"section.key": [values]}, "extra": [{"section.key": value}]}).',
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="Base config JSON of every cell.")
    source.add_argument("--preset", help="Base config preset instead of a file (e.g. synthetic).")
    parser.add_argument(
        "--seeds", type=int, default=3, help="Seeds per cell (train.seed 0..N-1). Default 3."
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="Override a base config value for every cell (repeatable).",
    )
    parser.add_argument("--out", help="Folder of the runs: OUT/cells/<cell>/seed<k>/.")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TensorFlow intra- and inter-op threads per run (0 = TensorFlow's default). "
        "Use 1 to keep a background grid to one core.",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="Runs trained at the same time (default 1). On N cores, --jobs N --threads 1 "
        "uses them better than one run with N threads for these small networks.",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Train nothing: rebuild the tables and plots from finished runs.",
    )
    parser.add_argument(
        "--report-dir", metavar="DIR", help="Where the tables and plots go. Default OUT/report."
    )
    parser.add_argument(
        "--doc",
        metavar="FILE.md",
        help="Also write this markdown report (keeps its hand-written conclusion block).",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="Rerun runs that failed earlier (failed.txt)."
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="Print the planned runs and whether each is done; train nothing.",
    )
    parser.add_argument("--cell", metavar="CONFIG", help=argparse.SUPPRESS)
    return parser


def command_lines(args) -> list[str]:
    """The run and report commands of this grid, as a user types them."""
    source = f"--config {args.config}" if args.config else f"--preset {args.preset}"
    common = f"python -m pose_keras.ablate --grid {args.grid} {source} --seeds {args.seeds}"
    common += "".join(f" --set {override}" for override in args.overrides)
    common += f" --out {args.out}"
    report = f"{common} --report-only"
    if args.report_dir:
        report += f" --report-dir {args.report_dir}"
    if args.doc:
        report += f" --doc {args.doc}"
    jobs = f" --jobs {args.jobs}" if args.jobs > 1 else ""
    return [f"{common}{jobs} --threads {args.threads or 1}", report]


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    if args.cell:
        return run_cell(args.cell, args.threads)
    try:
        if not args.grid or not args.out:
            raise ValueError("--grid and --out are required.")
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, received {args.seeds}.")
        if args.threads < 0:
            raise ValueError(f"--threads must be >= 0, received {args.threads}.")
        if args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, received {args.jobs}.")
        grid = load_grid(args.grid)
        if args.config:
            base = Config.from_json(args.config)
        else:
            base = Config.preset(args.preset or "synthetic")
        planned = plan_runs(grid, base, args.overrides, args.seeds, args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    grid_name = Path(args.grid).stem if args.grid not in GRIDS else args.grid
    report_dir = Path(args.report_dir) if args.report_dir else Path(args.out) / "report"
    if args.list:
        for index, run in enumerate(planned, start=1):
            state = "done" if run.is_finished() else "failed" if run.has_failed() else "to do"
            print(f"{index:4d} {state:6s} {run.run_dir}")
        return 0
    counts = {"failed": 0}
    if not args.report_only:
        print(
            f"{grid_name}: {len(planned)} runs ({len(planned) // args.seeds} cells x "
            f"{args.seeds} seeds) in {args.out}",
            flush=True,
        )
        try:
            counts = run_grid(
                planned, threads=args.threads, retry_failed=args.retry_failed, jobs=args.jobs
            )
        except KeyboardInterrupt:
            print("\ninterrupted: rerun the same command to resume the grid.", file=sys.stderr)
            return 130
        print(
            f"{grid_name}: {counts['done']} runs trained now, {counts['skipped']} were done, "
            f"{counts['failed']} failed"
            + (f", {counts['busy']} left to another runner." if counts["busy"] else "."),
            flush=True,
        )
    try:
        report = write_report(planned, grid, report_dir, command_lines(args), args.doc, grid_name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{grid_name}: {report['runs']} of {report['planned']} runs finished; wrote "
        f"{', '.join(str(path) for path in report['files'])}"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
