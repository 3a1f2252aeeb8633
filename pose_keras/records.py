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

Each split is a set of shards `<prefix>-<index:05d>.tfrecord` plus `<prefix>.manifest.json`.

Manifest (a JSON object; `read_manifest` checks every field and names the file when one is
wrong):

| key | type | meaning |
|---|---|---|
| `schema_version` | int | `SCHEMA_VERSION` of the records |
| `dataset` | str | dataset name |
| `count` | int | people in the split; must equal the sum of the shards' `count` |
| `joint_set` | object | `JointSet.to_dict()`: names, flip pairs, limbs, normaliser |
| `shards` | list | `{"file": <shard file name beside the manifest>, "count": <records>, "sha256": <hex>}` in record order |
| `skipped` | object | reason -> `{"count", "names"}`: what the converter left out |
| `content_sha256` | str | SHA-256 of the manifest itself without this key (`manifest_digest`) |
| other keys | any | what the converter adds (`source`, `format`, `split`, ...) |

Counts are verified, so a training run never sizes its epochs from a number nobody wrote:
`content_sha256` makes any edit of the manifest (a `count`, a shard's `count`) an error
when it is read, and the pipeline's checksum check (`data.verify_checksums`) also counts
each shard's records by walking the TFRecord framing (`count_records`, no decoding) and
compares them with the manifest. Manifests written before `content_sha256` existed are read
without that check (the sum and the record counts are still checked).

Writing is all-or-nothing: new shards are written under temporary names
(`<prefix>-<index:05d>.tfrecord.tmp`) beside whatever the prefix held before; only when the
whole split is written do they replace the old shards, and the manifest is written last.
A failed run removes its temporary files and leaves an earlier split byte-identical; a
split without a manifest is incomplete. Only this prefix's own files
(`<prefix>-NNNNN.tfrecord[.tmp]`, five digits, and `<prefix>.manifest.json[.tmp]`) are ever
touched, so `records/coco` never disturbs `records/coco-val`.

A valid image is what `check_image_bytes` accepts: JPEG or PNG bytes with their end marker,
a readable header of at most `MAX_IMAGE_PIXELS`, that TensorFlow decodes (grayscale, CMYK,
alpha and 16-bit images included) to the header's size. Converters and the pipeline use it.
"""

import dataclasses
import glob
import hashlib
import json
import os
import re
import struct
from pathlib import Path

import numpy as np

from pose_keras.joints import JointSet

SCHEMA_VERSION = 1
# Manifest key of a person-centred split (tfrecords_tools.recrop): the crop geometry it
# was cut for, which `fit` checks the configuration against.
PERSON_CENTRED_KEY = "person_centred"
NOT_ANNOTATED, OCCLUDED, VISIBLE = 0, 1, 2
VISIBILITY_VALUES = (NOT_ANNOTATED, OCCLUDED, VISIBLE)
NO_HEAD_BOX = (-1.0, -1.0, -1.0, -1.0)

# Which person is valid input, declared once: `person_problem` is the numpy rule the
# converters apply before writing (`tfrecords_tools.common.annotation_problem`), and
# `pipeline.parse_record` is its TF twin, built from the same constants (tests/test_pipeline.py
# checks that the two agree on the same people). The rule: the joint set's joint count,
# visibility values in `VISIBILITY_VALUES`, at least `MIN_ANNOTATED_JOINTS` annotated joints,
# finite annotated keypoints (a joint that is not annotated is not looked at), a finite
# centre and a finite, positive scale. Prediction-only data (the unlabelled MPII test split
# that `python -m pose_keras.submission` predicts) opts out of the joint count with
# `require_annotations=False`, in both twins (`min_annotated_joints`); training and scoring
# never do.
MIN_ANNOTATED_JOINTS = 1
# The checks of `person_problem`, in the order they are made (the first failing one is named).
JOINT_COUNT = "joint count"
BAD_VISIBILITY = "visibility"
NO_ANNOTATED_JOINT = "no annotated joint"
NON_FINITE_KEYPOINT = "non-finite keypoint"
NON_FINITE_CENTER = "non-finite centre"
BAD_SCALE = "scale"

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A truncated JPEG or PNG lacks its end marker (JPEG EOI `FF D9`, PNG `IEND` chunk) near the
# end of the bytes; a few KiB of slack tolerates trailers some cameras append after EOI.
END_MARKER_WINDOW = 4096
# Larger images are refused before decoding (a 100 MP RGB image is 300 MB decoded, 1.2 GB
# as the pipeline's float32): far beyond any pose dataset, a sign of a broken or hostile file.
MAX_IMAGE_PIXELS = 100_000_000


@dataclasses.dataclass
class PersonRecord:
    """One person, as stored in one TFRecord example (see the module docstring).

    Its repr leaves the image bytes out (a JPEG is hundreds of kilobytes), so a record
    prints as its fields.
    """

    image_encoded: bytes = dataclasses.field(repr=False)
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
        # Only what makes a record storable (see `person_problem` for valid input): a record
        # without an annotated joint can be built, so tools and tests read bad records back
        # and the pipeline reports them. All keypoints must be finite here, annotated or not,
        # since the schema stores 0 for a joint that is not annotated.
        if not np.isin(self.visibility, VISIBILITY_VALUES).all():
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


def min_annotated_joints(require_annotations: bool = True) -> int:
    """Annotated joints a valid person needs: `MIN_ANNOTATED_JOINTS`, or 0 for
    prediction-only data (`require_annotations=False`)."""
    return MIN_ANNOTATED_JOINTS if require_annotations else 0


def person_problem(
    keypoints, visibility, center, scale, joint_set: JointSet, require_annotations: bool = True
):
    """Why a person is not valid input: `(check, detail)`, or None when it is.

    `check` is one of `JOINT_COUNT`, `BAD_VISIBILITY`, `NO_ANNOTATED_JOINT`,
    `NON_FINITE_KEYPOINT`, `NON_FINITE_CENTER`, `BAD_SCALE` (the first that fails);
    `detail` says what was received. With `require_annotations=False` (prediction-only
    data, e.g. the MPII test split) a person without an annotated joint is valid; every
    other check still applies.

    >>> from pose_keras.joints import FLIC
    >>> person_problem(np.ones((11, 2)), np.zeros(11), (5.0, 5.0), 1.0, FLIC)
    ('no annotated joint', 'no joint is annotated')
    >>> person_problem(np.ones((11, 2)), np.zeros(11), (5.0, 5.0), 1.0, FLIC, False) is None
    True
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    visibility = np.asarray(visibility)
    count = joint_set.num_joints
    if keypoints.shape != (count, 2) or visibility.shape != (count,):
        return JOINT_COUNT, (
            f"{keypoints.shape[0] if keypoints.ndim else 0} joints, but joint set "
            f"{joint_set.name!r} has {count}"
        )
    if not np.isin(visibility, VISIBILITY_VALUES).all():
        return BAD_VISIBILITY, "visibility values must be 0, 1 or 2"
    annotated = visibility > NOT_ANNOTATED
    if annotated.sum() < min_annotated_joints(require_annotations):
        return NO_ANNOTATED_JOINT, "no joint is annotated"
    bad = annotated & ~np.isfinite(keypoints).all(axis=1)
    if bad.any():
        return NON_FINITE_KEYPOINT, f"joint {joint_set.names[int(np.argmax(bad))]!r} is not finite"
    if not np.isfinite(np.asarray(center, dtype=np.float64)).all():
        return NON_FINITE_CENTER, "person centre is not finite"
    if not (np.isfinite(scale) and scale > 0):
        return BAD_SCALE, f"person scale must be positive, received {scale}"
    return None


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


def feature_spec() -> dict:
    """The one `tf.io.parse_single_example` spec of the schema (the table above).

    Parsing with it never fails: a missing feature takes a default that the checks of
    `pipeline.parse_record` report (empty bytes, size -1, scale 0, head box all -1), and the
    keypoints are ragged, so a record with another joint count parses and is reported
    with its counts instead of failing inside TensorFlow.
    """
    import tensorflow as tf

    fixed = tf.io.FixedLenFeature
    return {
        "image/encoded": fixed([], tf.string, default_value=""),
        "image/format": fixed([], tf.string, default_value=""),
        "image/height": fixed([], tf.int64, default_value=-1),
        "image/width": fixed([], tf.int64, default_value=-1),
        "image/id": fixed([], tf.string, default_value=""),
        "dataset": fixed([], tf.string, default_value=""),
        "person/id": fixed([], tf.int64, default_value=-1),
        "person/center": fixed([2], tf.float32, default_value=[0.0, 0.0]),
        "person/scale": fixed([], tf.float32, default_value=0.0),
        "person/head_box": fixed([4], tf.float32, default_value=list(NO_HEAD_BOX)),
        "person/normalize": fixed([], tf.float32, default_value=0.0),
        "keypoints/xy": tf.io.RaggedFeature(tf.float32),
        "keypoints/visibility": tf.io.RaggedFeature(tf.int64),
    }


def parse_person(serialized, num_joints: int) -> dict:
    """Parse one serialised example into a dict of tensors (usable inside tf.data).

    `keypoints/xy` comes back reshaped to (J, 2). A record with another joint count fails
    in the reshape ("Input to reshape is a tensor with ... values"); the pipeline's
    `parse_record` reports such records by name instead, and `read_people` finds them.
    """
    import tensorflow as tf

    example = tf.io.parse_single_example(serialized, feature_spec())
    example["keypoints/xy"] = tf.reshape(example["keypoints/xy"], [num_joints, 2])
    example["keypoints/visibility"] = tf.reshape(example["keypoints/visibility"], [num_joints])
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


def tf_error_line(error) -> str:
    """The first line of a TensorFlow error's message, without its `{{function_node ...}}`
    prefix and ` [Op:...]` suffix."""
    message = (getattr(error, "message", None) or str(error)).strip()
    if message.startswith("{{function_node"):
        message = message.split("}}", 1)[-1].strip()
    return message.split("\n", 1)[0].split(" [Op:", 1)[0].strip()


class BadImageError(ValueError):
    """Image bytes that are not a valid record image (see `check_image_bytes`).

    `str(error)` is `"<name>: <reason>."`; `error.reason` is the reason alone.
    """

    def __init__(self, name, reason: str):
        self.name, self.reason = str(name), reason
        super().__init__(f"{name}: {reason}.")


def _has_end_marker(data: bytes, image_format: str) -> bool:
    tail = data[-END_MARKER_WINDOW:]
    return (b"\xff\xd9" in tail) if image_format == "jpeg" else (b"IEND" in tail)


# PNG colour type -> channels (PNG specification, section 11.2.2 IHDR).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# JPEG start-of-frame markers (ITU T.81, table B.1): C0-CF except DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_header(data: bytes):
    """`(format, height, width, channels)` from a JPEG or PNG header, without decoding.

    Returns None when the bytes are neither, or the header (PNG `IHDR`, JPEG `SOFn`) is
    missing or garbled. Channels are as stored: 1 gray, 2 gray+alpha, 3 RGB/YCbCr/palette,
    4 RGBA or CMYK.
    """
    if data.startswith(PNG_MAGIC):
        if len(data) < 26 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        channels = _PNG_CHANNELS.get(data[25])
        return None if channels is None else ("png", height, width, channels)
    if not data.startswith(JPEG_MAGIC):
        return None
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            position += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            if position + 10 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return "jpeg", height, width, data[position + 9]
        position += 2 + length
    return None


def check_image_bytes(data: bytes, name: str = "image") -> tuple[int, int, int]:
    """The one definition of valid image bytes in a record; `(height, width, channels)`.

    Valid: JPEG or PNG (the schema's formats) whose end marker is present (JPEG EOI, PNG
    `IEND`, within the last `END_MARKER_WINDOW` bytes: the pipeline checks the same in
    its graph, `pipeline.parse_record`), whose header declares at most `MAX_IMAGE_PIXELS`
    (checked before decoding), and that `tf.io.decode_image(..., channels=3)` decodes to
    the header's size, as the pipeline decodes it: grayscale becomes RGB, alpha is
    dropped, CMYK JPEGs are converted by libjpeg, 16-bit PNGs are scaled to 8 bits.
    `channels` is the number stored (1, 2, 3 or 4).

    Raises:
        BadImageError: `"<name>: <why>"` (zero bytes, unsupported format, truncated, no
            header, too large, undecodable).
    """
    import tensorflow as tf

    data = bytes(data)
    if not data:
        raise BadImageError(name, "zero bytes")
    if data.startswith(JPEG_MAGIC):
        image_format = "jpeg"
    elif data.startswith(PNG_MAGIC):
        image_format = "png"
    else:
        raise BadImageError(name, "unsupported image format (not JPEG or PNG)")
    if not _has_end_marker(data, image_format):
        marker = "EOI" if image_format == "jpeg" else "IEND"
        raise BadImageError(name, f"truncated {image_format.upper()} (no {marker} marker)")
    header = image_header(data)
    if header is None:
        raise BadImageError(name, f"no readable {image_format.upper()} header")
    _, height, width, channels = header
    if height <= 0 or width <= 0:
        raise BadImageError(name, f"the header declares a {width}x{height} image")
    if height * width > MAX_IMAGE_PIXELS:
        raise BadImageError(
            name,
            f"the header declares {width}x{height} px ({height * width / 1e6:.0f} MP), "
            f"above the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit",
        )
    try:
        decoded = tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.OpError as error:
        raise BadImageError(
            name, f"undecodable {image_format.upper()} ({tf_error_line(error)})"
        ) from None
    if tuple(decoded.shape[:2]) != (height, width):
        raise BadImageError(
            name,
            f"decodes to {decoded.shape[1]}x{decoded.shape[0]} px but its header "
            f"declares {width}x{height}",
        )
    return height, width, channels


def sha256_of_file(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (the manifests' shard checksums)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(prefix) -> Path:
    return Path(f"{prefix}.manifest.json")


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of a manifest's content without its `content_sha256` key (canonical JSON)."""
    content = {key: value for key, value in manifest.items() if key != "content_sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ManifestError(ValueError):
    """A manifest that is not valid JSON, lacks a field, has a wrong type or was edited."""


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def validate_manifest(manifest, path) -> dict:
    """Check a parsed manifest against the schema of the module docstring; return it.

    Raises:
        ManifestError: `"<path>: <what is wrong>; re-run the converter."`
    """

    def fail(problem):
        raise ManifestError(f"{path}: {problem}; re-run the converter that wrote it.")

    if not isinstance(manifest, dict):
        fail(f"expected a JSON object, found {type(manifest).__name__}")
    for key in ("schema_version", "dataset", "count", "joint_set", "shards"):
        if key not in manifest:
            fail(f"missing key {key!r}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        fail(f"schema_version {manifest['schema_version']!r}, expected {SCHEMA_VERSION}")
    if not isinstance(manifest["dataset"], str):
        fail("'dataset' must be a string")
    if not _is_count(manifest["count"]):
        fail(f"'count' must be a non-negative integer, found {manifest['count']!r}")
    if not isinstance(manifest["joint_set"], dict):
        fail("'joint_set' must be an object")
    try:
        JointSet.from_dict(manifest["joint_set"])
    except (TypeError, ValueError) as error:
        fail(f"invalid 'joint_set' ({error})")
    shards = manifest["shards"]
    if not isinstance(shards, list):
        fail("'shards' must be a list")
    for index, shard in enumerate(shards):
        if not isinstance(shard, dict) or not isinstance(shard.get("file"), str):
            fail(f"shards[{index}] must be an object with a 'file' name")
        if not shard["file"] or os.path.basename(shard["file"]) != shard["file"]:
            fail(f"shards[{index}] 'file' must be a file name beside the manifest")
        if not _is_count(shard.get("count")):
            fail(f"shards[{index}] 'count' must be a non-negative integer")
        checksum = shard.get("sha256")
        if checksum is not None and not re.fullmatch(r"[0-9a-f]{64}", str(checksum)):
            fail(f"shards[{index}] 'sha256' must be 64 hex digits")
    total = sum(shard["count"] for shard in shards)
    if total != manifest["count"]:
        fail(f"'count' is {manifest['count']} but its shards hold {total} records")
    if "content_sha256" in manifest and manifest["content_sha256"] != manifest_digest(manifest):
        fail(
            "its content differs from its content_sha256 (the file was edited after it was written)"
        )
    return manifest


def load_manifest(path) -> dict:
    """Read and validate one manifest file (`validate_manifest`)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: cannot read the manifest ({error}).") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path}: not valid JSON ({error}); re-run the converter.") from None
    return validate_manifest(manifest, path)


class OutputPathError(OSError):
    """A split cannot be written where asked: the message names the path and why."""


def _own_files(prefix: Path):
    """This prefix's own files in its folder: shards, their temporary names, the manifest."""
    pattern = re.compile(
        re.escape(prefix.name) + r"(-\d{5}\.tfrecord(\.tmp)?|\.manifest\.json(\.tmp)?)"
    )
    if not prefix.parent.is_dir():
        return []
    return sorted(p for p in prefix.parent.iterdir() if pattern.fullmatch(p.name))


def check_output_prefix(prefix) -> Path:
    """Check, without writing anything, that a split can be written at `prefix`.

    The nearest existing folder above it must be a writable folder (not a file in the
    way), and the prefix, its manifest and shard names must not be folders.

    Raises:
        OutputPathError: `"cannot write TFRecords at <prefix>: <path> <why>."`
    """
    prefix = Path(prefix)

    def fail(why):
        raise OutputPathError(f"cannot write TFRecords at {prefix}: {why}.")

    if not prefix.name or prefix.is_dir():
        fail(f"{prefix} is a folder; give a prefix inside it such as {prefix / 'train'}")
    existing = prefix.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        fail(f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        fail(f"the folder {existing} is not writable")
    for path in _own_files(prefix):
        if path.is_dir():
            fail(f"{path} is a folder in the way")
    return prefix


def count_records(path) -> int:
    """Number of complete records in a TFRecord file, from its framing alone (no decoding).

    TFRecord framing (tensorflow.org/tutorials/load_data/tfrecord): per record a uint64
    little-endian length, a uint32 CRC of the length, the data, a uint32 CRC of the data.
    The walk seeks from header to header; CRCs are not checked (the SHA-256 is).
    """
    size = os.path.getsize(path)
    count = offset = 0
    with open(path, "rb") as handle:
        while offset + 12 <= size:
            handle.seek(offset)
            (length,) = struct.unpack("<Q", handle.read(8))
            offset += 16 + length
            if offset > size:
                break
            count += 1
    return count


class ShardedWriter:
    """Write `PersonRecord`s into shards `<prefix>-00000.tfrecord`, ... and a manifest.

    Use as a context manager. Shards are written under temporary names beside what the
    prefix held before; only when the `with` block exits without an exception do they
    replace the old shards, and the manifest (with its `content_sha256`) is written last.
    On an exception the temporary files are removed and an earlier split at the prefix is
    left byte-identical. Only this prefix's own files are touched (see the module
    docstring). A path that cannot be written raises `OutputPathError` naming it.

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
        self.shards = []  # dicts: file, count, sha256 (written, still under temporary names)
        self.skipped = {}  # reason -> list of names
        self._writer = None
        self._temporary = None
        self._count_in_shard = 0
        self.count = 0

    def _shard_path(self, index: int) -> Path:
        return Path(f"{self.prefix}-{index:05d}.tfrecord")

    @staticmethod
    def _temporary_of(path: Path) -> Path:
        return path.with_name(path.name + ".tmp")

    def __enter__(self):
        check_output_prefix(self.prefix)
        try:
            self.prefix.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputPathError(
                f"cannot write TFRecords at {self.prefix}: cannot create the folder "
                f"{self.prefix.parent} ({error.strerror or error})."
            ) from None
        for stale in _own_files(self.prefix):
            if stale.name.endswith(".tmp"):  # left by a run that was killed
                stale.unlink()
        return self

    def _fail(self, path, error):
        detail = getattr(error, "message", None) or getattr(error, "strerror", None) or error
        detail = str(detail).strip().splitlines()[0].replace(str(path), "").strip(" ;:")
        raise OutputPathError(f"cannot write {path}: {detail or type(error).__name__}.")

    def _open_shard(self):
        import tensorflow as tf

        self._temporary = self._temporary_of(self._shard_path(len(self.shards)))
        try:
            self._writer = tf.io.TFRecordWriter(str(self._temporary))
        except (tf.errors.OpError, OSError) as error:
            self._writer = None
            self._fail(self._temporary, error)
        self._count_in_shard = 0

    def _close_shard(self):
        import tensorflow as tf

        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
            checksum = sha256_of_file(self._temporary)
        except (tf.errors.OpError, OSError) as error:
            self._fail(self._temporary, error)
        self.shards.append(
            {
                "file": self._shard_path(len(self.shards)).name,
                "count": self._count_in_shard,
                "sha256": checksum,
            }
        )
        self._temporary = None

    def write(self, record: PersonRecord):
        import tensorflow as tf

        if record.num_joints != self.joint_set.num_joints:
            raise ValueError(
                f"{record.describe()}: {record.num_joints} joints, but joint set "
                f"{self.joint_set.name!r} has {self.joint_set.num_joints}."
            )
        if self._writer is None:
            self._open_shard()
        try:
            self._writer.write(serialize_person(record))
        except (tf.errors.OpError, OSError) as error:
            self._fail(self._temporary, error)
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

    def _remove_temporaries(self):
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the run failed already; clean up regardless
                pass
            self._writer = None
        names = [self._temporary_of(self._shard_path(i)) for i in range(len(self.shards) + 1)]
        target = manifest_path(self.prefix)
        for path in [*names, self._temporary_of(target)]:
            if path.is_file() or path.is_symlink():
                path.unlink()

    def _commit(self):
        """Replace the prefix's old split by the new one; the manifest goes last."""
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
        manifest["content_sha256"] = manifest_digest(manifest)
        target = manifest_path(self.prefix)
        temporary = self._temporary_of(target)
        try:
            temporary.write_text(json.dumps(manifest, indent=2) + "\n")
        except OSError as error:
            self._fail(temporary, error)
        # From here on only renames and removals: the old manifest goes first, so an
        # interruption leaves a split without a manifest (incomplete), never a manifest
        # that describes other shards.
        new_files = {shard["file"] for shard in self.shards}
        target.unlink(missing_ok=True)
        for shard in self.shards:
            final = self.prefix.parent / shard["file"]
            os.replace(self._temporary_of(final), final)
        for path in _own_files(self.prefix):
            if path.name.endswith(".tfrecord") and path.name not in new_files:
                path.unlink()
        os.replace(temporary, target)

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is not None:
            self._remove_temporaries()
            return False
        try:
            self._close_shard()
            self._commit()
        except BaseException:
            self._remove_temporaries()
            raise
        return False


def shard_paths(pattern) -> list[str]:
    """Shard files matching a glob (or a prefix with a manifest), sorted."""
    pattern = str(pattern)
    manifest = manifest_path(pattern)
    if manifest.exists():
        data = load_manifest(manifest)
        return [str(manifest.parent / shard["file"]) for shard in data["shards"]]
    paths = sorted(path for path in glob.glob(pattern) if not path.endswith(".tmp"))
    if not paths:
        raise FileNotFoundError(f"No TFRecord shards match {pattern!r}.")
    return paths


def read_manifest(pattern) -> dict:
    """The validated manifest of a split, given its prefix, a shard path or a shard glob.

    Raises:
        FileNotFoundError: no manifest.
        ManifestError: the manifest is garbled or was edited (the message names it).
    """
    pattern = str(pattern)
    candidates = [manifest_path(pattern)]
    for path in sorted(glob.glob(pattern)):
        stem = path.rsplit("-", 1)[0] if path.endswith(".tfrecord") else path
        candidates.append(manifest_path(stem))
    for candidate in candidates:
        if candidate.exists():
            return load_manifest(candidate)
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


# --------------------------------------------------------------------------------------
# Splits: shards, manifests, checks before any work
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """The shards of a TFRecord split and what their manifests declare about them."""

    pattern: str
    paths: list  # shard paths, in record order
    counts: list  # records per shard (manifest)
    checksums: list  # SHA-256 per shard (manifest)
    joint_set: JointSet
    # (manifest path, its `PERSON_CENTRED_KEY` entry) of each person-centred prefix.
    person_centred: tuple = ()

    @property
    def count(self) -> int:
        return int(sum(self.counts))


def resolve_split(pattern) -> Split:
    """Find the shards of `pattern` (a split prefix or a shard glob) and their manifests.

    Every shard must be listed in a `<prefix>.manifest.json` beside it (`ShardedWriter`
    writes it last, so a split without one is incomplete), and all manifests must declare
    the same joint set.
    """
    pattern = str(pattern)
    manifest = manifest_path(pattern)
    if manifest.exists():
        prefixes = [pattern]
        selected = None
    else:
        matched = sorted(path for path in glob.glob(pattern) if path.endswith(".tfrecord"))
        if not matched:
            raise FileNotFoundError(
                f"No TFRecord split at {pattern!r}: expected a prefix with "
                f"{manifest.name} or a glob matching <prefix>-NNNNN.tfrecord shards."
            )
        prefixes = sorted({path.rsplit("-", 1)[0] for path in matched})
        selected = {os.path.abspath(path) for path in matched}
    paths, counts, checksums, joint_sets, person_centred = [], [], [], [], []
    for prefix in prefixes:
        data = read_manifest(prefix)
        if data.get(PERSON_CENTRED_KEY):
            person_centred.append((str(manifest_path(prefix)), data[PERSON_CENTRED_KEY]))
        folder = manifest_path(prefix).parent
        listed = set()
        for shard in data["shards"]:
            path = str(folder / shard["file"])
            listed.add(os.path.abspath(path))
            if selected is not None and os.path.abspath(path) not in selected:
                continue
            paths.append(path)
            counts.append(int(shard["count"]))
            checksums.append(shard.get("sha256"))
        if selected is not None:
            unlisted = sorted(
                path for path in selected if path.startswith(prefix) and path not in listed
            )
            if unlisted:
                raise ValueError(
                    f"{unlisted[0]} is not listed in {manifest_path(prefix)}: a stale "
                    "or foreign shard; re-run the converter."
                )
        joint_sets.append(JointSet.from_dict(data["joint_set"]))
    for other in joint_sets[1:]:
        if other != joint_sets[0]:
            raise ValueError(
                f"{pattern!r} mixes splits with different joint sets ({joint_sets[0].name!r}, "
                f"{other.name!r})."
            )
    missing = [path for path in paths if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError(f"Shard {missing[0]} is listed in its manifest but missing.")
    return Split(pattern, paths, counts, checksums, joint_sets[0], tuple(person_centred))


def count_people(pattern) -> int:
    """Number of people (examples) in a split, from its manifest(s)."""
    return resolve_split(pattern).count


_VERIFIED = {}  # (path, size, mtime_ns) -> True: shards already hashed in this process


def _readable_records(path) -> tuple[int, str | None]:
    """How many records of a shard can be read, and TF's message where reading stops."""
    count = 0
    try:
        for index, _ in iterate_shard(path):
            count = index + 1
    except CorruptShardError as error:
        return error.index, error.detail.splitlines()[0]
    return count, None


def verify_shards(split: Split) -> None:
    """Check each shard's SHA-256 and record count against its manifest.

    The count comes from the TFRecord framing (`count_records`, no decoding), so a
    manifest whose counts were edited is caught even when it predates `content_sha256`.

    Raises:
        ValueError: `<shard>: record <i> is corrupt or truncated ...` when a shard cannot be
            read to its end, or a description of the mismatch otherwise.
    """
    for path, expected_count, checksum in zip(
        split.paths, split.counts, split.checksums, strict=True
    ):
        status = os.stat(path)
        key = (os.path.abspath(path), status.st_size, status.st_mtime_ns, expected_count)
        if checksum is None or _VERIFIED.get(key):
            continue
        if sha256_of_file(path) == checksum:
            found = count_records(path)
            if found != expected_count:
                raise ValueError(
                    f"Bad input: {path} holds {found} records but its manifest says "
                    f"{expected_count}: the manifest was edited. Re-run the converter."
                )
            _VERIFIED[key] = True
            continue
        readable, message = _readable_records(path)
        if message is not None:
            raise ValueError(
                f"Bad input: {path}: record {readable} is corrupt or truncated ({message}); "
                f"the shard's SHA-256 differs from its manifest. Re-run the converter, or set "
                "data.skip_bad_records=true to train on the readable "
            )
        raise ValueError(
            f"Bad input: {path}: the shard reads ({readable} records, manifest says "
            f"{expected_count}) but its SHA-256 differs from the manifest: it was modified "
            "after it was written. Re-run the converter (or set data.verify_checksums=false)."
        )
