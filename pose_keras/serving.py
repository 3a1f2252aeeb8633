"""The exported model: a SavedModel for TF Serving, ONNX and TFLite (`python -m pose_keras.export`).

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
the bytes (empty, unknown format, truncated JPEG/PNG fail with `images[i]: ...`), then the
inference stage of `pose_keras.inference`, the same code `predict` runs: decoding
(`decode_image_bytes`: JPEG with the accurate integer DCT and the EXIF orientation applied,
grayscale -> RGB, alpha dropped), the box -> crop of `crop_image` (side = longer side x
`box_scale`, a bilinear warp with a black border rounded to integers), and `Inference`: the
model, the optional flip test, arg-max + quarter-pixel refinement and the back-projection to
image px. So the SavedModel and `predict` give the same keypoints on the same image
(tests/test_export.py checks it on the real images of ../shared/data).

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

>>> graph = ServingGraph(run.model, run.joint_set, box_scale=run.box_scale)  # doctest: +SKIP
>>> export_saved_model(graph, Path("export/pose/1"), source=run.path)  # doctest: +SKIP
PosixPath('export/pose/1')
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import tensorflow as tf

from pose_keras import files, inference
from pose_keras.inference import GRAPH_REFINEMENTS

SIGNATURE_IMAGES = "serving_default"
SIGNATURE_WHOLE = "serving_images"
SIGNATURE_CROPS = "serving_crops"
FORMATS = ("savedmodel", "onnx", "tflite")
METADATA_NAME = "pose_keras.json"


# --------------------------------------------------------------------------------------
# The serving graph
# --------------------------------------------------------------------------------------


class ServingGraph:
    """The TF functions behind the exported signatures, around one Keras model.

    Everything between the request and the response is `pose_keras.inference`, the code
    `predict` runs: `decode_image_bytes`, `crop_image`, and `Inference` (network, flip
    test, decoding, back-projection). This class adds the request checks and the
    signatures.

    Args:
        model: keras.Model. RGB [0, 255] input (B, S, S, 3), heatmap outputs.
        joint_set: JointSet. Joint names and `flip_index`.
        box_scale: float. Crop side = the box's longer side x this (`inference.crop_people`).
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
        self.inference = inference.inference_of(model, joint_set)
        self.input_size = self.inference.input_size
        self.heatmap_size = self.inference.heatmap_size

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
        """One request row -> (crop float32 (S, S, 3), crop matrix float64 (2, 3))."""
        image = inference.decode_image_bytes(encoded, tf.strings.format("images[{}]", index))
        box = tf.cast(box, tf.float64)
        whole = inference.whole_image_box(tf.shape(image)[0], tf.shape(image)[1])
        box = tf.where(tf.reduce_all(tf.equal(box, 0.0)), whole, box)
        return inference.crop_image(image, box, self.input_size, self.box_scale)

    def crops_from_bytes(self, images, boxes):
        """(B,) bytes, (B, 4) boxes -> crops (B, S, S, 3), crop matrices (B, 2, 3)."""
        with tf.control_dependencies(self.check_boxes(images, boxes)):
            images = tf.identity(images)
            boxes = tf.identity(boxes)
        size = self.input_size
        return tf.map_fn(
            lambda row: self.crop_one(row[0], row[1], row[2]),
            (images, boxes, tf.range(tf.shape(images)[0])),
            fn_output_signature=(
                tf.TensorSpec([size, size, 3], tf.float32),
                tf.TensorSpec([2, 3], tf.float64),
            ),
        )

    # --- the signatures ----------------------------------------------------------------

    def serve_images(self, images, boxes):
        # The signature's shapes are not checked when a request is fed: check them here.
        images = tf.ensure_shape(images, [None], name="check_images_shape")
        boxes = tf.ensure_shape(boxes, [None, 4], name="check_boxes_shape")
        crops, crop_matrices = self.crops_from_bytes(images, boxes)
        result = self.inference(crops, crop_matrices, self.flip, self.refine)
        names = (
            ("keypoints", "scores", "heatmaps") if self.with_heatmaps else ("keypoints", "scores")
        )
        return {name: tf.cast(result[name], tf.float32) for name in names}

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
        # Crop px out: the identity as the crop matrix.
        identity = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], tf.float64)
        crop_matrices = tf.broadcast_to(identity, [tf.shape(crops)[0], 2, 3])
        result = self.inference(crops, crop_matrices, self.flip, self.refine)
        return {name: tf.cast(value, tf.float32) for name, value in result.items()}

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

    with files.atomic_dir(target, overwrite) as directory:
        write(directory)
    return target


def heatmap_model(model):
    """The crops -> heatmaps part of `model` (its prediction output only), for ONNX/TFLite."""
    import keras

    heatmaps = inference.prediction_of(model.output, inference.output_name_of(model))
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

    with files.atomic_dir(target, overwrite) as directory:
        write(directory)
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

    with files.atomic_dir(target, overwrite) as directory:
        write(directory)
    return target / "model.tflite"


EXPORTERS = {"savedmodel": export_saved_model, "onnx": export_onnx, "tflite": export_tflite}
NAME_SUFFIX = {"savedmodel": "", "onnx": "_onnx", "tflite": "_tflite"}
# A model name is a folder name TF Serving and Triton accept.
NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"


def model_name(name, model_path, format: str = "savedmodel", what: str = "--name") -> str:
    """The folder name of an export: `name` (or `default_name(model_path)`) plus the
    format's suffix; a ValueError naming `what` when it is not a valid folder name."""
    if format not in EXPORTERS:
        raise ValueError(f"format must be one of {sorted(EXPORTERS)}, received {format!r}.")
    name = (name or default_name(model_path)) + NAME_SUFFIX[format]
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"{what} must be letters, digits, '_', '.', '-', received {name!r}.")
    return name
