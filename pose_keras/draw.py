"""Drawing keypoints and skeletons on images (overlays for predict, show and docs).

Colours follow the usual convention of the pose literature: right side warm (red/orange),
left side cool (blue/green), centre line yellow. Images are RGB uint8 arrays.
"""

import cv2
import numpy as np

from pose_keras.joints import JointSet

RIGHT_COLOR = (255, 80, 40)
LEFT_COLOR = (40, 160, 255)
CENTER_COLOR = (255, 220, 0)


def joint_color(joint_set: JointSet, index: int):
    name = joint_set.names[index]
    if name.startswith(("r_", "right")):
        return RIGHT_COLOR
    if name.startswith(("l_", "left")):
        return LEFT_COLOR
    return CENTER_COLOR


def draw_skeleton(
    image, keypoints_px, joint_set: JointSet, present=None, radius=None, thickness=None
):
    """Draw limbs and joints on a copy of an RGB image.

    Args:
        image: uint8 array (H, W, 3), RGB.
        keypoints_px: array (J, 2), image px (0-based pixel centres).
        joint_set: JointSet. Limbs and left/right colours.
        present: bool array (J,) or None. Joints to draw (e.g. annotated, or score above a
            threshold). Default: all finite keypoints.
        radius: int or None. Joint radius; default scales with the image size.
        thickness: int or None. Limb thickness; default scales with the image size.

    Returns:
        uint8 array (H, W, 3): the overlay.
    """
    canvas = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    keypoints_px = np.asarray(keypoints_px, dtype=np.float64)
    if keypoints_px.shape != (joint_set.num_joints, 2):
        raise ValueError(
            f"keypoints_px must have shape ({joint_set.num_joints}, 2), received "
            f"{keypoints_px.shape}."
        )
    finite = np.isfinite(keypoints_px).all(axis=1)
    present = finite if present is None else (np.asarray(present, dtype=bool) & finite)
    size = max(canvas.shape[:2])
    radius = radius or max(2, size // 120)
    thickness = thickness or max(1, size // 200)
    # cv2 draws with integer coordinates; 4 fractional bits keep sub-pixel placement.
    shift = 4
    points = np.round(np.where(finite[:, None], keypoints_px, 0.0) * (1 << shift)).astype(int)
    for first, second in joint_set.limbs:
        if present[first] and present[second]:
            color = joint_color(joint_set, second)
            cv2.line(
                canvas,
                tuple(points[first]),
                tuple(points[second]),
                color,
                thickness,
                cv2.LINE_AA,
                shift,
            )
    for index in np.flatnonzero(present):
        cv2.circle(
            canvas,
            tuple(points[index]),
            radius << shift,
            joint_color(joint_set, index),
            -1,
            cv2.LINE_AA,
            shift,
        )
    return canvas


def heatmap_overlay(image, heatmaps, alpha=0.6):
    """Blend the per-pixel maximum over joints of `heatmaps` (h, w, J) onto an RGB image."""
    image = np.asarray(image, dtype=np.uint8)
    combined = np.clip(np.max(np.asarray(heatmaps, dtype=np.float32), axis=-1), 0.0, 1.0)
    combined = cv2.resize(
        combined, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR
    )
    colored = cv2.applyColorMap((combined * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    weight = (alpha * combined)[..., None]
    return (image * (1 - weight) + colored * weight).astype(np.uint8)
