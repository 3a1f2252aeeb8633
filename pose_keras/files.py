"""Output files: atomic writes and the writability check every command runs before work.

Every file a command writes goes through `atomic_path` (a folder: `atomic_dir`): the content is written under a
temporary name beside the target and renamed over it only when complete, so an
interrupted or failed write (a kill, a full disk) never leaves a truncated file where a
good one was, and the temporary file is removed on failure.

`check_output_dir` runs before any work: it walks up to the nearest existing folder and
reports a file in the way, a folder that cannot be written, or too little free space as
one `OutputPathError` (a `ValueError`, so CLIs print it as their one-line error and exit
with code 2). It creates nothing.

Standard library only: importing this module does not import TensorFlow.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

# What a command needs free before it starts: enough for a few model files and logs of the
# sizes this project trains (the paper's network is 8.5 MB per .keras file).
DEFAULT_FREE_BYTES = 32 * 1024 * 1024


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names it and says why."""


def temporary_path(path) -> Path:
    """The temporary name `atomic_path` writes first: `model.keras` -> `model.tmp.keras`.

    The suffix is kept because some writers choose the format by it (Keras wants `.keras`).

    >>> temporary_path("runs/a/metrics.json").as_posix()
    'runs/a/metrics.tmp.json'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it replaces `path`, on failure it goes.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as temporary:
    ...     _ = temporary.write_text("complete")
    >>> target.read_text()
    'complete'
    """
    path = Path(path)
    temporary = temporary_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            if temporary.is_dir():
                shutil.rmtree(temporary)
            else:
                temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path, overwrite: bool = False):
    """Yield a temporary folder path to fill; on success it replaces folder `path`.

    The temporary folder (`.<name>.partial-<pid>`, hidden, so a TF Serving base folder or
    `serving.resolve_version` never takes it for a version) is not created: the writer
    creates it. On failure it is removed and an existing `path` stays as it was; an
    existing `path` is replaced only with `overwrite` (otherwise `FileExistsError`).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "1"
    >>> with atomic_dir(target) as temporary:
    ...     temporary.mkdir()
    ...     _ = (temporary / "saved_model.pb").write_text("complete")
    >>> sorted(path.name for path in target.parent.iterdir())
    ['1']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        yield temporary
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} appeared while it was written; not replaced.")
            os.replace(path, old)
        os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def write_json_atomic(path, data, indent=2) -> None:
    """Write JSON to `path` through a temporary file and a rename (never half-written)."""
    write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def read_json(path):
    """The content of a JSON file (a run's `metrics.json`, ...), or None when it does not exist.

    Raises:
        ValueError: the file is not valid JSON (the message names it).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}).") from None


def check_output_dir(path, what: str = "output folder", free_bytes=DEFAULT_FREE_BYTES) -> None:
    """Check that folder `path` can be created (or exists) and written; create nothing.

    Args:
        path: the folder a command will write into (it may not exist yet).
        what: str. How the message names it, e.g. `"train.run_dir"`. Default "output folder".
        free_bytes: int. Free space required on its file system. Default 32 MiB.

    Raises:
        OutputPathError: a file is in the way, the nearest existing folder cannot be
            written, or its file system has less than `free_bytes` free.
    """
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise OutputPathError(f"{what} {path}: {existing} is a dangling symbolic link.")
        existing = existing.parent
    if not existing.is_dir():
        if existing == path:
            raise OutputPathError(f"{what} {path} exists and is not a folder.")
        raise OutputPathError(
            f"{what} {path}: {existing} is a file, not a folder, so {path} cannot be created."
        )
    try:
        # A real write, not os.access: access() says yes to root on a read-only mount.
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".pose_keras_probe_"):
            pass
    except OSError as error:
        raise OutputPathError(
            f"{what} {path}: cannot write in {existing} ({error.strerror})."
        ) from None
    free = shutil.disk_usage(existing).free
    if free < free_bytes:
        raise OutputPathError(
            f"{what} {path}: only {free / 2**20:.1f} MiB free on its disk, "
            f"{free_bytes / 2**20:.0f} MiB needed."
        )


def describe_os_error(error: OSError) -> str:
    """One line for an OSError met while writing: the path and the system's reason.

    >>> describe_os_error(OSError(28, "No space left on device", "runs/a/best.keras"))
    'cannot write runs/a/best.keras: No space left on device'
    """
    name = error.filename or "output"
    reason = error.strerror or str(error)
    return f"cannot write {name}: {reason}"
