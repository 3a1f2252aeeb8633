"""What every command line shares: `--config/--preset/--set`, the one-line error, progress.

A library module for the CLIs (`fit`, `summary`, `show`, `predict`, `evaluate`, `export`);
it imports no CLI module and no TensorFlow.

- `add_config_arguments(parser)` and `config_from_arguments(args)`: a config file or a named
  preset, then `section.key=value` overrides (`Config.with_overrides`).
- `add_inference_arguments(parser, ...)` and `check_inference_arguments(args)`: `--flip`,
  `--refine`, `--box-scale`, `--batch-size` of `predict`, `evaluate` and `export`.
- `error_exit(error)`: the command's one-line reason on stderr and its exit code: 2 for bad
  input, 1 for an `OSError` met while writing (a full disk), as docs/reliability.md says.
- `ProgressBar`: a one-line text progress bar on stderr (stdout stays for results, e.g.
  `evaluate --json`).

Examples:

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_config_arguments(parser, default_preset="paper")
>>> config = config_from_arguments(parser.parse_args(["--set", "model.stacks=2"]), "paper")
>>> config.model.stacks
2
"""

from __future__ import annotations

import sys
import time

from pose_keras import files
from pose_keras.config import Config
from pose_keras.decode import REFINEMENTS

# Exit codes (docs/reliability.md): bad input, and a write that failed during the work.
EXIT_BAD_INPUT = 2
EXIT_WRITE_FAILED = 1


def add_config_arguments(parser, default_preset: str = "synthetic", what: str = "") -> None:
    """Add `--config FILE`, `--preset NAME` and repeatable `--set SECTION.KEY=VALUE`."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="JSON config file (sections model, data, train; missing keys take the paper's "
        f"defaults). Default: the {default_preset!r} preset{what}.",
    )
    parser.add_argument(
        "--preset",
        help=f"Named preset instead of a file: 'synthetic' or 'paper' (default "
        f"{default_preset!r}).",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="Override one config value, e.g. --set train.epochs=50 (repeatable).",
    )


def config_from_arguments(args, default_preset: str = "synthetic") -> Config:
    """The `Config` of `--config` or `--preset` (default `default_preset`) with `--set`.

    Raises:
        ValueError: both `--config` and `--preset`, or a bad file, preset or override.
    """
    if args.config and args.preset:
        raise ValueError("Give --config or --preset, not both.")
    if args.config:
        config = Config.from_json(args.config)
    else:
        config = Config.preset(args.preset or default_preset)
    return config.with_overrides(args.overrides)


def add_inference_arguments(
    parser, batch_size=None, box_scale=True, refinements=REFINEMENTS, in_graph=False
) -> None:
    """Add how a model runs on people: `--flip`, `--refine`, `--box-scale`, `--batch-size`.

    Args:
        parser: an `argparse` parser or argument group.
        batch_size: int or None. Default of `--batch-size`; None: no such flag.
        box_scale: bool. Add `--box-scale` (default None: the run's `data.box_scale`).
        refinements: the `--refine` choices. Default `decode.REFINEMENTS`.
        in_graph: bool. The help says the flip test and refinement go into an exported
            graph (`export`). Default False.
    """
    parser.add_argument(
        "--flip",
        action="store_true",
        help="Put the flip test in the graph (twice the compute)."
        if in_graph
        else "Flip test: average with the mirrored crop.",
    )
    parser.add_argument(
        "--refine",
        choices=refinements,
        default="quarter",
        help="Sub-pixel refinement inside the graph: quarter-pixel shift (default) or none."
        if in_graph
        else "Sub-pixel refinement: quarter-pixel shift (default), DARK, or none.",
    )
    if batch_size is not None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=batch_size,
            help=f"People per model call (default {batch_size}).",
        )
    if box_scale:
        parser.add_argument(
            "--box-scale",
            type=float,
            default=None,
            help="Crop side = box's longer side x this (default: the run's data.box_scale, 1.25).",
        )


def check_inference_arguments(args) -> None:
    """`ValueError` for a `--batch-size` below 1 or a `--box-scale` that is not > 0."""
    batch_size = getattr(args, "batch_size", None)
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, received {batch_size}.")
    box_scale = getattr(args, "box_scale", None)
    if box_scale is not None and not box_scale > 0:
        raise ValueError(f"--box-scale must be > 0, received {box_scale}.")


def error_exit(error: Exception) -> int:
    """Print `error: <reason>` (one line) on stderr; return the exit code for it."""
    if isinstance(error, OSError) and not isinstance(error, (FileNotFoundError, FileExistsError)):
        print(f"error: {files.describe_os_error(error)}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    print(f"error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT


class ProgressBar:
    """A one-line text progress bar on stderr (updated at most 5 times a second).

    Args:
        total: int. Units expected (0 or None: a counter without a bar).
        unit: str. What is counted, e.g. "people".
        stream: file or None. Default `sys.stderr`.
        enabled: bool. False: silent. Default True.
        width: int. Characters of the bar. Default 30.
        label: str. What the work is, printed first (`"converting valid.h5: [###...] ..."`).
            Default "" (none).

    >>> import io
    >>> stream = io.StringIO()
    >>> bar = ProgressBar(2, "people", stream, width=4, label="val")
    >>> bar.update(2)
    >>> bar.close()
    >>> stream.getvalue()[:-8]  # then the seconds and a newline
    '\\rval: [####] 2/2 people'
    """

    def __init__(
        self, total, unit: str, stream=None, enabled: bool = True, width: int = 30, label=""
    ):
        self.total = total
        self.unit = unit
        self.label = f"{label}: " if label else ""
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.done = 0
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, count: int = 1):
        self.done += count
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and self.done != self.total):
            return
        self._last = now
        elapsed = now - self._start
        if self.total:
            filled = int(self.width * min(self.done, self.total) / self.total)
            bar = "#" * filled + "." * (self.width - filled)
            line = f"\r{self.label}[{bar}] {self.done}/{self.total} {self.unit} {elapsed:5.1f}s"
        else:
            line = f"\r{self.label}{self.done} {self.unit} {elapsed:5.1f}s"
        self.stream.write(line)
        self.stream.flush()

    def close(self):
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
