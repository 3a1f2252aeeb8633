"""Fault class: a process killed (SIGKILL) while it writes checkpoints and metrics.

Every model and JSON file goes through `files.atomic_path` (write a temporary file, then
rename), so a kill at any instant leaves the previous complete file or the new complete
file where a good one was, never a truncated one. Killing a whole training run and
resuming it is tested in tests/test_fit.py
(`test_killed_run_resumes_from_its_backup_and_finishes_consistently`).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pose_keras.runs import load_model

WRITER = r"""
import json, os, sys
from pathlib import Path
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from pose_keras.callbacks import save_model_atomic
from pose_keras.files import write_json_atomic
from pose_keras.runs import load_model

model = load_model(sys.argv[1])
folder = Path(sys.argv[2])
iteration = 0
save_model_atomic(model, folder / "best.keras")
write_json_atomic(folder / "metrics.json", {"iteration": iteration, "padding": ""})
print("ready", flush=True)
while True:  # rewrite both files until killed
    iteration += 1
    save_model_atomic(model, folder / "best.keras")
    write_json_atomic(folder / "metrics.json", {"iteration": iteration, "padding": "x" * 400_000})
"""


@pytest.mark.parametrize("delay_s", [0.0, 0.07, 0.23, 0.61])
def test_sigkill_while_writing_leaves_only_complete_files(tiny_model_path, tmp_path, delay_s):
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tiny_model_path), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == "ready", process.stderr.read()
        time.sleep(delay_s)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["iteration"] >= 0
    model = load_model(tmp_path / "best.keras")
    assert model.output_names == load_model(tiny_model_path).output_names
    # Only the two targets and, at most, the temporary file a write was killed in.
    leftovers = {path.name for path in tmp_path.iterdir()} - {"best.keras", "metrics.json"}
    assert leftovers <= {"best.tmp.keras", "metrics.tmp.json"}
