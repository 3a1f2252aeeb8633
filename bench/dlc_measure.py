"""Measure a model trained on the DeepLabCut openfield project (docs/deeplabcut.md).

    python bench/dlc_measure.py --model runs/dlc_openfield --records records/dlc_openfield \
        --video ../shared/data/dlc_openfield/videos/m3v1mp4.mp4 --out docs/deeplabcut

Prints one JSON object: the validation split scored with the record boxes (`evaluate`'s
numbers), the same frames without any box (find then refine), and the video's jitter
(mean keypoint acceleration) raw and One-Euro smoothed; writes overlay images of the
predictions on validation frames to --out.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import pose_keras
from pose_keras.draw import draw_skeleton
from pose_keras.records import read_people
from pose_keras.tracking import SubjectTracker, find_then_refine, mean_acceleration


def network_on(model, image):
    def predict_boxes(boxes):
        prediction = model.predict(image, boxes, batch_size=32)
        return prediction.keypoints, prediction.scores

    return predict_boxes


def decode(encoded):
    image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(image[..., ::-1])


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
    errors, thresholds, overlays = [], [], []
    for person in read_people(val):
        image = decode(person.image_encoded)
        _, keypoints, _ = find_then_refine(image.shape, network_on(model, image))
        labelled = person.visibility > 0
        distance = np.linalg.norm(keypoints - person.keypoints, axis=-1)[labelled]
        errors.append(distance)
        thresholds.append(np.full(distance.shape, 0.05 * person.normalize))
        if args.out and len(overlays) < 6:
            canvas = draw_skeleton(image, keypoints, model.joint_set)
            for x, y in person.keypoints[labelled]:
                cv2.circle(canvas, (round(x), round(y)), 7, (255, 255, 255), 1, cv2.LINE_AA)
            overlays.append(canvas)
    errors, thresholds = np.concatenate(errors), np.concatenate(thresholds)
    report["without_boxes"] = {
        "mean_px_error": float(errors.mean()),
        "PCK@0.05": float(100.0 * np.mean(errors <= thresholds)),
        "median_px_error": float(np.median(errors)),
        "max_px_error": float(errors.max()),
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        grid = np.concatenate(
            [np.concatenate(overlays[i : i + 3], axis=1) for i in range(0, len(overlays), 3)]
        )
        grid = cv2.resize(grid, (grid.shape[1] // 2, grid.shape[0] // 2), cv2.INTER_AREA)
        cv2.imwrite(str(out / "validation_predictions.jpg"), grid[..., ::-1])
    if args.video:
        capture = cv2.VideoCapture(args.video)
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        tracker = SubjectTracker(fps=fps, smooth=True)
        raw, smoothed, searches = [], [], 0
        for _ in range(args.video_frames):
            ok, frame = capture.read()
            if not ok:
                break
            frame = np.ascontiguousarray(frame[..., ::-1])
            step = tracker.step(frame.shape, network_on(model, frame))
            searches += step["found"]
            raw.append(step["raw_keypoints"])
            smoothed.append(step["keypoints"])
        capture.release()
        report["video"] = {
            "frames": len(raw),
            "searches": searches,
            "raw_mean_acceleration_px": float(np.nanmean(mean_acceleration(np.stack(raw)))),
            "smoothed_mean_acceleration_px": float(
                np.nanmean(mean_acceleration(np.stack(smoothed)))
            ),
        }
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
