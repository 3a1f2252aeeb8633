"""The ablation runner: grids as data, resume after SIGKILL, tables, plot and report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MODEL

from pose_keras import ablate
from pose_keras.config import Config

TINY = [
    *TINY_MODEL,
    "train.epochs=2",
    "train.steps_per_epoch=2",
    "train.batch_size=8",
    "data.synthetic_train=32",
    "data.synthetic_val=16",
    "data.shuffle_buffer=32",
]


def test_fig4_grid_is_stacks_by_scale_sets_by_regression():
    cells = ablate.grid_cells(ablate.GRIDS["fig4"])
    assert len(cells) == 4 * 4 * 2
    assert {cell["model.stacks"] for cell in cells} == {1, 2, 4, 8}
    assert [cell["model.supervised_scales"] for cell in cells[:8:2]] == [
        [1],
        [1, 2],
        [1, 2, 4],
        [1, 2, 4, 8],
    ]
    assert ablate.cell_name(cells[1]) == "stacks1_scales1_regression-on"
    assert len({ablate.cell_name(cell) for cell in cells}) == len(cells)


def test_study_grid_runs_seed_major_with_every_extra_cell_valid():
    grid = ablate.GRIDS["study"]
    planned = ablate.plan_runs(grid, Config.preset("synthetic"), [], 3, "out")
    cells = len(ablate.grid_cells(grid))
    assert cells == 3 * 4 * 2 + len(grid["extra"])
    assert len(planned) == 3 * cells
    # All cells of seed 0 first, so a partial grid holds one full replicate.
    assert [run.seed for run in planned] == [0] * cells + [1] * cells + [2] * cells
    mse = next(run for run in planned if run.name.endswith("_loss-mse") and run.seed == 1)
    assert mse.config.train.loss == "mse" and mse.config.train.seed == 1
    assert mse.config.model.stacks == 2 and mse.config.model.supervised_scales == (1, 2, 4, 8)
    assert mse.run_dir == Path("out/cells") / mse.name / "seed1"
    # Every extra cell is compared with the axes cell it modifies.
    pairs = ablate.comparison_pairs(grid)
    extras = [pair for pair in pairs if "; on stacks2_scales1-2-4-8_regression-on" in pair[0]]
    assert len(extras) == len(grid["extra"]) - 2  # two extras modify the GT-only cells


def test_bad_grids_and_cells_are_named(tmp_path):
    with pytest.raises(ValueError, match="neither a grid name"):
        ablate.load_grid("fig5")
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"axes": {"model.stacks": []}}))
    with pytest.raises(ValueError, match="axis 'model.stacks' must be a non-empty list"):
        ablate.load_grid(str(path))
    grid = {"axes": {"model.supervised_scales": [[2, 4]]}}
    with pytest.raises(ValueError, match="grid cell scales2-4: model.supervised_scales"):
        ablate.plan_runs(grid, Config(), [], 1, tmp_path)
    assert ablate.main(["--grid", str(path), "--preset", "synthetic", "--out", "x"]) == 2


def test_effects_use_the_seed_spread_of_both_cells():
    summary = pd.DataFrame(
        {
            "cell": ["a", "b"],
            "seeds": ["3/3", "2/3"],
            "pckh_mean": [50.0, 54.0],
            "pckh_std": [1.0, 2.0],
        }
    )
    difference, error, counts = ablate.compare(summary, "a", "b")
    assert difference == pytest.approx(4.0)
    assert error == pytest.approx(np.sqrt(1.0 / 3 + 4.0 / 2))
    assert counts == [3, 2]
    assert ablate.compare(summary, "a", "missing") is None


def _runner_command(grid_path, out, cache):
    overrides = [*TINY, f"data.cache_dir={cache}"]
    command = [sys.executable, "-m", "pose_keras.ablate", "--grid", str(grid_path)]
    command += ["--preset", "synthetic", "--seeds", "1", "--threads", "1", "--out", str(out)]
    for override in overrides:
        command += ["--set", override]
    return command


def _processes_mentioning(text):
    """PIDs whose command line contains `text` (Linux /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_killed_grid_resumes_without_rerunning_finished_cells(tmp_path):
    grid_path = tmp_path / "two_cells.json"
    grid_path.write_text(json.dumps({"axes": {"model.global_regression": [False, True]}}))
    out, cache = tmp_path / "out", tmp_path / "cache"
    command = _runner_command(grid_path, out, cache)
    first = out / "cells" / "regression-off" / "seed0"
    second = out / "cells" / "regression-on" / "seed0"
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    runner = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment,
        start_new_session=True,
    )
    # Each cell is a fresh TensorFlow process that traces its graphs: its first epoch took
    # 69-166 s on a shared, loaded 2-core machine.
    deadline = time.monotonic() + 600
    # Kill the runner while the second cell trains (fit has written its run directory).
    while not (second / "joints.json").exists():
        assert runner.poll() is None, runner.stdout.read().decode()
        assert time.monotonic() < deadline, "the second cell never started"
        time.sleep(0.2)
    first_metrics = (first / "metrics.json").stat().st_mtime_ns
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=30)
    output = runner.stdout.read().decode()
    assert "[1/2] regression-off seed 0: PCKh" in output
    assert "[2/2] regression-on seed 0: training" in output
    # The cell's training process dies with the runner (no orphan keeps writing).
    if Path("/proc").is_dir():
        for _ in range(50):
            if not _processes_mentioning(str(second / ablate.CELL_CONFIG_FILE)):
                break
            time.sleep(0.2)
        assert not _processes_mentioning(str(second / ablate.CELL_CONFIG_FILE))
    assert not (second / "model.keras").exists()

    rerun = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "[2/2] regression-on seed 0" in rerun.stdout and "[1/2]" not in rerun.stdout
    assert "1 runs trained now, 1 were done, 0 failed" in rerun.stdout
    # The finished cell was not touched; the interrupted one ran again to its end (a kill
    # after an epoch's backup resumes from it: tests/test_fit.py).
    assert (first / "metrics.json").stat().st_mtime_ns == first_metrics
    assert (first / "fit.log").read_text().count("=== ") == 1
    assert (second / "fit.log").read_text().count("=== ") == 2
    metrics = json.loads((second / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["epochs"]] == [0, 1]

    runs_table = pd.read_csv(out / "report" / "runs.csv")
    assert list(runs_table["cell"]) == ["regression-off", "regression-on"]
    for column in ("pckh", "occluded_pckh", "train_seconds", "parameters"):
        assert runs_table[column].notna().all(), column
    # The table values are the last epoch of each run's metrics.json.
    for _, row in runs_table.iterrows():
        run_metrics = json.loads(
            (out / "cells" / row["cell"] / "seed0" / "metrics.json").read_text()
        )
        assert row["pckh"] == pytest.approx(run_metrics["epochs"][-1]["val_pckh"], abs=1e-9)
    regression = runs_table.set_index("cell")["parameters"]
    assert regression["regression-on"] > regression["regression-off"]
    cells_table = pd.read_csv(out / "report" / "cells.csv")
    assert list(cells_table["seeds"]) == ["1/1", "1/1"]

    # Report only, with the doc; a hand-written conclusion survives regeneration.
    doc = tmp_path / "docs" / "ablation.md"
    report = [*command, "--report-only", "--report-dir", str(tmp_path / "docs" / "results")]
    report += ["--doc", str(doc)]
    assert ablate.main(report[3:]) == 0
    text = doc.read_text()
    assert "**Status: complete, 2 of 2 runs finished**" in text
    assert "| regression | seeds | PCKh@0.5 |" in text
    doc.write_text(text.replace("_(No conclusion written yet.)_", "Hand-written."))
    assert ablate.main(report[3:]) == 0
    assert "Hand-written." in doc.read_text()


def test_fig4_plot_and_occlusion_table_show_finished_cells_only(tmp_path):
    grid = {
        "axes": {
            "model.stacks": [1, 2],
            "model.supervised_scales": [[1], [1, 2]],
            "model.global_regression": [False, True],
        }
    }
    names = [ablate.cell_name(cell) for cell in ablate.grid_cells(grid)]
    rows = []
    for index, name in enumerate(names):
        finished = name != "stacks2_scales1-2_regression-on"
        rows.append(
            {
                "cell": name,
                "seeds": "3/3" if finished else "0/3",
                "pckh_mean": 40.0 + index if finished else np.nan,
                "pckh_std": 1.5 if finished else np.nan,
                "occluded_pckh_mean": 30.0 + index if finished else np.nan,
                "occluded_pckh_std": 2.0 if finished else np.nan,
                "inferable_pckh_mean": 35.0 + index if finished else np.nan,
                "inferable_pckh_std": np.nan,
            }
        )
    summary = pd.DataFrame(rows)
    path = tmp_path / "fig4.png"
    assert ablate.plot_fig4(summary, grid, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = ablate.occlusion_markdown(summary, grid).splitlines()
    assert table[0] == (
        "| stacks | scales | occluded, regression off | inferable, regression off | "
        "occluded, regression on | inferable, regression on |"
    )
    # Cell order: stacks, then scales, then regression off/on (values 30 + cell index).
    assert table[2] == "| 1 | {1} | 30.0 ± 2.0 (3/3) | 35.0 | 31.0 ± 2.0 (3/3) | 36.0 |"
    assert table[5] == "| 2 | {1,2} | 36.0 ± 2.0 (3/3) | 41.0 | – | – |"
    # Nothing finished: no plot.
    assert not ablate.plot_fig4(summary.assign(pckh_mean=np.nan), grid, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_a_run_claimed_by_a_live_runner_is_left_to_it(tmp_path):
    run_dir = tmp_path / "cells" / "a" / "seed0"
    # Another live process holds the run: it is left alone and its claim kept.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir.mkdir(parents=True)
        (run_dir / ablate.LOCK_FILE).write_text(f"{other.pid}\n")
        assert ablate.claim_run(run_dir) == other.pid
        assert (run_dir / ablate.LOCK_FILE).read_text().strip() == str(other.pid)
    finally:
        other.kill()
        other.wait()
    # The same claim from a runner that died is stale: taken over by this process.
    assert ablate.claim_run(run_dir) == 0
    assert (run_dir / ablate.LOCK_FILE).read_text().strip() == str(os.getpid())
    # This process's own claim does not block it; releasing removes it.
    assert ablate.claim_run(run_dir) == 0
    ablate.release_run(run_dir)
    assert not (run_dir / ablate.LOCK_FILE).exists()
    assert ablate.claim_run(tmp_path / "new" / "seed0") == 0  # makes the folder


def test_jobs_must_be_positive(capsys):
    assert ablate.main(["--grid", "fig4", "--out", "x", "--jobs", "0"]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
