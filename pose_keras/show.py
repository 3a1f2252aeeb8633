"""`python -m pose_keras.show`: a PNG grid of pipeline samples and their targets.

One row per person: the crop the network receives (after augmentation in training mode)
with its keypoints (occluded joints ringed in white), then the target heatmaps of every
supervised scale (GT, GT/2, ...; the maximum over joints, blended over the crop), each
titled with its size and peak value. What you see is exactly what `model.fit` gets.

Examples:

    python -m pose_keras.show                                   # synthetic, training mode
    python -m pose_keras.show --records data/mpii_train --count 6 --output mpii.png
    python -m pose_keras.show --validation --set data.target_downsample=area
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from pose_keras import cli
from pose_keras.config import Config

TILE = 192  # px per panel in the grid


def _label(panel, text):
    cv2.putText(panel, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        panel, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA
    )
    return panel


def sample_grid(config: Config, pattern=None, count=4, training=True, seed=None):
    """RGB uint8 grid: per row, the crop with keypoints and the targets at every scale."""
    import tensorflow as tf

    from pose_keras import pipeline
    from pose_keras.draw import draw_skeleton, heatmap_overlay
    from pose_keras.targets import make_targets

    split = pipeline.resolve_split(pattern or pipeline._default_pattern(config, training))
    joint_set = pipeline.resolve_joint_set(config, split)
    examples = pipeline.prepared_examples(config, split.pattern, training=training, seed=seed)
    scales = config.model.supervised_scales
    rows = []
    for example in examples.take(count):
        image = np.clip(example["image"].numpy(), 0, 255).astype(np.uint8)
        keypoints = example["keypoints_input_px"].numpy()
        visibility = example["visibility"].numpy()
        targets, weights = make_targets(
            example["keypoints_input_px"], example["visibility"], config.model, config.data
        )
        zoom = TILE / image.shape[0]
        tile = cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_LINEAR)
        # Input px -> tile px, edge-aligned (transforms.resize_matrix).
        keypoints_tile = (keypoints + 0.5) * zoom - 0.5
        panel = draw_skeleton(tile, keypoints_tile, joint_set, present=visibility > 0, radius=3)
        for joint in np.flatnonzero(visibility == 1):
            x, y = np.round(keypoints_tile[joint] * 16).astype(int)
            cv2.circle(panel, (int(x), int(y)), 6 * 16, (255, 255, 255), 1, cv2.LINE_AA, 4)
        weight_sum = int(tf.reduce_sum(weights["refined"]).numpy())
        panels = [_label(panel, f"input {image.shape[0]}px, {weight_sum} weighted")]
        for scale in scales:
            name = f"stack1_scale{scale}"
            heatmaps = targets[name].numpy()
            peak = float(heatmaps.max())
            # Normalised by the peak so that area-downsampled maps (peak < 1) show too.
            overlay = heatmap_overlay(tile, heatmaps / max(peak, 1e-6))
            size = heatmaps.shape[0]
            label = "GT" if scale == 1 else f"GT/{scale}"
            panels.append(_label(overlay, f"{label} {size}x{size} peak {peak:.2f}"))
        rows.append(np.concatenate(panels, axis=1))
    if not rows:
        raise ValueError(f"{split.pattern}: no examples to show.")
    return np.concatenate(rows, axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.show",
        description="Draw pipeline samples (augmented crops with keypoints) and their target "
        "heatmaps at every supervised scale into a PNG grid.",
    )
    parser.add_argument(
        "--records",
        help="TFRecord split prefix or shard glob (default: data.train_records / "
        "data.val_records, or the synthetic dataset).",
    )
    cli.add_config_arguments(parser, default_preset="synthetic")
    parser.add_argument("--count", type=int, default=4, help="People to draw (default 4).")
    parser.add_argument(
        "--validation",
        action="store_true",
        help="Validation mode: record order, no augmentation (default: training mode).",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="Augmentation seed (default train.seed)."
    )
    parser.add_argument(
        "--output",
        default="augmented_targets.png",
        help="PNG to write (default augmented_targets.png).",
    )
    arguments = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if arguments.count < 1:
            raise ValueError(f"--count must be >= 1, received {arguments.count}.")
        config = cli.config_from_arguments(arguments, default_preset="synthetic")
        grid = sample_grid(
            config,
            arguments.records,
            arguments.count,
            training=not arguments.validation,
            seed=arguments.seed,
        )
        Path(arguments.output).parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(arguments.output, grid[..., ::-1]):
            raise ValueError(f"Cannot write {arguments.output}.")
    except (ValueError, FileNotFoundError) as error:
        return cli.error_exit(error)
    print(f"Wrote {arguments.output} ({grid.shape[1]}x{grid.shape[0]} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
