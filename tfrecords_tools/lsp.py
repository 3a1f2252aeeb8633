"""LSP and LSP-extended (Johnson & Everingham) `joints.mat` -> TFRecords.

Layouts of the variable `joints` (told apart by shape, or `--layout`):

- LSP (`lsp_dataset/joints.mat`, 2000 images `images/im0001.jpg` ... `im2000.jpg`):
  3 x 14 x 2000, rows x, y and a flag that is 1 for an OCCLUDED joint and 0 for a visible
  one (LSP labels all 14 joints, occluded ones at their estimated place). The flag's sense
  is the reverse of what the README's "binary value specifying joint visibility" suggests;
  converters that know the file invert it (HMR, akanazawa/hmr
  `src/datasets/lsp_to_tfrecords.py`: "LSP 3-D dim, 0 means visible 1 means invisible. But
  in LSP-ext, 0 means invis, 1 means visible"; Wei Yang's `gen_lsp.m`:
  `joints(3,:,:) = 1 - joints(3,:,:)` for LSP only).
  Standard split: images 1-1000 train, 1001-2000 test.
- LSP-extended (`lspet_dataset/joints.mat`, 10000 images `im00001.jpg` ...): 14 x 3 x 10000,
  columns x, y and a flag that is 1 for a visible joint and 0 otherwise; LSPET annotates
  "up to 14 visible joint locations", so 0 means not annotated (both sources above use the
  flag as is). All 10000 are training images.

Joint order (`pose_keras.joints.LSP`): r_ankle, r_knee, r_hip, l_hip, l_knee, l_ankle,
r_wrist, r_elbow, r_shoulder, l_shoulder, l_elbow, l_wrist, neck, head_top (README).

Conventions: coordinates are MATLAB 1-based -> minus 1. Visibility: LSP flag 0 -> 2,
1 -> 1; LSPET flag 1 -> 2, 0 -> 0 (not annotated). There is no person box: centre and scale
come from the tight box around the annotated joints
(`tfrecords_tools.common.center_and_scale_from_joints`, longer side / 200).
"""

from __future__ import annotations

import argparse

import numpy as np

from pose_keras.joints import LSP
from tfrecords_tools.common import (
    NO_ANNOTATED_JOINTS,
    Annotation,
    ConversionError,
    Reading,
    add_common_arguments,
    center_and_scale_from_joints,
    check_output,
    convert_from_arguments,
    require_file,
    run_command_line,
)

LAYOUTS = ("auto", "lsp", "lspet")
SPLITS = ("all", "train", "test")
# 1-based image numbers of the standard LSP split.
LSP_TRAIN_IMAGES = range(1, 1001)
LSP_TEST_IMAGES = range(1001, 2001)
IMAGE_NAME_FORMATS = {"lsp": "im{:04d}.jpg", "lspet": "im{:05d}.jpg"}


def read_lsp(
    path, layout: str = "auto", split: str = "all", image_name_format=None, skip_invalid=False
) -> Reading:
    """Read an LSP or LSP-extended `joints.mat`.

    Args:
        path: str or Path. `joints.mat`.
        layout: str. `"lsp"` (3 x 14 x N), `"lspet"` (14 x 3 x N) or `"auto"` (by shape).
        split: str. `"train"`, `"test"` (LSP: images 1-1000 / 1001-2000; LSPET is all
            training) or `"all"`.
        image_name_format: str or None. `str.format` pattern for the 1-based image number;
            defaults to `im{:04d}.jpg` (LSP) or `im{:05d}.jpg` (LSPET).
        skip_invalid: bool. Skip and count people without two annotated joints (no box can
            be made) instead of failing.

    Returns:
        `Reading`; `person_id` is the 0-based image number (`im0001.jpg` -> 0).
    """
    from scipy.io import loadmat

    path = require_file(path)
    if layout not in LAYOUTS or split not in SPLITS:
        raise ConversionError(f"layout must be in {LAYOUTS} and split in {SPLITS}.")
    try:
        data = loadmat(path)
    except Exception as error:  # scipy raises several types for non-.mat input
        raise ConversionError(f"{path}: not a MATLAB file ({error}).") from None
    if "joints" not in data:
        raise ConversionError(f"{path}: no variable 'joints'; is this an LSP joints.mat?")
    joints = np.asarray(data["joints"], dtype=np.float64)
    if layout == "auto":
        if joints.ndim == 3 and joints.shape[:2] == (3, 14):
            layout = "lsp"
        elif joints.ndim == 3 and joints.shape[:2] == (14, 3):
            layout = "lspet"
        else:
            raise ConversionError(
                f"{path}: 'joints' has shape {joints.shape}; expected 3 x 14 x N (LSP) or "
                "14 x 3 x N (LSP-extended)."
            )
    expected = (3, 14) if layout == "lsp" else (14, 3)
    if joints.ndim != 3 or joints.shape[:2] != expected:
        raise ConversionError(
            f"{path}: 'joints' has shape {joints.shape}, but layout {layout!r} is "
            f"{expected[0]} x {expected[1]} x N."
        )
    # -> (N, 14, 3): x, y, flag.
    per_image = joints.transpose(2, 1, 0) if layout == "lsp" else joints.transpose(2, 0, 1)
    numbers = np.arange(1, len(per_image) + 1)
    if split == "test" and layout == "lspet":
        raise ConversionError(f"{path}: LSP-extended has training images only; use --split all.")
    if layout == "lsp" and split != "all":
        wanted = LSP_TRAIN_IMAGES if split == "train" else LSP_TEST_IMAGES
        numbers = numbers[np.isin(numbers, list(wanted))]
    name_format = image_name_format or IMAGE_NAME_FORMATS[layout]

    reading = Reading(source=str(path), format=f"{layout}-joints-mat")
    for number in numbers:
        values = per_image[number - 1]
        flags = values[:, 2]
        if layout == "lsp":
            visibility = np.where(flags > 0, 1, 2)
        else:
            visibility = np.where(flags > 0, 2, 0)
        visibility = np.where(np.isfinite(values[:, :2]).all(axis=1), visibility, 0)
        keypoints = np.where(visibility[:, None] > 0, values[:, :2] - 1.0, 0.0)
        record = f"image {number} (index {number - 1})"
        box = center_and_scale_from_joints(keypoints, visibility)
        if box is None:
            reading.reject(
                NO_ANNOTATED_JOINTS,
                name_format.format(number),
                f"{path}: {record}: fewer than two annotated joints, no person box can be made.",
                skip_invalid,
            )
            continue
        center, scale = box
        reading.people.append(
            Annotation(
                image=name_format.format(number),
                keypoints=keypoints,
                visibility=visibility,
                center=center,
                scale=scale,
                person_id=int(number - 1),
                record=record,
            )
        )
    reading.details["conventions"] = (
        f"{layout} joints.mat: 1-based -> minus 1; "
        + (
            "flag 1 = occluded -> 1, 0 -> 2"
            if layout == "lsp"
            else "flag 1 -> 2, 0 -> not annotated"
        )
        + "; centre/scale from the annotated joints' box (longer side / 200)"
    )
    return reading


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.lsp",
        description="Convert LSP or LSP-extended joints.mat into TFRecord shards, one example "
        "per image. Details: docs/converters.md.",
    )
    parser.add_argument("annotations", help="joints.mat of lsp_dataset or lspet_dataset.")
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="auto",
        help="lsp (3x14xN) or lspet (14x3xN); default: from the array shape.",
    )
    parser.add_argument(
        "--image-name-format",
        help="Python format pattern for the 1-based image number (default: im{:04d}.jpg for "
        "LSP, im{:05d}.jpg for LSP-extended).",
    )
    add_common_arguments(parser, splits=SPLITS, default_split="all")
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    check_output(arguments.output)  # before reading anything
    reading = read_lsp(
        arguments.annotations,
        layout=arguments.layout,
        split=arguments.split,
        image_name_format=arguments.image_name_format,
        skip_invalid=arguments.skip_invalid,
    )
    convert_from_arguments(reading, LSP, "lsp", arguments)


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
