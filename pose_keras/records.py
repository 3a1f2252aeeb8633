"""The TFRecord schema (one `tf.train.Example` per person), its writer and its reader.

This module is the single place where the on-disk format is defined. Converters
(`tfrecords_tools`) and the synthetic generator write through `ShardedWriter`; the tf.data
pipeline parses with `parse_person`; tools and tests read back with `read_people`.

Schema (version 1). Coordinates are image px: 0-based pixel centres of the original image
(sources in MATLAB's 1-based frame are shifted by -1 by their converter).

| feature | type | meaning |
|---|---|---|
| `image/encoded` | bytes | the whole original image, JPEG or PNG bytes as found on disk |
| `image/format` | bytes | `jpeg` or `png` |
| `image/height`, `image/width` | int64 | size of the original image, px |
| `image/id` | bytes | image file name relative to the image root, or the dataset's image id |
| `dataset` | bytes | `mpii`, `flic`, `lsp`, `coco`, `synthetic` or a custom name |
| `person/id` | int64 | index of the person in the converted split (0, 1, 2, ... in source order) |
| `person/center` | float x2 | person centre (x, y), image px |
| `person/scale` | float | MPII scale: the person is about 200 * scale px tall |
| `person/head_box` | float x4 | head box (x0, y0, x1, y1), image px; all -1 when the dataset has none |
| `person/normalize` | float | the source's own PCK normaliser in px when it ships one (hourglass `.h5` `normalize`), else 0 |
| `keypoints/xy` | float x 2J | (x, y) per joint, image px, joint order of the manifest's joint set; 0 when not annotated |
| `keypoints/visibility` | int64 x J | 0 = not annotated, 1 = annotated but occluded, 2 = annotated and visible |

Each split is a set of shards `<prefix>-<index:05d>.tfrecord` plus `<prefix>.manifest.json`
holding the schema version, dataset name, joint set (names, flip pairs, limbs, normaliser),
per-shard example counts and SHA-256 checksums, and what the converter skipped. Shards are
written to a temporary name and renamed when complete; the manifest is written last, so a
split without a manifest is incomplete.
"""

import dataclasses
import glob
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from pose_keras.joints import JointSet

SCHEMA_VERSION = 1
NOT_ANNOTATED, OCCLUDED, VISIBLE = 0, 1, 2
NO_HEAD_BOX = (-1.0, -1.0, -1.0, -1.0)


@dataclasses.dataclass
class PersonRecord:
    """One person, as stored in one TFRecord example (see the module docstring)."""

    image_encoded: bytes
    image_format: str
    image_height: int
    image_width: int
    image_id: str
    dataset: str
    person_id: int
    center: np.ndarray  # (2,) image px
    scale: float
    keypoints: np.ndarray  # (J, 2) image px
    visibility: np.ndarray  # (J,) int: 0 / 1 / 2
    head_box: np.ndarray = dataclasses.field(
        default_factory=lambda: np.array(NO_HEAD_BOX, dtype=np.float32)
    )
    normalize: float = 0.0

    def __post_init__(self):
        self.center = np.asarray(self.center, dtype=np.float32).reshape(2)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.visibility = np.asarray(self.visibility, dtype=np.int64)
        self.head_box = np.asarray(self.head_box, dtype=np.float32).reshape(4)
        if self.keypoints.ndim != 2 or self.keypoints.shape[1] != 2:
            raise ValueError(
                f"{self.describe()}: keypoints must have shape (J, 2), received "
                f"{self.keypoints.shape}."
            )
        if self.visibility.shape != (self.keypoints.shape[0],):
            raise ValueError(
                f"{self.describe()}: visibility must have shape ({self.keypoints.shape[0]},), "
                f"received {self.visibility.shape}."
            )
        if not np.isin(self.visibility, (NOT_ANNOTATED, OCCLUDED, VISIBLE)).all():
            raise ValueError(f"{self.describe()}: visibility values must be 0, 1 or 2.")
        if self.image_format not in ("jpeg", "png"):
            raise ValueError(
                f"{self.describe()}: image_format must be 'jpeg' or 'png', received "
                f"{self.image_format!r}."
            )
        if not np.isfinite(self.keypoints).all() or not np.isfinite(self.center).all():
            raise ValueError(f"{self.describe()}: keypoints and center must be finite.")
        if not self.scale > 0:
            raise ValueError(f"{self.describe()}: scale must be positive, received {self.scale}.")

    @property
    def num_joints(self) -> int:
        return self.keypoints.shape[0]

    def describe(self) -> str:
        return f"{self.dataset} image {self.image_id!r} person {self.person_id}"


def _bytes_feature(values):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _float_feature(values):
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def _int_feature(values):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def serialize_person(record: PersonRecord) -> bytes:
    """Serialise a `PersonRecord` to `tf.train.Example` bytes."""
    import tensorflow as tf

    feature = {
        "image/encoded": _bytes_feature([record.image_encoded]),
        "image/format": _bytes_feature([record.image_format.encode()]),
        "image/height": _int_feature([record.image_height]),
        "image/width": _int_feature([record.image_width]),
        "image/id": _bytes_feature([record.image_id.encode()]),
        "dataset": _bytes_feature([record.dataset.encode()]),
        "person/id": _int_feature([record.person_id]),
        "person/center": _float_feature(record.center),
        "person/scale": _float_feature([record.scale]),
        "person/head_box": _float_feature(record.head_box),
        "person/normalize": _float_feature([record.normalize]),
        "keypoints/xy": _float_feature(record.keypoints.reshape(-1)),
        "keypoints/visibility": _int_feature(record.visibility),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def feature_spec(num_joints: int) -> dict:
    """The `tf.io.parse_single_example` spec for `num_joints` joints."""
    import tensorflow as tf

    return {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/format": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/id": tf.io.FixedLenFeature([], tf.string),
        "dataset": tf.io.FixedLenFeature([], tf.string),
        "person/id": tf.io.FixedLenFeature([], tf.int64),
        "person/center": tf.io.FixedLenFeature([2], tf.float32),
        "person/scale": tf.io.FixedLenFeature([], tf.float32),
        "person/head_box": tf.io.FixedLenFeature([4], tf.float32),
        "person/normalize": tf.io.FixedLenFeature([], tf.float32),
        "keypoints/xy": tf.io.FixedLenFeature([num_joints * 2], tf.float32),
        "keypoints/visibility": tf.io.FixedLenFeature([num_joints], tf.int64),
    }


def parse_person(serialized, num_joints: int) -> dict:
    """Parse one serialised example into a dict of tensors (usable inside tf.data).

    `keypoints/xy` comes back reshaped to (J, 2). A record with another joint count fails
    with TensorFlow's "Key: keypoints/xy. Can't parse serialized Example" error; use
    `read_people` to find which file and record.
    """
    import tensorflow as tf

    example = tf.io.parse_single_example(serialized, feature_spec(num_joints))
    example["keypoints/xy"] = tf.reshape(example["keypoints/xy"], [num_joints, 2])
    return example


def example_to_record(serialized: bytes, source: str = "record") -> PersonRecord:
    """Decode example bytes into a `PersonRecord` (numpy; for tools and tests)."""
    import tensorflow as tf

    try:
        example = tf.train.Example.FromString(serialized)
    except Exception as error:  # protobuf raises DecodeError, a plain Exception subclass
        raise ValueError(f"{source}: not a tf.train.Example ({error}).") from None
    features = example.features.feature

    def values(key):
        if key not in features:
            raise ValueError(f"{source}: missing feature {key!r}.")
        feature = features[key]
        kind = feature.WhichOneof("kind")
        return list(getattr(feature, kind).value) if kind else []

    keypoints = np.asarray(values("keypoints/xy"), dtype=np.float32)
    visibility = np.asarray(values("keypoints/visibility"), dtype=np.int64)
    if keypoints.size != 2 * visibility.size:
        raise ValueError(
            f"{source}: keypoints/xy has {keypoints.size} values for {visibility.size} joints."
        )
    return PersonRecord(
        image_encoded=values("image/encoded")[0],
        image_format=values("image/format")[0].decode(),
        image_height=int(values("image/height")[0]),
        image_width=int(values("image/width")[0]),
        image_id=values("image/id")[0].decode(),
        dataset=values("dataset")[0].decode(),
        person_id=int(values("person/id")[0]),
        center=np.asarray(values("person/center")),
        scale=float(values("person/scale")[0]),
        keypoints=keypoints.reshape(-1, 2),
        visibility=visibility,
        head_box=np.asarray(values("person/head_box")),
        normalize=float(values("person/normalize")[0]),
    )


def sha256_of_file(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (the manifests' shard checksums)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(prefix) -> Path:
    return Path(f"{prefix}.manifest.json")


class ShardedWriter:
    """Write `PersonRecord`s into shards `<prefix>-00000.tfrecord`, ... and a manifest.

    Use as a context manager. A shard is written under a `.tmp` name and renamed when full
    or when the writer closes; the manifest is written (also atomically) only when the
    `with` block exits without an exception, so an interrupted conversion never looks
    complete. Temporary files of a failed run are removed.

    Args:
        prefix: str or Path. Output path prefix, e.g. `records/mpii_train`.
        joint_set: JointSet. Stored in the manifest; every record must have its joint count.
        dataset: str. Dataset name stored in the manifest.
        examples_per_shard: int. Default 1000.
        extra: dict. Extra JSON-ready manifest fields (e.g. the source file). Default None.

    Examples:

    >>> with ShardedWriter("/tmp/demo/train", MPII, "mpii") as writer:  # doctest: +SKIP
    ...     writer.write(record)
    ...     writer.skip("missing image", "004645041.jpg")
    """

    def __init__(
        self, prefix, joint_set: JointSet, dataset: str, examples_per_shard=1000, extra=None
    ):
        if examples_per_shard <= 0:
            raise ValueError(f"examples_per_shard must be positive, received {examples_per_shard}.")
        self.prefix = Path(prefix)
        self.joint_set = joint_set
        self.dataset = dataset
        self.examples_per_shard = examples_per_shard
        self.extra = dict(extra or {})
        self.shards = []  # dicts: file, count, sha256
        self.skipped = {}  # reason -> list of names
        self._writer = None
        self._temporary = None
        self._count_in_shard = 0
        self.count = 0

    def __enter__(self):
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        for stale in glob.glob(f"{glob.escape(str(self.prefix))}-*.tfrecord*"):
            os.remove(stale)
        stale_manifest = manifest_path(self.prefix)
        if stale_manifest.exists():
            stale_manifest.unlink()
        return self

    def _open_shard(self):
        import tensorflow as tf

        index = len(self.shards)
        final = Path(f"{self.prefix}-{index:05d}.tfrecord")
        self._temporary = final.with_name(final.name + ".tmp")
        self._writer = tf.io.TFRecordWriter(str(self._temporary))
        self._count_in_shard = 0

    def _close_shard(self):
        if self._writer is None:
            return
        self._writer.close()
        final = Path(str(self._temporary)[: -len(".tmp")])
        os.replace(self._temporary, final)
        self.shards.append(
            {"file": final.name, "count": self._count_in_shard, "sha256": sha256_of_file(final)}
        )
        self._writer = None
        self._temporary = None

    def write(self, record: PersonRecord):
        if record.num_joints != self.joint_set.num_joints:
            raise ValueError(
                f"{record.describe()}: {record.num_joints} joints, but joint set "
                f"{self.joint_set.name!r} has {self.joint_set.num_joints}."
            )
        if self._writer is None:
            self._open_shard()
        self._writer.write(serialize_person(record))
        self._count_in_shard += 1
        self.count += 1
        if self._count_in_shard >= self.examples_per_shard:
            self._close_shard()

    def skip(self, reason: str, name: str):
        """Record that an input was skipped (reported in the manifest and `summary`)."""
        self.skipped.setdefault(reason, []).append(str(name))

    def summary(self) -> str:
        parts = [f"wrote {self.count} people to {len(self.shards)} shard(s) at {self.prefix}-*"]
        for reason, names in self.skipped.items():
            parts.append(f"skipped {len(names)} ({reason})")
        return "; ".join(parts)

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is not None:
            if self._writer is not None:
                self._writer.close()
                if self._temporary is not None and self._temporary.exists():
                    self._temporary.unlink()
            for shard in self.shards:
                (self.prefix.parent / shard["file"]).unlink(missing_ok=True)
            return False
        self._close_shard()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "dataset": self.dataset,
            "count": self.count,
            "joint_set": self.joint_set.to_dict(),
            "shards": self.shards,
            "skipped": {
                reason: {"count": len(names), "names": names[:1000]}
                for reason, names in self.skipped.items()
            },
            **self.extra,
        }
        target = manifest_path(self.prefix)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(temporary, target)
        return False


def shard_paths(pattern) -> list[str]:
    """Shard files matching a glob (or a prefix with a manifest), sorted."""
    pattern = str(pattern)
    manifest = manifest_path(pattern)
    if manifest.exists():
        data = json.loads(manifest.read_text())
        return [str(manifest.parent / shard["file"]) for shard in data["shards"]]
    paths = sorted(path for path in glob.glob(pattern) if not path.endswith(".tmp"))
    if not paths:
        raise FileNotFoundError(f"No TFRecord shards match {pattern!r}.")
    return paths


def read_manifest(pattern) -> dict:
    """The manifest of a split, given its prefix, a shard path or a shard glob."""
    pattern = str(pattern)
    candidates = [manifest_path(pattern)]
    for path in sorted(glob.glob(pattern)):
        stem = path.rsplit("-", 1)[0] if path.endswith(".tfrecord") else path
        candidates.append(manifest_path(stem))
    for candidate in candidates:
        if candidate.exists():
            return json.loads(candidate.read_text())
    raise FileNotFoundError(
        f"No manifest found for {pattern!r} (expected {candidates[0]} or a "
        "<prefix>.manifest.json beside the shards): the split is missing or incomplete."
    )


def joint_set_of(pattern) -> JointSet:
    """The joint set declared in a split's manifest."""
    return JointSet.from_dict(read_manifest(pattern)["joint_set"])


class CorruptShardError(ValueError):
    """A shard cannot be read from record `index` on (truncated or corrupt bytes)."""

    def __init__(self, path, index: int, detail: str):
        self.path, self.index, self.detail = str(path), index, detail
        super().__init__(f"{path}: record {index} is corrupt or truncated ({detail}).")


def iterate_shard(path):
    """Yield `(index, serialized)` for a shard's records in order.

    Raises `CorruptShardError` at the first record that cannot be read (TF's
    `DataLossError`), with the number of records read before it as `index`.
    """
    import tensorflow as tf

    iterator = iter(tf.data.TFRecordDataset(str(path)))
    index = 0
    while True:
        try:
            serialized = next(iterator)
        except StopIteration:
            return
        except tf.errors.DataLossError as error:
            raise CorruptShardError(path, index, error.message.strip()) from None
        yield index, serialized
        index += 1


def read_people(pattern, limit=None):
    """Yield `PersonRecord`s from shards in order (numpy; for tools and tests).

    A corrupt or truncated shard raises `ValueError` naming the file and record index.
    """
    yielded = 0
    for path in shard_paths(pattern):
        for index, serialized in iterate_shard(path):
            yield example_to_record(serialized.numpy(), source=f"{path} record {index}")
            yielded += 1
            if limit is not None and yielded >= limit:
                return
