"""Reader for the stacked-hourglass HDF5 annotation layout (`annot/train.h5`, `valid.h5`).

Newell et al.'s pose-hg-train ships MPII and FLIC annotations as HDF5 files with one row per
person: `imgname` (N, bytes), `center` (N, 2), `scale` (N), `part` (N, J, 2), and optionally
`visible` (N, J), `normalize` (N), `index`, `person`, `torsoangle`.

Conventions, checked on the real MPII `valid.h5` against `gt_valid.mat` and the HRNet JSON
(see `tfrecords_tools.mpii`):

- `part` is in MATLAB's 1-based pixel frame and `(0, 0)` marks a joint that is not
  annotated; pose-hg-train's `src/misc/mpii.py` casts MPII coordinates to int (truncation),
  so they are up to 1 px below the official values. The reader subtracts 1.
- `visible` is the release's `is_visible` (1 visible, 0 occluded) for annotated joints.
- `center`, `scale` already carry the crop adjustment of pose-hg-train's
  `src/misc/convert_annot.py` (`c[1] += 15 * s; s *= 1.25`, "in hindsight this should have
  been done in the Torch code"). Records keep the shifted centre (the crop centre) and store
  `scale / 1.25`, because the pipeline applies the 1.25 itself.
"""

from __future__ import annotations

import numpy as np

from pose_keras.joints import JointSet
from tfrecords_tools.common import Annotation, ConversionError, Reading, require_file

# pose-hg-train's convert_annot.py multiplies the person scale by this before saving.
HOURGLASS_SCALE_FACTOR = 1.25
REQUIRED = ("imgname", "center", "scale", "part")


def read_hourglass_h5(path, joint_set: JointSet, format_name: str) -> Reading:
    """Read a stacked-hourglass annotation file (all rows, in order, no image access).

    Args:
        path: str or Path. The `.h5` file.
        joint_set: JointSet. The joints `part` holds, in order (its size is checked).
        format_name: str. Format stored in the manifest, e.g. `"mpii-h5"`.

    Returns:
        `Reading`; person `i` is row `i` (`person_id = i`, `record = "row i"`).
    """
    import h5py

    path = require_file(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ConversionError(f"{path}: not an HDF5 file ({error}).") from None
    with handle:
        absent = [key for key in REQUIRED if key not in handle]
        if absent:
            raise ConversionError(
                f"{path}: missing dataset(s) {absent}; the stacked-hourglass layout has "
                f"{list(REQUIRED)} and optionally visible, normalize."
            )
        names = [
            value.decode("utf-8") if isinstance(value, bytes) else str(value)
            for value in handle["imgname"][:]
        ]
        centers = np.asarray(handle["center"][:], dtype=np.float64)
        scales = np.asarray(handle["scale"][:], dtype=np.float64).reshape(-1)
        parts = np.asarray(handle["part"][:], dtype=np.float64)
        visible = np.asarray(handle["visible"][:]) if "visible" in handle else None
        normalize = (
            np.asarray(handle["normalize"][:], dtype=np.float64).reshape(-1)
            if "normalize" in handle
            else None
        )
    count = len(names)
    joints = joint_set.num_joints
    if parts.ndim != 3 or parts.shape[1:] != (joints, 2):
        raise ConversionError(
            f"{path}: 'part' has shape {parts.shape}; joint set {joint_set.name!r} needs "
            f"(N, {joints}, 2). Is this file from another dataset?"
        )
    for key, array, shape in (
        ("center", centers, (count, 2)),
        ("scale", scales, (count,)),
        ("part", parts, (count, joints, 2)),
        ("visible", visible, (count, joints)),
        ("normalize", normalize, (count,)),
    ):
        if array is not None and array.shape != shape:
            raise ConversionError(
                f"{path}: {key!r} has shape {array.shape}, expected {shape} for {count} rows."
            )

    annotated = ~(parts == 0).all(axis=2)
    keypoints = np.where(annotated[..., None], parts - 1.0, 0.0)
    if visible is None:
        visibility = np.where(annotated, 2, 0)
    else:
        visibility = np.where(annotated, np.where(visible > 0, 2, 1), 0)
    centers = centers - 1.0
    scales = scales / HOURGLASS_SCALE_FACTOR
    people = [
        Annotation(
            image=names[row],
            keypoints=keypoints[row],
            visibility=visibility[row],
            center=centers[row],
            scale=scales[row],
            person_id=row,
            record=f"row {row}",
            normalize=0.0 if normalize is None else float(normalize[row]),
        )
        for row in range(count)
    ]
    details = {
        "conventions": (
            "stacked-hourglass h5: part/center 1-based -> minus 1; (0, 0) parts not annotated; "
            "visible 1 -> 2, 0 -> 1; scale / 1.25 (h5 scales include pose-hg-train's 1.25); "
            "centre kept (it already includes the +15*scale y shift for MPII)"
        )
    }
    return Reading(source=str(path), format=format_name, people=people, details=details)
