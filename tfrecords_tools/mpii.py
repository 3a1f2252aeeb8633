"""MPII Human Pose -> TFRecords, from any of the four common annotation layouts.

Formats (`--format`, or detected from the file):

- `h5`: the stacked-hourglass `annot/train.h5` / `valid.h5` (Newell et al., pose-hg-train).
  One row per person. See `tfrecords_tools.hourglass`.
- `json`: the HRNet/mmpose JSON (`mpii/annot/train.json`, `valid.json`: a list of
  `{image, center, scale, joints, joints_vis}`), or the `mpii_annotations.json` of
  Wei et al.'s `genJSON.m` used by pytorch-pose (`{img_paths, objpos, scale_provided,
  joint_self, isValidation, ...}`), told apart by their keys.
- `mat`: the official release `mpii_human_pose_v1_u12_1.mat` (struct `RELEASE` with
  `annolist(i).image.name`, `annolist(i).annorect(p).{x1,y1,x2,y2, scale, objpos.{x,y},
  annopoints.point(k).{id,x,y,is_visible}}`, `img_train`, `single_person{i}` (1-based
  rectangle indices), ...).

Conventions (verified on `../shared/data/mpii`; tests in `tests/test_converters_mpii.py`):

- Coordinates: every MPII source is in MATLAB's 1-based pixel frame (`gt_valid.mat`
  `pos_gt_src` equals the JSON `joints` to 4e-5 px, and `valid.h5` `part` is the same value
  truncated to an integer). Records store 0-based image px: all readers subtract 1 from
  joints, centres and head boxes.
- Crop centre and scale. The release's `objpos` / `scale` (= the JSON `center` / `scale`)
  are the rough person position and height / 200. Newell et al. and HRNet crop around
  `objpos` moved down by 15 * scale px with the scale times 1.25 (pose-hg-train
  `src/misc/convert_annot.py`, which bakes this into the `.h5`; HRNet
  `lib/dataset/mpii.py` applies it on load: "Adjust center/scale slightly to avoid cropping
  limbs"). Records store that shifted centre in `person/center` and the scale WITHOUT the
  1.25 (the pipeline multiplies by `data.box_scale` = 1.25). So: JSON and `.mat`:
  `center = (x - 1, y + 15 * scale - 1)`, `scale` as is; `.h5`: `center - 1`, `scale / 1.25`.
  On the 5 people present in all three files the results agree to 1e-5 px (centre) and
  1e-6 (scale), the precision the files are written with.
- Visibility: the release's `is_visible` 1 (or absent) -> 2, 0 -> 1; unannotated -> 0. The
  `.h5` `visible` column is that flag. The HRNet JSON's `joints_vis` only says whether a
  joint is annotated (it is 1 for joints the `.h5` marks occluded), so JSON records store 2
  for every annotated joint; use the `.h5` or `.mat` when occlusion matters (paper §3.3).
- Head boxes: the `.mat` annorect `x1, y1, x2, y2` (1-based corners) or, for the 2958
  validation people, `gt_valid.mat` `headboxes_src` via `--gt-valid`. `valid.h5`'s
  `normalize` (0.6 x head-box diagonal, PCKh's head size) is kept in `person/normalize`.
- Split: the standard train/validation split (Tompson et al.) is the one the `.h5` files
  and the HRNet `train.json` / `valid.json` already are; `mpii_annotations.json` marks it
  with `isValidation`; for the `.mat`, pass `--split-from valid.h5`, whose `index` /
  `person` columns are the 0-based annolist / annorect indices of the validation people.
  Training people are then the annotated training-image people of images holding no
  validation person (as `genJSON.m` does). Without `--split-from`, `--split all` converts
  every annotated person of the training images (`img_train == 1`).
- Test split (`.mat`, `--split test`): the people the benchmark scores, as the evaluation
  kit's `evaluatePCKh.m` walks them (`TestLayout`, also what `pose_keras.submission` writes):
  the `img_train == 0` images in release order, and in each the rectangles listed in
  `RELEASE.single_person` (1-based) that have an `objpos`, in rectangle order. Each becomes
  one person with every joint unannotated (visibility 0: the test labels are not public),
  the crop centre and scale of the annotated splits (objpos moved down 15 * scale, scale as
  is, so the pipeline's box is 200 * scale * `data.box_scale` px as for training) and no head
  box; `person/id` is its index in `TestLayout.people()`. A listed rectangle without a
  `scale` cannot be cropped: an error, or skipped and counted with `--skip-invalid` (the
  submission then names it as missing). The split is prediction-only: its manifest says
  `"require_annotations": false`, and only `require_annotations=False` readers
  (`python -m pose_keras.submission`) accept it; training and `evaluate` refuse it.

`person/id` is the person's index in the converted split: for the validation split in any
format it is the column of `gt_valid.mat`, also when people are skipped.

Examples:

```
python -m tfrecords_tools.mpii annot/valid.h5 --image-root mpii/images \\
    --output records/mpii_valid --gt-valid gt_valid.mat
python -m tfrecords_tools.mpii mpii_human_pose_v1_u12_1.mat --split test \\
    --image-root mpii/images --output records/mpii_test
```
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from pose_keras.joints import MPII
from tfrecords_tools.common import (
    INVALID_RECORD,
    Annotation,
    ConversionError,
    Reading,
    add_common_arguments,
    check_output,
    convert_from_arguments,
    load_json,
    require_file,
    run_command_line,
)
from tfrecords_tools.hourglass import read_hourglass_h5

# Newell et al. / HRNet crop adjustment: the crop centre is objpos moved down 15*scale px.
CENTER_SHIFT_PER_SCALE = 15.0
SPLITS = ("all", "train", "valid", "test")
# gt_valid.mat keeps a coordinate of exactly 0 for a few annotated joints where valid.h5
# (and the release) has a real value; those joints are not compared by `attach_gt_valid`.
GT_VALID_TOLERANCE_PX = 1.0


# --- stacked-hourglass .h5 -----------------------------------------------------------------


def read_mpii_h5(path) -> Reading:
    """Read an MPII stacked-hourglass file (`annot/train.h5`, `valid.h5`): all rows, in order.

    Example:

    >>> reading = read_mpii_h5("../shared/data/mpii/valid.h5")  # doctest: +SKIP
    >>> len(reading.people), reading.people[0].keypoints[0]  # doctest: +SKIP
    (2958, array([803., 710.]))
    """
    return read_hourglass_h5(path, MPII, "mpii-h5")


# --- gt_valid.mat -----------------------------------------------------------------------------


@dataclasses.dataclass
class ValidationGroundTruth:
    """`gt_valid.mat` (the evaluation ground truth of the 2958 validation people), 0-based.

    Args:
        source: str. The file.
        keypoints: (N, 16, 2). `pos_gt_src` minus 1 (0 where `missing`).
        missing: bool (N, 16). `jnt_missing`.
        head_boxes: (N, 4). `headboxes_src` corners minus 1, as (x0, y0, x1, y1).
        zero_coordinate: bool (N, 16). Annotated joints whose `pos_gt_src` has an x or y of
            exactly 0 (13 in the published file; `valid.h5` has real values there).
    """

    source: str
    keypoints: np.ndarray
    missing: np.ndarray
    head_boxes: np.ndarray
    zero_coordinate: np.ndarray


def read_gt_valid(path) -> ValidationGroundTruth:
    """Read `gt_valid.mat`: `pos_gt_src` (16, 2, N), `jnt_missing` (16, N), `headboxes_src`
    (2, 2, N) with `headboxes_src[k, :, i]` = corner k (x, y); MATLAB 1-based px."""
    from scipy.io import loadmat

    path = require_file(path)
    try:
        data = loadmat(path)
    except Exception as error:  # scipy raises several types for non-.mat input
        raise ConversionError(f"{path}: not a MATLAB file ({error}).") from None
    absent = [key for key in ("pos_gt_src", "jnt_missing", "headboxes_src") if key not in data]
    if absent:
        raise ConversionError(f"{path}: missing {absent}; is this gt_valid.mat?")
    positions = np.asarray(data["pos_gt_src"], dtype=np.float64)
    missing = np.asarray(data["jnt_missing"]).astype(bool)
    boxes = np.asarray(data["headboxes_src"], dtype=np.float64)
    count = positions.shape[-1] if positions.ndim == 3 else -1
    if (
        positions.shape != (16, 2, count)
        or missing.shape != (16, count)
        or boxes.shape
        != (
            2,
            2,
            count,
        )
    ):
        raise ConversionError(
            f"{path}: shapes pos_gt_src {positions.shape}, jnt_missing {missing.shape}, "
            f"headboxes_src {boxes.shape}; expected (16, 2, N), (16, N), (2, 2, N)."
        )
    positions = positions.transpose(2, 0, 1)
    missing = missing.T
    zero = ~missing & (positions == 0).any(axis=2)
    keypoints = np.where(missing[..., None], 0.0, positions - 1.0)
    head_boxes = np.concatenate([boxes[0].T, boxes[1].T], axis=1) - 1.0
    return ValidationGroundTruth(str(path), keypoints, missing, head_boxes, zero)


def attach_gt_valid(reading: Reading, ground_truth: ValidationGroundTruth) -> Reading:
    """Give each person of a validation reading its `gt_valid.mat` head box, after checking
    that person `i` is column `i` of `gt_valid.mat`.

    The check, per person: the same joints annotated (`jnt_missing` == not annotated) and
    every annotated joint within 1 px (valid.h5 truncates to whole pixels), except joints
    where `gt_valid.mat` has a coordinate of exactly 0 (counted in the manifest instead).

    Raises:
        ConversionError: counts differ or a person does not match its column.
    """
    count = len(ground_truth.missing)
    if len(reading.people) != count:
        raise ConversionError(
            f"{ground_truth.source} has {count} people but {reading.source} gives "
            f"{len(reading.people)}; --gt-valid needs the validation split, complete and in order."
        )
    unchecked = 0
    for column, person in enumerate(reading.people):
        if person.person_id != column:
            raise ConversionError(
                f"{reading.source}: {person.record} has person id {person.person_id}, "
                f"expected {column} to line up with {ground_truth.source}."
            )
        annotated = person.visibility > 0
        differs = annotated != ~ground_truth.missing[column]
        if differs.any():
            joint = MPII.names[int(np.argmax(differs))]
            raise ConversionError(
                f"{ground_truth.source}: column {column} does not match {reading.source} "
                f"{person.record}: joint {joint!r} is annotated in one and missing in the "
                "other; the files do not list the same people in the same order."
            )
        compared = annotated & ~ground_truth.zero_coordinate[column]
        unchecked += int((annotated & ground_truth.zero_coordinate[column]).sum())
        distance = np.abs(person.keypoints - ground_truth.keypoints[column]).max(axis=1)
        far = compared & (distance > GT_VALID_TOLERANCE_PX)
        if far.any():
            joint = int(np.argmax(far))
            raise ConversionError(
                f"{ground_truth.source}: column {column} does not match {reading.source} "
                f"{person.record}: joint {MPII.names[joint]!r} is at "
                f"{ground_truth.keypoints[column, joint].round(2).tolist()} there and "
                f"{person.keypoints[joint].round(2).tolist()} here (0-based px, more than "
                f"{GT_VALID_TOLERANCE_PX:g} px apart); the files are not aligned."
            )
        person.head_box = ground_truth.head_boxes[column].copy()
    reading.details["gt_valid"] = {
        "source": ground_truth.source,
        "head_boxes": "headboxes_src corners minus 1",
        "joints_not_compared": unchecked,
        "note": "joints where gt_valid.mat stores a coordinate of exactly 0 are not compared",
    }
    return reading


# --- JSON (HRNet/mmpose and mpii_annotations.json) ------------------------------------------


def _crop_center(objpos, scale):
    """Release objpos (1-based) -> records' crop centre: y + 15 * scale, then minus 1."""
    return np.array([objpos[0] - 1.0, objpos[1] + CENTER_SHIFT_PER_SCALE * scale - 1.0])


def read_mpii_json(path, split: str = "all", skip_invalid: bool = False) -> Reading:
    """Read an MPII JSON file: HRNet/mmpose layout or `mpii_annotations.json`.

    HRNet/mmpose entries: `image`, `center` and `scale` (release objpos / scale), `joints`
    (16 x 2, 1-based, (-1, -1) when not annotated) and `joints_vis` (1 = annotated). The file
    is one split already, so `split` must be `"all"`.

    `mpii_annotations.json` entries: `img_paths`, `objpos`, `scale_provided`, `joint_self`
    (16 x 3: x, y, is_visible; all-zero rows are not annotated), `isValidation`,
    `img_width`, `img_height`; `split` selects `isValidation` 0 (`"train"`), 1 (`"valid"`) or
    all.

    Args:
        path: str or Path. The JSON file.
        split: str. `"all"`, `"train"` or `"valid"` (mpii_annotations.json only).
        skip_invalid: bool. Skip and count malformed entries instead of failing.

    Returns:
        `Reading`; `person_id` counts the entries of the selected split.
    """
    path = require_file(path)
    data = load_json(path)
    if isinstance(data, dict) and isinstance(data.get("root"), list):
        data = data["root"]
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ConversionError(f"{path}: expected a non-empty JSON list of person entries.")
    if "joint_self" in data[0]:
        return _read_mpii_annotations_json(path, data, split, skip_invalid)
    if "joints" in data[0] or "center" in data[0]:
        if split != "all":
            raise ConversionError(
                f"{path}: an HRNet/mmpose MPII JSON file is one split already (train.json, "
                f"valid.json); --split {split} applies to the .mat and mpii_annotations.json."
            )
        return _read_hrnet_json(path, data, skip_invalid)
    raise ConversionError(
        f"{path}: entry 0 has keys {sorted(data[0])}; expected the HRNet/mmpose layout "
        "(image, center, scale, joints, joints_vis) or mpii_annotations.json (img_paths, "
        "objpos, scale_provided, joint_self)."
    )


def _read_hrnet_json(path, data, skip_invalid) -> Reading:
    reading = Reading(source=str(path), format="mpii-json-hrnet")
    for index, entry in enumerate(data):
        record = f"entry {index}"
        try:
            image = str(entry["image"])
            center = np.asarray(entry["center"], dtype=np.float64).reshape(2)
            scale = float(entry["scale"])
            if "joints" not in entry:
                raise ValueError("no 'joints' (an MPII test-set file has no keypoints)")
            joints = np.asarray(entry["joints"], dtype=np.float64)
            annotated = np.asarray(entry["joints_vis"], dtype=np.float64).reshape(-1) > 0
            if joints.shape != (16, 2) or annotated.shape != (16,):
                raise ValueError(
                    f"joints {list(joints.shape)} / joints_vis {list(annotated.shape)}, "
                    "expected 16 x 2 and 16"
                )
            if center[0] == -1:
                raise ValueError("no person centre (center[0] == -1)")
        except (KeyError, TypeError, ValueError) as error:
            reading.reject(INVALID_RECORD, f"{record}", f"{path}: {record}: {error}.", skip_invalid)
            continue
        reading.people.append(
            Annotation(
                image=image,
                keypoints=np.where(annotated[:, None], joints - 1.0, 0.0),
                visibility=np.where(annotated, 2, 0),
                center=_crop_center(center, scale),
                scale=scale,
                person_id=index,
                record=record,
            )
        )
    reading.details["conventions"] = (
        "HRNet JSON: joints/center 1-based -> minus 1; center y + 15*scale (HRNet mpii.py); "
        "scale as is; joints_vis only marks annotation, so annotated joints get visibility 2"
    )
    return reading


def _read_mpii_annotations_json(path, data, split, skip_invalid) -> Reading:
    reading = Reading(source=str(path), format="mpii-annotations-json")
    person_id = 0
    for index, entry in enumerate(data):
        record = f"entry {index}"
        try:
            is_validation = bool(float(entry["isValidation"]))
            if split == "train" and is_validation or split == "valid" and not is_validation:
                continue
            image = str(entry["img_paths"])
            objpos = np.asarray(entry["objpos"], dtype=np.float64).reshape(2)
            scale = float(entry["scale_provided"])
            joints = np.asarray(entry["joint_self"], dtype=np.float64)
            if joints.shape != (16, 3):
                raise ValueError(f"joint_self is {list(joints.shape)}, expected 16 x 3")
            size = None
            if "img_height" in entry and "img_width" in entry:
                size = (int(entry["img_height"]), int(entry["img_width"]))
        except (KeyError, TypeError, ValueError) as error:
            reading.reject(INVALID_RECORD, f"{record}", f"{path}: {record}: {error}.", skip_invalid)
            continue
        # genJSON.m pads unannotated joints with zero rows and writes is_visible as column 3.
        annotated = ~(joints[:, :2] == 0).all(axis=1)
        reading.people.append(
            Annotation(
                image=image,
                keypoints=np.where(annotated[:, None], joints[:, :2] - 1.0, 0.0),
                visibility=np.where(annotated, np.where(joints[:, 2] > 0, 2, 1), 0),
                center=_crop_center(objpos, scale),
                scale=scale,
                person_id=person_id,
                record=record,
                image_size=size,
            )
        )
        person_id += 1
    reading.details["conventions"] = (
        "mpii_annotations.json: joint_self/objpos 1-based -> minus 1; objpos y + 15*scale; "
        "scale_provided as is; is_visible 1 -> 2, 0 -> 1, zero rows not annotated"
    )
    return reading


# --- official release .mat ------------------------------------------------------------------


def _items(value) -> list:
    """Elements of a (squeezed) MATLAB struct array: [] when empty, [x] for a single one."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel()) if value.dtype == object else []
    return [value]


def _number(value):
    """A MATLAB scalar as float, or None when empty ('' or a 0-size array)."""
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return None
        value = value.ravel()[0]
    if isinstance(value, str):
        value = value.strip()
        return float(value) if value else None
    return float(value)


def _field(struct, name):
    return getattr(struct, name, None) if hasattr(struct, "_fieldnames") else None


def _rect_scale(rect):
    """An annorect's `scale` as float, or None when it has none."""
    return _number(_field(rect, "scale")) if _field(rect, "scale") is not None else None


def _load_release(path):
    """`(RELEASE, annolist items, img_train)` of the release `.mat`, checked."""
    from scipy.io import loadmat

    try:
        data = loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as error:  # scipy raises several types for non-.mat input
        raise ConversionError(f"{path}: not a MATLAB file ({error}).") from None
    if "RELEASE" not in data:
        hint = (
            " (this is gt_valid.mat: pass it as --gt-valid)"
            if "pos_gt_src" in data
            else " (is it mpii_human_pose_v1_u12_1.mat?)"
        )
        raise ConversionError(f"{path}: no 'RELEASE' struct{hint}.")
    release = data["RELEASE"]
    annolist = _items(_field(release, "annolist"))
    img_train = np.atleast_1d(np.asarray(_field(release, "img_train"))).astype(np.int64)
    if not annolist or img_train.shape != (len(annolist),):
        raise ConversionError(
            f"{path}: RELEASE.annolist has {len(annolist)} images but img_train has "
            f"{img_train.size} entries."
        )
    return release, annolist, img_train


# --- official release .mat: the test split as the evaluation kit walks it ------------------


@dataclasses.dataclass
class TestLayout:
    """The MPII test images as the evaluation kit (`evaluatePCKh.m`) walks them.

    Attributes:
        image_names: list of str. `RELEASE.annolist(img_train == 0).image.name`, in order.
        objpos_one_based: list of lists. Per test image, per annorect, the rectangle's
            `objpos` (x, y) in MATLAB 1-based px, or None when it has none.
        single_person: list of tuples. Per test image, the 0-based annorect indices listed
            in `RELEASE.single_person` (the kit's list is 1-based).
        source: str. The release file read.
        scales: list of lists. Per test image, per annorect, its `scale` or None.
        annolist_indices: list of int. Per test image, its 0-based index in
            `RELEASE.annolist`.
    """

    __test__ = False  # not a pytest test class, whatever its name

    image_names: list
    objpos_one_based: list
    single_person: list
    source: str = ""
    scales: list = dataclasses.field(default_factory=list)
    annolist_indices: list = dataclasses.field(default_factory=list)

    def people(self) -> list[tuple[int, int]]:
        """(test image index, 0-based annorect index) of every scored person, in the kit's
        flattening order: image order, then rectangle order."""
        return [
            (image, rect)
            for image, rects in enumerate(self.single_person)
            for rect in sorted(rects)
            if self.objpos_one_based[image][rect] is not None
        ]


def read_test_layout(path) -> TestLayout:
    """Read the test-image layout from the official release `mpii_human_pose_v1_u12_1.mat`.

    Raises:
        ConversionError (a ValueError): not the release file, or fields missing (the
            message names them).
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"MPII release file not found: {path}")
    return _test_layout(path, *_load_release(path))


def _test_layout(path, release, annolist, img_train) -> TestLayout:
    single_person = _field(release, "single_person")
    if single_person is None:
        raise ConversionError(f"{path}: RELEASE has no 'single_person' field.")
    single_person = list(np.atleast_1d(np.asarray(single_person, dtype=object)))
    if len(single_person) != len(annolist):
        raise ConversionError(
            f"{path}: RELEASE.annolist has {len(annolist)} images and single_person "
            f"{len(single_person)} entries; they must agree."
        )
    layout = TestLayout(image_names=[], objpos_one_based=[], single_person=[], source=str(path))
    for index in np.flatnonzero(img_train == 0):
        entry = annolist[index]
        layout.annolist_indices.append(int(index))
        layout.image_names.append(str(_field(_field(entry, "image"), "name")))
        positions, scales = [], []
        for rect in _items(_field(entry, "annorect")):
            objpos = _field(rect, "objpos")
            has_position = objpos is not None and hasattr(objpos, "_fieldnames")
            positions.append((_number(objpos.x), _number(objpos.y)) if has_position else None)
            scales.append(_rect_scale(rect))
        layout.objpos_one_based.append(positions)
        layout.scales.append(scales)
        listed = np.atleast_1d(np.asarray(single_person[index], dtype=float)).ravel()
        rects = tuple(int(value) - 1 for value in listed if np.isfinite(value))
        bad = [rect + 1 for rect in rects if not 0 <= rect < len(positions)]
        if bad:
            raise ConversionError(
                f"{path}: annolist {index + 1} ({layout.image_names[-1]}): single_person lists "
                f"rectangle(s) {bad} but the image has {len(positions)}."
            )
        layout.single_person.append(rects)
    return layout


def _read_test_split(path, layout: TestLayout, skip_invalid: bool) -> Reading:
    """The unlabelled people of `layout.people()`: centre and scale, no joints."""
    reading = Reading(source=str(path), format="mpii-release-mat", require_annotations=False)
    for person_id, (image, rect) in enumerate(layout.people()):
        record = f"annolist {layout.annolist_indices[image]}, annorect {rect}"
        scale = layout.scales[image][rect]
        if scale is None or not np.isfinite(scale) or scale <= 0:
            reading.reject(
                INVALID_RECORD,
                record,
                f"{path}: {record} ({layout.image_names[image]}): single-person test rectangle "
                f"{rect + 1} has scale {scale}; a crop needs a positive scale.",
                skip_invalid,
            )
            continue
        reading.people.append(
            Annotation(
                image=layout.image_names[image],
                keypoints=np.zeros((MPII.num_joints, 2)),
                visibility=np.zeros(MPII.num_joints, dtype=np.int64),
                center=_crop_center(layout.objpos_one_based[image][rect], scale),
                scale=scale,
                person_id=person_id,
                record=record,
            )
        )
    reading.details["conventions"] = (
        "release .mat test split: objpos 1-based -> minus 1; objpos y + 15*scale; no joints "
        "(visibility 0); person/id = index in the evaluation kit's order"
    )
    reading.details["split_rule"] = (
        "img_train == 0 images in release order; their RELEASE.single_person rectangles "
        "with an objpos, in rectangle order (evaluatePCKh.m's flatten_annolist)"
    )
    return reading


def _release_person(rect):
    """(objpos (2,), scale, keypoints (16, 2) 1-based, visibility (16,), head box or None)
    of one annorect, or None when it lacks points, position or scale."""
    annopoints = _field(rect, "annopoints")
    points = _items(_field(annopoints, "point")) if annopoints is not None else []
    objpos = _field(rect, "objpos")
    scale = _rect_scale(rect)
    if not points or objpos is None or not hasattr(objpos, "_fieldnames") or scale is None:
        return None
    center = np.array([_number(objpos.x), _number(objpos.y)], dtype=np.float64)
    keypoints = np.zeros((16, 2))
    visibility = np.zeros(16, dtype=np.int64)
    for point in points:
        joint = int(_number(point.id))
        if not 0 <= joint < 16:
            raise ValueError(f"point id {joint} is not an MPII joint id (0..15)")
        keypoints[joint] = (_number(point.x), _number(point.y))
        # pose-hg-train mpii.py: is_visible may be absent, empty, a number or a '0'/'1' string;
        # absent or empty counts as visible.
        flag = (
            _number(_field(point, "is_visible"))
            if _field(point, "is_visible") is not None
            else None
        )
        visibility[joint] = 1 if flag == 0 else 2
    head_box = None
    corners = [
        _number(_field(rect, key)) if _field(rect, key) is not None else None
        for key in ("x1", "y1", "x2", "y2")
    ]
    if all(corner is not None for corner in corners):
        head_box = np.asarray(corners, dtype=np.float64)
    return center, scale, keypoints, visibility, head_box


def _split_rows(split_from):
    """(annolist index, annorect index) pairs of a stacked-hourglass file, 0-based, in order."""
    import h5py

    path = require_file(split_from)
    try:
        with h5py.File(path, "r") as handle:
            if "index" not in handle or "person" not in handle:
                raise ConversionError(
                    f"{path}: needs 'index' and 'person' datasets for --split-from."
                )
            indices = np.asarray(handle["index"][:]).astype(np.int64).reshape(-1)
            persons = np.asarray(handle["person"][:]).astype(np.int64).reshape(-1)
    except OSError as error:
        raise ConversionError(f"{path}: not an HDF5 file ({error}).") from None
    return list(zip(indices.tolist(), persons.tolist(), strict=True))


def read_mpii_mat(path, split: str = "all", split_from=None, skip_invalid: bool = False) -> Reading:
    """Read the official MPII release `.mat` (`RELEASE` struct).

    Args:
        path: str or Path. `mpii_human_pose_v1_u12_1.mat`.
        split: str. `"all"` (every annotated person of the training images, needs no
            `split_from`), `"valid"` (the people listed in `split_from`, in its order),
            `"train"` (annotated training-image people of images without a validation
            person) or `"test"` (the unlabelled single-person test rectangles, in
            `TestLayout.people()` order; needs no `split_from`; a prediction-only reading).
        split_from: str or Path or None. A stacked-hourglass `valid.h5` whose `index` /
            `person` columns (0-based annolist / annorect indices) define the validation set.
        skip_invalid: bool. Skip and count validation rows that do not resolve to an
            annotated person instead of failing.

    Returns:
        `Reading`; `person_id` counts the selected people (row of `split_from` for valid).
    """
    path = require_file(path)
    if split not in SPLITS:
        raise ConversionError(f"split must be one of {SPLITS}, received {split!r}.")
    if split in ("all", "test") and split_from is not None:
        raise ConversionError(
            f"--split-from selects the train/validation split: pass --split train or valid, "
            f"not {split} (the test split is RELEASE.img_train == 0)."
        )
    if split in ("train", "valid") and split_from is None:
        raise ConversionError(
            f"{path}: the release .mat has no train/validation split; pass --split-from "
            "valid.h5 (the stacked-hourglass validation file) with --split train or valid."
        )
    release, annolist, img_train = _load_release(path)
    if split == "test":
        return _read_test_split(
            path, _test_layout(path, release, annolist, img_train), skip_invalid
        )

    def image_name(index):
        return str(_field(_field(annolist[index], "image"), "name"))

    def person_at(index, rect_index):
        rects = _items(_field(annolist[index], "annorect"))
        if not 0 <= rect_index < len(rects):
            return None
        return _release_person(rects[rect_index])

    reading = Reading(source=str(path), format="mpii-release-mat")
    selected = []  # (annolist index, annorect index, record, person)
    if split == "valid":
        for row, (index, rect_index) in enumerate(_split_rows(split_from)):
            record = f"annolist {index}, annorect {rect_index} ({Path(split_from).name} row {row})"
            person = None
            if 0 <= index < len(annolist):
                try:
                    person = person_at(index, rect_index)
                except (ValueError, TypeError, AttributeError) as error:
                    reading.reject(
                        INVALID_RECORD, record, f"{path}: {record}: {error}.", skip_invalid
                    )
                    continue
            if person is None:
                reading.reject(
                    INVALID_RECORD,
                    record,
                    f"{path}: {record}: no annotated person there (points, objpos and scale); "
                    f"is {split_from} from this release?",
                    skip_invalid,
                )
                continue
            selected.append((index, rect_index, record, person, row))
    else:
        held_out = {index for index, _ in _split_rows(split_from)} if split == "train" else set()
        for index in range(len(annolist)):
            if img_train[index] != 1 or index in held_out:
                continue
            for rect_index, rect in enumerate(_items(_field(annolist[index], "annorect"))):
                record = f"annolist {index}, annorect {rect_index}"
                try:
                    person = _release_person(rect)
                except (ValueError, TypeError, AttributeError) as error:
                    reading.reject(
                        INVALID_RECORD, record, f"{path}: {record}: {error}.", skip_invalid
                    )
                    continue
                if person is not None:
                    selected.append((index, rect_index, record, person, len(selected)))
    for index, _, record, person, person_id in selected:
        center, scale, keypoints, visibility, head_box = person
        annotated = visibility > 0
        reading.people.append(
            Annotation(
                image=image_name(index),
                keypoints=np.where(annotated[:, None], keypoints - 1.0, 0.0),
                visibility=visibility,
                center=_crop_center(center, scale),
                scale=scale,
                person_id=person_id,
                record=record,
                head_box=None if head_box is None else head_box - 1.0,
            )
        )
    reading.details["conventions"] = (
        "release .mat: points/objpos/head rect 1-based -> minus 1; objpos y + 15*scale; "
        "is_visible 1 or empty -> 2, 0 -> 1"
    )
    reading.details["split_rule"] = {
        "all": "annotated people (points, objpos, scale) of img_train == 1 images",
        "valid": f"the (index, person) rows of {split_from}, in order",
        "train": f"annotated people of img_train == 1 images without a person of {split_from}",
    }[split]
    return reading


# --- command line ---------------------------------------------------------------------------


def detect_format(path) -> str:
    suffix = Path(path).suffix.lower()
    formats = {".h5": "h5", ".hdf5": "h5", ".json": "json", ".mat": "mat"}
    if suffix not in formats:
        raise ConversionError(
            f"{path}: cannot tell the format from the extension {suffix!r}; pass --format."
        )
    return formats[suffix]


def read_mpii(
    path, format_name="auto", split="all", split_from=None, skip_invalid=False
) -> Reading:
    """Dispatch to `read_mpii_h5`, `read_mpii_json` or `read_mpii_mat`."""
    format_name = detect_format(path) if format_name == "auto" else format_name
    if split == "test" and format_name != "mat":
        raise ConversionError(
            f"{path}: --split test reads the official release .mat "
            "(mpii_human_pose_v1_u12_1.mat, RELEASE.img_train == 0); the .h5 and JSON files "
            "hold annotated people only."
        )
    if format_name == "h5":
        if split != "all":
            raise ConversionError(
                f"{path}: a stacked-hourglass .h5 is one split already (train.h5, valid.h5); "
                f"--split {split} applies to the .mat and mpii_annotations.json."
            )
        return read_mpii_h5(path)
    if format_name == "json":
        return read_mpii_json(path, split=split, skip_invalid=skip_invalid)
    if format_name == "mat":
        return read_mpii_mat(path, split=split, split_from=split_from, skip_invalid=skip_invalid)
    raise ConversionError(f"unknown MPII format {format_name!r}; use h5, json or mat.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.mpii",
        description="Convert MPII Human Pose annotations (stacked-hourglass .h5, HRNet/mmpose "
        "JSON, mpii_annotations.json or the official release .mat) into TFRecord shards, one "
        "example per person. Details: docs/converters.md.",
    )
    parser.add_argument("annotations", help="The annotation file (.h5, .json or .mat).")
    parser.add_argument(
        "--format",
        choices=("auto", "h5", "json", "mat"),
        default="auto",
        help="Annotation layout (default: from the file extension).",
    )
    add_common_arguments(parser, splits=SPLITS, default_split="all")
    parser.add_argument(
        "--split-from",
        help="(.mat only) A stacked-hourglass valid.h5 defining the validation people by its "
        "index/person columns; use with --split train or valid.",
    )
    parser.add_argument(
        "--gt-valid",
        help="gt_valid.mat: attach its head boxes to the 2958 validation people, after "
        "checking they line up one-to-one with the converted people.",
    )
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    check_output(arguments.output)  # before reading anything
    reading = read_mpii(
        arguments.annotations,
        arguments.format,
        split=arguments.split,
        split_from=arguments.split_from,
        skip_invalid=arguments.skip_invalid,
    )
    if arguments.gt_valid:
        if not reading.require_annotations:
            raise ConversionError(
                "--gt-valid attaches head boxes to the validation split, not test."
            )
        attach_gt_valid(reading, read_gt_valid(arguments.gt_valid))
    split = arguments.split if arguments.split != "all" else Path(arguments.annotations).stem
    convert_from_arguments(reading, MPII, "mpii", arguments, split=split)


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
