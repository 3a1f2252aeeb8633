"""`python -m pose_keras.predict`: keypoints on images, folders and videos.

The inference itself is `pose_keras.inference` (the code the exported SavedModel runs too):
`read_image`, `crop_people` (one square crop per person box, side = longer side x
`box_scale`) and `predict_crops` (network, optional flip test, decoding, back-projection to
image px). This module reads the inputs and box files and writes the results.

Inputs: image files, folders of images (not recursive) and video files. Person boxes come
from an optional JSON or CSV file (formats in docs/evaluation.md, "Predict"). Without one,
each image or frame is one person box covering it, or with `--find` one subject that the
network finds itself (`tracking.find_then_refine`: candidate boxes tiling the image, the
best-scoring one refined on its keypoints). Videos with `--find` are tracked
(`tracking.SubjectTracker`: each box from the previous frame's keypoints, a new search when
the scores drop). Video keypoints get track ids (IoU matching) and are smoothed per track
by a One-Euro filter unless `--no-smooth` (docs/video.md). Outputs, in `--output`:

- `keypoints.json`: per person, the source, frame and track id (videos), box and per joint
  [x, y, score] in image px (0-based pixel centres, as everywhere in pose_keras).
- `keypoints.csv`: the same, one row per person, columns `<joint>_x`, `<joint>_y`,
  `<joint>_score`.
- `frames/<video stem>.json` and `.csv`: per video, one record per frame with its people's
  track ids, boxes, keypoints and scores (`tracking.write_frames_json`, `write_frames_csv`).
- `overlays/`: the skeleton drawn on every image (PNG) and every video (MP4: H.264 through
  imageio-ffmpeg's ffmpeg, else `mp4v`; `pose_keras.video`).

Examples:

    python -m pose_keras.predict --model runs/synthetic photo.jpg photos/ clip.mp4
    python -m pose_keras.predict --model runs/mpii/best.keras --boxes people.json \\
        --flip --output predictions/ images/
    python -m pose_keras.predict --model runs/dlc_openfield --find mouse_video.mp4
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from pose_keras import cli, files, runs, tracking
from pose_keras.config import DataConfig
from pose_keras.draw import draw_people
from pose_keras.joints import JointSet
from pose_keras.transforms import parse_box

# TensorFlow loads with the model (`pose_keras.inference`), not with `--help` or a bad flag.
MOVED_TO_INFERENCE = ("crop_people", "read_image", "predict_crops")


def __getattr__(name):  # names that moved to the library module `pose_keras.inference`
    if name in MOVED_TO_INFERENCE:
        from pose_keras import inference

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_SCORE_THRESHOLD = tracking.DEFAULT_SCORE_THRESHOLD


# --------------------------------------------------------------------------------------
# Inputs: images, folders, videos, person boxes
# --------------------------------------------------------------------------------------


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
                    add(image, None, parse_box(values, f"{path}: {image!r} box {index}"))
        elif isinstance(data, list):
            for index, entry in enumerate(data):
                where = f"{path}: entry {index}"
                if not isinstance(entry, dict) or "image" not in entry or "box" not in entry:
                    raise ValueError(f"{where}: expected an object with 'image' and 'box'.")
                frame = _parse_frame(entry.get("frame"), where)
                add(entry["image"], frame, parse_box(entry["box"], where))
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
            box = parse_box([row["x0"], row["y0"], row["x1"], row["y1"]], where)
            add(row["image"], frame, box)
    else:
        raise ValueError(f"{path}: box files are .json or .csv, received {path.suffix!r}.")
    return boxes


# --------------------------------------------------------------------------------------
# Outputs: overlays, keypoint files
# --------------------------------------------------------------------------------------


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
        box_scale=DataConfig.box_scale,
        sigma=1.0,
        score_threshold=DEFAULT_SCORE_THRESHOLD,
    ):
        self.joint_set = joint_set
        self.flip = flip
        self.refine = refine
        self.batch_size = batch_size
        self.box_scale = box_scale
        self.sigma = sigma
        self.score_threshold = score_threshold
        from pose_keras.inference import inference_of

        self.inference = inference_of(model, joint_set)

    def predict_items(self, items):
        """items: list of (key, image RGB, boxes or None) -> list of (keypoints, scores)."""
        from pose_keras.inference import crop_people

        crops, matrices, owners = [], [], []
        for position, (_, image, boxes) in enumerate(items):
            item_crops, item_matrices = crop_people(
                image, boxes, self.inference.input_size, self.box_scale
            )
            crops.append(item_crops)
            matrices.append(item_matrices)
            owners += [position] * len(item_crops)
        result = self.inference.predict_crops(
            np.concatenate(crops),
            np.concatenate(matrices),
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


def _predict_boxes_on(predictor: Predictor, image):
    """callable(boxes (N, 4)) -> (keypoints (N, J, 2), scores (N, J)) on one image, for
    `tracking.find_then_refine` and `tracking.SubjectTracker`."""

    def predict_boxes(boxes):
        ((keypoints, scores),) = predictor.predict_items(
            [(None, image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4))]
        )
        return keypoints, scores

    return predict_boxes


def predict_images(
    predictor: Predictor, paths, boxes, overlay_dir, used_names, progress, find=False
):
    """Predict every image (batched across images); returns the person entries.

    An image without boxes is one person covering the whole image, or with `find` one
    subject found by `tracking.find_then_refine` (search, then refine on its keypoints).
    """
    from pose_keras.inference import read_image

    entries = []
    pending = []

    def write_overlay(path, image, keypoints, scores, person_boxes):
        if overlay_dir is not None:
            overlay = predictor.overlay(image, keypoints, scores, person_boxes)
            _write_image_atomic(
                _unique_name(overlay_dir, Path(path).stem, ".png", used_names), overlay
            )

    def flush():
        results = predictor.predict_items(pending)
        for (path, image, person_boxes), (keypoints, scores) in zip(pending, results, strict=True):
            entries.extend(person_entries(path, None, person_boxes, keypoints, scores))
            write_overlay(path, image, keypoints, scores, person_boxes)
        progress.update(len(pending))
        pending.clear()

    people = 0
    for path in paths:
        image = read_image(path)
        person_boxes = boxes.get((Path(path).name, None))
        if person_boxes is None and find:
            box, keypoints, scores = tracking.find_then_refine(
                image.shape, _predict_boxes_on(predictor, image)
            )
            box, keypoints, scores = box[None], keypoints[None], scores[None]
            entries.extend(person_entries(path, None, box, keypoints, scores))
            write_overlay(path, image, keypoints, scores, box)
            progress.update(1)
            continue
        pending.append((path, image, None if person_boxes is None else np.asarray(person_boxes)))
        people += 1 if person_boxes is None else len(person_boxes)
        if people >= predictor.batch_size:
            flush()
            people = 0
    if pending:
        flush()
    return entries


class VideoResults:
    """Collects one video's predictions frame by frame, in order: track ids (IoU matching,
    `tracking.assign_track_ids`), One-Euro smoothing per track (`smoothing`: the filter's
    arguments, or None for raw keypoints), person entries, per-frame records for
    `tracking.write_frames_json/csv`, and the overlay video (written to a temporary file
    that `finish` renames)."""

    def __init__(self, predictor: Predictor, path, fps, smoothing, overlay_target):
        self.predictor = predictor
        self.path = path
        self.fps = fps
        self.smoothing = smoothing
        self.entries, self.frames = [], []
        self.filters = {}
        self.previous_boxes, self.previous_ids, self.next_id = np.zeros((0, 4)), [], 0
        self.target = overlay_target
        self.temporary = (
            None
            if overlay_target is None
            else overlay_target.with_name(f".{overlay_target.stem}.partial.mp4")
        )
        self.writer = None

    def add(self, frame, image, person_boxes, keypoints, scores):
        """One frame: boxes (P, 4) or None (the whole frame), keypoints (P, J, 2) and scores
        (P, J) as predicted (raw)."""
        height, width = image.shape[:2]
        frame_box = np.array([[-0.5, -0.5, width - 0.5, height - 0.5]])
        match_boxes = (
            np.repeat(frame_box, len(keypoints), 0) if person_boxes is None else person_boxes
        )
        ids, self.next_id = tracking.assign_track_ids(
            self.previous_boxes, self.previous_ids, match_boxes, self.next_id
        )
        self.previous_boxes, self.previous_ids = match_boxes, ids
        time = frame / self.fps
        keypoints = np.array(keypoints, dtype=np.float64)
        if self.smoothing is not None:
            for person, track_id in enumerate(ids):
                if int(track_id) not in self.filters:
                    self.filters[int(track_id)] = tracking.OneEuroFilter(
                        fps=self.fps, **self.smoothing
                    )
                keypoints[person] = self.filters[int(track_id)](
                    keypoints[person], scores[person], timestamp=time
                )
        people = person_entries(self.path, frame, person_boxes, keypoints, scores)
        for entry, track_id in zip(people, ids, strict=True):
            entry["track_id"] = int(track_id)
        self.entries += people
        self.frames.append(
            {
                "frame": frame,
                "time": time,
                "people": [
                    {
                        "track_id": int(track_id),
                        "box": None if person_boxes is None else person_boxes[person],
                        "keypoints": keypoints[person],
                        "scores": scores[person],
                    }
                    for person, track_id in enumerate(ids)
                ],
            }
        )
        if self.target is not None:
            overlay = self.predictor.overlay(image, keypoints, scores, person_boxes)
            if self.writer is None:
                from pose_keras.video import VideoWriter

                self.writer = VideoWriter(self.temporary, self.fps, width, height)
            self.writer.write(overlay)

    def finish(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            os.replace(self.temporary, self.target)

    def discard(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.temporary is not None and self.temporary.exists():
            self.temporary.unlink()


def predict_video(
    predictor: Predictor,
    path,
    boxes,
    overlay_dir,
    used_names,
    max_frames,
    progress,
    find=False,
    smoothing=None,
    frames_path=None,
):
    """Predict the frames of one video; returns the person entries (with track ids).

    Boxes for the video (per frame, or for every frame) are predicted batched across
    frames; without boxes each frame is one person covering it, or with `find` the subject
    is tracked (`tracking.SubjectTracker`: the box from the previous frame's raw keypoints,
    found again by search-then-refine on the first frame and whenever it is lost). Track
    ids come from IoU matching; with `smoothing` (One-Euro filter arguments) the keypoints
    are smoothed per track (scores stay raw). With `overlay_dir`, writes `<stem>.mp4`
    (`video.VideoWriter`: H.264, else mp4v; the source's frame rate) with the skeletons
    drawn; with `frames_path` (a path without suffix), `<frames_path>.json` and `.csv`
    (`tracking.write_frames_json`, `write_frames_csv`). Each appears only when complete.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: cannot open as a video (corrupt or unsupported codec).")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    name = Path(path).name
    target = None
    if overlay_dir is not None:
        target = _unique_name(overlay_dir, Path(path).stem, ".mp4", used_names)
    results = VideoResults(predictor, path, fps, smoothing, target)
    tracker = None
    if find and not any(key[0] == name for key in boxes):
        tracker = tracking.SubjectTracker(fps=fps, smooth=False)
    pending = []

    def flush():
        predicted = predictor.predict_items(pending)
        for (frame, image, person_boxes), (keypoints, scores) in zip(
            pending, predicted, strict=True
        ):
            results.add(frame, image, person_boxes, keypoints, scores)
        progress.update(len(pending))
        pending.clear()

    frame_index = 0
    try:
        people = 0
        while max_frames is None or frame_index < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            image = np.ascontiguousarray(frame[..., ::-1])
            if tracker is not None:
                step = tracker.step(image.shape, _predict_boxes_on(predictor, image))
                results.add(
                    frame_index,
                    image,
                    step["box"][None],
                    step["raw_keypoints"][None],
                    step["scores"][None],
                )
                progress.update(1)
                frame_index += 1
                continue
            # Boxes given for the video without a frame apply to every frame.
            person_boxes = boxes.get((name, frame_index), boxes.get((name, None)))
            pending.append(
                (frame_index, image, None if person_boxes is None else np.asarray(person_boxes))
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
        if frames_path is not None:
            names = predictor.joint_set.names
            tracking.write_frames_json(f"{frames_path}.json", results.frames, names)
            tracking.write_frames_csv(f"{frames_path}.csv", results.frames, names)
        results.finish()
    finally:
        capture.release()
        results.discard()
    return results.entries


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
    cli.add_inference_arguments(parser, batch_size=16)
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
    parser.add_argument(
        "--find",
        action="store_true",
        help="Images and frames without a box: find the subject (one per image) instead of "
        "taking the whole image as its box. The network runs on square candidate boxes "
        "tiling the image (sides 25/35/50%% of its shorter side), keeps the best-scoring "
        "one and runs again on the box around its keypoints. Videos are then tracked: each "
        "frame's box comes from the previous frame's keypoints, and the subject is found "
        "again when its scores drop (docs/video.md).",
    )
    smoothing = parser.add_argument_group(
        "video smoothing (One-Euro filter per track, on by default; docs/video.md)"
    )
    smoothing.add_argument(
        "--no-smooth",
        action="store_true",
        help="Write the raw keypoints of videos (e.g. to score frames against labels).",
    )
    smoothing.add_argument(
        "--min-cutoff",
        type=float,
        default=tracking.DEFAULT_MIN_CUTOFF,
        help=f"Cutoff at rest, Hz (default {tracking.DEFAULT_MIN_CUTOFF:g}); lower = smoother.",
    )
    smoothing.add_argument(
        "--beta",
        type=float,
        default=tracking.DEFAULT_BETA,
        help=f"Cutoff rise per px/s of speed (default {tracking.DEFAULT_BETA:g}); higher = "
        "less lag on fast moves.",
    )
    smoothing.add_argument(
        "--d-cutoff",
        type=float,
        default=tracking.DEFAULT_D_CUTOFF,
        help=f"Cutoff of the speed estimate, Hz (default {tracking.DEFAULT_D_CUTOFF:g}).",
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
        cli.check_inference_arguments(args)
        if args.max_frames is not None and args.max_frames < 1:
            raise ValueError(f"--max-frames must be >= 1, received {args.max_frames}.")
        smoothing = None
        if not args.no_smooth:
            smoothing = {
                "min_cutoff": args.min_cutoff,
                "beta": args.beta,
                "d_cutoff": args.d_cutoff,
            }
            tracking.OneEuroFilter(fps=30.0, **smoothing)  # refuses bad values before any work
        items = collect_inputs(args.inputs)
        boxes = read_boxes(args.boxes) if args.boxes else {}
        files.check_output_dir(args.output, "--output")
        from pose_keras.runs import load_run

        run = load_run(args.model, joints=args.joints, prefer=args.prefer)
        predictor = Predictor(
            run.model,
            run.joint_set,
            flip=args.flip,
            refine=args.refine,
            batch_size=args.batch_size,
            box_scale=args.box_scale or run.box_scale,
            sigma=run.sigma,
            score_threshold=args.score_threshold,
        )
        output = Path(args.output)
        overlay_dir = None if args.no_overlays else output / "overlays"
        if (output / "keypoints.json").exists() and not args.overwrite:
            raise ValueError(
                f"{output} holds an earlier prediction (keypoints.json); pass --overwrite to "
                "replace it (its overlays too), or choose another --output."
            )
        if args.overwrite:
            import shutil

            for stale in ("overlays", "frames"):  # nothing stale beside the new result
                if (output / stale).is_dir():
                    shutil.rmtree(output / stale)
        (overlay_dir or output).mkdir(parents=True, exist_ok=True)
        images = [path for path, kind in items if kind == "image"]
        videos = [path for path, kind in items if kind == "video"]
        frames_dir = output / "frames"
        if videos:
            frames_dir.mkdir(exist_ok=True)
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
        progress = cli.ProgressBar(total, "images/frames", enabled=not args.quiet)
        used_names = set()
        entries = []
        if images:
            entries += predict_images(
                predictor, images, boxes, overlay_dir, used_names, progress, find=args.find
            )
        frames_names = set()
        for video in videos:
            frames_path = _unique_name(frames_dir, Path(video).stem, "", frames_names)
            entries += predict_video(
                predictor,
                video,
                boxes,
                overlay_dir,
                used_names,
                args.max_frames,
                progress,
                find=args.find,
                smoothing=smoothing,
                frames_path=frames_path,
            )
        progress.close()
        document = {
            "model": str(run.path),
            "joint_set": {"name": run.joint_set.name, "names": list(run.joint_set.names)},
            "coordinates": "image px, 0-based pixel centres",
            "flip_test": args.flip,
            "refine": args.refine,
            "find": args.find,
            "video_smoothing": None if smoothing is None else {"filter": "one-euro", **smoothing},
            "people": entries,
        }
        files.write_text_atomic(output / "keypoints.json", json.dumps(document, indent=1) + "\n")
        files.write_text_atomic(output / "keypoints.csv", keypoints_csv(entries, run.joint_set))
    except (ValueError, OSError) as error:  # bad input (2); a full disk while writing (1)
        return cli.error_exit(error)
    overlays = "" if overlay_dir is None else f" and overlays in {overlay_dir}"
    if videos:
        overlays += f"; per-frame tracks in {frames_dir}"
    print(f"Wrote {len(entries)} people to {output / 'keypoints.json'}, keypoints.csv{overlays}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
