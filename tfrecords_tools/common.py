"""What every converter shares: the `Annotation` type, validation, image lookup, the writer.

Each converter is a pure reader `read_<format>(path, ...) -> Reading` (a list of
`Annotation`s, no image access) followed by `convert(reading, ...)`, which looks every
image up under an image root, reads its bytes (JPEG and PNG kept as they are, anything
else that OpenCV decodes re-encoded to PNG), checks that they decode, takes the image size
and writes one `pose_keras.records.PersonRecord` per person through
`pose_keras.records.ShardedWriter` (atomic shards, manifest written last).

Conventions of an `Annotation` (already those of the records, see `pose_keras.records`):

- `keypoints`: (J, 2) image px, 0-based pixel centres (`pose_keras.transforms`). Readers of
  MATLAB-made sources (MPII, FLIC, LSP) subtract 1; each reader states its source's frame.
- `visibility`: 0 not annotated (keypoint stored as 0), 1 annotated but occluded,
  2 annotated and visible.
- `center`, `scale`: the centre of the person crop and the MPII person scale (the person is
  about 200 * scale px tall). The training pipeline crops a square of
  200 * scale * 1.25 px around `center` (`pose_keras.transforms.box_px_from_scale`), so
  `scale` never includes that 1.25 factor.

Bad input policy (shared by all CLIs):

- A missing image is an error naming the image (before anything is written), unless
  `--skip-missing-images`: then those people are skipped and counted.
- An undecodable image, a person with no annotated joint (except in a prediction-only
  reading, `Reading.require_annotations=False`), a record whose joint count or
  values are wrong, or an image whose size differs from the one the source declares is an
  error naming the file and record, unless `--skip-invalid`: then it is skipped and counted
  under its reason.
- Annotated joints outside the image are kept as annotated (MPII, for instance, annotates
  joints a few pixels beyond the border) and counted in the summary and manifest.
- The output prefix is checked before any image is read (`check_output`): a file in the
  way or an unwritable folder is a one-line error naming the path; so is a write that
  fails later (a full disk).
- A failed conversion leaves no new shard and no new manifest behind, and an earlier split
  at the same prefix byte-identical (`ShardedWriter` writes beside it under temporary
  names and replaces it only on success; a folder the conversion created is removed again
  when left empty). Other splits beside it (`coco-val` next to `coco`) are never touched.
- Images must pass `pose_keras.records.check_image_bytes`, the pipeline's own rule.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from pose_keras import records
from pose_keras.cli import ProgressBar
from pose_keras.joints import JointSet
from pose_keras.transforms import (
    DEFAULT_BOX_MARGIN,
    box_from_keypoints,
    center_and_scale_from_box,
)

JPEG_SIGNATURE = records.JPEG_MAGIC
PNG_SIGNATURE = records.PNG_MAGIC

# Skip reasons, as they appear in summaries and manifests.
MISSING_IMAGE = "missing image"
UNDECODABLE_IMAGE = "undecodable image"
IMAGE_SIZE_MISMATCH = "image size differs from the annotation"
NO_ANNOTATED_JOINTS = "no annotated joints"
INVALID_RECORD = "invalid record"


class ConversionError(ValueError):
    """Bad converter input. The message names the file and record; CLIs print it as one line."""


@dataclasses.dataclass
class Annotation:
    """One person as read from an annotation file, in the records' conventions.

    Args:
        image: str. Image file name relative to the image root (also the record's image id).
        keypoints: array (J, 2). Image px, 0-based; 0 where not annotated.
        visibility: int array (J,). 0 not annotated, 1 occluded, 2 visible.
        center: array (2,). Crop centre, image px.
        scale: float. MPII person scale (person about 200 * scale px tall).
        person_id: int. Index of the person in the source split (kept when others are
            skipped, so records line up with the source, e.g. `gt_valid.mat` columns).
        record: str. Where the person sits in the source file, for messages
            (`"row 17"`, `"annolist 6, annorect 0"`).
        head_box: array (4,) or None. Head box (x0, y0, x1, y1), image px.
        normalize: float. The source's own PCK normaliser in px, 0 when it has none.
        image_size: (height, width) or None. Image size the source declares, checked
            against the decoded image.
    """

    image: str
    keypoints: np.ndarray
    visibility: np.ndarray
    center: np.ndarray
    scale: float
    person_id: int
    record: str
    head_box: np.ndarray | None = None
    normalize: float = 0.0
    image_size: tuple[int, int] | None = None

    def __post_init__(self):
        self.keypoints = np.asarray(self.keypoints, dtype=np.float64)
        self.visibility = np.asarray(self.visibility, dtype=np.int64)
        self.center = np.asarray(self.center, dtype=np.float64).reshape(2)
        self.scale = float(self.scale)
        if self.head_box is not None:
            self.head_box = np.asarray(self.head_box, dtype=np.float64).reshape(4)


@dataclasses.dataclass
class Reading:
    """What a reader returns: the people it read and what it skipped on the way.

    Args:
        source: str. The annotation file.
        format: str. Format name stored in the manifest, e.g. `"mpii-h5"`.
        people: list of `Annotation`.
        skipped: dict reason -> list of names. People the reader left out (e.g. COCO crowd
            annotations), reported with the writer's own skips.
        details: dict. Extra JSON-ready manifest fields (conventions applied, split rule).
        joint_set: JointSet or None. The joint set the source itself declares (a COCO
            keypoint category), None when the caller chooses it.
        require_annotations: bool. False for a prediction-only source (the MPII test
            split): its people need no annotated joint (`records.person_problem`), and the
            manifest records `"require_annotations": false`. Default True.
    """

    source: str
    format: str
    people: list = dataclasses.field(default_factory=list)
    skipped: dict = dataclasses.field(default_factory=dict)
    details: dict = dataclasses.field(default_factory=dict)
    joint_set: JointSet | None = None
    require_annotations: bool = True

    def reject(self, reason: str, name: str, message: str, skip: bool):
        """Raise `ConversionError(message)`, or count `name` under `reason` when `skip`."""
        if not skip:
            raise ConversionError(message)
        self.skipped.setdefault(reason, []).append(str(name))


def require_file(path) -> Path:
    """The path as a `Path`, or a `ConversionError` when it is not a readable file."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: annotation file not found.")
    return path


def load_json(path):
    """Parse a JSON annotation file; a `ConversionError` names the file when it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"{path}: not valid JSON ({error}).") from None


def center_and_scale_from_joints(keypoints, visibility):
    """Centre and MPII scale of the tight box around the annotated joints.

    Used where a source has no person box (LSP, custom files without a box). The scale is
    the box's longer side / 200, as `pose_keras.transforms.center_and_scale_from_box`
    gives for any box. On the 2958 MPII validation people, MPII's own `200 * scale` is a
    median 1.14 times this joint-box side, so the resulting crops are comparable.

    Returns:
        (center (2,), scale) or None when fewer than two distinct joints are annotated.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    annotated = keypoints[np.asarray(visibility) > 0]
    if len(annotated) < 2:
        return None
    low, high = annotated.min(axis=0), annotated.max(axis=0)
    side = float(np.max(high - low))
    if not side > 0:
        return None
    middle = (low + high) / 2.0
    return center_and_scale_from_box(
        (middle[0] - side / 2, middle[1] - side / 2, middle[0] + side / 2, middle[1] + side / 2)
    )


def annotation_from_points(
    joint_set: JointSet,
    points: dict,
    image: str,
    person_id: int,
    record: str,
    box=None,
    image_size=None,
    margin=DEFAULT_BOX_MARGIN,
):
    """An `Annotation` from `{joint name: (x, y, visibility)}`, or None without a box.

    Joints of the joint set missing from `points` are unannotated. The person box is `box`
    when given, else `box_from_keypoints` (None is returned when neither exists, so the
    caller can apply its own rule).

    Raises:
        ValueError: a label that is not a joint of the joint set.
    """
    unknown = sorted(set(points) - set(joint_set.names))
    if unknown:
        raise ValueError(
            f"label(s) {unknown} are not joints of {joint_set.name!r} {list(joint_set.names)}"
        )
    keypoints = np.zeros((joint_set.num_joints, 2))
    visibility = np.zeros(joint_set.num_joints, dtype=np.int64)
    for joint, (x, y, flag) in points.items():
        position = joint_set.index(joint)
        if flag > 0:
            keypoints[position] = (x, y)
            visibility[position] = flag
    if box is None:
        box = box_from_keypoints(keypoints, visibility, margin)
    if box is None:
        return None
    center, scale = center_and_scale_from_box(box)
    return Annotation(
        image=image,
        keypoints=keypoints,
        visibility=visibility,
        center=center,
        scale=scale,
        # The PCK normaliser of box-normalised joint sets (joints.BOX): the box diagonal.
        normalize=float(np.hypot(box[2] - box[0], box[3] - box[1])),
        person_id=person_id,
        record=record,
        image_size=image_size,
    )


def annotation_problem(
    annotation: Annotation, joint_set: JointSet, require_annotations: bool = True
):
    """Why an annotation cannot become a record: `(reason, detail)`, or None when it is fine.

    The rule is `pose_keras.records.person_problem` (the pipeline's), with its
    `require_annotations` option; `reason` is the skip reason it is counted under.
    """
    problem = records.person_problem(
        annotation.keypoints,
        annotation.visibility,
        annotation.center,
        annotation.scale,
        joint_set,
        require_annotations,
    )
    if problem is None:
        return None
    check, detail = problem
    return (NO_ANNOTATED_JOINTS if check == records.NO_ANNOTATED_JOINT else INVALID_RECORD), detail


@dataclasses.dataclass(frozen=True)
class EncodedImage:
    """An image's bytes as stored in a record, with its format and size."""

    encoded: bytes
    format: str
    height: int
    width: int


class UndecodableImageError(records.BadImageError):
    """Image bytes a converter cannot store (`str(error)` names the image and the reason)."""


def encode_image(data: bytes, name: str = "image") -> EncodedImage:
    """Check image bytes by the records' rule; keep JPEG / PNG, re-encode others to PNG.

    JPEG and PNG bytes are stored as they are when `pose_keras.records.check_image_bytes`
    accepts them (what the training pipeline decodes: grayscale, CMYK, alpha and 16-bit
    included; zero-byte, truncated, undecodable and > `records.MAX_IMAGE_PIXELS` images
    refused). Other formats OpenCV decodes (BMP, TIFF, WebP, ...) are re-encoded as PNG
    and the PNG is checked the same way. Decoding ignores EXIF orientation, as
    `tf.io.decode_image` does, so the size is that of the stored raster the annotations
    refer to.

    Raises:
        UndecodableImageError: the bytes are not a valid record image.
    """
    import cv2

    data = bytes(data)
    if not data or data.startswith(JPEG_SIGNATURE) or data.startswith(PNG_SIGNATURE):
        encoded, image_format = data, "jpeg" if data.startswith(JPEG_SIGNATURE) else "png"
    else:
        flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
        pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
        if pixels is None:
            raise UndecodableImageError(name, "not JPEG or PNG, and OpenCV cannot decode it")
        if pixels.shape[0] * pixels.shape[1] > records.MAX_IMAGE_PIXELS:
            raise UndecodableImageError(
                name, f"above the {records.MAX_IMAGE_PIXELS / 1e6:.0f} MP image size limit"
            )
        if pixels.dtype != np.uint8:
            pixels = cv2.convertScaleAbs(pixels, alpha=255.0 / max(float(pixels.max()), 1.0))
        ok, buffer = cv2.imencode(".png", pixels)
        if not ok:
            raise UndecodableImageError(name, "it decodes but cannot be re-encoded as PNG")
        encoded, image_format = buffer.tobytes(), "png"
    try:
        height, width, _ = records.check_image_bytes(encoded, name)
    except records.BadImageError as error:
        raise UndecodableImageError(name, error.reason) from None
    return EncodedImage(encoded, image_format, height, width)


def check_output(output) -> Path:
    """`output` as a Path, or a `ConversionError` naming why a split cannot be written there.

    Checks only (nothing is created): see `pose_keras.records.check_output_prefix`. CLIs
    call it before reading anything, `convert` before decoding any image.
    """
    try:
        return records.check_output_prefix(output)
    except records.OutputPathError as error:
        raise ConversionError(str(error)) from None


def _person_name(annotation: Annotation) -> str:
    return f"{annotation.image} (person {annotation.person_id})"


def _describe(reading: Reading, annotation: Annotation) -> str:
    return f"{reading.source}: {annotation.record} (image {annotation.image!r})"


def _skip_counts(skipped: dict) -> str:
    if not skipped:
        return "the source selects nobody"
    return ", ".join(f"{len(names)} skipped: {reason}" for reason, names in skipped.items())


def _joints_outside(annotation: Annotation, height: int, width: int) -> int:
    annotated = annotation.visibility > 0
    x, y = annotation.keypoints[:, 0], annotation.keypoints[:, 1]
    # Pixel areas span [-0.5, size - 0.5] in the 0-based pixel-centre frame.
    outside = (x < -0.5) | (x > width - 0.5) | (y < -0.5) | (y > height - 0.5)
    return int((annotated & outside).sum())


def _people_to_write(
    reading, joint_set, image_root, skip_missing_images, skip_invalid, reject
) -> list:
    """Pass 1, no image decoding: annotation checks, then image existence, so that the
    common failures happen before anything is written."""
    people = []
    for annotation in reading.people:
        problem = annotation_problem(annotation, joint_set, reading.require_annotations)
        if problem is None:
            people.append(annotation)
            continue
        reason, detail = problem
        message = f"{_describe(reading, annotation)}: {detail}."
        reject(reason, _person_name(annotation), message, skip_invalid)
    exists = [(image_root / annotation.image).is_file() for annotation in people]
    present = [a for a, found in zip(people, exists, strict=True) if found]
    missing = [a for a, found in zip(people, exists, strict=True) if not found]
    if missing and not skip_missing_images:
        first = missing[0]
        more = (
            f" ({len(missing) - 1} more people's images are missing too)"
            if len(missing) > 1
            else ""
        )
        raise ConversionError(
            f"{_describe(reading, first)}: image {first.image!r} not found under {image_root}"
            f"{more}; pass --skip-missing-images to convert the people whose images exist."
        )
    for annotation in missing:
        reject(MISSING_IMAGE, _person_name(annotation), "", True)
    return present


def convert(
    reading: Reading,
    joint_set: JointSet,
    dataset: str,
    output,
    image_root,
    *,
    skip_missing_images: bool = False,
    skip_invalid: bool = False,
    examples_per_shard: int = 1000,
    split: str | None = None,
    progress: bool = True,
    stream=None,
) -> dict:
    """Write the people of a `Reading` as TFRecord shards plus a manifest.

    Args:
        reading: Reading. From one of the `read_*` functions.
        joint_set: JointSet. Stored in the manifest; every annotation must match it.
        dataset: str. Dataset name stored in each record and the manifest.
        output: str or Path. Output prefix: shards `<output>-00000.tfrecord`, ... and
            `<output>.manifest.json`.
        image_root: str or Path. Folder the annotations' image names are relative to.
        skip_missing_images: bool. Skip (and count) people whose image file is missing
            instead of failing. Defaults to False.
        skip_invalid: bool. Skip (and count) people with an undecodable image, no annotated
            joint, invalid values or an image size differing from the source's instead of
            failing. Defaults to False.
        examples_per_shard: int. Defaults to 1000.
        split: str or None. Split name stored in the manifest.
        progress: bool. Print a progress line. Defaults to True.
        stream: text stream for progress and the final summary. Defaults to `sys.stderr`.

    Returns:
        The manifest (dict), as written.

    Raises:
        ConversionError: bad input (message names the file, record and image).
    """
    stream = stream if stream is not None else sys.stderr
    image_root = Path(image_root)
    if not image_root.is_dir():
        raise ConversionError(f"image root {image_root} is not a folder.")
    if examples_per_shard <= 0:
        raise ConversionError(
            f"examples per shard must be positive, received {examples_per_shard}."
        )
    output = check_output(output)
    skipped = {reason: list(names) for reason, names in reading.skipped.items()}

    def reject(reason, name, message, skip):
        if not skip:
            raise ConversionError(message)
        skipped.setdefault(reason, []).append(name)

    people = _people_to_write(
        reading, joint_set, image_root, skip_missing_images, skip_invalid, reject
    )

    output = Path(output)
    created_folder = not output.parent.exists()
    extra = {
        "source": str(reading.source),
        "format": reading.format,
        "split": split,
        "image_root": str(image_root),
        **reading.details,
    }
    if not reading.require_annotations:
        extra["require_annotations"] = False  # prediction-only: no joint is annotated
    joints_outside = 0
    people_outside = 0
    cache = collections.OrderedDict()
    # Load TensorFlow (the shard writer) before the progress line, so that its start-up
    # logging does not break the line.
    import tensorflow  # noqa: F401

    bar = ProgressBar(
        len(people), "people", stream, progress, label=f"converting {Path(reading.source).name}"
    )
    try:
        with records.ShardedWriter(output, joint_set, dataset, examples_per_shard, extra) as writer:
            for annotation in people:
                bar.update()
                image = cache.get(annotation.image)
                if image is None:
                    path = image_root / annotation.image
                    try:
                        image = encode_image(path.read_bytes(), str(path))
                    except (OSError, UndecodableImageError) as error:
                        reason = getattr(error, "reason", None) or error.strerror or error
                        reject(
                            UNDECODABLE_IMAGE,
                            _person_name(annotation),
                            f"{_describe(reading, annotation)}: cannot read image {path}: "
                            f"{reason}.",
                            skip_invalid,
                        )
                        continue
                    cache[annotation.image] = image
                    if len(cache) > 8:
                        cache.popitem(last=False)
                if annotation.image_size is not None and tuple(annotation.image_size) != (
                    image.height,
                    image.width,
                ):
                    reject(
                        IMAGE_SIZE_MISMATCH,
                        _person_name(annotation),
                        f"{_describe(reading, annotation)}: the source declares a "
                        f"{annotation.image_size[1]}x{annotation.image_size[0]} image but the "
                        f"file is {image.width}x{image.height} (wrong image root or file?).",
                        skip_invalid,
                    )
                    continue
                outside = _joints_outside(annotation, image.height, image.width)
                joints_outside += outside
                people_outside += outside > 0
                writer.write(
                    records.PersonRecord(
                        image_encoded=image.encoded,
                        image_format=image.format,
                        image_height=image.height,
                        image_width=image.width,
                        image_id=annotation.image,
                        dataset=dataset,
                        person_id=annotation.person_id,
                        center=annotation.center,
                        scale=annotation.scale,
                        keypoints=annotation.keypoints,
                        visibility=annotation.visibility,
                        head_box=(
                            records.NO_HEAD_BOX
                            if annotation.head_box is None
                            else annotation.head_box
                        ),
                        normalize=annotation.normalize,
                    )
                )
            for reason, names in skipped.items():
                for name in names:
                    writer.skip(reason, name)
            if writer.count == 0:
                raise ConversionError(
                    f"{reading.source}: no person left to write ({_skip_counts(skipped)})."
                )
            writer.extra["joints_outside_image"] = {
                "joints": joints_outside,
                "people": people_outside,
                "note": "annotated joints outside the image are kept as annotated",
            }
    except BaseException as error:
        bar.close()
        if created_folder and output.parent.is_dir() and not any(output.parent.iterdir()):
            output.parent.rmdir()
        if isinstance(error, records.OutputPathError):
            raise ConversionError(str(error)) from None
        raise
    bar.close()
    summary = writer.summary()
    if joints_outside:
        summary += (
            f"; kept {joints_outside} annotated joint(s) of {people_outside} people outside "
            "their image"
        )
    stream.write(summary + "\n")
    return records.read_manifest(output)


# --- command lines -------------------------------------------------------------------------


def add_writing_arguments(parser: argparse.ArgumentParser):
    """The flags of every command that writes a split: `--output`, sharding, progress."""
    parser.add_argument(
        "--output",
        required=True,
        help="Output prefix: writes <output>-00000.tfrecord, ... and <output>.manifest.json "
        "(folders are created).",
    )
    parser.add_argument(
        "--examples-per-shard",
        type=int,
        default=1000,
        help="People per TFRecord shard (default: 1000).",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="Do not print the progress line on stderr."
    )


def add_common_arguments(parser: argparse.ArgumentParser, splits=None, default_split=None):
    """The flags every converter CLI shares (`add_writing_arguments`, `--image-root`, skips)."""
    add_writing_arguments(parser)
    parser.add_argument(
        "--image-root",
        required=True,
        help="Folder the annotation's image names are relative to (e.g. mpii/images).",
    )
    parser.add_argument(
        "--skip-missing-images",
        action="store_true",
        help="Skip people whose image file is missing and report how many, instead of failing "
        "on the first one.",
    )
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="Skip people with an undecodable image, no annotated joint, a wrong joint count, "
        "bad values or a wrong image size, and report the counts, instead of failing.",
    )
    if splits:
        parser.add_argument(
            "--split",
            choices=splits,
            default=default_split,
            help=f"Which people to convert (default: {default_split}); see docs/converters.md.",
        )


def convert_from_arguments(reading: Reading, joint_set, dataset, arguments, split=None) -> dict:
    """`convert` with the options of `add_common_arguments`."""
    return convert(
        reading,
        joint_set,
        dataset,
        arguments.output,
        arguments.image_root,
        skip_missing_images=arguments.skip_missing_images,
        skip_invalid=arguments.skip_invalid,
        examples_per_shard=arguments.examples_per_shard,
        split=split if split is not None else getattr(arguments, "split", None),
        progress=not arguments.no_progress,
    )


def run_command_line(main_body, argv=None) -> int:
    """Run a CLI body; a `ConversionError` becomes one line on stderr and exit status 2."""
    try:
        main_body(argv)
    except ConversionError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing was left half-written.\n")
        return 130
    return 0
