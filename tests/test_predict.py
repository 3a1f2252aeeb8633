"""The `predict` command on the real images and video of ../shared/data, and its box files
(with a tiny untrained model: the mechanics, not the accuracy, are under test here). The
inference it runs (crops, `predict_crops`) is tested in tests/test_inference.py."""

import json

import cv2
import numpy as np
import pytest

from pose_keras import predict


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    from pose_keras.runs import load_model

    return load_model(tiny_model_path)


def test_read_boxes_json_and_csv(tmp_path):
    mapping = tmp_path / "boxes.json"
    mapping.write_text(
        json.dumps({"dir/a.jpg": [[1, 2, 30, 40]], "b.png": [[0, 0, 5, 5], [1, 1, 9, 9]]})
    )
    boxes = predict.read_boxes(mapping)
    assert boxes == {
        ("a.jpg", None): [[1.0, 2.0, 30.0, 40.0]],
        ("b.png", None): [[0, 0, 5, 5], [1, 1, 9, 9]],
    }
    entries = tmp_path / "entries.json"
    entries.write_text(json.dumps([{"image": "clip.mp4", "frame": 3, "box": [1, 2, 3, 4]}]))
    assert predict.read_boxes(entries) == {("clip.mp4", 3): [[1.0, 2.0, 3.0, 4.0]]}
    table = tmp_path / "boxes.csv"
    table.write_text("image,frame,x0,y0,x1,y1\nclip.mp4,0,1,2,3,4\na.jpg,,5,6,7,8\n")
    assert predict.read_boxes(table) == {
        ("clip.mp4", 0): [[1.0, 2.0, 3.0, 4.0]],
        ("a.jpg", None): [[5.0, 6.0, 7.0, 8.0]],
    }


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.json", '{"a.jpg": [[1, 2, 3]]}', "4 numbers"),
        ("bad.json", '[{"image": "a.jpg", "box": [5, 5, 1, 1]}]', "x1 > x0"),
        ("bad.csv", "image,x0,y0\na.jpg,1,2\n", "missing"),
        ("bad.csv", "image,frame,x0,y0,x1,y1\nclip.mp4,-2,1,2,3,4\n", "frame"),
        ("bad.txt", "", ".json or .csv"),
    ],
)
def test_read_boxes_rejects_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        predict.read_boxes(path)
    assert str(path) in str(error.value)


def test_predict_command_on_real_images_and_video(
    tiny_model_path, shared_data, coco_boxes, tmp_path, capsys
):
    boxes = coco_boxes
    box_file = tmp_path / "boxes.json"
    box_file.write_text(json.dumps(boxes))
    video = shared_data / "video" / "posetrack18_000001_mpiinew.mp4"
    output = tmp_path / "out"
    status = predict.main(
        [
            "--model", str(tiny_model_path),
            str(shared_data / "mpii" / "images"),
            str(shared_data / "coco" / "images" / "000000040083.jpg"),
            str(video),
            "--boxes", str(box_file),
            "--max-frames", "2",
            "--batch-size", "4",
            "--flip",
            "--output", str(output),
        ]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    # The box file names 4 COCO images, 3 of which are not inputs: listed, not fatal.
    assert "3 file(s)" in capsys.readouterr().err
    document = json.loads((output / "keypoints.json").read_text())
    people = document["people"]
    # 5 MPII images (whole image each), 3 COCO boxes, 2 video frames.
    assert len(people) == 5 + len(boxes["000000040083.jpg"]) + 2
    coco = [entry for entry in people if entry["source"].endswith("000000040083.jpg")]
    assert [entry["box"] for entry in coco] == boxes["000000040083.jpg"]
    frames = [entry["frame"] for entry in people if entry["source"].endswith(".mp4")]
    assert frames == [0, 1]
    assert all(len(entry["keypoints"]) == 16 for entry in people)
    rows = (output / "keypoints.csv").read_text().splitlines()
    assert len(rows) == 1 + len(people)
    assert rows[0].split(",")[:4] == ["source", "frame", "person", "box_x0"]
    assert len(rows[0].split(",")) == 7 + 3 * 16
    overlays = sorted(path.name for path in (output / "overlays").iterdir())
    assert overlays == sorted(
        [path.stem + ".png" for path in (shared_data / "mpii" / "images").glob("*.jpg")]
        + ["000000040083.png", "posetrack18_000001_mpiinew.mp4"]
    )
    original = cv2.imread(str(shared_data / "coco" / "images" / "000000040083.jpg"))
    overlay = cv2.imread(str(output / "overlays" / "000000040083.png"))
    assert overlay.shape == original.shape
    assert np.abs(overlay.astype(int) - original.astype(int)).max() > 100  # something drawn
    capture = cv2.VideoCapture(str(output / "overlays" / "posetrack18_000001_mpiinew.mp4"))
    frame_count = 0
    while capture.read()[0]:
        frame_count += 1
    capture.release()
    assert frame_count == 2
    assert not list(output.rglob("*.partial*"))


def run_main(arguments, capsys):
    status = predict.main(arguments)
    return status, capsys.readouterr().err.strip().splitlines()


def test_predict_command_errors_are_one_line(tiny_model_path, shared_data, tmp_path, capsys):
    image = str(shared_data / "mpii" / "images" / "052475643.jpg")
    status, lines = run_main(["--model", str(tmp_path / "none.keras"), image], capsys)
    assert status == 2 and len(lines) == 1 and "not found" in lines[0]

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 definitely not a JPEG")
    status, lines = run_main(["--model", str(tiny_model_path), str(broken)], capsys)
    assert status == 2 and len(lines) == 1 and str(broken) in lines[0]

    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"not a video")
    status, lines = run_main(
        ["--model", str(tiny_model_path), str(bad_video), "--output", str(tmp_path / "o")], capsys
    )
    assert status == 2 and len(lines) == 1 and str(bad_video) in lines[0]
    assert not list((tmp_path / "o").rglob("*.mp4"))

    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"052475643.jpg": [[10, 10, 5, 50]]}')
    status, lines = run_main(
        ["--model", str(tiny_model_path), image, "--boxes", str(boxes)], capsys
    )
    assert status == 2 and len(lines) == 1 and "x1 > x0" in lines[0]

    status, lines = run_main(["--model", str(tiny_model_path), str(tmp_path / "nope.jpg")], capsys)
    assert status == 2 and lines == [f"error: Input not found: {tmp_path / 'nope.jpg'}"]
