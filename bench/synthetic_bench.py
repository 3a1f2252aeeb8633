"""Generation speed of the embedded synthetic dataset (the default 2,000 + 500 people).

Generates both splits from scratch into a temporary folder with `--workers` processes and
prints the wall time and people per second. The issue's budget is 2,500 people in <= 60 s
on 2 cores; results go to docs/data.md.

Examples:

    python bench/synthetic_bench.py                 # all cores (at most 8)
    python bench/synthetic_bench.py --workers 1 --json
"""

import argparse
import contextlib
import io
import json
import os
import platform
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", type=int, default=None, help="Processes (default: CPU cores, at most 8)."
    )
    parser.add_argument("--train", type=int, default=2000, help="Training people (default 2000).")
    parser.add_argument("--val", type=int, default=500, help="Validation people (default 500).")
    parser.add_argument("--json", action="store_true", help="Print one JSON line.")
    arguments = parser.parse_args(argv)

    from pose_keras.config import Config
    from pose_keras.synthetic import ensure_synthetic

    config = Config().with_overrides(
        [f"data.synthetic_train={arguments.train}", f"data.synthetic_val={arguments.val}"]
    )
    workers = arguments.workers or min(os.cpu_count() or 1, 8)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            ensure_synthetic(config, workers=workers, output_dir=folder)
        seconds = time.perf_counter() - start
    people = arguments.train + arguments.val
    result = {
        "people": people,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "seconds": round(seconds, 1),
        "people_per_s": round(people / seconds, 1),
        "machine": platform.processor() or platform.machine(),
    }
    if arguments.json:
        print(json.dumps(result))
    else:
        print(
            f"{people} people in {seconds:.1f} s with {workers} worker(s) "
            f"({people / seconds:.0f} people/s, {os.cpu_count()} CPUs)"
        )


if __name__ == "__main__":
    main()
