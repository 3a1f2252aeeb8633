"""`python -m pose_keras.export`: SavedModel for TF Serving, ONNX and TFLite.

The SavedModel carries the whole inference of `python -m pose_keras.predict` as TF ops, so
a client sends only encoded image bytes (and optional person boxes):

- `serving_default`: `images` string (B,) JPEG/PNG/GIF/BMP bytes and `boxes` float32
  (B, 4) person boxes [x0, y0, x1, y1] in image px (a row of zeros = the whole image) ->
  `keypoints` float32 (B, J, 2) in image px (0-based pixel centres), `scores` float32
  (B, J), and with `--heatmaps` also `heatmaps` float32 (B, H, H, J). Each row is one
  person: for several people in one image, repeat its bytes with each box.
- `serving_images`: `images` only, each one person filling the whole image (TF Serving
  has no optional inputs), same outputs.
- `serving_crops`: `crops` float32 (B, S, S, 3), RGB 0-255 person crops as the network
  takes them -> `heatmaps` (B, H, H, J), `keypoints` (B, J, 2) in crop px, `scores` (B, J).

Inside `serving_default`, per image (`tf.map_fn`, so images may differ in size): checks of
the bytes (empty, unknown format, truncated JPEG/PNG fail with `images[i]: ...`), decoding
(JPEG with the accurate integer DCT and the EXIF orientation applied, as `cv2.imdecode`
does in `predict.read_image`; grayscale -> RGB, alpha dropped), the box -> crop matrix of
`predict.crop_people` (`transforms.center_and_scale_from_box`, side = longer side x
`box_scale`, computed by `pipeline.crop_matrix`), a bilinear warp with a black border
(`pipeline.warp_image`, rounded to integers as `cv2.warpAffine` does on uint8 images). Then
the model, the optional flip test (`decode.flip_back`'s mirror and joint swap), arg-max +
quarter-pixel refinement (`decode.QUARTER`, the rule of `decode.quarter_offset`) and the
back-projection of `decode.heatmap_to_image_matrices`. The geometry and decoding are the
same as `predict`'s (tests/test_export.py checks keypoints agree within 0.5 px on the real
images of ../shared/data).

Layout (TF Serving): `OUT/<name>/<version>/saved_model.pb`, `variables/`, and
`assets.extra/pose_keras.json` (joint names, sizes, settings; TF Serving ignores it). The
version is the next free integer unless `--version` is given; an existing version is kept
unless `--overwrite`. The export is written beside the target (`.<version>.partial-*`,
which TF Serving does not take for a version) and renamed into place.

ONNX (`--format onnx`) and TFLite (`--format tflite`) hold the crops -> heatmaps network
(the `refined` output, no flip test); they go to `OUT/<name>_onnx/<version>/model.onnx`
(the Triton model-repository layout) and `OUT/<name>_tflite/<version>/model.tflite`, each
with `pose_keras.json` beside it.

Examples:

    python -m pose_keras.export --model runs/mpii --out export
    python -m pose_keras.export --model runs/mpii/best.keras --out export --name pose \\
        --flip --heatmaps --version 3
    python -m pose_keras.export --model runs/mpii --out export --format onnx
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import tensorflow as tf  # noqa: E402

from pose_keras import decode, files, pipeline, records, runs  # noqa: E402
from pose_keras.predict import input_size_of, output_name_of  # noqa: E402
from pose_keras.transforms import resize_matrix  # noqa: E402

SIGNATURE_IMAGES = "serving_default"
SIGNATURE_WHOLE = "serving_images"
SIGNATURE_CROPS = "serving_crops"
FORMATS = ("savedmodel", "onnx", "tflite")
# DARK needs a Gaussian blur and a log per map; only these two run inside the graph.
GRAPH_REFINEMENTS = ("quarter", "none")
METADATA_NAME = "pose_keras.json"
# EXIF: the APP1 segment sits right after SOI (Exif 2.3, 4.5.4), or after a JFIF APP0;
# look for its header in the first bytes, read IFD0 within the first 64 KiB (one APP1
# segment at most), and at most this many IFD0 entries (a camera writes about 10).
EXIF_HEADER_WITHIN = 4096
EXIF_SEARCH_BYTES = 65536
EXIF_MAX_ENTRIES = 64
EXIF_ORIENTATION_TAG = 0x0112


# --------------------------------------------------------------------------------------
# Decoding bytes, inside the graph
# --------------------------------------------------------------------------------------


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
    is_jpeg = _starts_with(head, b"\xff\xd8\xff")
    is_png = _starts_with(head, b"\x89PNG\r\n\x1a\n")
    known = is_jpeg | is_png | _starts_with(head, b"GIF8") | _starts_with(head, b"BM")
    complete = tf.logical_not(is_jpeg | is_png) | pipeline.has_end_marker(encoded, is_jpeg)
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
            # The accurate integer DCT is libjpeg's default and what cv2.imdecode uses;
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


# --------------------------------------------------------------------------------------
# The serving graph
# --------------------------------------------------------------------------------------


def _compose(outer, inner):
    """outer (B, 2, 3) o inner (2, 3) constant, float64: the matrix of outer(inner(p))."""
    inner = tf.constant(inner, tf.float64)
    linear = tf.einsum("bij,jk->bik", outer[..., :2], inner[:, :2])
    translation = tf.einsum("bij,j->bi", outer[..., :2], inner[:, 2]) + outer[..., 2]
    return tf.concat([linear, translation[..., None]], axis=-1)


def _apply(matrices, points):
    """matrices (B, 2, 3), points (B, J, 2) -> (B, J, 2)."""
    return tf.einsum("bjk,bik->bji", points, matrices[..., :2]) + matrices[:, None, :, 2]


def prediction_of(outputs, name):
    """The heatmaps used as the prediction: `outputs[name]` of a dict, else the tensor."""
    return outputs[name] if isinstance(outputs, dict) else outputs


class ServingGraph:
    """The TF functions behind the exported signatures, around one Keras model.

    Args:
        model: keras.Model. RGB [0, 255] input (B, S, S, 3), heatmap outputs.
        joint_set: JointSet. Joint names and `flip_index`.
        box_scale: float. Crop side = the box's longer side x this (`predict.crop_people`).
        flip: bool. Flip test inside the graph. Default False.
        refine: str. "quarter" or "none". Default "quarter".
        heatmaps: bool. Also return `heatmaps` from `serving_default`. Default False.
    """

    def __init__(self, model, joint_set, box_scale, flip=False, refine="quarter", heatmaps=False):
        if refine not in GRAPH_REFINEMENTS:
            raise ValueError(
                f"refine {refine!r} is not available inside the exported graph; use one of "
                f"{list(GRAPH_REFINEMENTS)}."
            )
        if not box_scale > 0:
            raise ValueError(f"box_scale must be > 0, received {box_scale}.")
        self.model = model
        self.joint_set = joint_set
        self.box_scale = float(box_scale)
        self.flip = bool(flip)
        self.refine = refine
        self.with_heatmaps = bool(heatmaps)
        self.output_name = output_name_of(model)
        self.input_size = input_size_of(model)
        self.heatmap_size = int(prediction_of(model.output, self.output_name).shape[1])
        self.num_joints = joint_set.num_joints
        # One trace of the network, called by every signature (tracing it per signature
        # costs about a second per 250 layers).
        self.network = tf.function(
            lambda crops: prediction_of(model(crops, training=False), self.output_name),
            input_signature=[
                tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)
            ],
            autograph=False,
        )

    # --- network and decoding --------------------------------------------------------

    def heatmaps(self, crops):
        """float32 crops (B, S, S, 3) -> float64 heatmaps (B, H, H, J), flip-averaged."""
        if not self.flip:
            return tf.cast(self.network(crops), tf.float64)
        count = tf.shape(crops)[0]
        both = tf.cast(self.network(tf.concat([crops, crops[:, :, ::-1]], 0)), tf.float64)
        # decode.flip_back with shift_px=0: mirror the width axis and swap left/right.
        mirrored = tf.gather(both[count:, :, ::-1], list(self.joint_set.flip_index), axis=-1)
        return 0.5 * (both[:count] + mirrored)

    def decode(self, heatmaps):
        """Heatmaps (B, H, W, J) float64 -> (keypoints heatmap px (B, J, 2) float64, scores).

        `decode.argmax_keypoints` then `decode.quarter_offset`: the first maximum in
        row-major order, then a quarter pixel (`decode.QUARTER`) towards the higher
        neighbour on each axis where both neighbours exist.
        """
        height, width = heatmaps.shape[1], heatmaps.shape[2]
        flat = tf.reshape(
            tf.transpose(heatmaps, [0, 3, 1, 2]), [-1, self.num_joints, height * width]
        )
        index = tf.argmax(flat, axis=-1, output_type=tf.int32)
        scores = tf.reduce_max(flat, axis=-1)
        columns, rows = index % width, index // width
        keypoints = tf.cast(tf.stack([columns, rows], axis=-1), tf.float64)
        if self.refine == "none":
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
        return keypoints + shift, scores

    # --- bytes -> crops ----------------------------------------------------------------

    def check_boxes(self, images, boxes):
        """Assertions on the request: one box per image, finite, x1 > x0 and y1 > y0."""
        count = tf.shape(images)[0]
        # The network cannot run on an empty batch (oneDNN's batch norm rejects it).
        some = tf.debugging.Assert(count > 0, ["images is empty: send at least one image"])
        same = tf.debugging.Assert(
            tf.equal(count, tf.shape(boxes)[0]),
            [
                tf.strings.format(
                    "boxes must be [batch, 4] float32, one row per image: received {} images "
                    "and {} boxes",
                    (count, tf.shape(boxes)[0]),
                )
            ],
        )
        whole = tf.reduce_all(tf.equal(boxes, 0.0), axis=-1)
        valid = whole | ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
        valid &= tf.reduce_all(tf.math.is_finite(boxes), axis=-1)
        # The first invalid row (the padding row B when all are valid, or the batch is empty).
        first_bad = tf.argmin(
            tf.cast(tf.concat([valid, [False]], axis=0), tf.int32), output_type=tf.int32
        )
        padded = tf.concat([boxes, tf.zeros([1, 4], boxes.dtype)], axis=0)
        ordered = tf.debugging.Assert(
            tf.reduce_all(valid),
            [
                tf.strings.format(
                    "boxes[{}] = {} is not a box: boxes are [x0, y0, x1, y1] in image px with "
                    "x1 > x0 and y1 > y0 (a row of zeros = the whole image)",
                    (first_bad, padded[first_bad]),
                    summarize=4,
                )
            ],
        )
        return [some, same, ordered]

    def crop_one(self, encoded, box, index):
        """One request row -> (crop float32 (S, S, 3), heatmap px -> image px matrix)."""
        image = decode_image_bytes(encoded, tf.strings.format("images[{}]", index))
        height = tf.cast(tf.shape(image)[0], tf.float64)
        width = tf.cast(tf.shape(image)[1], tf.float64)
        box = tf.cast(box, tf.float64)
        # predict.full_image_box: pixel edges of the whole image.
        whole = tf.stack([-0.5, -0.5, width - 0.5, height - 0.5])
        box = tf.where(tf.reduce_all(tf.equal(box, 0.0)), whole, box)
        # transforms.center_and_scale_from_box + box_px_from_scale: 200 x scale = longer side.
        center = 0.5 * (box[:2] + box[2:])
        box_px = tf.maximum(box[2] - box[0], box[3] - box[1]) * self.box_scale
        matrix = pipeline.crop_matrix(center, box_px, self.input_size)
        crop = pipeline.warp_image(tf.cast(image, tf.float32), matrix, self.input_size)
        # cv2.warpAffine on a uint8 image rounds to the nearest integer (predict's crops).
        crop = tf.clip_by_value(tf.round(crop), 0.0, 255.0)
        inverse = tf.cast(pipeline.invert_affine(matrix), tf.float64)
        return crop, inverse

    def crops_from_bytes(self, images, boxes):
        """(B,) bytes, (B, 4) boxes -> crops (B, S, S, 3), heatmap px -> image px (B, 2, 3)."""
        with tf.control_dependencies(self.check_boxes(images, boxes)):
            images = tf.identity(images)
            boxes = tf.identity(boxes)
        count = tf.shape(images)[0]
        size = self.input_size
        crops, inverses = tf.map_fn(
            lambda row: self.crop_one(row[0], row[1], row[2]),
            (images, boxes, tf.range(count)),
            fn_output_signature=(
                tf.TensorSpec([size, size, 3], tf.float32),
                tf.TensorSpec([2, 3], tf.float64),
            ),
        )
        # decode.heatmap_to_image_matrices: crop^-1 o resize(heatmap -> input).
        to_image = _compose(inverses, resize_matrix(self.heatmap_size, size))
        return crops, to_image

    # --- the signatures ----------------------------------------------------------------

    def serve_images(self, images, boxes):
        # The signature's shapes are not checked when a request is fed: check them here.
        images = tf.ensure_shape(images, [None], name="check_images_shape")
        boxes = tf.ensure_shape(boxes, [None, 4], name="check_boxes_shape")
        crops, to_image = self.crops_from_bytes(images, boxes)
        heatmaps = self.heatmaps(crops)
        keypoints, scores = self.decode(heatmaps)
        outputs = {
            "keypoints": tf.cast(_apply(to_image, keypoints), tf.float32),
            "scores": tf.cast(scores, tf.float32),
        }
        if self.with_heatmaps:
            outputs["heatmaps"] = tf.cast(heatmaps, tf.float32)
        return outputs

    def serve_whole_images(self, images):
        images = tf.ensure_shape(images, [None], name="check_images_shape")
        return self.serve_images(images, tf.zeros([tf.shape(images)[0], 4], tf.float32))

    def serve_crops(self, crops):
        size = self.input_size
        crops = tf.ensure_shape(crops, [None, size, size, 3], name="check_crops_shape")
        checks = [
            tf.debugging.Assert(tf.shape(crops)[0] > 0, ["crops is empty: send at least one"]),
            tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(crops)), ["crops must be finite (RGB 0-255)"]
            ),
        ]
        with tf.control_dependencies(checks):
            crops = tf.identity(crops)
        heatmaps = self.heatmaps(crops)
        keypoints, scores = self.decode(heatmaps)
        to_input = tf.constant(resize_matrix(self.heatmap_size, self.input_size), tf.float64)
        count = tf.shape(crops)[0]
        keypoints = _apply(tf.broadcast_to(to_input, [count, 2, 3]), keypoints)
        return {
            "heatmaps": tf.cast(heatmaps, tf.float32),
            "keypoints": tf.cast(keypoints, tf.float32),
            "scores": tf.cast(scores, tf.float32),
        }

    def input_signatures(self):
        size = self.input_size
        return {
            SIGNATURE_IMAGES: [
                tf.TensorSpec([None], tf.string, name="images"),
                tf.TensorSpec([None, 4], tf.float32, name="boxes"),
            ],
            SIGNATURE_WHOLE: [tf.TensorSpec([None], tf.string, name="images")],
            SIGNATURE_CROPS: [tf.TensorSpec([None, size, size, 3], tf.float32, name="crops")],
        }

    def metadata(self, source) -> dict:
        """What a client needs beside the signatures: joint names, sizes, settings."""
        return {
            "source": str(source),
            "joint_set": self.joint_set.name,
            "joint_names": list(self.joint_set.names),
            "input_size": self.input_size,
            "heatmap_size": self.heatmap_size,
            "box_scale": self.box_scale,
            "flip_test": self.flip,
            "refine": self.refine,
            "heatmaps_in_serving_default": self.with_heatmaps,
            "coordinates": "image px (crop px for serving_crops), 0-based pixel centres",
            "whole_image_box": [0.0, 0.0, 0.0, 0.0],
        }


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def default_name(path) -> str:
    """Model name from a run directory (its name) or a `.keras` file (its run dir's name)."""
    path = Path(path).resolve()
    if path.is_file():
        path = path.parent if (path.parent / "config.json").exists() else path.with_suffix("")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name).strip("._")
    return name or "pose"


def resolve_version(model_dir: Path, version=None, overwrite=False) -> int:
    """The version to write: `version`, or the next free integer (1 in an empty folder)."""
    existing = []
    if model_dir.is_dir():
        existing = [int(child.name) for child in model_dir.iterdir() if child.name.isdigit()]
    if version is None:
        version = max(existing, default=0) + 1
    if version < 1:
        raise ValueError(f"--version must be a positive integer, received {version}.")
    target = model_dir / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} exists; pass --overwrite to replace it, or another --version "
            f"(next free: {max(existing, default=0) + 1})."
        )
    return version


def _write_atomic_dir(target: Path, write, overwrite: bool):
    """Run `write(temporary_dir)` beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        write(temporary)
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} appeared while exporting; not replaced.")
            os.replace(target, old)
        os.replace(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def build_module(graph: ServingGraph):
    """A trackable holding the model's variables, and the three signatures.

    Returns:
        (module, signatures dict name -> concrete function), `serving_default` first.
    """
    module = tf.Module(name="pose_keras_serving")
    # The tf.Variables under the Keras variables: tracking the Keras objects themselves
    # makes saving walk every layer (seconds, and nothing of them is needed to serve).
    module.model_variables = [variable.value for variable in graph.model.variables]
    specs = graph.input_signatures()
    # Concrete functions only, traced once here: a tf.function attached to the module
    # would be traced again inside the save context.
    signatures = {
        SIGNATURE_IMAGES: tf.function(
            graph.serve_images, input_signature=specs[SIGNATURE_IMAGES], autograph=False
        ).get_concrete_function(),
        SIGNATURE_WHOLE: tf.function(
            graph.serve_whole_images, input_signature=specs[SIGNATURE_WHOLE], autograph=False
        ).get_concrete_function(),
        SIGNATURE_CROPS: tf.function(
            graph.serve_crops, input_signature=specs[SIGNATURE_CROPS], autograph=False
        ).get_concrete_function(),
    }
    return module, signatures


def export_saved_model(graph: ServingGraph, target: Path, source="", overwrite=False) -> Path:
    """Write the SavedModel of `graph` to `target` (a version directory)."""

    def write(directory: Path):
        module, signatures = build_module(graph)
        tf.saved_model.save(module, str(directory), signatures=signatures)
        extra = directory / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / METADATA_NAME).write_text(json.dumps(graph.metadata(source), indent=1) + "\n")

    _write_atomic_dir(target, write, overwrite)
    return target


def heatmap_model(model):
    """The crops -> heatmaps part of `model` (its prediction output only), for ONNX/TFLite."""
    import keras

    heatmaps = prediction_of(model.output, output_name_of(model))
    return keras.Model(model.inputs, heatmaps, name="heatmaps")


def export_onnx(graph: ServingGraph, target: Path, source="", overwrite=False) -> Path:
    """`target/model.onnx`: `crops` (B, S, S, 3) float32 -> `heatmaps` (B, H, H, J)."""
    import onnx

    size = graph.input_size
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="crops")
    network = heatmap_model(graph.model)

    def write(directory: Path):
        directory.mkdir(parents=True)
        path = directory / "model.onnx"
        network.export(str(path), format="onnx", input_signature=[spec], verbose=False)
        # tf2onnx names the output after the graph's last op ("Identity:0").
        proto = onnx.load(str(path))
        old = proto.graph.output[0].name
        for node in proto.graph.node:
            node.output[:] = ["heatmaps" if name == old else name for name in node.output]
        proto.graph.output[0].name = "heatmaps"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(path))
        (directory / METADATA_NAME).write_text(json.dumps(graph.metadata(source), indent=1) + "\n")

    _write_atomic_dir(target, write, overwrite)
    return target / "model.onnx"


def export_tflite(graph: ServingGraph, target: Path, source="", overwrite=False) -> Path:
    """`target/model.tflite`: crops (B, S, S, 3) float32 -> heatmaps (B, H, H, J), float32.

    Converted with `tf.lite.TFLiteConverter.from_keras_model` (deprecated in TF 2.20 in
    favour of LiteRT, still shipped with TF 2.21). Converting from a concrete function
    instead gave NaN heatmaps here.
    """
    converted = tf.lite.TFLiteConverter.from_keras_model(heatmap_model(graph.model)).convert()

    def write(directory: Path):
        directory.mkdir(parents=True)
        (directory / "model.tflite").write_bytes(converted)
        (directory / METADATA_NAME).write_text(json.dumps(graph.metadata(source), indent=1) + "\n")

    _write_atomic_dir(target, write, overwrite)
    return target / "model.tflite"


EXPORTERS = {"savedmodel": export_saved_model, "onnx": export_onnx, "tflite": export_tflite}
NAME_SUFFIX = {"savedmodel": "", "onnx": "_onnx", "tflite": "_tflite"}


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
    parser.add_argument(
        "--flip", action="store_true", help="Put the flip test in the graph (twice the compute)."
    )
    parser.add_argument(
        "--refine",
        choices=GRAPH_REFINEMENTS,
        default="quarter",
        help="Sub-pixel refinement inside the graph: quarter-pixel shift (default) or none.",
    )
    parser.add_argument(
        "--box-scale",
        type=float,
        default=None,
        help="Crop side = box's longer side x this (default: the run's data.box_scale, 1.25).",
    )
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
        if args.box_scale is not None and not args.box_scale > 0:
            raise ValueError(f"--box-scale must be > 0, received {args.box_scale}.")
        if not Path(args.model).exists():
            raise FileNotFoundError(f"Model not found: {args.model}")
        name = (args.name or default_name(args.model)) + NAME_SUFFIX[args.format]
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise ValueError(f"--name must be letters, digits, '_', '.', '-', received {name!r}.")
        model_dir = Path(args.out) / name
        files.check_output_dir(model_dir, "--out")
        version = resolve_version(model_dir, args.version, args.overwrite)
        target = model_dir / str(version)
        from pose_keras.runs import load_run

        print(f"Loading {args.model} ...", file=sys.stderr)
        run = load_run(args.model, joints=args.joints, prefer=args.prefer)
        box_scale = args.box_scale or (run.config.data.box_scale if run.config else 1.25)
        graph = ServingGraph(
            run.model,
            run.joint_set,
            box_scale=box_scale,
            flip=args.flip,
            refine=args.refine,
            heatmaps=args.heatmaps,
        )
        print(f"Exporting {args.format} to {target} ...", file=sys.stderr)
        path = EXPORTERS[args.format](graph, target, source=run.path, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk or a vanished folder while writing
        print(f"error: {files.describe_os_error(error)}", file=sys.stderr)
        return 1
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
