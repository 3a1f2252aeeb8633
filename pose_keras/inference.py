"""The inference stage, written once in TensorFlow: person box -> crop -> network -> flip
test -> decoding -> keypoints in image px.

Every caller runs this code: `python -m pose_keras.predict` and the Python API (images),
the exported SavedModel (`export.ServingGraph`: bytes in, keypoints out), `evaluate` and the
training callback (crops of a TFRecord split, `predict_split` / `predict_crops`). So the
exported graph and `predict` give the same keypoints on the same image: they run the same
ops, and tests/test_inference.py and tests/test_export.py hold them to that.

The stages, each a function here:

    read_image / decode_image_bytes   encoded bytes -> uint8 (H, W, 3) RGB (JPEG with the
                                      accurate integer DCT and its EXIF orientation, PNG,
                                      GIF, BMP); refused as `records.check_image_bytes`
                                      refuses them
    crop_people / crop_image          person box (x0, y0, x1, y1) -> centre and side
                                      (longer side x `box_scale`) -> `crop_matrix` -> a
                                      bilinear warp with a black border, rounded to 0-255
                                      integers
    Inference.heatmaps                the network's prediction output, optional flip test
                                      (mirrored crops, maps mirrored back, joints swapped
                                      with `JointSet.flip_index`, averaged)
    Inference.decode                  arg-max and the quarter-pixel shift (`decode.QUARTER`)
    heatmap_to_image_matrices         heatmap px -> input px -> image px

The crop geometry below is the TensorFlow twin of the numpy reference `transforms.py`
(same conventions: 0-based pixel centres, box edges to crop pixel edges); the decoding is the
twin of `decode.decode_heatmaps` for `"quarter"` and `"none"`. DARK refinement (a Gaussian
blur and a log per map) stays numpy-only (`decode.dark_offset`): `predict_crops` applies it
to the heatmaps this stage returns, and the exported graph offers quarter and none only.

Examples:

>>> image = read_image("photo.jpg")  # doctest: +SKIP
>>> crops, crop_matrices = crop_people(image, [[120, 40, 380, 470]], input_size=256)  # doctest: +SKIP
>>> result = predict_crops(model, crops, crop_matrices, MPII, flip=True)  # doctest: +SKIP
>>> result.keypoints.shape, result.scores.shape  # doctest: +SKIP
((1, 16, 2), (1, 16))
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from pose_keras import decode, records
from pose_keras.config import DataConfig
from pose_keras.joints import JointSet, get_joint_set
from pose_keras.transforms import full_image_box, parse_box, resize_matrix

# The crop side is the box's longer side times this (Newell et al.'s 1.25): the one default
# is `DataConfig.box_scale`; runs use their own `data.box_scale` (`runs.Run.box_scale`).
DEFAULT_BOX_SCALE = DataConfig.box_scale
# Refinements that run inside the graph; DARK needs a Gaussian blur and a log per map.
GRAPH_REFINEMENTS = ("quarter", "none")
# EXIF: the APP1 segment sits right after SOI (Exif 2.3, 4.5.4), or after a JFIF APP0;
# look for its header in the first bytes, read IFD0 within the first 64 KiB (one APP1
# segment at most), and at most this many IFD0 entries (a camera writes about 10).
EXIF_HEADER_WITHIN = 4096
EXIF_SEARCH_BYTES = 65536
EXIF_MAX_ENTRIES = 64
EXIF_ORIENTATION_TAG = 0x0112
# What the serving graph decodes; other formats (WebP, TIFF) are read by OpenCV in predict.
GRAPH_IMAGE_MAGICS = (records.JPEG_MAGIC, records.PNG_MAGIC, b"GIF8", b"BM")


# --------------------------------------------------------------------------------------
# Crop geometry (TF twin of the numpy reference `transforms.py`)
# --------------------------------------------------------------------------------------


def _float64(value):
    """A float64 tensor of a tensor (cast) or of Python / numpy numbers (no float32 detour)."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.cast(value, tf.float64)
    return tf.constant(np.asarray(value, dtype=np.float64))


def crop_matrix(center, box_px, output_size, rotation_deg=0.0, flip=False):
    """`transforms.crop_matrix` in TF: 2x3 float64 matrix, image px -> crop px.

    Args:
        center: float (2,). Crop centre (x, y), image px.
        box_px: float scalar. Side of the square box, image px.
        output_size: int. Side of the crop, px.
        rotation_deg: float scalar. The person turns counter-clockwise by this angle.
        flip: bool scalar. Mirror the crop left-right after rotating.
    """
    center = _float64(center)
    theta = _float64(rotation_deg) * (math.pi / 180.0)
    zoom = float(output_size) / _float64(box_px)
    cos, sin = tf.cos(theta), tf.sin(theta)
    linear = zoom * tf.reshape(tf.stack([cos, sin, -sin, cos]), [2, 2])
    half = (float(output_size) - 1.0) / 2.0
    translation = tf.constant([half, half], tf.float64) - tf.linalg.matvec(linear, center)
    # Mirror: x -> (S - 1) - x, applied after the crop.
    mirror = tf.cast(tf.where(tf.cast(flip, tf.bool), -1.0, 1.0), tf.float64)
    linear = tf.stack([linear[0] * mirror, linear[1]])
    translation = tf.stack(
        [
            tf.where(mirror < 0, (float(output_size) - 1.0) - translation[0], translation[0]),
            translation[1],
        ]
    )
    return tf.concat([linear, translation[:, None]], axis=1)


def invert_affine(matrix):
    """Inverse of 2x3 affine matrices (..., 2, 3), computed in float64, in `matrix`'s dtype."""
    dtype = matrix.dtype if isinstance(matrix, tf.Tensor) else tf.float64
    matrix = _float64(matrix)
    linear_inverse = tf.linalg.inv(matrix[..., :2])
    translation = -tf.linalg.matvec(linear_inverse, matrix[..., 2])
    return tf.cast(tf.concat([linear_inverse, translation[..., None]], axis=-1), dtype)


def apply_affine(matrix, points):
    """Map points (..., J, 2) through 2x3 matrices (..., 2, 3), in `matrix`'s dtype."""
    matrix = matrix if isinstance(matrix, tf.Tensor) else _float64(matrix)
    points = tf.cast(points if isinstance(points, tf.Tensor) else _float64(points), matrix.dtype)
    return tf.linalg.matmul(points, matrix[..., :2], transpose_b=True) + matrix[..., None, :, 2]


def compose_affine(outer, inner):
    """The 2x3 matrices (...) of `outer(inner(p))` (`transforms.compose_affine`)."""
    outer = outer if isinstance(outer, tf.Tensor) else _float64(outer)
    inner = tf.cast(inner if isinstance(inner, tf.Tensor) else _float64(inner), outer.dtype)
    linear = tf.linalg.matmul(outer[..., :2], inner[..., :2])
    translation = tf.linalg.matvec(outer[..., :2], inner[..., 2]) + outer[..., 2]
    return tf.concat([linear, translation[..., None]], axis=-1)


def heatmap_to_image_matrices(crop_matrices, input_size: int, heatmap_size: int):
    """`decode.heatmap_to_image_matrices` in TF: crop^-1 o resize(heatmap -> input), float64."""
    crop_matrices = _float64(crop_matrices)
    to_input = tf.constant(resize_matrix(heatmap_size, input_size), tf.float64)
    return compose_affine(invert_affine(crop_matrices), to_input)


def warp_image(image, matrix, output_size):
    """Warp (H, W, C) to (output_size, output_size, C) float32 with a 2x3 image -> crop matrix.

    `ImageProjectiveTransformV3` maps each *output* pixel centre (integer coordinates, the
    0-based pixel-centre convention of `pose_keras.transforms`) through the given matrix to
    the input and samples bilinearly, so it receives the inverse matrix. Outside the image
    the crop is 0 (black).
    """
    inverse = tf.cast(invert_affine(tf.cast(matrix, tf.float64)), tf.float32)
    transform = tf.concat([tf.reshape(inverse, [6]), tf.zeros([2], tf.float32)], axis=0)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image, tf.float32)[None],
        transforms=transform[None],
        output_shape=tf.constant([output_size, output_size], tf.int32),
        fill_value=tf.constant(0.0, tf.float32),
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return warped[0]


def box_crop_matrix(box, input_size: int, box_scale: float):
    """The crop matrix (float64 (2, 3)) of a person box [x0, y0, x1, y1] in image px.

    `transforms.center_and_scale_from_box` + `box_px_from_scale`: the box's centre, and a
    side of the box's longer side x `box_scale` (the MPII "200 x scale" is the longer side).
    """
    box = _float64(box)
    center = 0.5 * (box[:2] + box[2:])
    box_px = tf.maximum(box[2] - box[0], box[3] - box[1]) * float(box_scale)
    return crop_matrix(center, box_px, input_size)


def crop_image(image, box, input_size: int, box_scale: float):
    """One person crop: (crop float32 (S, S, 3) of integers 0-255, crop matrix float64 (2, 3)).

    The crop is rounded to integers as an 8-bit image (what `cv2.warpAffine` gives on uint8
    images), so a crop is the same whether it is made here, in `predict` or in the server.
    """
    matrix = box_crop_matrix(box, input_size, box_scale)
    crop = warp_image(image, matrix, input_size)
    return tf.clip_by_value(tf.round(crop), 0.0, 255.0), matrix


def whole_image_box(height, width):
    """The box (x0, y0, x1, y1) of a whole image in TF: pixel edges, -0.5 to size - 0.5."""
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    return tf.stack([-0.5, -0.5, width - 0.5, height - 0.5])


# --------------------------------------------------------------------------------------
# Encoded image bytes -> RGB, inside the graph
# --------------------------------------------------------------------------------------


def has_end_marker(encoded, is_jpeg):
    """True when the last bytes hold the JPEG EOI marker or the PNG IEND chunk type (the TF
    twin of the end-marker rule of `records.check_image_bytes`)."""
    length = tf.strings.length(encoded)
    start = tf.maximum(length - records.END_MARKER_WINDOW, 0)
    tail = tf.io.decode_raw(tf.strings.substr(encoded, start, length - start), tf.uint8)
    tail = tf.cast(tail, tf.int32)
    jpeg_end = tf.reduce_any((tail[:-1] == 0xFF) & (tail[1:] == 0xD9))
    iend = (
        (tail[:-3] == ord("I"))
        & (tail[1:-2] == ord("E"))
        & (tail[2:-1] == ord("N"))
        & (tail[3:] == ord("D"))
    )
    return tf.where(is_jpeg, jpeg_end, tf.reduce_any(iend))


def _starts_with(head, signature: bytes):
    """head: int32 (8,) first bytes (zero-padded) -> bool scalar."""
    return tf.reduce_all(head[: len(signature)] == tf.constant(list(signature), tf.int32))


def exif_orientation(encoded):
    """EXIF orientation (1-8) of JPEG bytes; 1 when there is none or it is unreadable.

    Finds the APP1 `Exif\\0\\0` header (marker FF E1, two length bytes) in the first
    `EXIF_HEADER_WITHIN` bytes, reads the TIFF byte order ("II" little, "MM" big endian) and the
    offset of IFD0, and looks up tag 0x0112 among its entries (12 bytes each: tag, type,
    count, value; a SHORT value sits in the first two bytes of the value field). JEITA
    CP-3451 (Exif 2.3), sections 4.5-4.6.
    """
    head = tf.io.decode_raw(tf.strings.substr(encoded, 0, EXIF_SEARCH_BYTES), tf.uint8)
    data = tf.cast(head, tf.int32)
    size = tf.size(data)
    pattern = [0xFF, 0xE1, -1, -1] + list(b"Exif\x00\x00")
    positions = tf.range(tf.maximum(tf.minimum(size, EXIF_HEADER_WITHIN) - len(pattern) + 1, 0))
    match = tf.ones_like(positions, tf.bool)
    for offset, value in enumerate(pattern):
        if value >= 0:
            match &= tf.gather(data, positions + offset) == value
    found = tf.reduce_any(match)
    tiff = tf.cast(tf.argmax(tf.cast(match, tf.int32)), tf.int32) + len(pattern)

    def byte(at):
        inside = (at >= 0) & (at < size)
        return tf.where(
            inside, tf.gather(data, tf.clip_by_value(at, 0, tf.maximum(size - 1, 0))), 0
        )

    little = (byte(tiff) == ord("I")) & (byte(tiff + 1) == ord("I"))
    big = (byte(tiff) == ord("M")) & (byte(tiff + 1) == ord("M"))

    def unsigned(at, count):
        value = tf.zeros_like(at)
        for k in range(count):
            shift = tf.where(little, 8 * k, 8 * (count - 1 - k))
            value += tf.bitwise.left_shift(byte(at + k), shift)
        return value

    ifd = tiff + unsigned(tiff + 4, 4)
    entries = tf.minimum(unsigned(ifd, 2), EXIF_MAX_ENTRIES)
    starts = ifd + 2 + 12 * tf.range(EXIF_MAX_ENTRIES)
    is_tag = (unsigned(starts, 2) == EXIF_ORIENTATION_TAG) & (tf.range(EXIF_MAX_ENTRIES) < entries)
    value = unsigned(starts + 8, 2)
    orientation = tf.reduce_max(tf.where(is_tag, value, 0))
    usable = found & (little | big) & (orientation >= 1) & (orientation <= 8)
    return tf.where(usable, orientation, 1)


def apply_exif_orientation(image, orientation):
    """Turn a decoded (H, W, C) image upright for EXIF orientation 1-8 (as displayed)."""

    def flip(axes):
        return lambda: tf.reverse(image, axes)

    branches = [
        flip([1]),  # 2: mirrored left-right
        flip([0, 1]),  # 3: rotated 180
        flip([0]),  # 4: mirrored top-bottom
        lambda: tf.transpose(image, [1, 0, 2]),  # 5: transposed
        lambda: tf.transpose(tf.reverse(image, [0]), [1, 0, 2]),  # 6: needs 90 deg clockwise
        lambda: tf.transpose(tf.reverse(image, [0, 1]), [1, 0, 2]),  # 7: transverse
        lambda: tf.transpose(tf.reverse(image, [1]), [1, 0, 2]),  # 8: needs 90 deg anticlockwise
    ]
    # Upright (1) is by far the most common: no copy then.
    return tf.cond(
        orientation <= 1,
        lambda: tf.identity(image),
        lambda: tf.switch_case(orientation - 2, branches),
    )


def decode_image_bytes(encoded, where):
    """Encoded image bytes -> uint8 (H, W, 3) RGB, or an InvalidArgumentError naming `where`.

    Args:
        encoded: string scalar. JPEG, PNG, GIF (first frame) or BMP bytes.
        where: string scalar, e.g. "images[3]", the start of every error message.
    """
    length = tf.strings.length(encoded)
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 0, 8), tf.uint8), tf.int32)
    head = tf.pad(head, [[0, 8 - tf.size(head)]])
    is_jpeg = _starts_with(head, records.JPEG_MAGIC)
    is_png = _starts_with(head, records.PNG_MAGIC)
    known = is_jpeg | is_png | _starts_with(head, b"GIF8") | _starts_with(head, b"BM")
    complete = tf.logical_not(is_jpeg | is_png) | has_end_marker(encoded, is_jpeg)
    message = tf.strings.join(
        [
            where,
            tf.where(
                length == 0,
                ": empty bytes",
                tf.where(
                    known,
                    ": truncated image data (no JPEG end marker or PNG IEND chunk)",
                    tf.strings.format(
                        ": {} bytes that could not be decoded as JPEG/PNG/GIF/BMP", length
                    ),
                ),
            ),
        ]
    )
    check = tf.debugging.Assert((length > 0) & known & complete, [message])
    with tf.control_dependencies([check]):
        encoded = tf.identity(encoded)

    def check_size(height, width, applies=True):
        # The pixel limit of records.check_image_bytes, read from the header before
        # decoding, so serving refuses what the converters and predict refuse.
        height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
        message = tf.strings.format(
            "{}: the header declares {}x{} px, above the {} MP limit",
            (where, width, height, records.MAX_IMAGE_PIXELS // 10**6),
        )
        within = height * width <= records.MAX_IMAGE_PIXELS
        return tf.debugging.Assert(tf.logical_not(applies) | within, [message])

    def jpeg():
        shape = tf.io.extract_jpeg_shape(encoded)
        with tf.control_dependencies([check_size(shape[0], shape[1])]):
            # The accurate integer DCT is libjpeg's default (what cv2.imdecode uses);
            # TF's default (fast) DCT differs by up to ~20 levels.
            image = tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE")
        return apply_exif_orientation(image, exif_orientation(encoded))

    def other():
        # PNG: width and height are the big-endian uint32s at bytes 16-24 (IHDR).
        ihdr = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 16, 8), tf.uint8), tf.int64)
        ihdr = tf.pad(ihdr, [[0, 8 - tf.size(ihdr)]])
        powers = tf.constant([2**24, 2**16, 2**8, 1], tf.int64)
        width = tf.reduce_sum(ihdr[:4] * powers)
        height = tf.reduce_sum(ihdr[4:] * powers)
        with tf.control_dependencies([check_size(height, width, applies=is_png)]):
            image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
        image.set_shape([None, None, 3])
        return image

    image = tf.cond(is_jpeg, jpeg, other)
    image.set_shape([None, None, 3])
    return image


_decode_function = None


def read_image_bytes(data: bytes, name: str = "image") -> np.ndarray:
    """RGB uint8 (H, W, 3) from encoded bytes, decoded as the serving graph decodes them.

    JPEG and PNG bytes must first pass `records.check_image_bytes`, the one definition of a
    valid image that the converters and the training pipeline apply too. JPEG, PNG, GIF and
    BMP are then decoded by `decode_image_bytes` (the exported graph's decoder: grayscale
    expanded, alpha dropped, EXIF orientation applied). Other formats (WebP, TIFF, and BMP
    variants TensorFlow does not read) are predict-only and decoded with OpenCV.

    Raises:
        records.BadImageError: `"<name>: <why>."`.
    """
    global _decode_function
    data = bytes(data)
    if not data:
        raise records.BadImageError(name, "zero bytes")
    if data.startswith((records.JPEG_MAGIC, records.PNG_MAGIC)):
        records.check_image_bytes(data, name)
    if data.startswith(GRAPH_IMAGE_MAGICS):
        if _decode_function is None:
            _decode_function = tf.function(
                decode_image_bytes,
                input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string)],
                autograph=False,
            )
        try:
            return _decode_function(tf.constant(data), tf.constant(name)).numpy()
        except tf.errors.InvalidArgumentError as error:
            if data.startswith((records.JPEG_MAGIC, records.PNG_MAGIC)):
                raise records.BadImageError(name, records.tf_error_line(error)) from None
    import cv2

    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise records.BadImageError(name, "cannot read as an image (corrupt or unsupported)")
    return np.ascontiguousarray(image[..., ::-1])


def read_image(path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file (`read_image_bytes`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Image not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror}).") from None
    return read_image_bytes(data, str(path))


# --------------------------------------------------------------------------------------
# Person boxes -> crops (numpy in and out, the TF ops above inside)
# --------------------------------------------------------------------------------------


@tf.function(reduce_retracing=True, autograph=False)
def _crop_boxes(image, boxes, input_size, box_scale):
    return tf.map_fn(
        lambda box: crop_image(image, box, input_size, box_scale),
        boxes,
        fn_output_signature=(tf.float32, tf.float64),
    )


def crop_people(image, boxes=None, input_size: int = 256, box_scale: float = DEFAULT_BOX_SCALE):
    """One square crop per person box, as the network expects it (`crop_image`).

    Args:
        image: uint8 (H, W, 3) RGB.
        boxes: float (P, 4) person boxes (x0, y0, x1, y1) in image px, or None for one box
            covering the whole image.
        input_size: int. Side of the crops. Default 256.
        box_scale: float. Crop side = the box's longer side x box_scale
            (`transforms.center_and_scale_from_box`). Default `DataConfig.box_scale`, 1.25.

    Returns:
        (crops float32 (P, S, S, 3) of integers in [0, 255], crop_matrices float64 (P, 2, 3)
        image px -> input px). Outside the image the crop is black. Boxes are read at
        float32 precision, as the exported graph receives them.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must have shape (H, W, 3), received {image.shape}.")
    if boxes is None or len(boxes) == 0:
        boxes = full_image_box(*image.shape[:2])[None]
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim not in (1, 2) or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (P, 4) (x0, y0, x1, y1), received {boxes.shape}.")
    boxes = np.asarray([parse_box(box, "boxes") for box in boxes.reshape(-1, 4)])
    # At the precision of the serving signature's float32 `boxes`, so that a box gives the
    # same crop here and in the exported graph (the change is below 1e-4 px).
    boxes = boxes.astype(np.float32).astype(np.float64)
    if not box_scale > 0:
        raise ValueError(f"box_scale must be > 0, received {box_scale}.")
    crops, matrices = _crop_boxes(
        tf.constant(image, tf.uint8),
        tf.constant(boxes, tf.float64),
        int(input_size),
        float(box_scale),
    )
    return crops.numpy(), matrices.numpy()


# --------------------------------------------------------------------------------------
# Network, flip test and decoding
# --------------------------------------------------------------------------------------


def output_name_of(model) -> str:
    """The output used as the prediction: `model.prediction_name` (`refined` by default)."""
    name = getattr(model, "prediction_name", None)
    if name:
        return name
    names = list(getattr(model, "output_names", None) or [])
    if "refined" in names or not names:
        return "refined"
    return names[-1]


def input_size_of(model) -> int:
    """Side of the model's square input crop."""
    size = getattr(model, "input_size", None)
    if size:
        return int(size)
    return int(model.input_shape[1])


def prediction_of(outputs, name):
    """The heatmaps used as the prediction: `outputs[name]` of a dict, else the tensor."""
    if not isinstance(outputs, dict):
        return outputs
    if name not in outputs:
        raise ValueError(f"The model has no output {name!r}; outputs: {sorted(outputs)}.")
    return outputs[name]


def flip_back(heatmaps_of_mirrored, flip_index, shift_px: int = 0):
    """`decode.flip_back` in TF: mirror the width axis, swap left/right joints, shift."""
    maps = tf.gather(heatmaps_of_mirrored[:, :, ::-1], list(flip_index), axis=-1)
    if shift_px:
        maps = tf.pad(maps[:, :, :-shift_px], [[0, 0], [0, 0], [shift_px, 0], [0, 0]])
    return maps


def decode_heatmaps(heatmaps, refine: str = "quarter"):
    """`decode.decode_heatmaps` in TF for `"quarter"` and `"none"`.

    Heatmaps (B, H, W, J) float64 -> (keypoints heatmap px (B, J, 2) float64, scores (B, J)):
    the first maximum in row-major order (`decode.argmax_keypoints`), then a quarter pixel
    (`decode.QUARTER`) towards the higher neighbour on each axis where both neighbours
    exist (`decode.quarter_offset`).
    """
    if refine not in GRAPH_REFINEMENTS:
        raise ValueError(
            f"refine {refine!r} does not run in the graph; use one of {list(GRAPH_REFINEMENTS)} "
            "(DARK: decode.decode_heatmaps on the heatmaps)."
        )
    height, width, joints = heatmaps.shape[1], heatmaps.shape[2], heatmaps.shape[3]
    flat = tf.reshape(tf.transpose(heatmaps, [0, 3, 1, 2]), [-1, joints, height * width])
    index = tf.argmax(flat, axis=-1, output_type=tf.int32)
    scores = tf.reduce_max(flat, axis=-1)
    columns, rows = index % width, index // width
    keypoints = tf.cast(tf.stack([columns, rows], axis=-1), tf.float64)
    if refine == "none":
        return keypoints, scores

    def value(row, column):
        row = tf.clip_by_value(row, 0, height - 1)
        column = tf.clip_by_value(column, 0, width - 1)
        return tf.gather(flat, (row * width + column)[..., None], batch_dims=2)[..., 0]

    inner_x = (columns >= 1) & (columns <= width - 2)
    inner_y = (rows >= 1) & (rows <= height - 2)
    step_x = decode.QUARTER * tf.sign(value(rows, columns + 1) - value(rows, columns - 1))
    step_y = decode.QUARTER * tf.sign(value(rows + 1, columns) - value(rows - 1, columns))
    shift = tf.stack([tf.where(inner_x, step_x, 0.0), tf.where(inner_y, step_y, 0.0)], axis=-1)
    return keypoints + tf.cast(shift, tf.float64), scores


class CropPredictions(NamedTuple):
    """What `predict_crops` returns (also unpacks as a 3-tuple).

    Attributes:
        keypoints: float64 (B, J, 2). Image px.
        scores: float64 (B, J). The maximum of each joint's (flip-averaged) heatmap.
        heatmaps: float32 (B, H, W, J). The (flip-averaged) prediction heatmaps.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    heatmaps: np.ndarray


class Inference:
    """The inference stage around one Keras model: crops -> heatmaps -> keypoints.

    Args:
        model: keras.Model. RGB [0, 255] input (B, S, S, 3), heatmap outputs (B, H, H, J).
        joint_set: JointSet. `flip_index` for the flip test.
        output_name: str or None. Output to decode; None = `model.prediction_name`.

    The network is traced once (`network`); `predict` calls it eagerly and the exported
    graph calls it inside its signatures: the same ops either way.
    """

    def __init__(self, model, joint_set: JointSet, output_name: str | None = None):
        self.model = model
        self.joint_set = joint_set
        self.output_name = output_name or output_name_of(model)
        self.input_size = input_size_of(model)
        self.heatmap_size = int(prediction_of(model.output, self.output_name).shape[1])
        # One trace of the network, called by every caller (tracing it costs about a second
        # per 250 layers).
        self.network = tf.function(
            lambda crops: prediction_of(model(crops, training=False), self.output_name),
            input_signature=[
                tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)
            ],
            autograph=False,
        )

    def heatmaps(self, crops, flip: bool = False, flip_shift_px: int = 0):
        """float32 crops (B, S, S, 3) -> float64 heatmaps (B, H, H, J), flip-averaged.

        Mirroring the crop array is the crop made with `crop_matrix(..., flip=True)`.
        """
        crops = tf.convert_to_tensor(crops, tf.float32)
        if not flip:
            return tf.cast(self.network(crops), tf.float64)
        count = tf.shape(crops)[0]
        both = tf.cast(self.network(tf.concat([crops, crops[:, :, ::-1]], 0)), tf.float64)
        mirrored = flip_back(both[count:], self.joint_set.flip_index, flip_shift_px)
        return 0.5 * (both[:count] + mirrored)

    def __call__(self, crops, crop_matrices, flip=False, refine="quarter", flip_shift_px=0):
        """Crops and their image px -> input px matrices -> dict of float64 tensors:
        "keypoints" (B, J, 2) image px, "scores" (B, J), "heatmaps" (B, H, H, J)."""
        heatmaps = self.heatmaps(crops, flip, flip_shift_px)
        keypoints, scores = decode_heatmaps(heatmaps, refine)
        to_image = heatmap_to_image_matrices(crop_matrices, self.input_size, self.heatmap_size)
        return {
            "keypoints": apply_affine(to_image, keypoints),
            "scores": scores,
            "heatmaps": heatmaps,
        }

    def predict_crops(
        self,
        crops,
        crop_matrices,
        flip=False,
        refine="quarter",
        batch_size=32,
        flip_shift_px=0,
        sigma=1.0,
    ) -> CropPredictions:
        """Numpy in and out, batched; DARK (`refine="dark"`) runs numpy's `decode` on the
        heatmaps of this stage. See `predict_crops`."""
        crops = np.asarray(crops, dtype=np.float32)
        crop_matrices = np.asarray(crop_matrices, dtype=np.float64)
        size = self.input_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise ValueError(
                f"crops must have shape (B, {size}, {size}, 3), received {crops.shape}."
            )
        if crop_matrices.shape != (crops.shape[0], 2, 3):
            raise ValueError(
                f"crop_matrices must have shape ({crops.shape[0]}, 2, 3), received "
                f"{crop_matrices.shape}."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, received {batch_size}.")
        if refine not in decode.REFINEMENTS:
            raise ValueError(
                f"refine must be one of {list(decode.REFINEMENTS)}, received {refine!r}."
            )
        graph_refine = "none" if refine == "dark" else refine
        parts = {"keypoints": [], "scores": [], "heatmaps": []}
        for start in range(0, crops.shape[0], batch_size):
            stop = start + batch_size
            result = self(
                crops[start:stop], crop_matrices[start:stop], flip, graph_refine, flip_shift_px
            )
            for key, value in result.items():
                parts[key].append(value.numpy())
        if not parts["heatmaps"]:
            joints = self.joint_set.num_joints
            empty = np.zeros((0, self.heatmap_size, self.heatmap_size, joints))
            return CropPredictions(np.zeros((0, joints, 2)), np.zeros((0, joints)), empty)
        keypoints, scores, heatmaps = (np.concatenate(parts[key]) for key in parts)
        if refine == "dark":
            keypoints_heatmap_px, scores = decode.decode_heatmaps(heatmaps, "dark", sigma)
            keypoints = decode.heatmap_to_image(
                keypoints_heatmap_px, crop_matrices, size, self.heatmap_size
            )
        return CropPredictions(keypoints, scores, heatmaps.astype(np.float32))


def inference_of(model, joint_set: JointSet, output_name: str | None = None) -> Inference:
    """The `Inference` of `model`, made once per model, joint set and output and kept on
    the model (so the network is traced once, not at every call)."""
    cache = model.__dict__.setdefault("_pose_keras_inference", {})
    key = (tuple(joint_set.flip_index), output_name or output_name_of(model))
    if key not in cache:
        cache[key] = Inference(model, joint_set, output_name)
    return cache[key]


def predict_crops(
    model,
    crops,
    crop_matrices,
    joint_set: JointSet,
    flip: bool = False,
    refine: str = "quarter",
    batch_size: int = 32,
    flip_shift_px: int = 0,
    sigma: float = 1.0,
    output_name: str | None = None,
) -> CropPredictions:
    """Run the model on person crops and return keypoints in image px.

    Args:
        model: keras.Model. A `MultiScaleHourglass` (or any model with an RGB [0, 255]
            input and heatmap outputs, (B, H, W, J) channels-last).
        crops: float (B, S, S, 3). RGB crops in [0, 255].
        crop_matrices: float (B, 2, 3). Image px -> input px of each crop.
        joint_set: JointSet. `flip_index` for the flip test.
        flip: bool. Flip test: also run the mirrored crops, mirror their heatmaps back
            (joints swapped) and average (`decode.average_flip`). Default False.
        refine: str. `"quarter"`, `"dark"` or `"none"` (`decode.decode_heatmaps`).
            Default "quarter".
        batch_size: int. Crops per model call (twice as many images with `flip`).
            Default 32.
        flip_shift_px: int. Shift of the unflipped heatmaps (0 is exact in our frames;
            see `decode.flip_back`). Default 0.
        sigma: float. Training Gaussian sigma (DARK). Default 1.
        output_name: str or None. Output to decode; None = `model.prediction_name`.

    Returns:
        CropPredictions(keypoints (B, J, 2) image px, scores (B, J), heatmaps).
    """
    return inference_of(model, joint_set, output_name).predict_crops(
        crops, crop_matrices, flip, refine, batch_size, flip_shift_px, sigma
    )


# --------------------------------------------------------------------------------------
# A model over a TFRecord split
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class ModelPredictions:
    """Per-person results of `predict_split`, in record order (image px, 0-based).

    `require_annotations` is the option the split was read with: False (prediction-only
    records, e.g. the MPII test split) means there may be no ground truth to score.
    """

    keypoints: np.ndarray  # (N, J, 2) predicted
    scores: np.ndarray  # (N, J)
    ground_truth: np.ndarray  # (N, J, 2)
    visibility: np.ndarray  # (N, J) 0 / 1 / 2
    head_boxes: np.ndarray  # (N, 4)
    record_normalizers: np.ndarray  # (N,)
    image_ids: list
    person_ids: np.ndarray
    require_annotations: bool = True


def protocol_joint_set(declared: JointSet) -> JointSet:
    """The built-in joint set of the same name and joints (current protocol data), else
    the declared one (custom datasets keep the groups of their manifest)."""
    try:
        built_in = get_joint_set(declared.name)
    except ValueError:
        return declared
    return built_in if built_in.names == declared.names else declared


def score_model_predictions(
    predictions: ModelPredictions, joint_set: JointSet, threshold=None, head_column=None
):
    """Score `predict_split`'s output by the protocol of `joint_set` (`metrics.Evaluation`).

    `head_column`: `metrics.HEAD_COLUMNS` (None = the official kit's). Predictions of a
    split read with `require_annotations=False` are refused: such records need not carry
    the ground truth a score needs.
    """
    from pose_keras import metrics

    if not predictions.require_annotations:
        raise ValueError(
            "these predictions come from records read with require_annotations=False "
            "(prediction-only data); scoring needs a split with annotated joints, read "
            "with the default require_annotations=True."
        )
    joint_set = protocol_joint_set(joint_set)
    normalizers = metrics.person_normalizers(
        joint_set,
        predictions.ground_truth,
        predictions.visibility,
        head_boxes=predictions.head_boxes,
        record_normalizers=predictions.record_normalizers,
    )
    return metrics.evaluate_keypoints(
        predictions.keypoints,
        predictions.ground_truth,
        predictions.visibility,
        normalizers,
        joint_set,
        threshold=threshold,
        head_column=head_column or metrics.OFFICIAL_HEAD,
    )


def predict_split(
    run,
    pattern,
    flip=False,
    refine="quarter",
    batch_size=32,
    flip_shift_px=0,
    progress=True,
    require_annotations=True,
) -> tuple[ModelPredictions, JointSet]:
    """Run a loaded model (`runs.load_run`) over every person of a TFRecord split.

    The crops are the pipeline's (`pipeline.validation_dataset`: one pass in record order,
    no augmentation); the rest is `predict_crops`. `require_annotations=False` accepts
    records without an annotated joint (prediction-only data: the MPII test split of
    `python -m pose_keras.submission`); `score_model_predictions` refuses its result.

    Returns:
        (ModelPredictions, the split's joint set).
    """
    from pose_keras import pipeline
    from pose_keras.cli import ProgressBar
    from pose_keras.config import Config, ModelConfig

    split = records.resolve_split(pattern)
    if split.joint_set.names != run.joint_set.names:
        raise ValueError(
            f"{pattern}: the records hold joint set {split.joint_set.name!r} "
            f"({split.joint_set.num_joints} joints) but the model predicts "
            f"{run.joint_set.name!r} ({run.joint_set.num_joints} joints)."
        )
    base = run.config or Config()
    model_config = getattr(run.model, "model_config", None) or ModelConfig(
        input_size=input_size_of(run.model), num_joints=run.joint_set.num_joints
    )
    config = Config(
        model=model_config,
        data=dataclasses.replace(base.data, joints="auto", val_records=str(pattern)),
        train=dataclasses.replace(base.train, batch_size=batch_size),
    )
    dataset = pipeline.validation_dataset(
        config, str(pattern), batch_size=batch_size, require_annotations=require_annotations
    )
    stage = inference_of(run.model, split.joint_set)
    collected = {
        key: [] for key in ModelPredictions.__dataclass_fields__ if key != "require_annotations"
    }
    bar = ProgressBar(split.count, "people", enabled=progress)
    try:
        for images, meta in dataset:
            result = stage.predict_crops(
                images.numpy(),
                meta["crop_matrix"].numpy(),
                flip=flip,
                refine=refine,
                batch_size=batch_size,
                flip_shift_px=flip_shift_px,
                sigma=config.data.sigma,
            )
            collected["keypoints"].append(result.keypoints)
            collected["scores"].append(result.scores)
            collected["ground_truth"].append(meta["keypoints"].numpy().astype(np.float64))
            collected["visibility"].append(meta["visibility"].numpy().astype(np.int64))
            collected["head_boxes"].append(meta["head_box"].numpy().astype(np.float64))
            collected["record_normalizers"].append(meta["normalize"].numpy().astype(np.float64))
            collected["image_ids"] += [value.decode() for value in meta["image_id"].numpy()]
            collected["person_ids"].append(meta["person_id"].numpy())
            bar.update(len(result.keypoints))
    except tf.errors.OpError as error:
        # The pipeline stops at a bad record with `Bad input: <shard> record <i>: <why>`.
        raise ValueError(
            pipeline.describe_data_error(error) or records.tf_error_line(error)
        ) from None
    finally:
        bar.close()
    if not collected["keypoints"]:
        raise ValueError(f"{pattern}: the split holds no people.")
    arrays = {
        key: (values if key == "image_ids" else np.concatenate(values))
        for key, values in collected.items()
    }
    return (
        ModelPredictions(**arrays, require_annotations=bool(require_annotations)),
        split.joint_set,
    )
