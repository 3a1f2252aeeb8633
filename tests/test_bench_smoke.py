"""The speed benchmarks run, in smoke form (64 px tiny models, one step, no thresholds).

bench/train_bench.py with the TF backend, bench/pipeline_bench.py on records of the real
MPII photos, bench/synthetic_bench.py, bench/device_check.sh's Python part with the JAX
backend in a subprocess (no TensorFlow imported there, as on the accelerator machine), and
the PyTorch reference against the plain Keras network it races (where torch is installed).
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

BENCH = REPO_ROOT / "bench" / "train_bench.py"
DEVICE_CHECK = REPO_ROOT / "bench" / "device_check.sh"
PIPELINE_BENCH = REPO_ROOT / "bench" / "pipeline_bench.py"
SYNTHETIC_BENCH = REPO_ROOT / "bench" / "synthetic_bench.py"


def load_train_bench():
    spec = importlib.util.spec_from_file_location("train_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def tf_smoke(tmp_path_factory):
    """One smoke run of the TF variant; (stdout lines, the --output file's lines)."""
    output = tmp_path_factory.mktemp("bench") / "results.jsonl"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--variants", "tf", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json_lines(result.stdout), json_lines(output.read_text())


def test_train_bench_smoke_prints_one_complete_line_per_measurement(tf_smoke):
    bench = load_train_bench()
    lines, saved = tf_smoke
    assert saved == lines
    (line,) = lines
    assert set(bench.RESULT_FIELDS) <= set(line)
    assert (line["shape"], line["variant"], line["backend"]) == ("tiny", "tf", "tensorflow")
    assert (line["size"], line["batch"], line["steps"]) == (64, 2, 1)
    for field in ("train_img_s", "infer_img_s", "latency_ms", "matmul_gflops", "train_mfu"):
        assert line[field] > 0, field
    # The MFU is the stated ratio of the line's own numbers (3 x 2 x MACs per trained image).
    achieved = 6 * line["gmac"] * 1e9 * line["train_img_s"]
    assert line["train_mfu"] == pytest.approx(achieved / (line["matmul_gflops"] * 1e9), rel=0.02)
    assert line["train_img_s"] == pytest.approx(line["batch"] / line["train_step_s"], rel=1e-3)
    assert line["versions"]["tensorflow"]


def test_update_docs_rewrites_only_the_generated_block(tf_smoke, tmp_path):
    bench = load_train_bench()
    lines, _ = tf_smoke
    arguments = bench.resolve(bench.build_parser().parse_args(["--smoke"]))
    block = bench.markdown_block(lines, arguments, "python bench/train_bench.py --smoke")
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nwritten by hand\n\n" + bench.DOCS_START + "\nold\n")
    doc.write_text(doc.read_text() + bench.DOCS_END + "\n\n## After\n")
    bench.update_docs(block, doc)
    bench.update_docs(block, doc)  # idempotent: still one block
    text = doc.read_text()
    assert text.count(bench.DOCS_START) == 1 and "old" not in text
    assert text.startswith("# Benchmarks\n\nwritten by hand\n") and text.endswith("## After\n")
    row = next(row for row in text.splitlines() if row.startswith("| tiny | tf |"))
    assert f"{lines[0]['train_img_s']:.2f}" in row


def test_from_jsonl_summarises_saved_lines_and_names_a_bad_line(tf_smoke, tmp_path):
    lines, _ = tf_smoke
    saved = tmp_path / "results.jsonl"
    saved.write_text("".join(json.dumps({**lines[0], "round": r}) + "\n" for r in (1, 2)))
    result = subprocess.run(
        [sys.executable, str(BENCH), "--from-jsonl", str(saved)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 round(s)" in result.stdout
    assert f"| tiny | tf | {lines[0]['train_img_s']:.2f} " in result.stdout
    saved.write_text(saved.read_text() + "{not json\n")
    result = subprocess.run(
        [sys.executable, str(BENCH), "--from-jsonl", str(saved)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{saved}, line 3: not JSON" in result.stderr


def test_pipeline_bench_smoke_on_records_of_the_real_mpii_photos(shared_data, tmp_path):
    command = [sys.executable, str(PIPELINE_BENCH), "--mpii-sample", "10", "--input-size", "64"]
    command += ["--batch-size", "4", "--batches", "2", "--warmup", "1", "--cores", "1", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = json_lines(result.stdout)
    assert line["images_per_second"] > 0 and line["cores"] == 1
    assert line["records"].endswith("mpii-sample-10") and line["outputs"] >= 1
    manifest = json.loads((tmp_path / ".cache/bench/mpii-sample-10.manifest.json").read_text())
    assert manifest["count"] == 10


def test_synthetic_bench_smoke_generates_and_times_both_splits(tmp_path):
    command = [sys.executable, str(SYNTHETIC_BENCH), "--train", "6", "--val", "3"]
    command += ["--workers", "1", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = json_lines(result.stdout)
    assert line["people"] == 9 and line["workers"] == 1 and line["people_per_s"] > 0


def test_bad_flags_exit_2_with_a_one_line_reason():
    result = subprocess.run(
        [sys.executable, str(BENCH), "--shapes", "paper,huge"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--shapes" in result.stderr and "'huge'" in result.stderr


def test_device_check_script_runs_the_jax_path_without_tensorflow():
    assert subprocess.run(["bash", "-n", str(DEVICE_CHECK)], timeout=30).returncode == 0
    environment = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(DEVICE_CHECK), "--smoke"],
        capture_output=True,
        text=True,
        timeout=1200,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = json_lines(result.stdout)
    assert [(line["variant"], line["policy"]) for line in lines] == [
        ("jax", "float32"),
        ("jax_bf16", "mixed_bfloat16"),
    ]
    for line in lines:
        assert line["backend"] == "jax" and line["train_img_s"] > 0
        assert line["tensorflow_imported"] is False  # imports of tensorflow fail there
        assert line["device_name"]  # "none" without nvidia-smi
    assert lines[1]["matmul_dtype"] == "bfloat16"


def test_torch_reference_is_the_plain_keras_network():
    """Same parameters (with BN statistics) and MACs as pose_keras' plain configuration."""
    pytest.importorskip("torch", reason="torch is the `bench` extra")
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        import torch_reference
    finally:
        sys.path.remove(str(REPO_ROOT / "bench"))
    from pose_keras.config import Config
    from pose_keras.model import build_model
    from pose_keras.summary import count_macs

    bench = load_train_bench()
    config = Config().with_overrides([*bench.SHAPES["tiny_plain"], "model.input_size=64"])
    keras_model = build_model(config.model)
    torch_model = torch_reference.StackedHourglass(
        stacks=config.model.stacks,
        channels=config.model.channels,
        num_joints=config.model.num_joints,
        stem_channels=config.model.stem_channels,
    )
    assert torch_reference.parameter_count(torch_model) == keras_model.count_params()
    assert torch_reference.count_macs(torch_model, 64) == count_macs(keras_model)
