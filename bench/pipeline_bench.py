"""Throughput of the training input pipeline: images per second (and per core).

Reads JPEG TFRecords (default: the synthetic training split, generated or reused from the
cache), runs the full training pipeline (parallel reads, decode, augmented affine crop,
colour jitter, targets at every supervised scale, batching) and times whole batches after
a warm-up. TensorFlow and tf.data are limited to `--cores` threads, so `img/s / cores` is
a per-core figure.

Examples:

    python bench/pipeline_bench.py                      # 256 px, all cores
    python bench/pipeline_bench.py --cores 1 --batches 60
    python bench/pipeline_bench.py --records data/mpii_train --json
    python bench/pipeline_bench.py --mpii-sample 1000 --cores 1   # real JPEG records

`--mpii-sample N` converts the 5 real MPII photographs of ../shared/data/mpii (1280 x 720
and 854 x 480 JPEGs, mmpose's test sample) N / 5 times over into one shard under
.cache/bench/, so the records have real JPEG sizes and a realistic shard length.
"""

import argparse
import json
import os
import platform
import sys
import time


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", help="Split prefix or shard glob (default: synthetic train).")
    parser.add_argument("--input-size", type=int, default=256, help="Crop size, px (default 256).")
    parser.add_argument("--batch-size", type=int, default=16, help="Batch size (default 16).")
    parser.add_argument("--batches", type=int, default=40, help="Timed batches (default 40).")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed batches first (default 5).")
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count(), help="Threads TF may use (default: all)."
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="Config override."
    )
    parser.add_argument(
        "--mpii-sample",
        type=int,
        metavar="N",
        help="Use N people made from the real MPII images in ../shared/data (see above).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON line.")
    return parser.parse_args(argv)


def mpii_sample_records(people: int) -> str:
    """Records of `people` people: the shared MPII sample repeated (built once, cached)."""
    from pathlib import Path

    from tfrecords_tools import mpii

    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mpii"
    annotations = shared / "mmpose_test_mpii.json"
    if not annotations.is_file():
        raise FileNotFoundError(f"{annotations} not found (--mpii-sample needs ../shared/data)")
    prefix = Path(".cache/bench") / f"mpii-sample-{people}"
    if not Path(f"{prefix}.manifest.json").is_file():
        entries = json.loads(annotations.read_text())
        repeated = [entries[index % len(entries)] for index in range(people)]
        prefix.parent.mkdir(parents=True, exist_ok=True)
        listing = prefix.parent / f"mpii-sample-{people}.json"
        listing.write_text(json.dumps(repeated))
        code = mpii.main(
            [str(listing), "--image-root", str(shared / "images"), "--output", str(prefix)]
            + ["--examples-per-shard", str(people), "--no-progress"]
        )
        if code:
            raise ValueError(f"converting {listing} failed (exit {code})")
    return str(prefix)


def main(argv=None):
    arguments = parse_arguments(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from pose_keras import pipeline
    from pose_keras.config import Config

    tf.config.threading.set_intra_op_parallelism_threads(arguments.cores)
    tf.config.threading.set_inter_op_parallelism_threads(arguments.cores)
    try:
        config = Config.preset("synthetic").with_overrides(
            [
                f"model.input_size={arguments.input_size}",
                f"train.batch_size={arguments.batch_size}",
                *arguments.set,
            ]
        )
        records = arguments.records
        if arguments.mpii_sample:
            records = mpii_sample_records(arguments.mpii_sample)
        dataset = pipeline.training_dataset(config, records, seed=0)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    options = tf.data.Options()
    options.threading.private_threadpool_size = arguments.cores
    iterator = iter(dataset.with_options(options))
    for _ in range(arguments.warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(arguments.batches):
        images, targets, _ = next(iterator)
    elapsed = time.perf_counter() - start
    images_per_second = arguments.batches * arguments.batch_size / elapsed
    result = {
        "input_size": arguments.input_size,
        "batch_size": arguments.batch_size,
        "cores": arguments.cores,
        "images_per_second": round(images_per_second, 1),
        "images_per_second_per_core": round(images_per_second / arguments.cores, 1),
        "outputs": len(targets),
        "records": records or "synthetic",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "tensorflow": tf.__version__,
    }
    if arguments.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['images_per_second']} img/s with {arguments.cores} core(s) = "
            f"{result['images_per_second_per_core']} img/s per core "
            f"({arguments.input_size} px, batch {arguments.batch_size}, {len(targets)} target maps)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
