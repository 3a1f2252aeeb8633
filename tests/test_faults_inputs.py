"""Fault class: bad inputs to the model-side commands (predict, evaluate, the run loader).

Each gives one line naming the file or field and exit code 2, never a traceback: a
zero-byte or truncated image, an absurd box, a `.keras` file that is not a pose model, a
garbled `joints.json`, a MATLAB cell array where `preds` should be numeric, `--flip` where
it cannot apply. The same image bytes get the same verdict from `predict` as from the
converters' and pipeline's `records.check_image_bytes`.
"""

import json
import shutil

import cv2
import keras
import numpy as np
import pytest
import scipy.io

from pose_keras import evaluate, inference, predict, records
from pose_keras.runs import load_model, load_run


def only_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def image_cases(shared_data):
    """Named byte strings: valid and invalid images of the kinds users have."""
    jpeg = (shared_data / "mpii" / "images" / "005808361.jpg").read_bytes()
    gray = cv2.imencode(".png", np.full((40, 30), 128, np.uint8))[1].tobytes()
    deep = cv2.imencode(".png", np.full((40, 30, 3), 40000, np.uint16))[1].tobytes()
    # A PNG whose header declares 200,000 x 200,000 px (40 gigapixels).
    huge = bytearray(gray)
    huge[16:24] = (200_000).to_bytes(4, "big") * 2
    return {
        "valid.jpg": jpeg,
        "gray.png": gray,
        "16bit.png": deep,
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": gray[:-20],
        "huge.png": bytes(huge),
        "text.jpg": b"not an image at all\n",
    }


def records_verdict(data, name):
    try:
        records.check_image_bytes(data, name)
    except records.BadImageError:
        return False
    return True


def predict_verdict(data, name):
    try:
        image = inference.read_image_bytes(data, name)
    except records.BadImageError as error:
        assert str(error).startswith(f"{name}: ")
        return False
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    return True


def test_predict_and_the_records_agree_on_which_image_bytes_are_valid(shared_data):
    verdicts = {
        name: (records_verdict(data, name), predict_verdict(data, name))
        for name, data in image_cases(shared_data).items()
    }
    assert {name for name, (valid, _) in verdicts.items() if valid} == {
        "valid.jpg",
        "gray.png",
        "16bit.png",
    }
    disagreements = {name: pair for name, pair in verdicts.items() if pair[0] != pair[1]}
    assert not disagreements


def test_predict_names_a_zero_byte_or_truncated_image(
    tiny_model_path, shared_data, tmp_path, capsys
):
    for name in ("empty.jpg", "truncated.jpg"):
        path = tmp_path / name
        path.write_bytes(image_cases(shared_data)[name])
        status = predict.main(
            ["--model", str(tiny_model_path), str(path), "--output", str(tmp_path / name)]
        )
        assert status == 2
        assert str(path) in only_line(capsys)


def test_predict_refuses_absurd_boxes(tiny_model_path, shared_data, tmp_path, capsys):
    image = shared_data / "mpii" / "images" / "005808361.jpg"
    for box in ([0, 0, 1e30, 1e30], [-1e30, 0, 10, 10]):
        boxes = tmp_path / "boxes.json"
        boxes.write_text(json.dumps({image.name: [box]}))
        arguments = ["--model", str(tiny_model_path), str(image), "--boxes", str(boxes)]
        assert predict.main([*arguments, "--output", str(tmp_path / "out")]) == 2
        assert "box coordinates must be within" in only_line(capsys)
    with pytest.raises(ValueError, match="box coordinates must be within"):
        inference.crop_people(np.zeros((20, 20, 3), np.uint8), [[0, 0, 1e30, 10]], input_size=64)


def test_a_keras_model_that_is_not_a_pose_model_is_named(tmp_path, capsys, shared_data):
    inputs = keras.Input((8,))
    other = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path / "classifier.keras"
    other.save(path)
    with pytest.raises(ValueError, match="not a pose_keras MultiScaleHourglass"):
        load_model(path)
    image = shared_data / "mpii" / "images" / "005808361.jpg"
    assert predict.main(["--model", str(path), str(image), "--output", str(tmp_path / "o")]) == 2
    assert "classifier.keras" in only_line(capsys)


@pytest.mark.parametrize(
    "content", ["{not json", "[1, 2]", '{"name": "x"}', '{"name": "x", "names": 5}']
)
def test_a_garbled_joints_json_is_named(tiny_model_path, tmp_path, content):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copyfile(tiny_model_path, run_dir / "model.keras")
    (run_dir / "joints.json").write_text(content)
    with pytest.raises(ValueError, match=r"joints\.json: "):
        load_run(run_dir)


def test_a_cell_array_of_predictions_is_named(shared_data, tmp_path, capsys):
    path = tmp_path / "cells.mat"
    cells = np.empty((3,), dtype=object)
    for index in range(3):
        cells[index] = np.zeros((16, 2 + index))
    scipy.io.savemat(path, {"preds": cells})
    gt = shared_data / "mpii" / "gt_valid.mat"
    assert evaluate.main(["--predictions", str(path), "--gt", str(gt)]) == 2
    line = only_line(capsys)
    assert "cells.mat" in line and "'preds' must be a numeric array" in line


def test_flip_with_a_predictions_file_is_an_error(shared_data, tmp_path, capsys):
    path = tmp_path / "preds.npy"
    np.save(path, np.zeros((2958, 16, 2)))
    gt = shared_data / "mpii" / "gt_valid.mat"
    assert evaluate.main(["--predictions", str(path), "--gt", str(gt), "--flip"]) == 2
    assert "--flip applies to --model evaluation" in only_line(capsys)


def serving_verdict(data, name):
    import tensorflow as tf

    try:
        image = inference.decode_image_bytes(tf.constant(data), tf.constant(name))
    except tf.errors.InvalidArgumentError as error:
        assert name in error.message
        return False
    assert image.shape[-1] == 3
    return True


def test_serving_agrees_with_the_records_on_which_image_bytes_are_valid(shared_data):
    """The serving graph's decoder (`inference.decode_image_bytes`, what `serving_default`
    runs on every request) gives the records' verdict on every case."""
    verdicts = {
        name: (records_verdict(data, name), serving_verdict(data, name))
        for name, data in image_cases(shared_data).items()
    }
    assert {name: pair for name, pair in verdicts.items() if pair[0] != pair[1]} == {}
