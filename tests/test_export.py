"""`python -m pose_keras.export`: the SavedModel for TF Serving, ONNX and TFLite.

One tiny model is exported once (module fixtures) and checked against
`python -m pose_keras.predict` on the real images of ../shared/data: both run the code of
`pose_keras.inference`, so the keypoints are the same (to float32 rounding, 1e-3 px) and the
scores too, with and without the flip test, including PNG (grayscale, alpha), BMP and
EXIF-rotated JPEG inputs. Also: bad requests fail with clear messages, `saved_model_cli`
lists the signatures, the README's REST example matches the signature and runs, the
TF Serving layout and versioning, ONNX (onnxruntime) and TFLite parity.
"""

import base64
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from conftest import seed_everything

from pose_keras import decode, export, inference, predict, serving
from pose_keras.config import Config
from pose_keras.joints import MPII
from pose_keras.transforms import apply_affine, resize_matrix

ROOT = Path(__file__).resolve().parents[1]
INPUT_SIZE = 64
TINY = [
    f"model.input_size={INPUT_SIZE}",
    "model.stacks=1",
    "model.channels=16",
    "model.stem_channels=16",
    "model.regression_channels=16",
    "model.supervised_scales=[1,2]",
]
HEATMAP_LAYERS = ("stack1_scale1_conv", "stack1_scale2_conv", "regression_out_conv")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory (model.keras, config.json, joints.json) holding a tiny random model."""
    from pose_keras.model import build_model

    seed_everything()
    config = Config().with_overrides(TINY)
    model = build_model(config.model)
    # The heatmap layers start at std 0.001; scale them up so that heatmaps are O(1) and
    # the parity checks below (absolute tolerances) mean something.
    for name in HEATMAP_LAYERS:
        layer = model.get_layer(name)
        layer.set_weights([weights * 300.0 for weights in layer.get_weights()])
    directory = tmp_path_factory.mktemp("runs") / "tiny_run"
    directory.mkdir()
    model.save(directory / "model.keras")
    config.to_json(directory / "config.json")
    (directory / "joints.json").write_text(json.dumps(MPII.to_dict()))
    return directory


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def exported(run_dir, out_dir):
    """Version 1: the default export (no flip test, no heatmaps in serving_default)."""
    status = export.main(["--model", str(run_dir), "--out", str(out_dir), "--name", "pose"])
    assert status == 0
    return out_dir / "pose" / "1"


@pytest.fixture(scope="module")
def exported_flip(run_dir, out_dir, exported):
    """Version 2 (the next free one): flip test and heatmaps in the graph."""
    arguments = ["--model", str(run_dir), "--out", str(out_dir), "--name", "pose"]
    assert export.main(arguments + ["--flip", "--heatmaps"]) == 0
    return out_dir / "pose" / "2"


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


@pytest.fixture(scope="module")
def loaded_flip(exported_flip):
    return tf.saved_model.load(str(exported_flip))


@pytest.fixture(scope="module")
def tiny_model(run_dir):
    from pose_keras.runs import load_run

    return load_run(run_dir).model


def run_predict(run_dir, inputs, output, boxes=None, flip=False):
    """`python -m pose_keras.predict` (in process) -> its keypoints.json people."""
    arguments = ["--model", str(run_dir), "--output", str(output), "--no-overlays", "--quiet"]
    if boxes:
        box_file = output.parent / f"{output.name}_boxes.json"
        box_file.write_text(json.dumps(boxes))
        arguments += ["--boxes", str(box_file)]
    if flip:
        arguments.append("--flip")
    assert predict.main(arguments + [str(path) for path in inputs]) == 0
    return json.loads((output / "keypoints.json").read_text())["people"]


def serve_people(signature, people):
    """Replay predict's people (source, box) as one serving_default request."""
    images = [Path(person["source"]).read_bytes() for person in people]
    boxes = [person["box"] or [0.0, 0.0, 0.0, 0.0] for person in people]
    return signature(images=tf.constant(images), boxes=tf.constant(boxes, tf.float32))


def assert_same_people(outputs, people):
    """The same keypoints and scores: the exported graph and predict run the same code
    (`pose_keras.inference`); only the float32 outputs of the graph round them."""
    expected = np.array([person["keypoints"] for person in people])  # (P, J, [x, y, score])
    keypoints = outputs["keypoints"].numpy()
    scores = outputs["scores"].numpy()
    assert keypoints.shape == expected[..., :2].shape
    # float32 carries ~1e-4 px at 1000 px; 1e-3 px is far below any decoding step (0.25
    # heatmap px = 1-20 image px here), so a single differing joint fails.
    np.testing.assert_allclose(keypoints, expected[..., :2], rtol=0, atol=1e-3)
    np.testing.assert_allclose(scores, expected[..., 2], rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def real_inputs(shared_data, coco_boxes):
    coco = shared_data / "coco" / "images"
    return [shared_data / "mpii" / "images"] + sorted(coco.glob("*.jpg")), coco_boxes


# --------------------------------------------------------------------------------------
# Parity with `python -m pose_keras.predict`
# --------------------------------------------------------------------------------------


def test_serving_default_matches_predict_on_real_images(run_dir, loaded, real_inputs, tmp_path):
    inputs, boxes = real_inputs
    people = run_predict(run_dir, inputs, tmp_path / "predict", boxes=boxes)
    assert len(people) == 5 + 14  # MPII: whole images; COCO: every annotated box
    outputs = serve_people(loaded.signatures["serving_default"], people)
    assert sorted(outputs) == ["keypoints", "scores"]
    assert_same_people(outputs, people)
    # The keypoints are spread over the images, not stuck at one place.
    assert np.ptp(outputs["keypoints"].numpy()[:5, :, 0]) > 100


def test_flip_test_and_heatmaps_in_the_graph_match_predict_flip(
    run_dir, loaded_flip, real_inputs, tmp_path
):
    inputs, boxes = real_inputs
    people = run_predict(run_dir, inputs, tmp_path / "predict", boxes=boxes, flip=True)
    outputs = serve_people(loaded_flip.signatures["serving_default"], people)
    assert sorted(outputs) == ["heatmaps", "keypoints", "scores"]
    assert outputs["heatmaps"].shape == (len(people), 16, 16, 16)
    assert_same_people(outputs, people)


def exif_segment(orientation, little_endian):
    """An APP1 Exif segment with IFD0 = (Make, Orientation), per Exif 2.3 (CP-3451)."""
    order = "<" if little_endian else ">"
    entries = struct.pack(order + "HHII", 0x010F, 2, 4, 0)  # Make, ASCII, empty
    entries += struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = (b"II" if little_endian else b"MM") + struct.pack(order + "HI", 42, 8)
    tiff += struct.pack(order + "H", 2) + entries + struct.pack(order + "I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def test_png_bmp_and_exif_rotated_jpeg_match_predict(run_dir, loaded, shared_data, tmp_path):
    source = cv2.imread(str(shared_data / "mpii" / "images" / "052475643.jpg"))[40:440, 150:550]
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(source, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "alpha.png"), cv2.cvtColor(source, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "plain.bmp"), source)
    jpeg = cv2.imencode(".jpg", source[:, :300])[1].tobytes()  # 400 x 300: not square
    for orientation, little_endian in [(6, True), (3, False), (8, False), (7, True)]:
        # After SOI and the 18-byte JFIF APP0 segment, where cameras put it.
        data = jpeg[:20] + exif_segment(orientation, little_endian) + jpeg[20:]
        (folder / f"exif{orientation}.jpg").write_bytes(data)
    people = run_predict(run_dir, [folder], tmp_path / "predict")
    assert len(people) == 7
    # predict reads EXIF-rotated images upright (as the graph does): 6 and 8 are 300 x 400.
    assert inference.read_image(folder / "exif6.jpg").shape == (300, 400, 3)
    outputs = loaded.signatures["serving_images"](
        images=tf.constant([Path(person["source"]).read_bytes() for person in people])
    )
    assert_same_people(outputs, people)


def test_crops_signature_gives_the_model_heatmaps_and_crop_keypoints(
    loaded, tiny_model, shared_data
):
    image = inference.read_image(shared_data / "mpii" / "images" / "005808361.jpg")
    crops, _ = inference.crop_people(image, [[800, 60, 1170, 720], [0, 0, 640, 360]], INPUT_SIZE)
    outputs = loaded.signatures["serving_crops"](crops=tf.constant(crops))
    heatmaps = tiny_model.predict_on_batch(crops)["refined"]
    assert np.abs(heatmaps).max() > 0.1  # O(1) heatmaps: the tolerance below is meaningful
    np.testing.assert_allclose(outputs["heatmaps"].numpy(), heatmaps, atol=1e-4)
    keypoints_heatmap_px, scores = decode.decode_heatmaps(heatmaps, refine="quarter")
    expected = apply_affine(resize_matrix(16, INPUT_SIZE), keypoints_heatmap_px)
    np.testing.assert_allclose(outputs["keypoints"].numpy(), expected, atol=1e-3)
    np.testing.assert_allclose(outputs["scores"].numpy(), scores, atol=1e-4)


# --------------------------------------------------------------------------------------
# Bad requests
# --------------------------------------------------------------------------------------


def truncated_jpeg(shared_data):
    data = (shared_data / "mpii" / "images" / "052475643.jpg").read_bytes()
    return data[: len(data) // 2]


BAD_REQUESTS = {
    "empty": r"images\[1\]: empty bytes",
    "garbage": r"images\[1\]: 20 bytes that could not be decoded as JPEG/PNG/GIF/BMP",
    "truncated": r"images\[1\]: truncated image data",
    "inverted box": r"boxes\[1\] = \[10 10 5 50\] is not a box.*x1 > x0",
    "nan box": r"boxes\[0\] = .*nan.* is not a box",
    "too few boxes": r"one row per image: received 2 images and 1 boxes",
    "no images": r"images is empty",
    "5 numbers a box": r"Shape of tensor boxes \[2,5\] is not compatible",
    "images 2-D": r"Shape of tensor images \[2,1\] is not compatible",
}


@pytest.mark.parametrize(("case", "message"), BAD_REQUESTS.items(), ids=list(BAD_REQUESTS))
def test_bad_requests_fail_with_a_clear_message(loaded, shared_data, case, message):
    good = (shared_data / "mpii" / "images" / "052475643.jpg").read_bytes()
    images = [good, good]
    boxes = np.zeros((2, 4), np.float32)
    if case == "empty":
        images[1] = b""
    elif case == "garbage":
        images[1] = b"this is not an image"
    elif case == "truncated":
        images[1] = truncated_jpeg(shared_data)
    elif case == "inverted box":
        boxes[1] = [10, 10, 5, 50]
    elif case == "nan box":
        boxes[0] = [0, 0, np.nan, 10]
    elif case == "too few boxes":
        boxes = boxes[:1]
    elif case == "no images":
        images, boxes = [], np.zeros((0, 4), np.float32)
    elif case == "5 numbers a box":
        boxes = np.zeros((2, 5), np.float32)
    elif case == "images 2-D":
        images = [[good], [good]]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serving_default"](
            images=tf.constant(images, tf.string), boxes=tf.constant(boxes)
        )


def test_wrong_dtypes_and_crop_sizes_are_refused(loaded, shared_data):
    good = (shared_data / "mpii" / "images" / "052475643.jpg").read_bytes()
    signature = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor"):
        signature(images=tf.constant([good]), boxes=tf.zeros([1, 4], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a string tensor"):
        signature(images=tf.zeros([1]), boxes=tf.zeros([1, 4]))
    crops = loaded.signatures["serving_crops"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"crops \[1,32,32,3\]"):
        crops(crops=tf.zeros([1, 32, 32, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="crops must be finite"):
        crops(crops=tf.fill([1, INPUT_SIZE, INPUT_SIZE, 3], np.inf))


# --------------------------------------------------------------------------------------
# Layout, metadata, saved_model_cli, the command
# --------------------------------------------------------------------------------------


def test_tf_serving_layout_versions_and_metadata(exported, exported_flip, run_dir):
    model_dir = exported.parent
    assert sorted(path.name for path in model_dir.iterdir()) == ["1", "2"]  # nothing partial
    for version in (exported, exported_flip):
        assert (version / "saved_model.pb").is_file()
        assert (version / "variables" / "variables.index").is_file()
    metadata = json.loads((exported_flip / "assets.extra" / "pose_keras.json").read_text())
    assert metadata["joint_names"] == list(MPII.names)
    assert metadata["input_size"] == INPUT_SIZE and metadata["heatmap_size"] == 16
    assert metadata["flip_test"] is True and metadata["refine"] == "quarter"
    assert metadata["box_scale"] == 1.25
    assert metadata["source"] == str(run_dir / "model.keras")


def test_saved_model_cli_lists_the_signatures(exported_flip):
    cli = Path(sys.executable).with_name("saved_model_cli")
    result = subprocess.run(
        [str(cli), "show", "--dir", str(exported_flip), "--all"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    listing = parse_saved_model_cli(result.stdout)
    assert listing["serving_default"] == {
        "inputs": {"images": ("DT_STRING", "(-1)"), "boxes": ("DT_FLOAT", "(-1, 4)")},
        "outputs": {
            "keypoints": ("DT_FLOAT", "(-1, 16, 2)"),
            "scores": ("DT_FLOAT", "(-1, 16)"),
            "heatmaps": ("DT_FLOAT", "(-1, 16, 16, 16)"),
        },
    }
    assert listing["serving_images"]["inputs"] == {"images": ("DT_STRING", "(-1)")}
    assert listing["serving_crops"] == {
        "inputs": {"crops": ("DT_FLOAT", "(-1, 64, 64, 3)")},
        "outputs": {
            "heatmaps": ("DT_FLOAT", "(-1, 16, 16, 16)"),
            "keypoints": ("DT_FLOAT", "(-1, 16, 2)"),
            "scores": ("DT_FLOAT", "(-1, 16)"),
        },
    }


def parse_saved_model_cli(text):
    """signature -> {"inputs": {name: (dtype, shape)}, "outputs": {...}}."""
    listing = {}
    pattern = re.compile(
        r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([-\d, ]*\))"
    )
    for block in re.split(r"signature_def\['", text)[1:]:
        name = block.split("'", 1)[0]
        listing[name] = {"inputs": {}, "outputs": {}}
        for kind, tensor, dtype, shape in pattern.findall(block):
            listing[name][kind][tensor] = (dtype, shape)
    return listing


def run_main(arguments, capsys):
    status = export.main(arguments)
    return status, capsys.readouterr().err.strip().splitlines()


def test_command_errors_are_one_line(run_dir, exported, tmp_path, capsys):
    out = str(exported.parent.parent)
    status, lines = run_main(["--model", str(run_dir), "--out", out, "--name", "pose",
                              "--version", "1"], capsys)  # fmt: skip
    assert status == 2 and len(lines) == 1
    assert lines[0].startswith("error: ") and "exists; pass --overwrite" in lines[0]
    assert "next free: 3" in lines[0] or "next free: 2" in lines[0]
    status, lines = run_main(["--model", str(tmp_path / "none"), "--out", out], capsys)
    assert status == 2 and lines == [f"error: Model not found: {tmp_path / 'none'}"]
    status, lines = run_main(["--model", str(run_dir), "--out", out, "--version", "0"], capsys)
    assert status == 2 and len(lines) == 1 and "positive integer" in lines[0]
    status, lines = run_main(["--model", str(run_dir), "--name", "a b", "--out", out], capsys)
    assert status == 2 and len(lines) == 1 and "--name" in lines[0]
    with pytest.raises(SystemExit):
        export.main(["--model", str(run_dir), "--refine", "dark"])  # not in the graph


def test_default_name_comes_from_the_run_directory(run_dir, tmp_path):
    assert serving.default_name(run_dir) == "tiny_run"
    assert serving.default_name(run_dir / "model.keras") == "tiny_run"
    bare = tmp_path / "my model.keras"
    bare.write_bytes(b"")
    assert serving.default_name(bare) == "my_model"


# --------------------------------------------------------------------------------------
# README: the TF Serving REST example
# --------------------------------------------------------------------------------------


def readme_serving_section():
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- serving:start -->")
    end = text.index("<!-- serving:end -->")
    assert start < end
    return text[start:end]


def json_blocks(section):
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]


def spec_shape(spec):
    return [None if size is None else int(size) for size in spec.shape]


def check_value(value, spec, where):
    """A JSON value of one batch row against a TensorSpec (batch dimension removed)."""
    shape = spec_shape(spec)[1:]
    if spec.dtype == tf.string:
        assert shape == [] and isinstance(value, dict) and set(value) == {"b64"}, where
        return base64.b64decode(value["b64"] + "=" * (-len(value["b64"]) % 4))
    array = np.asarray(value, dtype=np.float64)
    assert list(array.shape) == shape, (where, array.shape, shape)
    return array


def test_readme_rest_example_matches_the_signature_and_runs(loaded, exported, shared_data):
    section = readme_serving_section()
    # The docker command serves the folder `python -m pose_keras.export --name pose` writes.
    assert 'docker run -p 8501:8501 -v "$PWD/export/pose:/models/pose"' in section
    assert "-e MODEL_NAME=pose tensorflow/serving" in section
    assert "--out export --name pose" in section
    assert "/v1/models/pose:predict" in section
    blocks = json_blocks(section)
    rows = next(block for block in blocks if "instances" in block)
    columns = next(block for block in blocks if "inputs" in block)
    response = next(block for block in blocks if "predictions" in block)

    signature = loaded.signatures[rows["signature_name"]]
    _, input_specs = signature.structured_input_signature
    output_specs = signature.structured_outputs
    real = (shared_data / "mpii" / "images" / "052475643.jpg").read_bytes()
    real_b64 = base64.b64encode(real).decode()

    # Row format: one object per person, every input named.
    images, boxes = [], []
    for index, instance in enumerate(rows["instances"]):
        assert set(instance) == set(input_specs), instance.keys()
        check_value(instance["images"], input_specs["images"], f"instances[{index}]")
        boxes.append(check_value(instance["boxes"], input_specs["boxes"], f"instances[{index}]"))
        images.append(real)  # the README shortens the base64 of this image
    # Columnar format: the same request, one list per input.
    assert columns["signature_name"] == rows["signature_name"]
    assert set(columns["inputs"]) == set(input_specs)
    assert len(columns["inputs"]["images"]) == len(columns["inputs"]["boxes"]) == len(images)
    np.testing.assert_allclose(columns["inputs"]["boxes"], boxes)

    # The response: one object per instance, every output of the signature.
    predictions = response["predictions"]
    assert len(predictions) == len(rows["instances"])
    for index, prediction in enumerate(predictions):
        assert set(prediction) == set(output_specs)
        for name, value in prediction.items():
            check_value(value, output_specs[name], f"predictions[{index}].{name}")

    # Feeding the decoded request gives outputs of exactly those names and shapes.
    outputs = signature(
        images=tf.constant([base64.b64decode(real_b64)] * len(images)),
        boxes=tf.constant(np.array(boxes), tf.float32),
    )
    assert set(outputs) == set(predictions[0])
    for name, value in predictions[0].items():
        assert outputs[name].shape[1:] == np.asarray(value).shape
        assert outputs[name].dtype == tf.float32
    # The example's boxes: the person of this MPII image (centre 316, 220) and the whole image.
    assert np.all(boxes[-1] == 0)


# --------------------------------------------------------------------------------------
# ONNX and TFLite
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_crops(shared_data, coco_boxes):
    image = inference.read_image(shared_data / "coco" / "images" / "000000196141.jpg")
    boxes = coco_boxes["000000196141.jpg"]
    crops, _ = inference.crop_people(image, boxes, INPUT_SIZE)
    return crops


@pytest.mark.filterwarnings("ignore:In the future `np.object`:FutureWarning")  # keras' tf2onnx
def test_onnx_export_matches_keras(run_dir, out_dir, tiny_model, real_crops):
    import onnxruntime

    arguments = ["--model", str(run_dir), "--out", str(out_dir), "--format", "onnx"]
    assert export.main(arguments) == 0
    path = out_dir / "tiny_run_onnx" / "1" / "model.onnx"
    assert (path.parent / "pose_keras.json").is_file()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["crops"]
    assert [node.name for node in session.get_outputs()] == ["heatmaps"]
    (heatmaps,) = session.run(None, {"crops": real_crops})  # a batch of 5: dynamic batch
    expected = tiny_model.predict_on_batch(real_crops)["refined"]
    assert heatmaps.shape == expected.shape == (len(real_crops), 16, 16, 16)
    assert np.abs(expected).max() > 0.1
    assert np.abs(heatmaps - expected).max() <= 1e-4


@pytest.mark.slow  # the TFLite converter takes 15-30 s on 2 cores
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_tflite_export_matches_keras(run_dir, out_dir, tiny_model, real_crops):
    arguments = ["--model", str(run_dir), "--out", str(out_dir), "--format", "tflite"]
    assert export.main(arguments) == 0
    interpreter = tf.lite.Interpreter(
        model_path=str(out_dir / "tiny_run_tflite" / "1" / "model.tflite")
    )
    (source,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(source["index"], real_crops.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], real_crops)
    interpreter.invoke()
    heatmaps = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = tiny_model.predict_on_batch(real_crops)["refined"]
    assert np.abs(heatmaps - expected).max() <= 1e-4


# --------------------------------------------------------------------------------------
# A custom joint set carries through: the DeepLabCut project's 4 body parts
# --------------------------------------------------------------------------------------


def test_deeplabcut_joint_set_carries_through_to_the_saved_model(shared_data, tmp_path):
    from pose_keras import records
    from pose_keras.model import build_model
    from tfrecords_tools import deeplabcut

    prefix = tmp_path / "records" / "openfield"
    deeplabcut.convert_project(
        shared_data / "dlc_openfield", prefix, val_fraction=0.05, seed=0, progress=False
    )
    joint_set = records.joint_set_of(f"{prefix}-val")
    names = ["snout", "leftear", "rightear", "tailbase"]
    assert list(joint_set.names) == names
    # What fit writes for a run on these records: the model, its config and joints.json.
    seed_everything()
    config = Config().with_overrides([*TINY, "model.num_joints=4"])
    model = build_model(config.model)
    run = tmp_path / "runs" / "openfield"
    run.mkdir(parents=True)
    model.save(run / "model.keras")
    config.to_json(run / "config.json")
    (run / "joints.json").write_text(json.dumps(joint_set.to_dict()))

    assert export.main(["--model", str(run), "--out", str(tmp_path / "export")]) == 0
    (version,) = (tmp_path / "export" / "openfield").iterdir()
    metadata = json.loads((version / "assets.extra" / "pose_keras.json").read_text())
    assert metadata["joint_names"] == names
    person = next(iter(records.read_people(f"{prefix}-val")))
    labelled = person.keypoints[person.visibility > 0]
    box = [*(labelled.min(axis=0) - 20.0), *(labelled.max(axis=0) + 20.0)]
    outputs = tf.saved_model.load(str(version)).signatures["serving_default"](
        images=tf.constant([person.image_encoded]),
        boxes=tf.constant([box], tf.float32),
    )
    assert outputs["keypoints"].shape == (1, 4, 2) and outputs["scores"].shape == (1, 4)
    # The same 4 keypoints as predict on the same frame and box (the same code).
    frame = tmp_path / "frame.png"
    frame.write_bytes(person.image_encoded)
    people = run_predict(
        run, [frame], tmp_path / "predicted", {frame.name: [[float(v) for v in box]]}
    )
    assert_same_people(outputs, people)
