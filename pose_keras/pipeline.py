"""The tf.data input pipeline: TFRecord shards -> augmented person crops -> targets.

A chain of small named stages mapped over the dataset (the tf.data guide's style), with
`AUTOTUNE` parallelism and prefetching at the end; the only Python per example is the
OpenCV crop (`opencv_crop`, which releases the GIL while it works):

    read_records   parallel interleaved reads over the shards (file order shuffled in
                   training), each shard on its own and each record tagged with its shard
                   and record index; a shard that ends before its manifest's count (corrupt
                   or truncated) fails naming the shard and the record
    parse_record   the schema of `pose_keras.records`, plus `problem`: why a record is bad
                   input ("" when it is fine)
    check_record   bad input fails with an error naming the shard and record index, or,
                   with `data.skip_bad_records`, was found by `scan_records` and is dropped
    crop_source    decode what the crop needs: of a JPEG only the window the crop samples,
                   at a DCT scale of up to 1/8 while that keeps one pixel per crop pixel;
                   PNG whole (grayscale -> RGB, alpha dropped); 8 bits per channel; the
                   decoded size must be the recorded one
    crop_person    one affine warp per person (OpenCV, `opencv_crop`): box = 200 * scale *
                   box_scale image px around the centre (MPII convention,
                   `transforms.box_px_from_scale`), times the augmentation's scale factor,
                   rotated, optionally mirrored (joints swapped with `JointSet.flip_index`),
                   centre jittered; the matrix is `transforms.crop_matrix`, computed with TF
                   ops; then brightness, contrast, saturation (`color_transform`)
    batch -> make_targets (`pose_keras.targets`) -> prefetch

Augmentation (training) follows the stacked-hourglass recipe (Newell et al. 2016; SPEC §2):
scale x U(1 - s, 1 + s), rotation U(-r, r) degrees, horizontal flip with probability 0.5,
centre shift U(-t, t) x box side, colour jitter. Each example's random draws come from a
stateless generator keyed by (seed, position in the stream), so a seeded pipeline yields
identical batches run after run, whatever the parallelism.

Bad input: manifests are validated (`records.read_manifest`: types, counts, content
checksum) and their joint set is checked against the config before any work; shards are
checked against the manifest's SHA-256 and record count (`data.verify_checksums`), so a
truncated or corrupt shard is reported with its first unreadable record; with the checks
off, reading stops at the corrupt record and fails as `Bad input: <shard>: record <index>
is corrupt or truncated`. Records with undecodable or truncated image bytes (the rule of
`records.check_image_bytes`), a wrong joint count, no annotated joint (unless the caller
opts in with `require_annotations=False`: prediction-only data such as the MPII test split,
never for training or targets), keypoints far outside
the image (`data.keypoint_margin`), an image above `records.MAX_IMAGE_PIXELS` or a decoded
size that differs from the recorded one fail with `Bad input: <shard> record <index>:
<reason>`. Those failures surface as TF errors from the iterator; `describe_data_error`
turns one into its one-line message. With `data.skip_bad_records=true`, `scan_records`
checks every record first (`records.check_image_bytes` on every image) and the bad ones
are left out, with the counts logged.

Examples:

>>> config = Config.preset("synthetic")  # doctest: +SKIP
>>> dataset = training_dataset(config)  # doctest: +SKIP
>>> images, targets, weights = next(iter(dataset))  # doctest: +SKIP
>>> images.shape, targets["refined"].shape, weights["refined"].shape  # doctest: +SKIP
(TensorShape([16, 128, 128, 3]), TensorShape([16, 32, 32, 16]), TensorShape([16, 16]))
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import numpy as np
import tensorflow as tf

from pose_keras import records
from pose_keras.config import Config, DataConfig
from pose_keras.inference import (
    apply_affine,
    compose_affine,
    crop_matrix,
    has_end_marker,
    invert_affine,
)
from pose_keras.joints import HEAD_BOX, TORSO, JointSet, get_joint_set
from pose_keras.metrics import SC_BIAS
from pose_keras.records import (  # noqa: F401  (split handling lives in records.py)
    Split,
    count_people,
    resolve_split,
    verify_shards,
)
from pose_keras.targets import make_targets
from pose_keras.transforms import PIXELS_PER_SCALE

AUTOTUNE = tf.data.AUTOTUNE
LOGGER = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Splits: shards, manifests, checks before any work
# --------------------------------------------------------------------------------------


def resolve_joint_set(config: Config, split: Split) -> JointSet:
    """The joint set of `split`, checked against `data.joints` and `model.num_joints`."""
    declared = split.joint_set
    if config.data.joints != "auto":
        expected = get_joint_set(config.data.joints)
        if expected.names != declared.names:
            raise ValueError(
                f"{split.pattern}: the records hold joint set {declared.name!r} "
                f"({declared.num_joints} joints) but data.joints={config.data.joints!r} "
                f"({expected.num_joints} joints). Set data.joints={declared.name!r} or "
                "data.joints=auto."
            )
    if declared.num_joints != config.model.num_joints:
        raise ValueError(
            f"{split.pattern}: the records hold {declared.num_joints} joints "
            f"({declared.name!r}) but model.num_joints={config.model.num_joints}."
        )
    return declared


def person_centred_problem(config: Config, split: Split) -> str | None:
    """Why `config`'s crops cannot come from `split` (None: they can).

    Only person-centred splits (`tfrecords_tools.recrop`) can fail: each record holds only
    the region that crops of the geometry in its manifest sample, at that resolution.
    """
    from pose_keras.records import PERSON_CENTRED_KEY
    from pose_keras.transforms import crop_geometry_problem

    for manifest, made in split.person_centred:
        try:
            problem = crop_geometry_problem(made, config)
        except (KeyError, TypeError, ValueError):
            problem = f"the {PERSON_CENTRED_KEY!r} entry of {manifest} is malformed ({made!r})"
        if problem:
            return problem
    return None


# --------------------------------------------------------------------------------------
# Stage 1-3: read, parse, check
# --------------------------------------------------------------------------------------


def read_records(
    paths, take_counts=None, training=False, seed=0, cycle_length=None, expected_counts=None
):
    """Records of the shards, each as {"serialized", "source", "record_index"}.

    Training: shard order is reshuffled each epoch and shards are read in parallel,
    interleaved, forever. Otherwise: one pass in shard order, records in file order.
    `take_counts` limits each shard to its first records (skip mode: the readable part).

    Each shard is read on its own, so its name is known where reading stops: TF's
    `DataLossError` ("corrupted record at <offset>", naming no file) ends that shard's
    reads, and a check at the shard's end fails with `Bad input: <shard>: record <i> is
    corrupt or truncated` when fewer records than `expected_counts` (the manifest's) came
    out, or more.
    """
    paths = [str(path) for path in paths]
    if take_counts is None:
        take_counts = [-1] * len(paths)
    if expected_counts is None:
        expected_counts = [-1] * len(paths)
    files = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(paths),
            tf.constant(take_counts, tf.int64),
            tf.constant(expected_counts, tf.int64),
        )
    )

    def read_shard(path, take, expected):
        shard = tf.data.TFRecordDataset(path).take(take).ignore_errors()
        shard = shard.map(lambda serialized: (serialized, False))
        shard = shard.concatenate(tf.data.Dataset.from_tensors((tf.constant(""), True)))
        shard = shard.enumerate().map(
            lambda index, element: {
                "serialized": element[0],
                "source": path,
                "record_index": index,
                "end": element[1],
                "expected": expected,
            }
        )
        shard = shard.map(check_shard_end).filter(lambda element: ~element["end"])
        return shard.map(lambda element: {k: v for k, v in element.items() if k != "end"})

    if not training:
        return files.flat_map(read_shard)
    files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
    return files.interleave(
        read_shard,
        cycle_length=cycle_length or min(len(paths), 16),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
    )


def check_shard_end(element):
    """At a shard's end marker: fail unless the shard gave the manifest's record count."""
    read, expected = element["record_index"], element["expected"]
    short = element["end"] & (expected >= 0) & (read < expected)
    long = element["end"] & (expected >= 0) & (read > expected)
    message = tf.strings.join(
        [
            "Bad input: ",
            element["source"],
            ": ",
            tf.where(
                short,
                tf.strings.format(
                    "record {} is corrupt or truncated (the shard ends after {} of the {} "
                    "records its manifest lists); re-run the converter, or set "
                    "data.skip_bad_records=true to train on the readable records",
                    (read, read, expected),
                ),
                tf.strings.format(
                    "the shard holds {} records but its manifest lists {}; re-run the converter",
                    (read, expected),
                ),
            ),
        ]
    )
    assertion = tf.debugging.Assert(~(short | long), [message])
    with tf.control_dependencies([assertion]):
        element["serialized"] = tf.identity(element["serialized"])
    element.pop("expected")
    return element


def parse_record(
    element, num_joints: int, keypoint_margin: float = 0.1, require_annotations: bool = True
) -> dict:
    """Parse one record (schema of `pose_keras.records`) and say what is wrong with it.

    Args:
        element: dict from `read_records` ("serialized", "source", "record_index").
        num_joints: int. Joints the manifest declares.
        keypoint_margin: float. How far (fraction of the image's longer side) annotated
            keypoints may lie outside the image. Default 0.1.
        require_annotations: bool. False accepts records without an annotated joint
            (prediction-only data, `records.min_annotated_joints`). Default True.

    Returns:
        dict: "encoded", "image_size" (height, width) int32, "image_id", "person_id",
        "center" (2,), "scale", "head_box" (4,), "record_normalize", "keypoints" (J, 2)
        image px, "visibility" (J,) int32, "source", "record_index", and "problem": a
        string, empty when the record is good input.
    """
    example = tf.io.parse_single_example(element["serialized"], records.feature_spec())
    encoded = example["image/encoded"]
    xy = example["keypoints/xy"]
    visibility = example["keypoints/visibility"]
    value_count = tf.size(xy)
    joint_count = tf.size(visibility)
    # Pad or cut to the declared joint count so the graph has static shapes either way.
    xy = tf.pad(xy[: 2 * num_joints], [[0, tf.maximum(0, 2 * num_joints - value_count)]])
    keypoints = tf.reshape(xy, [num_joints, 2])
    visibility = tf.pad(visibility[:num_joints], [[0, tf.maximum(0, num_joints - joint_count)]])
    visibility = tf.cast(visibility, tf.int32)
    height = tf.cast(example["image/height"], tf.float32)
    width = tf.cast(example["image/width"], tf.float32)

    prefix3 = tf.strings.substr(encoded, 0, 3)
    prefix8 = tf.strings.substr(encoded, 0, 8)
    is_jpeg = tf.equal(prefix3, records.JPEG_MAGIC)
    is_png = tf.equal(prefix8, records.PNG_MAGIC)
    # Which person is valid input: the TF twin of `records.person_problem`, from its constants.
    annotated = visibility > records.NOT_ANNOTATED
    annotated_xy = tf.boolean_mask(keypoints, annotated)
    margin = keypoint_margin * tf.maximum(height, width)
    outside = (
        (annotated_xy[:, 0] < -0.5 - margin)
        | (annotated_xy[:, 0] > width - 0.5 + margin)
        | (annotated_xy[:, 1] < -0.5 - margin)
        | (annotated_xy[:, 1] > height - 0.5 + margin)
    )
    has_size = (height > 0) & (width > 0)

    checks = [
        (tf.equal(tf.strings.length(encoded), 0), tf.constant("no image bytes")),
        (
            ~(is_jpeg | is_png) & (tf.strings.length(encoded) > 0),
            tf.constant("image bytes are neither JPEG nor PNG (undecodable image)"),
        ),
        (
            (is_jpeg | is_png) & ~has_end_marker(encoded, is_jpeg),
            tf.constant("image bytes are truncated (no JPEG/PNG end marker)"),
        ),
        (
            tf.not_equal(value_count, 2 * num_joints) | tf.not_equal(joint_count, num_joints),
            tf.strings.format(
                "wrong joint count: {} visibility values and {} keypoint values, the "
                "manifest's joint set has {} joints",
                (joint_count, value_count, num_joints),
            ),
        ),
        (
            ~tf.reduce_all(
                tf.reduce_any(visibility[:, None] == tf.constant(records.VISIBILITY_VALUES), -1)
            ),
            tf.constant("keypoints/visibility values must be 0, 1 or 2"),
        ),
        (
            tf.math.count_nonzero(annotated) < records.min_annotated_joints(require_annotations),
            tf.constant(
                "all joints missing (no annotated joint; prediction-only records such as "
                "the MPII test split are read with require_annotations=False)"
            ),
        ),
        (
            ~tf.reduce_all(tf.math.is_finite(annotated_xy)),
            tf.constant("non-finite keypoint coordinates"),
        ),
        (
            has_size & tf.reduce_any(outside),
            tf.strings.format(
                "annotated keypoint outside the image ({} x {} px) by more than "
                "data.keypoint_margin={}",
                (example["image/width"], example["image/height"], keypoint_margin),
            ),
        ),
        (~has_size, tf.constant("image/height and image/width must be positive")),
        (
            height * width > float(records.MAX_IMAGE_PIXELS),
            tf.constant(
                f"image/height x image/width above the {records.MAX_IMAGE_PIXELS // 10**6} MP "
                "limit (records.MAX_IMAGE_PIXELS)"
            ),
        ),
        (
            ~(tf.math.is_finite(example["person/scale"]) & (example["person/scale"] > 0))
            | ~tf.reduce_all(tf.math.is_finite(example["person/center"])),
            tf.constant("person/scale must be positive and person/center finite"),
        ),
    ]
    failing = tf.stack([condition for condition, _ in checks])
    messages = tf.stack([message for _, message in checks])
    problem = tf.strings.reduce_join(tf.boolean_mask(messages, failing), separator="; ")
    return {
        "encoded": encoded,
        "image_size": tf.cast(
            tf.stack([example["image/height"], example["image/width"]]), tf.int32
        ),
        "image_id": example["image/id"],
        "person_id": example["person/id"],
        "center": example["person/center"],
        "scale": example["person/scale"],
        "head_box": example["person/head_box"],
        "record_normalize": example["person/normalize"],
        "keypoints": keypoints,
        "visibility": visibility,
        "source": element["source"],
        "record_index": element["record_index"],
        "problem": problem,
    }


def _describe(example):
    return tf.strings.join(
        [
            "Bad input: ",
            example["source"],
            " record ",
            tf.strings.as_string(example["record_index"]),
            ": ",
        ]
    )


def check_record(example):
    """Fail with `Bad input: <shard> record <i>: <problem>` unless the record is good."""
    message = tf.strings.join([_describe(example), example["problem"]])
    assertion = tf.debugging.Assert(tf.equal(example["problem"], ""), [message])
    with tf.control_dependencies([assertion]):
        example["encoded"] = tf.identity(example["encoded"])
    return example


_DECODE_FAILURES = ("jpeg::Uncompress", "Invalid PNG data", "Unknown image file format", "libpng")


def describe_data_error(error) -> str | None:
    """The one-line message for a bad-input error raised while iterating our datasets.

    The checks of this module fail inside the tf.data graph (`check_record`,
    `check_shard_end`, `load_person`) with a TF `InvalidArgumentError` whose long message
    embeds `Bad input: <shard> record <i>: <why>`; this returns that line. A decode
    failure TensorFlow reports without the record, and a `DataLossError`, get a line that
    says what to do. CLIs print the line and exit 2 (`python -m pose_keras.fit`).

    Args:
        error: an exception, typically a `tf.errors.OpError` from `next(iterator)` or
            `model.fit`, or a `ValueError` from the checks before any work.

    Returns:
        str, or None when the error is not about the input data.

    >>> describe_data_error(ValueError("Bad input: a.tfrecord record 3: no image bytes"))
    'Bad input: a.tfrecord record 3: no image bytes'
    """
    message = getattr(error, "message", None) or str(error)
    start = message.find("Bad input: ")
    if start >= 0:
        line = message[start:].split("\n", 1)[0].rstrip()
        if isinstance(error, tf.errors.OpError) and line.endswith("]"):
            line = line[:-1]  # the bracket `tf.debugging.Assert` puts around its data
        return line
    if not isinstance(error, tf.errors.OpError):
        return None
    detail = records.tf_error_line(error)
    if isinstance(error, tf.errors.DataLossError):
        return (
            f"Bad input: a TFRecord shard is corrupt ({detail}); run "
            "pose_keras.pipeline.scan_records on the split to find it, or set "
            "data.skip_bad_records=true."
        )
    if isinstance(error, tf.errors.InvalidArgumentError) and any(
        marker in detail for marker in _DECODE_FAILURES
    ):
        return (
            f"Bad input: an image in the records does not decode ({detail}); set "
            "data.skip_bad_records=true to find and skip it (pose_keras.pipeline.scan_records "
            "names the record)."
        )
    return None


# --------------------------------------------------------------------------------------
# Stage 4-6: decode, crop, colours
# --------------------------------------------------------------------------------------


def decode_image(encoded):
    """JPEG/PNG bytes -> float32 (H, W, 3) RGB in [0, 255].

    Grayscale becomes RGB, an alpha channel is dropped, 16-bit PNGs are scaled to the
    8-bit range (`decode_image` with float output divides by the type's maximum).
    """
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.float32, expand_animations=False)
    image.set_shape([None, None, 3])
    return image * 255.0


def size_assertion(example, decoded_size):
    """The op asserting the image's real (height, width) is the recorded one (a mismatch is
    bad input: the annotations were made on another raster)."""
    message = tf.strings.join(
        [
            _describe(example),
            tf.strings.format(
                "the image decodes to {} (height, width) but the record says {}",
                (decoded_size, example["image_size"]),
            ),
        ]
    )
    return tf.debugging.Assert(tf.reduce_all(decoded_size == example["image_size"]), [message])


# libjpeg's DCT-domain downscaling factors (`tf.io.decode_and_crop_jpeg(ratio=...)`).
JPEG_RATIOS = (1, 2, 4, 8)


def jpeg_ratio_index(box_px, input_size: int):
    """Index into `JPEG_RATIOS` of the largest factor r with r <= box_px / input_size: the
    image, decoded at 1/r, still has at least one pixel per crop pixel."""
    minification = tf.cast(box_px, tf.float32) / float(input_size)
    index = tf.floor(tf.math.log(tf.maximum(minification, 1.0)) / tf.math.log(2.0) + 1e-4)
    return tf.cast(tf.clip_by_value(index, 0.0, len(JPEG_RATIOS) - 1.0), tf.int32)


def jpeg_crop_source(encoded, image_size, matrix, input_size: int, ratio: int):
    """The part of a JPEG that the crop `matrix` samples, decoded at 1/`ratio`.

    The crop's corners (one crop pixel beyond each side) are mapped back to image px; the
    window is their bounding box at the 1/ratio scale plus one scaled pixel of bilinear
    support, clipped to the image (`tf.io.decode_and_crop_jpeg` takes the window in the
    scaled image's pixels). Pixel centres: scaled pixel u covers image px [u r, (u + 1) r),
    so its centre is image x = (u + 0.5) r - 0.5.

    Returns:
        (window uint8 (h, w, 3), 2x3 float32 matrix window px -> crop px).
    """
    inverse = invert_affine(tf.cast(matrix, tf.float64))
    side = float(input_size)
    corners = tf.constant([[-1.0, -1.0], [side, -1.0], [-1.0, side], [side, side]], tf.float64)
    points = apply_affine(inverse, corners)  # (4, 2) image x, y
    scaled = (points + 0.5) / ratio - 0.5
    scaled_size = tf.cast(  # (width, height) of the image decoded at 1/ratio
        tf.math.ceil(tf.cast(image_size[::-1], tf.float64) / ratio), tf.int32
    )
    low = tf.cast(tf.floor(tf.reduce_min(scaled, axis=0)), tf.int32) - 1
    high = tf.cast(tf.math.ceil(tf.reduce_max(scaled, axis=0)), tf.int32) + 2
    low = tf.clip_by_value(low, 0, scaled_size - 1)
    high = tf.clip_by_value(high, low + 1, scaled_size)
    window = tf.io.decode_and_crop_jpeg(
        encoded,
        tf.stack([low[1], low[0], high[1] - low[1], high[0] - low[0]]),
        channels=3,
        ratio=ratio,
    )
    offset = ratio * (tf.cast(low, tf.float64) + 0.5) - 0.5
    to_image = tf.concat(  # window px -> image px
        [tf.eye(2, dtype=tf.float64) * ratio, offset[:, None]], axis=1
    )
    source_matrix = compose_affine(tf.cast(matrix, tf.float64), to_image)
    return window, tf.cast(source_matrix, tf.float32)


def crop_source(example, matrix, box_px, input_size: int):
    """(example without "encoded", 8-bit pixels, 2x3 matrix pixels -> crop px).

    JPEG: only the window the crop samples is decoded, at the largest `JPEG_RATIOS` factor
    that keeps one image pixel per crop pixel (`jpeg_crop_source`); the size check reads
    the header first. Other formats (PNG): the whole image, 8 bits per channel (a 16-bit
    PNG keeps its high byte), with `matrix` itself. At ratio 1 a window's crop is the
    whole image's crop; at 1/r the decoder averages r x r pixel blocks, which a bilinear
    crop of the full image would skip over (tests/test_pipeline.py compares both).
    """
    encoded = example["encoded"]

    def from_jpeg():
        with tf.control_dependencies(
            [size_assertion(example, tf.io.extract_jpeg_shape(encoded)[:2])]
        ):
            index = jpeg_ratio_index(box_px, input_size)
        branches = [
            (
                lambda ratio=ratio: jpeg_crop_source(
                    encoded, example["image_size"], matrix, input_size, ratio
                )
            )
            for ratio in JPEG_RATIOS
        ]
        return tf.switch_case(index, branches)

    def from_whole_image():
        image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
        with tf.control_dependencies([size_assertion(example, tf.shape(image)[:2])]):
            return tf.identity(image), tf.cast(matrix, tf.float32)

    image, source_matrix = tf.cond(tf.io.is_jpeg(encoded), from_jpeg, from_whole_image)
    image.set_shape([None, None, 3])
    example = dict(example)
    del example["encoded"]
    return example, image, source_matrix


def color_transform(factors, channel_mean):
    """Colour jitter as one affine map of RGB: (A (3, 3), b (3,)), new pixel = A x + b.

    `factors` are (brightness, contrast, saturation). In order: `x *= brightness`;
    `x = gray + saturation * (x - gray)` with `gray` the pixel's channel mean;
    `x = mean + contrast * (x - mean)` with `mean` the crop's mean intensity after the first
    two steps (`channel_mean`: the crop's mean RGB). `opencv_crop` rounds and clips the
    result to 8 bits.
    """
    brightness, contrast, saturation = (float(value) for value in factors)
    mixing = brightness * (saturation * np.eye(3) + (1.0 - saturation) * np.full((3, 3), 1 / 3))
    mean = float(np.mean(mixing @ np.asarray(channel_mean, np.float64)))
    return contrast * mixing, np.full(3, (1.0 - contrast) * mean)


def _opencv_crop(pixels, matrix, size, factors):
    """numpy side of `opencv_crop`."""
    cv2 = _opencv()
    crop = cv2.warpAffine(
        pixels,
        matrix.astype(np.float64),
        (int(size), int(size)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if np.any(factors != 1.0):
        linear, offset = color_transform(factors, cv2.mean(crop)[:3])
        affine = np.concatenate([linear, offset[:, None]], axis=1)
        crop = cv2.transform(crop, affine)  # rounded and clipped to [0, 255]
    return crop.astype(np.float32)


@functools.cache
def _opencv():
    """OpenCV, set to one thread per call once: tf.data's parallel calls are the parallelism."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


def opencv_crop(pixels, matrix, input_size: int, color=None):
    """The crop of 8-bit `pixels` through a 2x3 matrix pixels -> crop px, colour-jittered.

    The map and conventions of `inference.warp_image` (integer pixel centres, bilinear, 0
    outside the image), with `cv2.warpAffine`: about ten times faster than TF's
    `ImageProjectiveTransformV3` on a CPU. The crop is rounded to 8 bits as the inference
    crops are (`inference.crop_image`); OpenCV places samples to 1/32 px. Then
    `color_transform` with `color` (brightness, contrast, saturation; None = none), also
    rounded to 8 bits. Runs
    as one `tf.numpy_function` (OpenCV releases the GIL while it works), so it is for the
    training pipeline, never for an exported graph; tests/test_pipeline.py checks it
    against `warp_image` on real photographs.

    Returns:
        float32 (S, S, 3) RGB in [0, 255].
    """
    color = tf.ones([3]) if color is None else color
    crop = tf.numpy_function(
        _opencv_crop,
        [tf.cast(pixels, tf.uint8), tf.cast(matrix, tf.float64), input_size, color],
        tf.float32,
        stateful=False,
    )
    crop.set_shape([input_size, input_size, 3])
    return crop


def identity_augmentation():
    """Augmentation parameters that crop the annotated box as it is."""
    return {
        "scale_factor": tf.constant(1.0),
        "rotation_deg": tf.constant(0.0),
        "flip": tf.constant(False),
        "shift": tf.zeros([2]),
        "color": tf.ones([3]),
    }


def sample_augmentation(seed, data_config: DataConfig):
    """Random augmentation parameters from a stateless seed (int (2,)).

    Returns a dict: scale_factor ~ U(1 - s, 1 + s), rotation_deg ~ U(-r, r), flip
    (probability 0.5 when `data.flip`), shift (2,) ~ U(-t, t) in units of the box side,
    color (3,) brightness/contrast/saturation factors ~ U(1 - c, 1 + c).
    """
    uniform = tf.random.stateless_uniform([8], seed=seed, minval=-1.0, maxval=1.0)
    flip = (uniform[2] > 0.0) if data_config.flip else tf.constant(False)
    return {
        "scale_factor": 1.0 + data_config.scale_jitter * uniform[0],
        "rotation_deg": data_config.rotation_deg * uniform[1],
        "flip": flip,
        "shift": data_config.translate_jitter * uniform[3:5],
        "color": 1.0 + data_config.color_jitter * uniform[5:8],
    }


def person_crop_geometry(example, augmentation, input_size: int, box_scale: float):
    """(crop matrix float32 (2, 3) image px -> crop px, box side in image px) of a person.

    Box side = 200 * scale * box_scale (`transforms.box_px_from_scale`) x the augmentation's
    scale factor, centred on the person's centre shifted by `shift` x the side, rotated and
    optionally mirrored (`transforms.crop_matrix`).
    """
    box_px = example["scale"] * PIXELS_PER_SCALE * box_scale * augmentation["scale_factor"]
    center = example["center"] + augmentation["shift"] * box_px
    matrix = crop_matrix(
        center, box_px, input_size, augmentation["rotation_deg"], augmentation["flip"]
    )
    return tf.cast(matrix, tf.float32), box_px


def crop_person(
    example,
    augmentation,
    input_size: int,
    box_scale: float,
    flip_index,
    source=None,
    jitter=False,
    matrix=None,
):
    """The one affine crop of a person, with its keypoints and joint order.

    Args:
        example: dict with "keypoints" (J, 2) image px, "visibility" (J,), "center" (2,),
            "scale", and "image" (H, W, 3) 8-bit values unless `source` is given.
        augmentation: dict from `sample_augmentation` or `identity_augmentation`.
        input_size: int. Side of the crop S.
        box_scale: float. Box side = 200 * scale * box_scale (`transforms.box_px_from_scale`).
        flip_index: sequence of int. `JointSet.flip_index`.
        source: (8-bit pixels (h, w, 3), 2x3 matrix pixels -> crop px) or None: the pixels
            to warp (from `crop_source`: a decoded window of the image); None = the whole
            `example["image"]` with the crop matrix.
        jitter: bool. Apply the augmentation's colour factors (`color_transform`).
        matrix: float32 (2, 3) or None. The crop matrix, image px -> crop px, when the
            caller already has it from `person_crop_geometry` (as `prepared_examples` does,
            for `crop_source`); None = computed here from the example and augmentation.

    Returns:
        dict: "image" (S, S, 3) float32, "keypoints_input_px" (J, 2), "visibility" (J,)
        (both in the flipped joint order when mirrored) and "crop_matrix" (2, 3), image px
        -> crop px.
    """
    if matrix is None:
        matrix, _ = person_crop_geometry(example, augmentation, input_size, box_scale)
    pixels, pixels_matrix = source if source is not None else (example["image"], matrix)
    keypoints = apply_affine(matrix, example["keypoints"])
    visibility = example["visibility"]
    order = tf.where(
        augmentation["flip"],
        tf.constant(flip_index, tf.int32),
        tf.range(len(flip_index), dtype=tf.int32),
    )
    color = augmentation["color"] if jitter else None
    return {
        "image": opencv_crop(pixels, pixels_matrix, input_size, color),
        "keypoints_input_px": tf.gather(keypoints, order),
        "visibility": tf.gather(visibility, order),
        "crop_matrix": matrix,
    }


def pck_normalizer(example, joint_set: JointSet):
    """The PCK(h) normaliser of one person in image px: the TF twin of
    `metrics.person_normalizers` (the rule is declared there; tests/test_pipeline.py checks
    that both give the same numbers on the same records).

    Head box (MPII): `metrics.SC_BIAS` x the head box diagonal, 0 when the box is absent
    (`records.NO_HEAD_BOX`). Torso (FLIC, LSP, COCO): the distance between
    `joint_set.torso_joints` when both are annotated, else 0. Person box: 0. Where that is
    not positive, the record's `person/normalize`.
    """
    fallback = example["record_normalize"]
    if joint_set.normalizer == HEAD_BOX:
        box = example["head_box"]
        absent = tf.reduce_all(tf.equal(box, tf.constant(records.NO_HEAD_BOX, box.dtype)))
        size = tf.where(absent, 0.0, SC_BIAS * tf.norm(box[2:] - box[:2]))
    elif joint_set.normalizer == TORSO and joint_set.torso_joints is not None:
        first, second = joint_set.torso_joints
        visibility = example["visibility"]
        both = (visibility[first] > records.NOT_ANNOTATED) & (
            visibility[second] > records.NOT_ANNOTATED
        )
        distance = tf.norm(example["keypoints"][first] - example["keypoints"][second])
        size = tf.where(both, distance, 0.0)
    else:
        return fallback
    return tf.where(size > 0, size, fallback)


# --------------------------------------------------------------------------------------
# Assembled datasets
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class ScanReport:
    """What `scan_records` found: bad records and how much of each shard is readable.

    Attributes:
        total: int. Records the manifests declare.
        bad: list of (shard path, record index, kind, detail). `kind` is a short label
            ("corrupt or truncated shard", "undecodable image", "wrong joint count", ...).
        readable: dict. Shard path -> records readable from its start.
        lost: int. Records after a corrupt one in the same shard (unreadable).
    """

    total: int
    bad: list
    readable: dict
    lost: int = 0

    @property
    def skipped(self) -> int:
        return len(self.bad) + self.lost

    def counts(self) -> dict:
        """Skipped records per kind of problem."""
        counts = {}
        for _, _, kind, _ in self.bad:
            counts[kind] = counts.get(kind, 0) + 1
        if self.lost:
            counts["unreadable after a corrupt record"] = self.lost
        return counts

    def summary(self) -> str:
        if not self.skipped:
            return f"scanned {self.total} records: all good"
        parts = [f"{count} {kind}" for kind, count in sorted(self.counts().items())]
        path, index, kind, detail = self.bad[0]
        return (
            f"skipped {self.skipped} of {self.total} records ({', '.join(parts)}); first: "
            f"{path} record {index}: {detail}"
        )


def _problem_kind(problem: str) -> str:
    for kind in (
        "no image bytes",
        "undecodable image",
        "truncated",
        "wrong joint count",
        "visibility",
        "all joints missing",
        "non-finite",
        "outside the image",
        "MP limit",
        "image/height",
        "person/scale",
    ):
        if kind in problem:
            return {
                "truncated": "truncated image",
                "visibility": "bad visibility",
                "non-finite": "non-finite keypoints",
                "outside the image": "keypoints outside the image",
                "MP limit": "image too large",
                "image/height": "bad image size",
                "person/scale": "bad centre or scale",
            }.get(kind, kind)
    return "bad record"


def scan_records(
    pattern,
    joint_set: JointSet | None = None,
    keypoint_margin=0.1,
    decode=True,
    require_annotations=True,
):
    """Read every record of a split in Python and list the bad ones.

    The same checks as the pipeline (`parse_record`, with the same `require_annotations`),
    plus a real decode of every image (`decode=True`), so corrupt image data that still
    ends with its end marker is found too. `data.skip_bad_records` runs it before
    training; it also checks converted data.

    Returns:
        ScanReport.
    """
    split = resolve_split(pattern)
    joint_set = joint_set or split.joint_set
    num_joints = joint_set.num_joints

    @tf.function
    def parse(serialized, source, index):
        example = parse_record(
            {"serialized": serialized, "source": source, "record_index": index},
            num_joints,
            keypoint_margin,
            require_annotations,
        )
        return example["problem"], example["encoded"], example["image_size"]

    bad, readable, lost = [], {}, 0
    for path, expected in zip(split.paths, split.counts, strict=True):
        read = 0
        try:
            for index, serialized in records.iterate_shard(path):
                read = index + 1
                problem, encoded, image_size = parse(serialized, path, tf.constant(index, tf.int64))
                detail = problem.numpy().decode()
                kind = _problem_kind(detail) if detail else ""
                if not detail and decode:
                    try:
                        height, width, _ = records.check_image_bytes(encoded.numpy(), "image")
                        if (height, width) != tuple(image_size.numpy()):
                            kind = "image size mismatch"
                            detail = (
                                f"the image decodes to {(height, width)} (height, width) but "
                                f"the record says {tuple(image_size.numpy())}"
                            )
                    except records.BadImageError as error:
                        kind = "undecodable image"
                        detail = f"undecodable image ({error})"
                if detail:
                    bad.append((path, index, kind, detail))
        except records.CorruptShardError as error:
            detail = error.detail.splitlines()[0]
            bad.append((path, error.index, "corrupt or truncated shard", detail))
            lost += max(0, expected - error.index - 1)
        readable[path] = read
    return ScanReport(total=split.count, bad=bad, readable=readable, lost=lost)


def _default_pattern(config: Config, training: bool) -> str:
    pattern = config.data.train_records if training else config.data.val_records
    if pattern:
        return pattern
    from pose_keras.synthetic import ensure_synthetic

    train_prefix, val_prefix = ensure_synthetic(config)
    return str(train_prefix if training else val_prefix)


def _good_records(
    config: Config, split: Split, training: bool, seed: int, require_annotations: bool = True
):
    """Stages 1-3: records that passed the checks (or fail with a named error)."""
    data = config.data
    num_joints = split.joint_set.num_joints
    if data.skip_bad_records:
        report = scan_records(
            split.pattern,
            split.joint_set,
            data.keypoint_margin,
            require_annotations=require_annotations,
        )
        if report.skipped:
            LOGGER.warning("%s: %s", split.pattern, report.summary())
        take = [report.readable.get(path, 0) for path in split.paths]
        bad_keys = [f"{path}#{index}" for path, index, _, _ in report.bad]
    else:
        if data.verify_checksums:
            verify_shards(split)
        take, bad_keys = None, []
    expected = list(split.counts) if take is None else list(take)
    dataset = read_records(
        split.paths, take, training=training, seed=seed, expected_counts=expected
    )
    # Shuffle the serialised records (cheap to hold); a buffer larger than the split
    # would only hold repeats.
    buffer = min(data.shuffle_buffer, split.count)
    if training and buffer > 1:
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda element: parse_record(
            element, num_joints, data.keypoint_margin, require_annotations
        ),
        num_parallel_calls=AUTOTUNE,
    )
    if bad_keys:
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(bad_keys), tf.ones([len(bad_keys)], tf.int64)
            ),
            default_value=0,
        )
        dataset = dataset.filter(
            lambda example: (
                table.lookup(
                    tf.strings.join(
                        [example["source"], "#", tf.strings.as_string(example["record_index"])]
                    )
                )
                == 0
            )
        )
    return dataset.map(check_record, num_parallel_calls=AUTOTUNE)


def prepared_examples(
    config: Config,
    pattern: str | None = None,
    training: bool = True,
    seed: int | None = None,
    require_annotations: bool = True,
) -> tf.data.Dataset:
    """Unbatched person crops with their keypoints (what `show` draws).

    Args:
        config: Config.
        pattern: str or None. Split prefix or shard glob; None = `data.train_records` /
            `data.val_records`, or the synthetic dataset when those are empty.
        training: bool. Shuffled, repeated, augmented (True) or one pass in record order
            without augmentation (False). Default True.
        seed: int or None. Seed of shuffling and augmentation; None = `train.seed`.
        require_annotations: bool. False lets records without an annotated joint through
            (prediction only: not with `training=True`). Default True.

    Returns:
        tf.data.Dataset of dicts: "image" (S, S, 3) float32 RGB in [0, 255],
        "keypoints_input_px" (J, 2), "visibility" (J,) int32, "crop_matrix" (2, 3) image px
        -> input px, and the person's meta: "keypoints" (J, 2) image px, "head_box",
        "normalize", "center", "scale", "person_id", "image_id", "image_size".
    """
    if training and not require_annotations:
        raise ValueError(
            "require_annotations=False is for prediction only: training needs records with "
            "annotated joints."
        )
    pattern = pattern or _default_pattern(config, training)
    split = resolve_split(pattern)
    joint_set = resolve_joint_set(config, split)
    seed = config.train.seed if seed is None else int(seed)
    data = config.data
    input_size = config.model.input_size
    flip_index = joint_set.flip_index

    dataset = _good_records(config, split, training, seed, require_annotations).enumerate()

    def prepare(position, example):
        if training:
            augmentation = sample_augmentation(
                tf.stack([tf.constant(seed, tf.int64), position]), data
            )
        else:
            augmentation = identity_augmentation()
        matrix, box_px = person_crop_geometry(example, augmentation, input_size, data.box_scale)
        example, pixels, pixels_matrix = crop_source(example, matrix, box_px, input_size)
        crop = crop_person(
            example,
            augmentation,
            input_size,
            data.box_scale,
            flip_index,
            source=(pixels, pixels_matrix),
            jitter=training and data.color_jitter > 0,
            matrix=matrix,
        )
        crop.update(
            {
                "keypoints": example["keypoints"],
                "original_visibility": example["visibility"],
                "head_box": example["head_box"],
                "normalize": pck_normalizer(example, joint_set),
                "center": example["center"],
                "scale": example["scale"],
                "person_id": example["person_id"],
                "image_id": example["image_id"],
                "image_size": example["image_size"],
            }
        )
        return crop

    dataset = dataset.map(prepare, num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(data.deterministic)
    options.experimental_optimization.map_fusion = True
    return dataset.with_options(options)


def training_dataset(config: Config, pattern: str | None = None, seed: int | None = None):
    """Infinite, shuffled, augmented batches ready for `model.fit`.

    The dataset repeats forever (each pass over the shards reshuffled); drive it with
    `steps_per_epoch` (`count_people(pattern) // train.batch_size` for one pass per epoch).
    Batches are full (`drop_remainder=True`).

    Args:
        config: Config. `model` (input size, outputs), `data` (augmentation, targets),
            `train.batch_size` and `train.seed`.
        pattern: str or None. Split prefix or shard glob; None = `data.train_records`, or
            the synthetic training split (generated or reused) when that is empty.
        seed: int or None. None = `train.seed`. The same seed gives identical batches.

    Returns:
        tf.data.Dataset of `(images, targets, weights)`: images float32 (B, S, S, 3) RGB in
        [0, 255] (the model normalises); targets `{output_name: float32 (B, n, n, J)}` and
        weights `{output_name: float32 (B, J)}` for every name of
        `model.output_names(config.model)`.
    """
    examples = prepared_examples(config, pattern, training=True, seed=seed)
    return _to_model_batches(examples, config, drop_remainder=True)


def _to_model_batches(examples, config: Config, drop_remainder: bool, batch_size=None):
    model_config, data_config = config.model, config.data

    def to_model(batch):
        targets, weights = make_targets(
            batch["keypoints_input_px"], batch["visibility"], model_config, data_config
        )
        return batch["image"], targets, weights

    batched = examples.map(
        lambda example: {
            "image": example["image"],
            "keypoints_input_px": example["keypoints_input_px"],
            "visibility": example["visibility"],
        }
    )
    batched = batched.batch(batch_size or config.train.batch_size, drop_remainder=drop_remainder)
    return batched.map(to_model, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


META_KEYS = (
    "crop_matrix",
    "keypoints",
    "visibility",
    "head_box",
    "normalize",
    "center",
    "scale",
    "person_id",
    "image_id",
    "image_size",
)


def validation_dataset(
    config: Config,
    pattern: str | None = None,
    batch_size: int | None = None,
    with_targets: bool = False,
    require_annotations: bool = True,
):
    """One pass over a split in record order, without augmentation; no person dropped.

    Args:
        config: Config.
        pattern: str or None. None = `data.val_records`, or the synthetic validation split.
        batch_size: int or None. None = `train.batch_size`. The last batch may be smaller.
        with_targets: bool. Yield `(images, targets, weights)` like `training_dataset`
            (for a Keras validation loss) instead of `(images, meta)`. Default False.
        require_annotations: bool. False accepts records without an annotated joint, for
            prediction only (`inference.predict_split`, the MPII test submission); not with
            `with_targets`, which needs labels. Default True.

    Returns:
        tf.data.Dataset of `(images, meta)`: images float32 (B, S, S, 3); meta a dict of
        "crop_matrix" (B, 2, 3) float32 image px -> input px (`transforms.crop_matrix`),
        "keypoints" (B, J, 2) image px, "visibility" (B, J) int32 (0 not annotated,
        1 occluded, 2 visible), "head_box" (B, 4) image px (-1 when absent), "normalize"
        (B,) the PCK(h) normaliser in image px (`pck_normalizer`), "center" (B, 2),
        "scale" (B,), "person_id" (B,) int64, "image_id" (B,) string, "image_size" (B, 2)
        (height, width).
    """
    if with_targets and not require_annotations:
        raise ValueError(
            "require_annotations=False is for prediction only: targets need records with "
            "annotated joints."
        )
    examples = prepared_examples(
        config, pattern, training=False, require_annotations=require_annotations
    )
    if with_targets:
        return _to_model_batches(examples, config, drop_remainder=False, batch_size=batch_size)

    def to_meta(example):
        meta = {key: example[key] for key in META_KEYS}
        meta["visibility"] = example["original_visibility"]
        return example["image"], meta

    dataset = examples.map(to_meta, num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(batch_size or config.train.batch_size, drop_remainder=False)
    return dataset.prefetch(AUTOTUNE)


def split_summary(pattern) -> str:
    """One line about a split (for CLIs): people, shards, joint set."""
    split = resolve_split(pattern)
    return (
        f"{split.pattern}: {split.count} people in {len(split.paths)} shard(s), joint set "
        f"{split.joint_set.name!r} ({split.joint_set.num_joints} joints)"
    )
