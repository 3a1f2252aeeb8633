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


@pytest.fixture(scope="module")
def confident_model_path(tiny_model_path, tmp_path_factory):
    """The tiny model with +1 added to every final heatmap value (the bias of the
    regression network's last conv): every joint scores about 1, so every joint counts as
    detected and the tracker and the One-Euro filter act on all of them. Arg-maxes are
    unchanged."""
    from pose_keras.runs import load_model

    model = load_model(tiny_model_path)
    layer = model.get_layer("regression_out_conv")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + 1.0])
    path = tmp_path_factory.mktemp("confident") / "confident.keras"
    model.save(path)
    return path


def _frame0(video):
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    assert ok
    return np.ascontiguousarray(frame[..., ::-1]), fps


def test_find_locates_the_subject_with_the_library_search(
    confident_model_path, shared_data, tmp_path, capsys
):
    from pose_keras import tracking
    from pose_keras.inference import read_image
    from pose_keras.runs import load_run

    image_path = shared_data / "mpii" / "images" / "052475643.jpg"
    output = tmp_path / "found"
    arguments = ["--model", str(confident_model_path), str(image_path), "--output", str(output)]
    assert predict.main([*arguments, "--find", "--quiet"]) == 0, capsys.readouterr().err
    (entry,) = json.loads((output / "keypoints.json").read_text())["people"]
    # The same search and refinement, called from the library on the same image.
    run = load_run(confident_model_path)
    predictor = predict.Predictor(run.model, run.joint_set)
    image = read_image(image_path)
    box, keypoints, scores = tracking.find_then_refine(
        image.shape, predict._predict_boxes_on(predictor, image)
    )
    np.testing.assert_allclose(entry["box"], box, atol=1e-6)
    found = np.asarray(entry["keypoints"])
    np.testing.assert_allclose(found[:, :2], keypoints, atol=1e-3)
    np.testing.assert_allclose(found[:, 2], scores, atol=1e-5)
    height, width = image.shape[:2]
    assert entry["box"] != [-0.5, -0.5, width - 0.5, height - 0.5]  # not the whole image


def test_video_is_tracked_and_smoothed_per_track_and_written_per_frame(
    confident_model_path, shared_data, tmp_path, capsys
):
    from pose_keras import tracking
    from pose_keras.runs import load_run

    video = shared_data / "video" / "posetrack18_000001_mpiinew.mp4"
    base = ["--model", str(confident_model_path), str(video), "--find", "--max-frames", "5"]

    def run(name, *extra):
        output = tmp_path / name
        status = predict.main([*base, "--output", str(output), "--quiet", *extra])
        assert status == 0, capsys.readouterr().err
        document = json.loads((output / "keypoints.json").read_text())
        frames, names = tracking.read_frames_json(output / "frames" / f"{video.stem}.json")
        return output, document, frames, names

    raw_out, raw_doc, raw_frames, names = run("raw", "--no-smooth")
    assert raw_doc["find"] is True and raw_doc["video_smoothing"] is None
    assert names == list(load_run(confident_model_path).joint_set.names)
    assert [frame["frame"] for frame in raw_frames] == [0, 1, 2, 3, 4]
    assert all(len(frame["people"]) == 1 for frame in raw_frames)
    assert {entry["track_id"] for entry in raw_doc["people"]} == {0}
    # keypoints.json and the per-frame files hold the same numbers.
    for entry, frame in zip(raw_doc["people"], raw_frames, strict=True):
        (person,) = frame["people"]
        np.testing.assert_allclose(np.asarray(entry["keypoints"])[:, :2], person["keypoints"])
        np.testing.assert_allclose(entry["box"], person["box"])
    csv_frames, _ = tracking.read_frames_csv(raw_out / "frames" / f"{video.stem}.csv")
    np.testing.assert_allclose(
        csv_frames[4]["people"][0]["keypoints"], raw_frames[4]["people"][0]["keypoints"], atol=1e-3
    )
    assert (raw_out / "overlays" / f"{video.stem}.mp4").is_file()

    # Frame 0 is found by the library's search-then-refine on that frame.
    run_ = load_run(confident_model_path)
    predictor = predict.Predictor(run_.model, run_.joint_set)
    image, fps = _frame0(video)
    box, _, _ = tracking.find_then_refine(image.shape, predict._predict_boxes_on(predictor, image))
    np.testing.assert_allclose(raw_frames[0]["people"][0]["box"], box, atol=1e-6)
    # Confident joints: the next boxes come from the keypoints, the subject is not re-searched.
    for previous, frame in zip(raw_frames[:-1], raw_frames[1:], strict=True):
        (before,), (now,) = previous["people"], frame["people"]
        expected = tracking.next_box(before["keypoints"], before["scores"], image.shape)
        np.testing.assert_allclose(now["box"], expected, atol=1e-6)

    # Smoothed (the default): the One-Euro filter over the raw run, frame by frame.
    _, smooth_doc, smooth_frames, _ = run("smooth", "--beta", "0.1")
    assert smooth_doc["video_smoothing"] == {
        "filter": "one-euro", "min_cutoff": 1.0, "beta": 0.1, "d_cutoff": 1.0
    }  # fmt: skip
    reference = tracking.OneEuroFilter(fps=fps, beta=0.1)
    moved = 0.0
    for raw, smooth in zip(raw_frames, smooth_frames, strict=True):
        (raw_person,), (smooth_person,) = raw["people"], smooth["people"]
        expected = reference(raw_person["keypoints"], raw_person["scores"], timestamp=raw["time"])
        np.testing.assert_allclose(smooth_person["keypoints"], expected, atol=1e-3)
        np.testing.assert_allclose(smooth_person["scores"], raw_person["scores"], atol=1e-5)
        moved = max(moved, np.abs(expected - raw_person["keypoints"]).max())
    assert moved > 0.1  # the filter really changed the keypoints

    status, lines = run_main([*base, "--beta", "-1", "--output", str(tmp_path / "bad")], capsys)
    assert status == 2 and len(lines) == 1 and "beta" in lines[0]
    assert not (tmp_path / "bad").exists()
