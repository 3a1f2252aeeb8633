"""Measure a model trained on the DeepLabCut openfield project (docs/deeplabcut.md).

    python bench/dlc_measure.py --model runs/dlc_openfield --records records/dlc_openfield \
        --video ../shared/data/dlc_openfield/videos/m3v1mp4.mp4 --out docs/deeplabcut

Prints one JSON object:
- the validation split scored with the record boxes (`evaluate`'s numbers, flip test);
- the same frames without any box, through `python -m pose_keras.predict --find` (search,
  then refine), scored against the labels;
- the video through `python -m pose_keras.predict --find` (tracked), once raw
  (`--no-smooth`) and once smoothed (the default One-Euro filter): the jitter (mean
  keypoint acceleration) of each and the number of frames where the subject was searched
  for again.

With --out it writes overlay images of the predictions (not the labels: those are the
white rings) on validation frames, and a strip of frames of the smoothed overlay video.
Every prediction goes through predict's command-line entry point, so these are the
numbers a user of `predict` gets.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import pose_keras
from pose_keras import predict, tracking
from pose_keras.draw import draw_skeleton
from pose_keras.records import read_people


def decode(encoded):
    image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(image[..., ::-1])


def run_predict(arguments):
    status = predict.main([*arguments, "--quiet"])
    if status != 0:
        raise SystemExit(f"predict {' '.join(arguments)} failed with exit status {status}")


def first_person_trajectory(frames, joints):
    """(T, J, 2) keypoints of the first person of every frame (NaN where nobody)."""
    trajectory = np.full((len(frames), joints, 2), np.nan)
    for position, frame in enumerate(frames):
        if frame["people"]:
            trajectory[position] = frame["people"][0]["keypoints"]
    return trajectory


def searches(frames, frame_shape):
    """Frames whose box is not the one `next_box` makes from the previous frame: the
    tracker searched for the subject there (the first frame counts)."""
    count, previous = 0, None
    for frame in frames:
        person = frame["people"][0] if frame["people"] else None
        expected = None
        if previous is not None and not tracking.is_lost(previous["scores"]):
            expected = tracking.next_box(previous["keypoints_raw"], previous["scores"], frame_shape)
        if person is not None and (
            expected is None or not np.allclose(person["box"], expected, atol=1e-3)
        ):
            count += 1
        previous = person
    return count


def measure_video(model_path, video, frames, work: Path, strip_path=None):
    report = {}
    runs = {}
    for name, extra in (("raw", ["--no-smooth"]), ("smoothed", [])):
        output = work / f"video-{name}"
        run_predict(
            ["--model", str(model_path), str(video), "--find", "--max-frames", str(frames),
             "--output", str(output), *extra]
        )  # fmt: skip
        runs[name], names = tracking.read_frames_json(
            output / "frames" / f"{Path(video).stem}.json"
        )
        report[f"{name}_mean_acceleration_px"] = float(
            np.nanmean(tracking.mean_acceleration(first_person_trajectory(runs[name], len(names))))
        )
    capture = cv2.VideoCapture(str(video))
    shape = (
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
    )
    capture.release()
    for raw_frame in runs["raw"]:  # raw keypoints steer the boxes
        for person in raw_frame["people"]:
            person["keypoints_raw"] = person["keypoints"]
    report["frames"] = len(runs["raw"])
    report["searches"] = searches(runs["raw"], shape)
    report["track_ids"] = sorted(
        {person["track_id"] for frame in runs["smoothed"] for person in frame["people"]}
    )
    if strip_path is not None:
        capture = cv2.VideoCapture(
            str(work / "video-smoothed" / "overlays" / f"{Path(video).stem}.mp4")
        )
        wanted = set(np.linspace(0, report["frames"] - 1, 4).round().astype(int).tolist())
        strip, index = [], 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                cv2.putText(frame, f"frame {index}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                            (255, 255, 255), 2, cv2.LINE_AA)  # fmt: skip
                strip.append(frame)
            index += 1
        capture.release()
        strip = np.concatenate(strip, axis=1)
        strip = cv2.resize(strip, (strip.shape[1] // 2, strip.shape[0] // 2), cv2.INTER_AREA)
        cv2.imwrite(str(strip_path), strip)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Run directory or .keras file.")
    parser.add_argument("--records", required=True, help="Prefix of the converted project.")
    parser.add_argument("--video", help="A video to track (jitter raw vs smoothed).")
    parser.add_argument("--video-frames", type=int, default=300, help="Frames of the video.")
    parser.add_argument("--out", help="Folder for overlay images of validation frames.")
    args = parser.parse_args(argv)
    model = pose_keras.load(args.model)
    val = f"{args.records}-val"
    report = {}
    started = time.perf_counter()
    evaluation = model.evaluate(val, flip=True)
    report["with_record_boxes"] = {
        "mean_px_error": evaluation.mean_px_error,
        evaluation.protocol: evaluation.columns["Mean"],
        "people": evaluation.people,
    }
    out = Path(args.out) if args.out else None
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        frames_dir = work / "frames"
        frames_dir.mkdir()
        people = list(read_people(val))
        for index, person in enumerate(people):
            cv2.imwrite(
                str(frames_dir / f"{index:03d}.png"), decode(person.image_encoded)[..., ::-1]
            )
        run_predict(
            ["--model", args.model, str(frames_dir), "--find", "--no-overlays",
             "--output", str(work / "found")]
        )  # fmt: skip
        found = json.loads((work / "found" / "keypoints.json").read_text())["people"]
        by_name = {Path(entry["source"]).name: np.asarray(entry["keypoints"]) for entry in found}
        errors, thresholds, overlays = [], [], []
        for index, person in enumerate(people):
            keypoints = by_name[f"{index:03d}.png"][:, :2]
            labelled = person.visibility > 0
            distance = np.linalg.norm(keypoints - person.keypoints, axis=-1)[labelled]
            errors.append(distance)
            thresholds.append(np.full(distance.shape, 0.05 * person.normalize))
            if out and len(overlays) < 6:
                canvas = draw_skeleton(decode(person.image_encoded), keypoints, model.joint_set)
                for x, y in person.keypoints[labelled]:
                    cv2.circle(canvas, (round(x), round(y)), 7, (255, 255, 255), 1, cv2.LINE_AA)
                overlays.append(canvas)
        errors, thresholds = np.concatenate(errors), np.concatenate(thresholds)
        report["without_boxes"] = {
            "command": "python -m pose_keras.predict --model MODEL FRAMES_DIR --find",
            "frames": len(people),
            "mean_px_error": float(errors.mean()),
            "PCK@0.05": float(100.0 * np.mean(errors <= thresholds)),
            "median_px_error": float(np.median(errors)),
            "max_px_error": float(errors.max()),
        }
        if out:
            out.mkdir(parents=True, exist_ok=True)
            grid = np.concatenate(
                [np.concatenate(overlays[i : i + 3], axis=1) for i in range(0, len(overlays), 3)]
            )
            grid = cv2.resize(grid, (grid.shape[1] // 2, grid.shape[0] // 2), cv2.INTER_AREA)
            cv2.imwrite(str(out / "validation_predictions.jpg"), grid[..., ::-1])
        if args.video:
            report["video"] = measure_video(
                args.model,
                args.video,
                args.video_frames,
                work,
                None if out is None else out / "video_frames.jpg",
            )
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
