"""Training and inference speed of the network: img/s, batch-1 latency, peak memory, MFU.

Each measurement (one shape x one variant) runs in its own Python process, with
KERAS_BACKEND set for the Keras variants, so backends never share a process and one
measurement's memory peak is its own. A process builds the model through the public API
(`pose_keras.model.build_model`, `pose_keras.losses.build_losses`), compiles it with Adam
(`pose_keras.optimizer.Adam`) at 5e-4 and the loss on every output (as `python -m
pose_keras.fit` does), and times, on one fixed random batch held in memory (model only, no
input pipeline):

- `train_img_s`: batch / median `train_on_batch` time after the warm-up steps;
- `infer_img_s`: batch / median `predict_on_batch` time after warm-up;
- `latency_ms`: median `predict_on_batch` time for one image;
- `peak_rss_mib`: the process' peak resident memory (`resource.getrusage`), whole process;
- `matmul_gflops`: dense square matmul FLOP/s in the same process, backend and compute dtype;
- `train_mfu` / `infer_mfu`: model FLOP/s over `matmul_gflops`, with model FLOPs = 2 x the
  MACs of `pose_keras.summary.count_macs` per image (x3 for a training step: forward,
  gradient by input, gradient by weights).

Variants: `tf` (TensorFlow, as `fit` runs it: no XLA, oneDNN kernels), `tf_eigen` (the same
with `TF_ENABLE_ONEDNN_OPTS=0`: TensorFlow's default on CPUs without AVX-512 VNNI/AMX),
`tf_xla` (jit_compile=True),
`tf_mixed` (mixed_float16, what `train.mixed_precision=true` sets), `tf_bf16`
(mixed_bfloat16), `jax` (jit), `jax_bf16`, `torch` (the torch backend of Keras, eager) and
`torch_reference` (bench/torch_reference.py, plain shapes only). Shapes: `paper` (4x64,
scales 1,2,4,8, transposed convs, regression), `plain4x64` (scale 1 only, no regression,
nearest upsampling: Newell et al.'s network), `2x256`, `8x256` (plain), and the 64 px `tiny`
and `tiny_plain` for smoke runs.

`--repeats N` runs the whole list N times in turn (A B C A B C ...), so slow drift of a
shared machine hits every variant alike; `--update-docs` writes the medians over the rounds
into docs/benchmarks.md between its `bench:start`/`bench:end` markers.

Examples:

    python bench/train_bench.py --smoke                          # 64 px, 1 step: it runs
    python bench/train_bench.py --shapes plain4x64 --variants tf,tf_xla,torch_reference \\
        --batch 8 --steps 10 --repeats 3 --torch-path .cache/bench-torch --update-docs
    python bench/train_bench.py --shapes all --variants all --output results.jsonl
    python bench/train_bench.py --profile --shapes plain4x64     # top TF ops of a train step
"""

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
DOCS_START = "<!-- bench:start -->"
DOCS_END = "<!-- bench:end -->"

PLAIN = ["model.supervised_scales=1", "model.global_regression=false", "model.deconv=upsample"]
TINY = ["model.channels=16", "model.stem_channels=16"]

# Config overrides on top of the paper defaults (pose_keras.config.Config); input size and
# batch come from the command line.
SHAPES = {
    "paper": [],
    "plain4x64": PLAIN,
    "2x256": [*PLAIN, "model.stacks=2", "model.channels=256"],
    "8x256": [*PLAIN, "model.stacks=8", "model.channels=256"],
    "tiny": [
        *TINY,
        "model.stacks=1",
        "model.regression_channels=16",
        "model.supervised_scales=1,2",
    ],
    "tiny_plain": [*PLAIN, *TINY, "model.stacks=2"],
    # 2 stacks of 32 channels, all four scales, regression; run it with --size 128. The
    # network of the `synthetic` preset (the default fit) and configs/dlc_openfield.json
    # until 2026-12-01; both are supervised at GT only since (docs/ablation.md).
    "2x32": [
        "model.stacks=2",
        "model.channels=32",
        "model.stem_channels=32",
        "model.regression_channels=32",
    ],
}

# backend: KERAS_BACKEND of the process ("torch_reference": our PyTorch model, no Keras).
VARIANTS = {
    "tf": {"backend": "tensorflow", "jit_compile": False, "policy": "float32"},
    # TensorFlow's own kernels where it does not pick oneDNN itself (CPUs without AVX-512
    # VNNI/BF16 or AMX); pose_keras turns oneDNN on (`pose_keras.use_onednn_kernels`).
    "tf_eigen": {"backend": "tensorflow", "jit_compile": False, "policy": "float32", "onednn": "0"},
    "tf_xla": {"backend": "tensorflow", "jit_compile": True, "policy": "float32"},
    "tf_mixed": {"backend": "tensorflow", "jit_compile": False, "policy": "mixed_float16"},
    "tf_bf16": {"backend": "tensorflow", "jit_compile": False, "policy": "mixed_bfloat16"},
    "jax": {"backend": "jax", "jit_compile": True, "policy": "float32"},
    "jax_bf16": {"backend": "jax", "jit_compile": True, "policy": "mixed_bfloat16"},
    "torch": {"backend": "torch", "jit_compile": False, "policy": "float32"},
    "torch_reference": {"backend": "torch_reference", "jit_compile": False, "policy": "float32"},
}
TORCH_VARIANTS = ("torch", "torch_reference")

DEFAULT_SHAPES = "plain4x64,paper"
DEFAULT_VARIANTS = "tf,tf_xla,jax,torch,torch_reference"
SMOKE = {"size": 64, "batch": 2, "steps": 1, "warmup": 1, "matmul_size": 256}

# Fields every measurement line carries (tests/test_bench_smoke.py checks them).
RESULT_FIELDS = (
    "shape",
    "variant",
    "backend",
    "policy",
    "jit_compile",
    "batch",
    "size",
    "steps",
    "round",
    "params",
    "gmac",
    "first_train_step_s",
    "train_step_s",
    "train_img_s",
    "infer_img_s",
    "latency_ms",
    "peak_rss_mib",
    "matmul_gflops",
    "matmul_dtype",
    "train_mfu",
    "infer_mfu",
    "device",
    "threads",
    "versions",
    "tensorflow_imported",
)


def parse_list(text, choices, flag):
    """`a,b` or `all` -> a list of names from `choices`; an unknown name is a ValueError."""
    names = list(choices) if text == "all" else [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in choices]
    if unknown or not names:
        raise ValueError(f"{flag}: unknown {unknown or text!r}; choose from {list(choices)}")
    return names


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Each measurement prints one JSON line on stdout; progress goes to stderr.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--shapes",
        help=f"Comma-separated shapes or 'all' ({', '.join(SHAPES)}). Default "
        f"{DEFAULT_SHAPES} (--smoke: tiny).",
    )
    parser.add_argument(
        "--variants",
        help=f"Comma-separated variants or 'all' ({', '.join(VARIANTS)}). Default "
        f"{DEFAULT_VARIANTS} (--smoke: tf).",
    )
    parser.add_argument("--batch", type=int, help="Batch size (default 8; --smoke 2).")
    parser.add_argument("--size", type=int, help="Input size, px (default 256; --smoke 64).")
    parser.add_argument("--steps", type=int, help="Timed steps each (default 10; --smoke 1).")
    parser.add_argument(
        "--warmup", type=int, help="Untimed steps first, compilation included (default 2)."
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="Rounds over the whole list, interleaved (ABAB)."
    )
    parser.add_argument(
        "--matmul-size", type=int, help="Side of the square matmul benchmark (default 2048)."
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="Tiny run that only proves the commands work: 64 px, batch 2, 1 step.",
    )
    parser.add_argument(
        "--torch-path",
        help="Folder put on PYTHONPATH for the torch variants (a `pip install --target` of "
        "torch), when torch is not installed in this environment.",
    )
    parser.add_argument("--output", help="Also append the JSON lines to this file.")
    parser.add_argument(
        "--from-jsonl",
        metavar="FILE",
        help="Measure nothing: summarise the JSON lines of an earlier run (its --output, "
        "e.g. of a run stopped before its last round) and print or, with --update-docs, "
        "write the table.",
    )
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Add this field to every JSON line (repeatable), e.g. --tag device_name=H200.",
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help=f"Write this run's table into {DOCS_FILE.relative_to(REPO_ROOT)}.",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Instead: profile TF train steps of the first shape (variant tf, or the first "
        "tf* variant given) with tf.profiler and print the top op types as JSON lines.",
    )
    parser.add_argument(
        "--timeout", type=int, default=3600, help="Seconds one measurement may take."
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # JSON spec of one measurement
    parser.add_argument("--result", help=argparse.SUPPRESS)  # where the worker writes
    return parser


# --- Measurement (inside one worker process) ---------------------------------------------


def median_seconds(step, warmup, steps):
    """Run `step` warmup + steps times; return (first call's seconds, median timed seconds)."""
    first = None
    for index in range(warmup):
        start = time.perf_counter()
        step()
        if index == 0:
            first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    if first is None:
        first = times[0]
    return first, statistics.median(times)


def best_matmul_flops(multiply, size, budget_s=1.0, max_reps=10):
    """Best FLOP/s of `multiply()` (one synchronised size^3 matmul) after one warm-up."""
    multiply()
    best, spent, reps = 0.0, 0.0, 0
    while reps < 3 or (spent < budget_s and reps < max_reps):
        start = time.perf_counter()
        multiply()
        seconds = time.perf_counter() - start
        spent += seconds
        reps += 1
        best = max(best, 2.0 * size**3 / seconds)
    return best


def peak_rss_mib():
    # Linux reports ru_maxrss in KiB (macOS in bytes; this bench targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def shape_config(spec):
    from pose_keras.config import Config

    return Config().with_overrides(
        [*SHAPES[spec["shape"]], f"model.input_size={spec['size']}", "train.learning_rate=5e-4"]
    )


def compute_dtype(policy):
    return {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(policy, "float32")


def keras_device(backend):
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}:{getattr(device, 'device_kind', '')}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return (
            f"gpu:{tf.config.experimental.get_device_details(gpus[0]).get('device_name', '')}"
            if gpus
            else "cpu"
        )
    import torch

    return f"cuda:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"


def versions(backend):
    import numpy

    found = {"python": platform.python_version(), "numpy": numpy.__version__}
    if backend != "torch_reference":
        import keras

        found["keras"] = keras.__version__
    if backend == "tensorflow":
        import tensorflow

        found["tensorflow"] = tensorflow.__version__
    elif backend == "jax":
        import jax

        found["jax"] = jax.__version__
    else:
        import torch

        found["torch"] = torch.__version__
    return found


def build_keras_model(spec, config):
    import keras

    from pose_keras.losses import build_losses
    from pose_keras.model import build_model
    from pose_keras.optimizer import Adam

    variant = VARIANTS[spec["variant"]]
    keras.config.set_dtype_policy(variant["policy"])
    keras.utils.set_random_seed(0)
    model = build_model(config.model)
    losses, loss_weights = build_losses(config.model, config.train)
    model.compile(
        optimizer=Adam(config.train.learning_rate),
        loss=losses,
        loss_weights=loss_weights,
        jit_compile=variant["jit_compile"],
    )
    return model


def random_batch(model, batch, size, num_joints):
    """One fixed batch: images in [0, 255], heatmap targets in [0, 1), all joints weighted."""
    import numpy as np

    generator = np.random.default_rng(0)
    images = generator.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    targets = {
        name: generator.uniform(0, 1, (batch, *tensor.shape[1:])).astype("float32")
        for name, tensor in zip(model.output_names, model.outputs, strict=True)
    }
    weights = {name: np.ones((batch, num_joints), "float32") for name in model.output_names}
    return images, targets, weights


def measure_keras(spec):
    """Time one Keras variant; returns the measured fields."""
    import keras

    from pose_keras.summary import count_macs

    config = shape_config(spec)
    model = build_keras_model(spec, config)
    images, targets, weights = random_batch(
        model, spec["batch"], spec["size"], config.model.num_joints
    )
    first, train_step = median_seconds(
        lambda: model.train_on_batch(images, targets, sample_weight=weights),
        spec["warmup"],
        spec["steps"],
    )
    _, infer_step = median_seconds(
        lambda: model.predict_on_batch(images), spec["warmup"], spec["steps"]
    )
    _, latency = median_seconds(
        lambda: model.predict_on_batch(images[:1]), spec["warmup"], spec["steps"]
    )
    dtype = compute_dtype(VARIANTS[spec["variant"]]["policy"])
    size = spec["matmul_size"]
    left = keras.random.normal((size, size), dtype=dtype, seed=1)
    right = keras.random.normal((size, size), dtype=dtype, seed=2)
    matmul = best_matmul_flops(
        lambda: keras.ops.convert_to_numpy(keras.ops.matmul(left, right)[:1, :1]), size
    )
    return {
        "params": int(model.count_params()),
        "macs": count_macs(model),
        "first_train_step_s": first,
        "train_step_s": train_step,
        "infer_step_s": infer_step,
        "latency_s": latency,
        "matmul_flops": matmul,
        "matmul_dtype": dtype,
    }


def measure_torch_reference(spec):
    """Time bench/torch_reference.py on the plain shape of `spec`."""
    import torch

    sys.path.insert(0, str(BENCH_DIR))
    from torch_reference import StackedHourglass, count_macs, heatmap_loss, parameter_count

    model_config = shape_config(spec).model
    torch.manual_seed(0)
    model = StackedHourglass(
        stacks=model_config.stacks,
        channels=model_config.channels,
        num_joints=model_config.num_joints,
        stem_channels=model_config.stem_channels,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    batch, size = spec["batch"], spec["size"]
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=generator) * 255
    heatmap = model_config.heatmap_size
    targets = torch.rand(batch, model_config.num_joints, heatmap, heatmap, generator=generator)
    weights = torch.ones(batch, model_config.num_joints)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = heatmap_loss(model(images), targets, weights)
        loss.backward()
        optimizer.step()
        return loss.item()

    def infer(inputs):
        with torch.inference_mode():
            return [heatmaps.numpy() for heatmaps in model(inputs)]

    model.train()
    first, train_seconds = median_seconds(train_step, spec["warmup"], spec["steps"])
    model.eval()
    _, infer_seconds = median_seconds(lambda: infer(images), spec["warmup"], spec["steps"])
    _, latency = median_seconds(lambda: infer(images[:1]), spec["warmup"], spec["steps"])
    side = spec["matmul_size"]
    left, right = torch.randn(side, side), torch.randn(side, side)
    matmul = best_matmul_flops(lambda: torch.matmul(left, right)[0, 0].item(), side)
    return {
        "params": parameter_count(model),
        "macs": count_macs(model, size),
        "first_train_step_s": first,
        "train_step_s": train_seconds,
        "infer_step_s": infer_seconds,
        "latency_s": latency,
        "matmul_flops": matmul,
        "matmul_dtype": "float32",
    }


def skip_reason(spec):
    """Why a (shape, variant) pair cannot be measured here, or None."""
    variant = spec["variant"]
    if variant in TORCH_VARIANTS:
        try:
            import torch  # noqa: F401
        except ImportError:
            return "torch is not installed (the `bench` extra; or pass --torch-path)"
    if variant == "torch_reference":
        model_config = shape_config(spec).model
        if (
            model_config.supervised_scales != (1,)
            or model_config.global_regression
            or model_config.deconv != "upsample"
        ):
            return "the PyTorch reference has the plain shape only (scale 1, no regression)"
    return None


def run_worker(spec):
    """One measurement: the JSON-ready result line for `spec`."""
    variant = VARIANTS[spec["variant"]]
    line = {
        "shape": spec["shape"],
        "variant": spec["variant"],
        "backend": variant["backend"],
        "policy": variant["policy"],
        "jit_compile": variant["jit_compile"],
        "batch": spec["batch"],
        "size": spec["size"],
        "steps": spec["steps"],
        "round": spec["round"],
    }
    reason = skip_reason(spec)
    if reason:
        return {**line, "skipped": reason}
    if variant["backend"] == "torch_reference":
        measured = measure_torch_reference(spec)
    else:
        measured = measure_keras(spec)
    batch = spec["batch"]
    flops_per_image = 2 * measured["macs"]
    train_img_s = batch / measured["train_step_s"]
    infer_img_s = batch / measured["infer_step_s"]
    threads = os.cpu_count()
    if variant["backend"] in ("torch", "torch_reference"):
        import torch

        threads = torch.get_num_threads()
    return {
        **line,
        "params": measured["params"],
        "gmac": round(measured["macs"] / 1e9, 4),
        "first_train_step_s": round(measured["first_train_step_s"], 3),
        "train_step_s": round(measured["train_step_s"], 4),
        "train_img_s": round(train_img_s, 3),
        "infer_img_s": round(infer_img_s, 3),
        "latency_ms": round(measured["latency_s"] * 1e3, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "matmul_gflops": round(measured["matmul_flops"] / 1e9, 2),
        "matmul_dtype": measured["matmul_dtype"],
        "train_mfu": round(3 * flops_per_image * train_img_s / measured["matmul_flops"], 4),
        "infer_mfu": round(flops_per_image * infer_img_s / measured["matmul_flops"], 4),
        "device": keras_device(variant["backend"]),
        "threads": threads,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "versions": versions(variant["backend"]),
        # The accelerator machine has no TensorFlow: the JAX and torch paths must not need it.
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


# --- Profile of a TF train step ----------------------------------------------------------


def profile_tf(spec, top=15):
    """tf.profiler trace of `spec['steps']` train steps; op types by total time per step.

    Reads the trace's XSpace (tensorflow/tsl/profiler/protobuf/xplane.proto): on the host
    plane, every TF op kernel is an event named `layer/path/OpName:OpType` (TraceMe of the
    executor); their durations are summed per op type and per layer. Events without a type
    (the step, function calls) enclose others and are left out.
    """
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    config = shape_config(spec)
    model = build_keras_model(spec, config)
    images, targets, weights = random_batch(
        model, spec["batch"], spec["size"], config.model.num_joints
    )
    for _ in range(max(1, spec["warmup"])):
        model.train_on_batch(images, targets, sample_weight=weights)
    with tempfile.TemporaryDirectory() as folder:
        tf.profiler.experimental.start(folder)
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            model.train_on_batch(images, targets, sample_weight=weights)
        wall = (time.perf_counter() - start) / spec["steps"]
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(folder).rglob("*.xplane.pb")).read_bytes())
    by_type, by_layer = {}, {}
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for xline in plane.lines:
            for event in xline.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or name.startswith("tf.") or "::" in name:
                    continue
                path, op_type = name.rsplit(":", 1)
                # Op types are CamelCase; grappler's fused kernels start with "_" (_FusedConv2D).
                if not op_type.lstrip("_")[:1].isupper() or " " in op_type:
                    continue
                seconds = event.duration_ps / 1e12
                by_type[op_type] = by_type.get(op_type, 0.0) + seconds
                layer = layer_kind(path)
                by_layer[layer] = by_layer.get(layer, 0.0) + seconds
    op_total = sum(by_type.values())
    lines = [
        {
            "profile": "step",
            "shape": spec["shape"],
            "variant": spec["variant"],
            "batch": spec["batch"],
            "size": spec["size"],
            "wall_ms_per_step": round(wall * 1e3, 1),
            "op_ms_per_step": round(op_total / spec["steps"] * 1e3, 1),
        }
    ]
    for kind, table in (("op_type", by_type), ("layer_kind", by_layer)):
        for name, seconds in sorted(table.items(), key=lambda item: -item[1])[:top]:
            lines.append(
                {
                    "profile": kind,
                    "name": name,
                    "ms_per_step": round(seconds / spec["steps"] * 1e3, 1),
                    "share": round(seconds / op_total, 4) if op_total else 0.0,
                }
            )
    return lines


def layer_kind(path):
    """`.../stack1_hourglass_skip0_2_conv/Conv2D` -> `conv`, by the layer-name suffixes of
    pose_keras.model (`_conv`, `_bn`, `_relu`, `_add`, `_pool`, `_upsample`); else the
    op path's first word (e.g. `adam`)."""
    for part in reversed(path.split("/")):
        part = part.rstrip("0123456789").rstrip("_") if part[-1:].isdigit() else part
        for suffix in ("conv", "bn", "relu", "add", "pool", "upsample", "transpose", "merge"):
            if part.endswith("_" + suffix) or part == suffix:
                return suffix
    first = path.split("/", 1)[0].lower()
    return first.split("_", 1)[0] or "other"


# --- Orchestration (the parent process) --------------------------------------------------


def worker_environment(variant, torch_path):
    environment = dict(os.environ)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    backend = VARIANTS[variant]["backend"]
    environment["KERAS_BACKEND"] = "torch" if backend == "torch_reference" else backend
    # What `python -m pose_keras.fit` runs with (it imports pose_keras before TensorFlow),
    # unless the variant says otherwise or the caller set it.
    if "onednn" in VARIANTS[variant]:
        environment["TF_ENABLE_ONEDNN_OPTS"] = VARIANTS[variant]["onednn"]
    else:
        from pose_keras import use_onednn_kernels  # cheap: TensorFlow is imported lazily

        use_onednn_kernels(environment)
    paths = [str(REPO_ROOT)]
    if torch_path and variant in TORCH_VARIANTS:
        paths.insert(0, str(Path(torch_path).resolve()))
    if environment.get("PYTHONPATH"):
        paths.append(environment["PYTHONPATH"])
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def run_in_subprocess(spec, torch_path, timeout, mode="measure"):
    """Run one worker; its result lines (a failure becomes one line with `error`)."""
    with tempfile.TemporaryDirectory() as folder:
        result_file = Path(folder) / "result.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            json.dumps({**spec, "mode": mode}),
            "--result",
            str(result_file),
        ]
        try:
            completed = subprocess.run(
                command,
                env=worker_environment(spec["variant"], torch_path),
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=REPO_ROOT,
            )
        except subprocess.TimeoutExpired:
            return [{**spec, "error": f"timed out after {timeout} s"}]
        if completed.returncode != 0 or not result_file.exists():
            stderr = [line for line in completed.stderr.splitlines() if line.strip()]
            reason = stderr[-1] if stderr else f"exit code {completed.returncode}"
            return [{**spec, "error": reason}]
        return json.loads(result_file.read_text())


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarize(results):
    """Median over rounds per (shape, variant), in first-seen order; skipped pairs kept."""
    groups = {}
    for line in results:
        groups.setdefault((line["shape"], line["variant"]), []).append(line)
    rows = []
    for (shape, variant), lines in groups.items():
        measured = [line for line in lines if "train_img_s" in line]
        if not measured:
            reason = lines[0].get("skipped") or lines[0].get("error", "")
            rows.append({"shape": shape, "variant": variant, "note": reason})
            continue
        row = {"shape": shape, "variant": variant, "rounds": len(measured)}
        for field in (
            "train_img_s",
            "infer_img_s",
            "latency_ms",
            "peak_rss_mib",
            "train_mfu",
            "infer_mfu",
            "matmul_gflops",
            "first_train_step_s",
        ):
            row[field] = statistics.median(line[field] for line in measured)
        row["train_min"] = min(line["train_img_s"] for line in measured)
        row["train_max"] = max(line["train_img_s"] for line in measured)
        row["gmac"] = measured[0]["gmac"]
        row["params"] = measured[0]["params"]
        rows.append(row)
    references = {row["shape"]: row for row in rows if row["variant"] == "torch_reference"}
    for row in rows:
        reference = references.get(row["shape"])
        if reference and "train_img_s" in row and "train_img_s" in reference:
            row["train_vs_reference"] = row["train_img_s"] / reference["train_img_s"]
            row["infer_vs_reference"] = row["infer_img_s"] / reference["infer_img_s"]
    return rows


def markdown_block(results, arguments, command):
    """The generated part of docs/benchmarks.md: machine, versions, date, the table."""
    found = {}
    for line in results:
        found.update(line.get("versions", {}))
    version_text = ", ".join(f"{name} {version}" for name, version in sorted(found.items()))
    first = next((line for line in results if "batch" in line), {})
    lines = [
        DOCS_START,
        "<!-- generated by bench/train_bench.py --update-docs; edit around, not inside -->",
        f"- Date: {datetime.date.today().isoformat()}",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores visible; {platform.platform()}",
        f"- Versions: {version_text}",
        f"- Command: `{command}`",
        f"- Batch {first.get('batch')}, {first.get('size')} px, {first.get('steps')} timed "
        f"steps after {first.get('warmup', arguments.warmup)} warm-up, "
        f"{max((line.get('round', 1) for line in results), default=1)} round(s) "
        "interleaved; medians over the rounds (train img/s: median, min-max).",
        "",
        "| shape | variant | train img/s | infer img/s | batch-1 ms | peak RSS MiB | "
        "train MFU | infer MFU | matmul GFLOP/s | train / infer vs reference |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summarize(results):
        if "note" in row:
            lines.append(f"| {row['shape']} | {row['variant']} | {row['note']} |||||||| ")
            continue
        ratio = ""
        if "train_vs_reference" in row:
            ratio = f"{row['train_vs_reference']:.2f}x / {row['infer_vs_reference']:.2f}x"
        lines.append(
            f"| {row['shape']} | {row['variant']} | {row['train_img_s']:.2f} "
            f"({row['train_min']:.2f}-{row['train_max']:.2f}) | {row['infer_img_s']:.2f} | "
            f"{row['latency_ms']:.0f} | {row['peak_rss_mib']:.0f} | {row['train_mfu']:.1%} | "
            f"{row['infer_mfu']:.1%} | {row['matmul_gflops']:.0f} | {ratio} |"
        )
    lines.append(DOCS_END)
    return "\n".join(lines) + "\n"


def update_docs(block, path=DOCS_FILE):
    """Replace the marked block of `path` (or append it; create the file if missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if DOCS_START in text and DOCS_END in text:
        head, rest = text.split(DOCS_START, 1)
        tail = rest.split(DOCS_END, 1)[1].lstrip("\n")
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def resolve(arguments):
    """Fill the defaults (smoke or full) and check the flags; ValueError on bad input."""
    smoke = arguments.smoke
    arguments.shapes = parse_list(
        arguments.shapes or ("tiny" if smoke else DEFAULT_SHAPES), SHAPES, "--shapes"
    )
    arguments.variants = parse_list(
        arguments.variants or ("tf" if smoke else DEFAULT_VARIANTS), VARIANTS, "--variants"
    )
    defaults = SMOKE if smoke else {"size": 256, "batch": 8, "steps": 10, "warmup": 2}
    for name, default in {**defaults, "matmul_size": defaults.get("matmul_size", 2048)}.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, default)
    if arguments.size < 64 or arguments.size % 64:
        raise ValueError(f"--size must be a positive multiple of 64, received {arguments.size}")
    for name in ("batch", "steps", "repeats", "matmul_size"):
        if getattr(arguments, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    tags = {}
    for tag in arguments.tag:
        key, separator, value = tag.partition("=")
        if not separator or not key:
            raise ValueError(f"--tag must be KEY=VALUE, received {tag!r}")
        tags[key] = value
    arguments.tag = tags
    if arguments.warmup < 0:
        raise ValueError("--warmup must be >= 0")
    if arguments.profile and not any(v.startswith("tf") for v in arguments.variants):
        raise ValueError("--profile needs a TensorFlow variant (tf, tf_xla, tf_mixed, tf_bf16)")
    return arguments


class WithoutTensorFlow:
    """Import hook: `import tensorflow` fails as on a machine without it (Keras' optional
    imports then take their no-TF paths). Set POSE_KERAS_BENCH_WITHOUT_TENSORFLOW=1."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def read_jsonl(path):
    """The result lines of an earlier run; ValueError naming the file and line if bad."""
    results = []
    for number, text in enumerate(Path(path).read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not JSON ({error.msg})") from None
        if not isinstance(line, dict) or "shape" not in line or "variant" not in line:
            raise ValueError(f"{path}, line {number}: not a train_bench result line")
        results.append(line)
    if not results:
        raise ValueError(f"{path}: no result lines")
    return results


def this_run_block(results, arguments, argv):
    """The docs block of `results`, with the command line of this process."""
    command = "python bench/train_bench.py " + " ".join(argv if argv else sys.argv[1:])
    return markdown_block(results, arguments, command)


def write_docs(block):
    update_docs(block)
    print(f"wrote {DOCS_FILE}", file=sys.stderr)


def report_from_jsonl(arguments, argv):
    try:
        results = read_jsonl(arguments.from_jsonl)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    block = this_run_block(results, arguments, argv)
    if arguments.update_docs:
        write_docs(block)
    else:
        print(block, end="")
    return 0


def main(argv=None):
    arguments = build_parser().parse_args(argv)
    if arguments.worker:  # inside a measurement process
        if os.environ.get("POSE_KERAS_BENCH_WITHOUT_TENSORFLOW") == "1":
            sys.meta_path.insert(0, WithoutTensorFlow)
        spec = json.loads(arguments.worker)
        if spec.get("mode") == "profile":
            lines = profile_tf(spec)
        else:
            lines = [run_worker(spec)]
        Path(arguments.result).write_text(json.dumps(lines))
        return 0
    try:
        arguments = resolve(arguments)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if arguments.from_jsonl:
        return report_from_jsonl(arguments, argv)
    base = {
        "batch": arguments.batch,
        "size": arguments.size,
        "steps": arguments.steps,
        "warmup": arguments.warmup,
        "matmul_size": arguments.matmul_size,
    }
    if arguments.profile:
        variant = next(v for v in arguments.variants if v.startswith("tf"))
        spec = {**base, "shape": arguments.shapes[0], "variant": variant, "round": 1}
        lines = run_in_subprocess(spec, arguments.torch_path, arguments.timeout, mode="profile")
        for line in lines:
            print(json.dumps({**line, **arguments.tag}), flush=True)
        return 1 if any("error" in line for line in lines) else 0
    plan = [
        {**base, "shape": shape, "variant": variant, "round": round_index}
        for round_index in range(1, arguments.repeats + 1)
        for shape in arguments.shapes
        for variant in arguments.variants
    ]
    results = []
    for index, spec in enumerate(plan, 1):
        print(
            f"[{index}/{len(plan)}] {spec['shape']} {spec['variant']} round {spec['round']}",
            file=sys.stderr,
            flush=True,
        )
        for line in run_in_subprocess(spec, arguments.torch_path, arguments.timeout):
            line = {**line, **arguments.tag}
            results.append(line)
            text = json.dumps(line)
            print(text, flush=True)
            if arguments.output:
                with open(arguments.output, "a") as output:
                    output.write(text + "\n")
    if arguments.update_docs:
        write_docs(this_run_block(results, arguments, argv))
    return 1 if any("error" in line for line in results) else 0


if __name__ == "__main__":
    sys.exit(main())
