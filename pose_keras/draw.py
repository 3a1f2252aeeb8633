"""Drawing keypoints and skeletons on images (overlays for predict, show and docs).

Colours follow the usual convention of the pose literature: right side warm (red/orange),
left side cool (blue/green), centre line yellow. Person boxes and their `#id` labels take
one colour per person (`PERSON_COLORS`), so people in a crowd are told apart, and are drawn
as a light line over a dark outline, so they show on dark and light backgrounds alike.
Images are RGB uint8 arrays.
"""

import cv2
import numpy as np

from pose_keras.joints import JointSet

RIGHT_COLOR = (255, 80, 40)
LEFT_COLOR = (40, 160, 255)
CENTER_COLOR = (255, 220, 0)
# Person boxes and labels: light, saturated hues that differ from each other and from the
# limb colours above (the light row of matplotlib's "tab20" palette); person i takes
# colour i modulo the length.
PERSON_COLORS = (
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (219, 219, 141),
    (158, 218, 229),
    (199, 199, 199),
)
OUTLINE_COLOR = (20, 20, 20)
# cv2 draws with integer coordinates; 4 fractional bits keep sub-pixel placement.
SHIFT = 4


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
    shift = SHIFT
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


def person_color(index: int):
    """The box and label colour of person `index` (RGB)."""
    return PERSON_COLORS[index % len(PERSON_COLORS)]


def line_width(image) -> int:
    """Box line width for an image: 1 px up to 500 px, then growing with the size."""
    return max(1, max(image.shape[:2]) // 500)


def draw_box(canvas, box, color, label: str | None = None, thickness: int | None = None):
    """Draw a box in place: a `color` line over a dark outline 2 px wider, and an
    optional label (dark text on a `color` tag with a dark border) at its top-left corner.

    Args:
        canvas: uint8 array (H, W, 3), RGB, C-contiguous. Drawn on in place.
        box: 4 numbers (x0, y0, x1, y1), image px.
        color: RGB tuple.
        label: str or None. E.g. the person's id. Default None.
        thickness: int or None. Line width; default `line_width(canvas)`.
    """
    thickness = thickness or line_width(canvas)
    # Axis-aligned: whole pixels, no anti-aliasing, so the line keeps its exact colour.
    corners = np.round(np.asarray(box, dtype=np.float64)).astype(int).tolist()
    first, second = tuple(corners[:2]), tuple(corners[2:])
    cv2.rectangle(canvas, first, second, OUTLINE_COLOR, thickness + 2, cv2.LINE_8)
    cv2.rectangle(canvas, first, second, color, thickness, cv2.LINE_8)
    if label:
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = max(0.4, max(canvas.shape[:2]) / 1600)
        (width, height), baseline = cv2.getTextSize(label, font, scale, 1)
        height_px, width_px = canvas.shape[:2]
        # Inside the image even for a box that starts at or beyond its edge.
        x0 = int(np.clip(np.floor(box[0]), 0, max(0, width_px - width - 4)))
        y0 = int(np.clip(np.floor(box[1]), 0, max(0, height_px - height - baseline - 4)))
        x1, y1 = x0 + width + 4, y0 + height + baseline + 4
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, -1)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), OUTLINE_COLOR, 1)
        cv2.putText(
            canvas, label, (x0 + 2, y0 + 2 + height), font, scale, OUTLINE_COLOR, 1, cv2.LINE_AA
        )
    return canvas


def draw_caption(canvas, caption: str):
    """White text on a darkened band across the top, scaled to fit the width (in place)."""
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
    return canvas


def draw_people(
    image,
    keypoints_px,
    scores,
    joint_set: JointSet,
    boxes=None,
    score_threshold: float = 0.2,
    caption: str | None = None,
    labels: bool | None = None,
):
    """The overlay of `predict`: every person's box and skeleton; RGB uint8 copy.

    Args:
        image: uint8 array (H, W, 3), RGB.
        keypoints_px: float (P, J, 2), image px.
        scores: float (P, J). Joints scoring under `score_threshold` are not drawn.
        joint_set: JointSet.
        boxes: float (P, 4) or None. Person boxes (x0, y0, x1, y1), drawn in the person's
            colour (`person_color`). Default None: no boxes.
        score_threshold: float. Default 0.2 (`predict.DEFAULT_SCORE_THRESHOLD`).
        caption: str or None. A line of text across the top. Default None.
        labels: bool or None. Write `#<person>` on each box; None = when there are boxes
            for more than one person. Default None.

    Returns:
        uint8 array (H, W, 3).
    """
    canvas = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    keypoints_px = np.asarray(keypoints_px, dtype=np.float64).reshape(-1, joint_set.num_joints, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, joint_set.num_joints)
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if labels is None:
            labels = len(boxes) > 1
        for index, box in enumerate(boxes):
            draw_box(canvas, box, person_color(index), f"#{index}" if labels else None)
    for person_keypoints, person_scores in zip(keypoints_px, scores, strict=True):
        canvas = draw_skeleton(
            canvas, person_keypoints, joint_set, present=person_scores >= score_threshold
        )
    if caption:
        draw_caption(canvas, caption)
    return canvas
