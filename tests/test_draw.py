"""Overlays: boxes that show on any background, people told apart, videos browsers play."""

import json

import cv2
import numpy as np
import pytest

from pose_keras import draw, video
from pose_keras.joints import COCO, MPII


def edge_pixels(canvas, box):
    """The pixels on the middle of the top edge of `box`, from 3 px outside to 3 px inside."""
    x = int(round((box[0] + box[2]) / 2))
    y = int(round(box[1]))
    return canvas[y - 3 : y + 4, x]


@pytest.mark.parametrize("background", [0, 128, 255])
def test_a_box_shows_on_dark_mid_and_light_backgrounds(background):
    canvas = np.full((400, 400, 3), background, np.uint8)
    box = [50.0, 60.0, 300.0, 350.0]
    draw.draw_box(canvas, box, draw.person_color(0))
    column = edge_pixels(canvas, box).astype(int)
    darkest, lightest = column.sum(axis=1).min(), column.sum(axis=1).max()
    # A dark outline and a light line: both differ from any background by a wide margin.
    assert darkest <= 3 * 40 and lightest >= 3 * 170
    assert abs(darkest - 3 * background) >= 90 or abs(lightest - 3 * background) >= 90
    # The line itself is the person's colour.
    assert any(tuple(pixel) == draw.person_color(0) for pixel in column)
    # Away from the edges nothing is drawn.
    assert (canvas[200, 200] == background).all()


def test_people_in_a_crowded_real_image_get_their_own_colour_and_label(shared_data, coco_boxes):
    name, boxes = max(coco_boxes.items(), key=lambda item: len(item[1]))
    assert len(boxes) >= 3, "the COCO sample should hold an image with several people"
    image = cv2.imread(str(shared_data / "coco" / "images" / name))[..., ::-1].copy()
    annotations = json.loads((shared_data / "coco" / "person_keypoints_sample.json").read_text())
    image_id = next(entry["id"] for entry in annotations["images"] if entry["file_name"] == name)
    people = [entry for entry in annotations["annotations"] if entry["image_id"] == image_id]
    keypoints = np.array([np.reshape(entry["keypoints"], (17, 3)) for entry in people], float)
    scores = (keypoints[..., 2] > 0).astype(float)

    overlay = draw.draw_people(image, keypoints[..., :2], scores, COCO, boxes=boxes)
    assert overlay.shape == image.shape and not np.shares_memory(overlay, image)
    colors = [draw.person_color(index) for index in range(len(boxes))]
    assert len(set(colors)) == len(boxes)
    for index, box in enumerate(boxes):
        found = [tuple(pixel) for pixel in edge_pixels(overlay, box)]
        assert colors[index] in found, f"person {index}: box edge {found} lacks its colour"
        # The "#index" tag at the box's top-left corner is filled with the same colour.
        x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
        tag = overlay[max(y0, 0) + 2 : max(y0, 0) + 6, max(x0, 0) + 1 : max(x0, 0) + 3]
        assert (tag == colors[index]).all(axis=-1).any(), f"person {index}: no label tag"
    # Joints of annotated people are drawn in the left/right/centre colours.
    changed = np.any(overlay != image, axis=-1)
    assert changed.mean() < 0.2


def test_one_person_gets_no_label_unless_asked():
    image = np.full((200, 200, 3), 90, np.uint8)
    keypoints = np.full((1, 16, 2), 100.0)
    scores = np.zeros((1, 16))
    box = [[20.0, 20.0, 180.0, 180.0]]
    plain = draw.draw_people(image, keypoints, scores, MPII, boxes=box)
    labelled = draw.draw_people(image, keypoints, scores, MPII, boxes=box, labels=True)
    assert (plain[24:30, 23:27] == 90).all()  # inside the box's corner: untouched
    assert (labelled[24:30, 23:27] == draw.person_color(0)).all(axis=-1).any()


def read_codec(path):
    """Codec name and frame count of a video, as ffmpeg reads it back."""
    import imageio_ffmpeg

    frames = imageio_ffmpeg.read_frames(str(path))
    meta = next(frames)
    count = sum(1 for _ in frames)
    return meta["codec"], count, meta["size"]


def test_video_overlay_of_the_real_clip_is_h264(tiny_model_path, shared_data, tmp_path):
    if video.ffmpeg_executable() is None:
        pytest.skip("no ffmpeg (imageio-ffmpeg not installed): overlays fall back to mp4v")
    from pose_keras.predict import main as predict_main

    clip = next((shared_data / "video").glob("*.mp4"))
    status = predict_main(
        ["--model", str(tiny_model_path), str(clip), "--max-frames", "3",
         "--output", str(tmp_path), "--quiet"]
    )  # fmt: skip
    assert status == 0
    overlay = tmp_path / "overlays" / f"{clip.stem}.mp4"
    codec, count, size = read_codec(overlay)
    assert codec == "h264" and count == 3
    source = cv2.VideoCapture(str(clip))
    assert size == (
        int(source.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(source.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    source.release()
    # OpenCV reads it back too, frame for frame.
    capture = cv2.VideoCapture(str(overlay))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape[:2] == (size[1], size[0])
    assert not list((tmp_path / "overlays").glob(".*partial*"))


@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_video_writer_round_trips_frames_of_odd_size(codec, tmp_path):
    if codec == "h264" and video.ffmpeg_executable() is None:
        pytest.skip("no ffmpeg")
    width, height = 67, 45  # odd sides: H.264 4:2:0 pads them to even
    frames = []
    for index in range(4):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, : 10 + 12 * index] = (230, 40, 30)  # a red bar that grows
        frames.append(frame)
    path = tmp_path / f"clip_{codec}.mp4"
    with video.VideoWriter(path, 10.0, width, height, codec=codec) as writer:
        assert writer.codec == codec
        for frame in frames:
            writer.write(frame)
    capture = cv2.VideoCapture(str(path))
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame[..., ::-1])
    capture.release()
    assert len(decoded) == 4
    # H.264 (4:2:0) pads odd sides to even with a black row/column; OpenCV's mp4v crops.
    expected_size = (height + 1, width + 1) if codec == "h264" else (height - 1, width - 1)
    for frame, written in zip(decoded, frames, strict=True):
        assert frame.shape[:2] == expected_size
        # Lossy, but the bar is where it was: mean error well under the 230 of a miss.
        error = np.abs(frame[: height - 1, : width - 1].astype(int) - written[:-1, :-1]).mean()
        assert error < 20, error


def test_video_writer_rejects_frames_of_another_size(tmp_path):
    with video.VideoWriter(tmp_path / "clip.mp4", 25.0, 64, 48) as writer:
        with pytest.raises(ValueError, match=r"clip.mp4: frames must be uint8 \(48, 64, 3\)"):
            writer.write(np.zeros((64, 48, 3), np.uint8))
    with pytest.raises(ValueError, match="codec must be one of"):
        video.VideoWriter(tmp_path / "other.mp4", 25.0, 64, 48, codec="xvid")
