"""`python -m pose_keras.export`: SavedModel for TF Serving, ONNX and TFLite.

A thin command around `pose_keras.serving` (the serving graph, its signatures and the
exporters; docs/export.md):

- `--format savedmodel` (default): `OUT/<name>/<version>/` in TF Serving's layout, whose
  `serving_default` takes encoded image bytes and person boxes and returns keypoints in
  image px, scores (and with `--heatmaps` the heatmaps): the inference of `predict`, as TF
  ops (`pose_keras.inference`).
- `--format onnx` / `tflite`: the crops -> heatmaps network, `OUT/<name>_onnx/<version>/`
  and `OUT/<name>_tflite/<version>/`.

The version is the next free integer unless `--version` is given; an existing version is
kept unless `--overwrite`. The export is written beside the target and renamed into place.

Examples:

    python -m pose_keras.export --model runs/mpii --out export
    python -m pose_keras.export --model runs/mpii/best.keras --out export --name pose \\
        --flip --heatmaps --version 3
    python -m pose_keras.export --model runs/mpii --out export --format onnx
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

from pose_keras import cli, files, runs  # noqa: E402
from pose_keras.serving import (  # noqa: E402
    EXPORTERS,
    FORMATS,
    GRAPH_REFINEMENTS,
    ServingGraph,
    model_name,
    resolve_version,
)

# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.export",
        description="Export a trained model: a SavedModel for TF Serving (bytes in, keypoints "
        "out; OUT/<name>/<version>/), or the crops -> heatmaps network as ONNX or TFLite.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="A run directory (uses model.keras, else best.keras) or a .keras file.",
    )
    parser.add_argument(
        "--out", default="export", help="Folder of the model repository (default: export)."
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="savedmodel",
        help="savedmodel (default, TF Serving layout), onnx or tflite (crops -> heatmaps).",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="Model name, the folder under --out (default: the run directory's name; "
        "'_onnx' / '_tflite' is appended for those formats).",
    )
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        help="Version folder, a positive integer (default: the next free one).",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="Replace an existing version folder."
    )
    cli.add_inference_arguments(parser, refinements=GRAPH_REFINEMENTS, in_graph=True)
    parser.add_argument(
        "--heatmaps",
        action="store_true",
        help="Also return the heatmaps from serving_default (large: H x H x J floats a person).",
    )
    runs.add_model_arguments(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        cli.check_inference_arguments(args)
        if not Path(args.model).exists():
            raise FileNotFoundError(f"Model not found: {args.model}")
        model_dir = Path(args.out) / model_name(args.name, args.model, args.format)
        files.check_output_dir(model_dir, "--out")
        version = resolve_version(model_dir, args.version, args.overwrite)
        target = model_dir / str(version)
        print(f"Loading {args.model} ...", file=sys.stderr)
        run = runs.load_run(args.model, joints=args.joints, prefer=args.prefer)
        graph = ServingGraph(
            run.model,
            run.joint_set,
            box_scale=args.box_scale or run.box_scale,
            flip=args.flip,
            refine=args.refine,
            heatmaps=args.heatmaps,
        )
        print(f"Exporting {args.format} to {target} ...", file=sys.stderr)
        path = EXPORTERS[args.format](graph, target, source=run.path, overwrite=args.overwrite)
    except (ValueError, OSError) as error:  # bad input (2); a full disk while writing (1)
        return cli.error_exit(error)
    except ImportError as error:
        print(
            f"error: --format {args.format} needs {error.name or error}: "
            "pip install -e '.[onnx]' (tf2onnx, onnx, onnxruntime)",
            file=sys.stderr,
        )
        return 2
    print(f"Wrote {path} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
