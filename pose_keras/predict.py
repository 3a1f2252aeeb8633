"""`python -m pose_keras.predict`: keypoints on images, folders and videos.

The inference stage shared by the training callback, `evaluate` and `export`:

- `crop_people(image, boxes)`: one square crop per person box (or the whole image), made by
  `cv2.warpAffine` with `transforms.crop_matrix` (centre and MPII scale from the box,
  `transforms.center_and_scale_from_box`; side 200 x scale x `box_scale`).
- `predict_crops(model, crops, crop_matrices, joint_set)`: batched inference on the crops,
  optional flip test, decoding (`pose_keras.decode`) and back-projection to image px.

Inputs: image files, folders of images (not recursive) and video files. Person boxes come
from an optional JSON or CSV file (formats in docs/evaluation.md, "Predict"); without one,
each image or frame is treated as one person box covering it. Outputs, in `--output`:

- `keypoints.json`: per person, the source, frame (videos), box and per joint [x, y, score]
  in image px (0-based pixel centres, as everywhere in pose_keras).
- `keypoints.csv`: the same, one row per person, columns `<joint>_x`, `<joint>_y`,
  `<joint>_score`.
- `overlays/`: the skeleton drawn on every image (PNG) and every video (MP4: H.264 through
  imageio-ffmpeg's ffmpeg, else `mp4v`; `pose_keras.video`).

Examples:

    python -m pose_keras.predict --model runs/synthetic photo.jpg photos/ clip.mp4
    python -m pose_keras.predict --model runs/mpii/best.keras --boxes people.json \\
        --flip --output predictions/ images/
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from pose_keras import decode, files, runs
from pose_keras.joints import JointSet
from pose_keras.transforms import box_px_from_scale, center_and_scale_from_box, crop_matrix

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_SCORE_THRESHOLD = 0.2


# --------------------------------------------------------------------------------------
# Shared inference: crops -> keypoints in image px
# --------------------------------------------------------------------------------------


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
    size = getattr(model, "input_size", None)
    if size:
        return int(size)
    return int(model.input_shape[1])


def _run_model(model, images, output_name):
    outputs = model.predict_on_batch(np.asarray(images, dtype=np.float32))
    if isinstance(outputs, dict):
        if output_name not in outputs:
            raise ValueError(
                f"The model has no output {output_name!r}; outputs: {sorted(outputs)}."
            )
        outputs = outputs[output_name]
    return np.asarray(outputs, dtype=np.float32)


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

    Examples:

    >>> image = np.zeros((480, 640, 3), np.uint8)  # doctest: +SKIP
    >>> crops, matrices = crop_people(image, [[100, 50, 300, 450]], input_size=256)
    >>> keypoints, scores, heatmaps = predict_crops(model, crops, matrices, MPII, flip=True)
    """
    crops = np.asarray(crops, dtype=np.float32)
    crop_matrices = np.asarray(crop_matrices, dtype=np.float64)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.shape[1] != crops.shape[2]:
        raise ValueError(f"crops must have shape (B, S, S, 3), received {crops.shape}.")
    if crop_matrices.shape != (crops.shape[0], 2, 3):
        raise ValueError(
            f"crop_matrices must have shape ({crops.shape[0]}, 2, 3), received "
            f"{crop_matrices.shape}."
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, received {batch_size}.")
    output_name = output_name or output_name_of(model)
    input_size = crops.shape[1]
    heatmap_batches = []
    for start in range(0, crops.shape[0], batch_size):
        batch = crops[start : start + batch_size]
        if flip:
            # Mirroring the crop array is the crop made with `crop_matrix(..., flip=True)`.
            both = _run_model(model, np.concatenate([batch, batch[:, :, ::-1]]), output_name)
            count = batch.shape[0]
            heatmaps = decode.average_flip(
                both[:count], both[count:], joint_set.flip_index, shift_px=flip_shift_px
            )
        else:
            heatmaps = _run_model(model, batch, output_name)
        heatmap_batches.append(np.asarray(heatmaps, dtype=np.float32))
    if heatmap_batches:
        heatmaps = np.concatenate(heatmap_batches)
    else:
        heatmaps = np.zeros((0, input_size // 4, input_size // 4, joint_set.num_joints), np.float32)
    keypoints_heatmap_px, scores = decode.decode_heatmaps(heatmaps, refine=refine, sigma=sigma)
    keypoints = decode.heatmap_to_image(
        keypoints_heatmap_px, crop_matrices, input_size, heatmaps.shape[1]
    )
    return CropPredictions(keypoints, scores, heatmaps)


def full_image_box(height: int, width: int) -> np.ndarray:
    """The box (x0, y0, x1, y1) of a whole image: pixel edges, -0.5 to size - 0.5."""
    return np.array([-0.5, -0.5, width - 0.5, height - 0.5])


def crop_people(image, boxes=None, input_size: int = 256, box_scale: float = 1.25):
    """One square crop per person box, as the network expects it.

    Args:
        image: uint8 (H, W, 3) RGB.
        boxes: float (P, 4) person boxes (x0, y0, x1, y1) in image px, or None for one box
            covering the whole image.
        input_size: int. Side of the crops. Default 256.
        box_scale: float. Crop side = 200 x scale x box_scale, where the box's longer side
            is 200 x scale (`transforms.center_and_scale_from_box`). Default 1.25.

    Returns:
        (crops float32 (P, S, S, 3) in [0, 255], crop_matrices float64 (P, 2, 3) image px ->
        input px). Outside the image the crop is black.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must have shape (H, W, 3), received {image.shape}.")
    if boxes is None or len(boxes) == 0:
        boxes = full_image_box(*image.shape[:2])[None]
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim not in (1, 2) or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (P, 4) (x0, y0, x1, y1), received {boxes.shape}.")
    boxes = np.asarray([_parse_box(box, "boxes") for box in boxes.reshape(-1, 4)])
    crops = np.zeros((len(boxes), input_size, input_size, 3), np.float32)
    matrices = np.zeros((len(boxes), 2, 3))
    for index, box in enumerate(boxes):
        center, scale = center_and_scale_from_box(box)
        matrix = crop_matrix(center, float(box_px_from_scale(scale, box_scale)), input_size)
        crops[index] = cv2.warpAffine(
            image,
            matrix,
            (input_size, input_size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        matrices[index] = matrix
    return crops, matrices


# --------------------------------------------------------------------------------------
# Inputs: images, folders, videos, person boxes
# --------------------------------------------------------------------------------------


def decode_image_bytes(data: bytes, name: str = "image") -> np.ndarray:
    """RGB uint8 (H, W, 3) from encoded bytes; grayscale is expanded, alpha dropped, EXIF
    orientation applied.

    JPEG and PNG bytes must first pass `records.check_image_bytes`, the one definition of a
    valid image that the converters and the training pipeline apply too (zero bytes, a
    missing end marker, a header above the pixel limit and undecodable data are refused
    alike). Other formats (BMP, WebP, TIFF) are predict-only and must decode with OpenCV.

    Raises:
        records.BadImageError: `"<name>: <why>."`.
    """
    from pose_keras import records

    data = bytes(data)
    if not data:
        raise records.BadImageError(name, "zero bytes")
    if data.startswith((records.JPEG_MAGIC, records.PNG_MAGIC)):
        records.check_image_bytes(data, name)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise records.BadImageError(name, "cannot read as an image (corrupt or unsupported)")
    return np.ascontiguousarray(image[..., ::-1])


def read_image(path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file (`decode_image_bytes`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Image not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror}).") from None
    return decode_image_bytes(data, str(path))


def collect_inputs(paths) -> list:
    """Expand the command-line inputs into [(path, "image" | "video")], in order.

    Folders contribute their images (not recursive, sorted by name).
    """
    items = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(
                child
                for child in path.iterdir()
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES
            )
            if not images:
                raise ValueError(
                    f"{path}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})."
                )
            items += [(image, "image") for image in images]
        elif path.is_file():
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                items.append((path, "image"))
            elif suffix in VIDEO_SUFFIXES:
                items.append((path, "video"))
            else:
                raise ValueError(
                    f"{path}: unknown file type {suffix!r}; images: {', '.join(IMAGE_SUFFIXES)}; "
                    f"videos: {', '.join(VIDEO_SUFFIXES)}."
                )
        else:
            raise FileNotFoundError(f"Input not found: {path}")
    return items


# Box coordinates beyond this many px from the origin are refused: no camera frame is that
# large, and the crop and drawing arithmetic (OpenCV's fixed-point corners) overflows.
MAX_BOX_COORDINATE = 1e6


def _parse_box(values, where):
    try:
        box = [float(value) for value in values]
    except (TypeError, ValueError):
        box = None
    if box is None or len(box) != 4 or not np.isfinite(box).all():
        raise ValueError(f"{where}: a box is [x0, y0, x1, y1] (4 numbers), received {values!r}.")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"{where}: a box needs x1 > x0 and y1 > y0, received {box}.")
    if max(abs(value) for value in box) > MAX_BOX_COORDINATE:
        raise ValueError(
            f"{where}: box coordinates must be within +-{MAX_BOX_COORDINATE:.0e} px, "
            f"received {box}."
        )
    return box


def _parse_frame(value, where):
    if value is None or value == "":
        return None
    try:
        frame = int(value)
    except (TypeError, ValueError):
        frame = -1
    if frame < 0 or str(value).strip() not in (str(frame), f"{frame}.0"):
        raise ValueError(f"{where}: frame must be an integer >= 0, received {value!r}.")
    return frame


def read_boxes(path) -> dict:
    """Person boxes per image (and video frame) from a JSON or CSV file.

    Formats (image px, 0-based pixel centres; images matched by file name):

    - JSON mapping: `{"a.jpg": [[x0, y0, x1, y1], ...], ...}`.
    - JSON list: `[{"image": "a.jpg", "box": [x0, y0, x1, y1]},
      {"image": "clip.mp4", "frame": 12, "box": [...]}, ...]`.
    - CSV with a header: `image,x0,y0,x1,y1` and an optional `frame` column.

    A video's boxes without a frame apply to every frame of it.

    Returns:
        dict: (file name, frame or None) -> list of boxes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Box file not found: {path}")
    text = path.read_text(encoding="utf-8-sig")
    boxes = {}

    def add(image, frame, box):
        boxes.setdefault((Path(str(image)).name, frame), []).append(box)

    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}).") from None
        if isinstance(data, dict):
            for image, entries in data.items():
                if not isinstance(entries, list):
                    raise ValueError(f"{path}: {image!r} must map to a list of boxes.")
                for index, values in enumerate(entries):
                    add(image, None, _parse_box(values, f"{path}: {image!r} box {index}"))
        elif isinstance(data, list):
            for index, entry in enumerate(data):
                where = f"{path}: entry {index}"
                if not isinstance(entry, dict) or "image" not in entry or "box" not in entry:
                    raise ValueError(f"{where}: expected an object with 'image' and 'box'.")
                frame = _parse_frame(entry.get("frame"), where)
                add(entry["image"], frame, _parse_box(entry["box"], where))
        else:
            raise ValueError(f"{path}: expected a JSON object or list of boxes.")
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        required = {"image", "x0", "y0", "x1", "y1"}
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{path}: the CSV header needs columns image,x0,y0,x1,y1 (optional frame); "
                f"missing {sorted(missing)}."
            )
        for index, row in enumerate(reader):
            where = f"{path}: line {index + 2}"
            if not row["image"]:
                raise ValueError(f"{where}: empty image name.")
            frame = _parse_frame(row.get("frame"), where)
            box = _parse_box([row["x0"], row["y0"], row["x1"], row["y1"]], where)
            add(row["image"], frame, box)
    else:
        raise ValueError(f"{path}: box files are .json or .csv, received {path.suffix!r}.")
    return boxes


# --------------------------------------------------------------------------------------
# Outputs: overlays, keypoint files, progress
# --------------------------------------------------------------------------------------


def draw_people(
    image,
    keypoints_px,
    scores,
    joint_set: JointSet,
    boxes=None,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    caption: str | None = None,
):
    """The overlay of `predict`: every person's skeleton (joints scoring at least
    `score_threshold`), their boxes, and an optional caption; RGB uint8."""
    from pose_keras.draw import draw_skeleton

    canvas = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    size = max(canvas.shape[:2])
    if boxes is not None:
        for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            corners = np.round(box * 16).astype(int)
            cv2.rectangle(
                canvas,
                tuple(corners[:2]),
                tuple(corners[2:]),
                (230, 230, 230),
                max(1, size // 500),
                cv2.LINE_AA,
                4,
            )
    for person_keypoints, person_scores in zip(keypoints_px, scores, strict=True):
        present = np.asarray(person_scores) >= score_threshold
        canvas = draw_skeleton(canvas, person_keypoints, joint_set, present=present)
    if caption:
        _draw_caption(canvas, caption)
    return canvas


def _draw_caption(canvas, caption):
    """White text on a dark band across the top, scaled to fit the width."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    height, width = canvas.shape[:2]
    scale = max(0.4, min(1.5, height / 700))
    text_width = cv2.getTextSize(caption, font, scale, 1)[0][0]
    if text_width > width - 20:
        scale *= (width - 20) / text_width
    (text_width, text_height), baseline = cv2.getTextSize(caption, font, scale, 1)
    band = text_height + baseline + 12
    canvas[:band] = (canvas[:band] * 0.35).astype(np.uint8)
    origin = (10, 6 + text_height)
    cv2.putText(canvas, caption, origin, font, scale, (255, 255, 255), 1, cv2.LINE_AA)


class ProgressBar:
    """A one-line text progress bar on stderr (updated at most 5 times a second)."""

    def __init__(self, total, unit: str, stream=None, enabled: bool = True, width: int = 30):
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.done = 0
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, count: int = 1):
        self.done += count
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and self.done != self.total):
            return
        self._last = now
        elapsed = now - self._start
        if self.total:
            filled = int(self.width * min(self.done, self.total) / self.total)
            bar = "#" * filled + "." * (self.width - filled)
            line = f"\r[{bar}] {self.done}/{self.total} {self.unit} {elapsed:5.1f}s"
        else:
            line = f"\r{self.done} {self.unit} {elapsed:5.1f}s"
        self.stream.write(line)
        self.stream.flush()

    def close(self):
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


def _write_atomic(path: Path, text: str):
    files.write_text_atomic(path, text)


def _write_image_atomic(path: Path, image_rgb):
    with files.atomic_path(path) as temporary:
        if not cv2.imwrite(str(temporary), np.ascontiguousarray(image_rgb[..., ::-1])):
            raise OSError(5, "the image encoder failed", str(path))


def person_entries(source, frame, boxes, keypoints, scores) -> list:
    """JSON-ready records of the people of one image or frame."""
    entries = []
    for index in range(len(keypoints)):
        entries.append(
            {
                "source": str(source),
                "frame": frame,
                "person": index,
                "box": None if boxes is None else [float(v) for v in boxes[index]],
                "keypoints": [
                    [float(x), float(y), float(score)]
                    for (x, y), score in zip(keypoints[index], scores[index], strict=True)
                ],
            }
        )
    return entries


def keypoints_csv(entries, joint_set: JointSet) -> str:
    """One row per person: source, frame, person, box, then x, y, score per joint."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["source", "frame", "person", "box_x0", "box_y0", "box_x1", "box_y1"]
    for name in joint_set.names:
        header += [f"{name}_x", f"{name}_y", f"{name}_score"]
    writer.writerow(header)
    for entry in entries:
        box = entry["box"] or ["", "", "", ""]
        row = [entry["source"], "" if entry["frame"] is None else entry["frame"], entry["person"]]
        row += [f"{value:.3f}" if value != "" else "" for value in box]
        for x, y, score in entry["keypoints"]:
            row += [f"{x:.3f}", f"{y:.3f}", f"{score:.4f}"]
        writer.writerow(row)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


class Predictor:
    """Settings of one `predict` run around a loaded model (see `main` for the flags)."""

    def __init__(
        self,
        model,
        joint_set: JointSet,
        flip=False,
        refine="quarter",
        batch_size=16,
        box_scale=1.25,
        sigma=1.0,
        score_threshold=DEFAULT_SCORE_THRESHOLD,
    ):
        self.model = model
        self.joint_set = joint_set
        self.flip = flip
        self.refine = refine
        self.batch_size = batch_size
        self.box_scale = box_scale
        self.sigma = sigma
        self.score_threshold = score_threshold
        self.input_size = input_size_of(model)

    def predict_items(self, items):
        """items: list of (key, image RGB, boxes or None) -> list of (keypoints, scores)."""
        crops, matrices, owners = [], [], []
        for position, (_, image, boxes) in enumerate(items):
            item_crops, item_matrices = crop_people(image, boxes, self.input_size, self.box_scale)
            crops.append(item_crops)
            matrices.append(item_matrices)
            owners += [position] * len(item_crops)
        result = predict_crops(
            self.model,
            np.concatenate(crops),
            np.concatenate(matrices),
            self.joint_set,
            flip=self.flip,
            refine=self.refine,
            batch_size=self.batch_size,
            sigma=self.sigma,
        )
        owners = np.asarray(owners)
        return [
            (result.keypoints[owners == position], result.scores[owners == position])
            for position in range(len(items))
        ]

    def overlay(self, image, keypoints, scores, boxes):
        """The image with every person's skeleton (joints under the score threshold left out)."""
        return draw_people(
            image,
            keypoints,
            scores,
            self.joint_set,
            boxes=boxes,
            score_threshold=self.score_threshold,
        )


def _unique_name(directory: Path, stem: str, suffix: str, used: set) -> Path:
    name = f"{stem}{suffix}"
    index = 1
    while name in used:
        name = f"{stem}_{index}{suffix}"
        index += 1
    used.add(name)
    return directory / name


def predict_images(predictor: Predictor, paths, boxes, overlay_dir, used_names, progress):
    """Predict every image (batched across images); returns the person entries."""
    entries = []
    pending = []

    def flush():
        results = predictor.predict_items(pending)
        for (path, image, person_boxes), (keypoints, scores) in zip(pending, results, strict=True):
            entries.extend(person_entries(path, None, person_boxes, keypoints, scores))
            if overlay_dir is not None:
                overlay = predictor.overlay(image, keypoints, scores, person_boxes)
                _write_image_atomic(
                    _unique_name(overlay_dir, Path(path).stem, ".png", used_names), overlay
                )
        progress.update(len(pending))
        pending.clear()

    people = 0
    for path in paths:
        image = read_image(path)
        person_boxes = boxes.get((Path(path).name, None))
        pending.append((path, image, None if person_boxes is None else np.asarray(person_boxes)))
        people += 1 if person_boxes is None else len(person_boxes)
        if people >= predictor.batch_size:
            flush()
            people = 0
    if pending:
        flush()
    return entries


def predict_video(predictor: Predictor, path, boxes, overlay_dir, used_names, max_frames, progress):
    """Predict the frames of one video (batched across frames); returns the person entries.

    With `overlay_dir`, writes `<stem>.mp4` (`video.VideoWriter`: H.264, else mp4v; the
    source's frame rate) with the skeletons drawn; it appears only when complete.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: cannot open as a video (corrupt or unsupported codec).")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = temporary = target = None
    entries = []
    pending = []
    frame_index = 0
    name = Path(path).name

    def flush():
        nonlocal writer
        results = predictor.predict_items(pending)
        for (frame, image, person_boxes), (keypoints, scores) in zip(pending, results, strict=True):
            entries.extend(person_entries(path, frame, person_boxes, keypoints, scores))
            if overlay_dir is not None:
                overlay = predictor.overlay(image, keypoints, scores, person_boxes)
                if writer is None:
                    from pose_keras.video import VideoWriter

                    height, width = overlay.shape[:2]
                    writer = VideoWriter(temporary, fps, width, height)
                writer.write(overlay)
        progress.update(len(pending))
        pending.clear()

    if overlay_dir is not None:
        target = _unique_name(overlay_dir, Path(path).stem, ".mp4", used_names)
        temporary = target.with_name(f".{target.stem}.partial.mp4")
    try:
        people = 0
        while max_frames is None or frame_index < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            # Boxes given for the video without a frame apply to every frame.
            person_boxes = boxes.get((name, frame_index), boxes.get((name, None)))
            pending.append(
                (
                    frame_index,
                    np.ascontiguousarray(frame[..., ::-1]),
                    None if person_boxes is None else np.asarray(person_boxes),
                )
            )
            people += 1 if person_boxes is None else len(person_boxes)
            frame_index += 1
            if people >= predictor.batch_size:
                flush()
                people = 0
        if pending:
            flush()
        if frame_index == 0:
            raise ValueError(f"{path}: no frame could be decoded.")
        if writer is not None:
            writer.close()
            writer = None
            os.replace(temporary, target)
    finally:
        capture.release()
        if writer is not None:
            writer.close()
        if temporary is not None and temporary.exists():
            temporary.unlink()
    return entries


def _video_frames(path, max_frames):
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    capture.release()
    if max_frames is not None:
        count = min(count, max_frames) if count else max_frames
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.predict",
        description="Predict keypoints on images, folders of images and videos. Writes "
        "keypoints.json and keypoints.csv (image px, 0-based pixel centres, per-joint "
        "scores) and skeleton overlays (PNG per image, MP4 per video) to --output.",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="Image files, folders of images (not recursive) or video files.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="A run directory (uses model.keras, else best.keras) or a .keras file.",
    )
    parser.add_argument(
        "--boxes",
        help="Person boxes, JSON or CSV (image px x0,y0,x1,y1; see docs/evaluation.md). "
        "Images and frames without boxes are treated as one person covering the whole image.",
    )
    parser.add_argument(
        "--output", default="predictions", help="Output folder (default: predictions)."
    )
    parser.add_argument(
        "--flip", action="store_true", help="Flip test: average with the mirrored crop."
    )
    parser.add_argument(
        "--refine",
        choices=decode.REFINEMENTS,
        default="quarter",
        help="Sub-pixel refinement: quarter-pixel shift (default), DARK, or none.",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="People per model call (default 16)."
    )
    parser.add_argument(
        "--box-scale",
        type=float,
        default=None,
        help="Crop side = box's longer side x this (default: the run's data.box_scale, 1.25).",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=DEFAULT_SCORE_THRESHOLD,
        help=f"Draw joints scoring at least this (default {DEFAULT_SCORE_THRESHOLD}); the "
        "keypoint files keep every joint with its score.",
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        default=None,
        help="Process at most this many frames of each video (default: all).",
    )
    parser.add_argument("--no-overlays", action="store_true", help="Write the keypoint files only.")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace an earlier prediction in --output (keypoints files and overlays).",
    )
    runs.add_model_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, received {args.batch_size}.")
        if args.max_frames is not None and args.max_frames < 1:
            raise ValueError(f"--max-frames must be >= 1, received {args.max_frames}.")
        if args.box_scale is not None and not args.box_scale > 0:
            raise ValueError(f"--box-scale must be > 0, received {args.box_scale}.")
        items = collect_inputs(args.inputs)
        boxes = read_boxes(args.boxes) if args.boxes else {}
        files.check_output_dir(args.output, "--output")
        from pose_keras.runs import load_run

        run = load_run(args.model, joints=args.joints, prefer=args.prefer)
        config = run.config
        predictor = Predictor(
            run.model,
            run.joint_set,
            flip=args.flip,
            refine=args.refine,
            batch_size=args.batch_size,
            box_scale=args.box_scale or (config.data.box_scale if config else 1.25),
            sigma=config.data.sigma if config else 1.0,
            score_threshold=args.score_threshold,
        )
        output = Path(args.output)
        overlay_dir = None if args.no_overlays else output / "overlays"
        if (output / "keypoints.json").exists() and not args.overwrite:
            raise ValueError(
                f"{output} holds an earlier prediction (keypoints.json); pass --overwrite to "
                "replace it (its overlays too), or choose another --output."
            )
        if args.overwrite and (output / "overlays").is_dir():
            import shutil

            shutil.rmtree(output / "overlays")  # no stale overlays beside the new result
        (overlay_dir or output).mkdir(parents=True, exist_ok=True)
        images = [path for path, kind in items if kind == "image"]
        videos = [path for path, kind in items if kind == "video"]
        names = {Path(path).name for path, _ in items}
        unmatched = sorted({name for name, _ in boxes if name not in names})
        if unmatched:
            shown = ", ".join(unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
            print(
                f"note: {len(unmatched)} file(s) in {args.boxes} are not among the inputs "
                f"and are ignored: {shown}",
                file=sys.stderr,
            )
        total = len(images) + sum(_video_frames(path, args.max_frames) for path in videos)
        progress = ProgressBar(total, "images/frames", enabled=not args.quiet)
        used_names = set()
        entries = []
        if images:
            entries += predict_images(predictor, images, boxes, overlay_dir, used_names, progress)
        for video in videos:
            entries += predict_video(
                predictor, video, boxes, overlay_dir, used_names, args.max_frames, progress
            )
        progress.close()
        document = {
            "model": str(run.path),
            "joint_set": {"name": run.joint_set.name, "names": list(run.joint_set.names)},
            "coordinates": "image px, 0-based pixel centres",
            "flip_test": args.flip,
            "refine": args.refine,
            "people": entries,
        }
        _write_atomic(output / "keypoints.json", json.dumps(document, indent=1) + "\n")
        _write_atomic(output / "keypoints.csv", keypoints_csv(entries, run.joint_set))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk or a vanished folder while writing
        print(f"error: {files.describe_os_error(error)}", file=sys.stderr)
        return 1
    overlays = "" if overlay_dir is None else f" and overlays in {overlay_dir}"
    print(f"Wrote {len(entries)} people to {output / 'keypoints.json'}, keypoints.csv{overlays}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
