"""`python -m pose_keras.curves RUN_DIR`: training curves of a run as a PNG.

Reads the run's `log.csv` (Keras `CSVLogger`: one row per finished epoch with the total
loss, the loss of every head and the validation PCK(h) in percent, see `pose_keras.runs`)
and draws two panels: the losses per epoch (total and per head, log scale) and the
validation metric. Written to `RUN_DIR/training_curves.png` unless `--output` says
otherwise.

Examples:

    python -m pose_keras.curves runs/synthetic
    python -m pose_keras.curves runs/mpii --output mpii_curves.png
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from pose_keras import files, runs

CURVES_FILE = "training_curves.png"


def read_log(path) -> dict:
    """The columns of a Keras `CSVLogger` file: name -> list of floats (NaN kept).

    Args:
        path: a run directory or its `log.csv`.

    Returns:
        dict, in the file's column order; "epoch" is 0-based as Keras writes it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / runs.LOG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"Training log not found: {path} (is it a finished or running run?)"
        )
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or "epoch" not in header:
            raise ValueError(f"{path}: not a Keras CSVLogger file (no 'epoch' column).")
        columns = {name: [] for name in header}
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(
                    f"{path}: line {line} has {len(row)} values for {len(header)} columns."
                )
            for name, value in zip(header, row, strict=True):
                try:
                    columns[name].append(float(value) if value != "" else math.nan)
                except ValueError:
                    raise ValueError(
                        f"{path}: line {line}, column {name!r}: not a number ({value!r})."
                    ) from None
    if not columns["epoch"]:
        raise ValueError(f"{path}: no epoch finished yet.")
    return columns


def metric_columns(columns: dict) -> list:
    """The validation PCK/PCKh columns (e.g. `val_pckh`, `val_pck`)."""
    return [name for name in columns if name.startswith("val_pck")]


def loss_columns(columns: dict) -> list:
    """`loss` first, then each head's loss (`refined_loss`, `stack1_scale2_loss`, ...)."""
    heads = sorted(name for name in columns if name.endswith("_loss") and name != "loss")
    return (["loss"] if "loss" in columns else []) + heads


def training_curves_figure(columns: dict, title: str = ""):
    """A matplotlib Figure (not tied to pyplot) with the loss and metric panels."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [int(value) + 1 for value in columns["epoch"]]
    figure = Figure(figsize=(11, 4), layout="constrained")
    losses, metric = figure.subplots(1, 2)
    for name in loss_columns(columns):
        total = name == "loss"
        losses.plot(
            epochs,
            columns[name],
            label="total (Eq. 1, all heads)" if total else name.removesuffix("_loss"),
            color="black" if total else None,
            linewidth=2.0 if total else 1.0,
            marker="o" if total else None,
        )
    if all(value > 0 for name in loss_columns(columns) for value in columns[name]):
        losses.set_yscale("log")
    losses.set(xlabel="epoch", ylabel="training loss", title="loss per epoch")
    losses.legend(fontsize=7)
    for name in metric_columns(columns):
        metric.plot(epochs, columns[name], marker="o", label=name)
    if metric_columns(columns):
        best_name = metric_columns(columns)[0]
        values = columns[best_name]
        finite = [
            (value, epoch) for value, epoch in zip(values, epochs, strict=True) if value == value
        ]
        if finite:
            best, best_epoch = max(finite)
            metric.set_title(f"validation: best {best_name} {best:.1f} at epoch {best_epoch}")
        metric.legend(fontsize=7)
    else:
        metric.set_title("no validation metric in the log")
    metric.set(xlabel="epoch", ylabel="PCK(h) (%)", ylim=(0, 100))
    for axes in (losses, metric):
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        figure.suptitle(title)
    return figure


def plot_training_curves(run_dir, output=None) -> Path:
    """Write the training curves of a run to a PNG.

    Args:
        run_dir: the run directory (or its `log.csv`).
        output: PNG path or None for `RUN_DIR/training_curves.png`.

    Returns:
        Path of the PNG.

    `fit` can call it at the end of a run: `curves.plot_training_curves(run_dir)`.
    """
    run_dir = Path(run_dir)
    columns = read_log(run_dir)
    folder = run_dir if run_dir.is_dir() else run_dir.parent
    output = Path(output) if output is not None else folder / CURVES_FILE
    figure = training_curves_figure(columns, title=folder.name)
    output.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_path(output) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return output


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.curves",
        description="Plot a run's training curves (loss and validation PCK(h) per epoch, "
        "from RUN_DIR/log.csv) into a PNG.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="A run directory (or its log.csv).")
    parser.add_argument(
        "--output", default=None, help=f"PNG to write (default: RUN_DIR/{CURVES_FILE})."
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = plot_training_curves(args.run_dir, args.output)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
