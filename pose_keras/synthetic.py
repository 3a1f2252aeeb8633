"""The embedded default dataset: procedurally rendered articulated figures, MPII 16 joints.

`python -m pose_keras.fit` with no arguments trains on this dataset, so it must be
learnable by a small network on a CPU in minutes, yet look enough like people in clutter to
exercise every part of the system: occluded joints, truncated people, distractors,
left/right ambiguity, MPII-style centre, scale and head box (PCKh works exactly as on MPII).

Each example is one 192 x 192 JPEG scene holding one annotated figure:

- Skeleton: MPII joint order (`joints.MPII`), built in a body frame with human limb-length
  ratios (head 0.13, neck 0.05, torso 0.30, upper arm 0.17, forearm 0.15, thigh 0.23,
  shin 0.24 of the standing height; shoulder half-width 0.11, hip half-width 0.08) and
  joint-angle limits (shoulder -25..170 deg from hanging, elbow 0..150, hip -25..70,
  knee 0..130, torso lean +-35, head tilt +-25). Poses come from three families: relaxed,
  active (uniform within the limits) and sitting/crouching (foreshortened thighs); any
  segment may be foreshortened (out-of-plane motion). The whole figure is rotated
  (mostly within +-30 deg) and scaled.
- Appearance: tapered capsules for limbs, a torso polygon, an elliptical head with a face
  and hair; per-figure skin, shirt, trousers and shoe colours, sleeve and trouser
  lengths, solid/striped/noisy textures, part outlines, limb widths (build factor).
- Left and right: every figure faces the camera (its right side on the image's left when
  upright, as for most people in MPII), so the torso's chirality and the face tell the
  sides apart; right-side limbs are also drawn slightly darker. (Flip augmentation mirrors
  the pixels and swaps the labels, so in flipped training crops the darker limbs carry
  the left labels: the shading is a cue only without flips, e.g. on the validation split.)
- Scene: gradient background with random shapes, limb-like bars and stripes (clutter),
  0-2 unannotated distractor figures (partly overlapping, behind or in front), 0-2
  occluders (rectangles, ellipses, polygons) near the figure, sensor noise, blur, JPEG
  quality 70-95. About 10% of figures are cut by the image border.
- Annotations, MPII conventions: joints covered by an occluder or a distractor in front
  are annotated-occluded (visibility 1) with their true coordinates; joints outside the
  image are not annotated (visibility 0, coordinates 0); the head box is the head's
  axis-aligned bounding box and the scale is `0.6 * head box diagonal / 20`, which is
  exactly how MPII's scale relates to its PCKh normaliser (200 * scale = 10 normalisers,
  verified on `valid.h5`), so the crop box (1.25 * 200 * scale) frames the person as on
  MPII. The centre is the middle of the joints' bounding box, with a little noise.

Generation is deterministic: person `i` of a split is drawn from
`numpy.random.default_rng([seed, split, i, VERSION])`, independently of the number of
worker processes. Records go through `records.ShardedWriter` (dataset `synthetic`, joint
set MPII), so the same pipeline reads them.

Examples:

    python -m pose_keras.synthetic                       # generate (or reuse) the default
    python -m pose_keras.synthetic --output /tmp/synth --train 200 --val 50
    python -m pose_keras.synthetic --preview docs/synthetic_samples.png
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from pose_keras import records
from pose_keras.cli import ProgressBar
from pose_keras.joints import MPII
from pose_keras.metrics import SC_BIAS

# Bump when the generator's output changes: it keys the cache.
VERSION = 1
IMAGE_SIZE = 192
EXAMPLES_PER_SHARD = 250
SPLITS = {"train": 0, "val": 1}
SUBPIXEL_BITS = 4  # cv2 drawing with 1/16 px precision
SUBPIXEL = 1 << SUBPIXEL_BITS

# MPII joint indices.
R_ANKLE, R_KNEE, R_HIP, L_HIP, L_KNEE, L_ANKLE, PELVIS, THORAX = range(8)
UPPER_NECK, HEAD_TOP, R_WRIST, R_ELBOW, R_SHOULDER, L_SHOULDER, L_ELBOW, L_WRIST = range(8, 16)

# Segment lengths as fractions of the standing height (anthropometric ratios, rounded).
LENGTHS = {
    "head": 0.13,
    "neck": 0.05,
    "torso": 0.30,
    "upper_arm": 0.17,
    "forearm": 0.15,
    "thigh": 0.23,
    "shin": 0.24,
    "shoulder_half": 0.11,
    "hip_half": 0.08,
}
# Joint-angle limits, degrees (2-D projections of the anatomical ranges).
LIMITS = {
    "lean": 35.0,
    "head_tilt": 25.0,
    "shoulder": (-25.0, 170.0),
    "elbow": (0.0, 150.0),
    "hip": (-25.0, 70.0),
    "knee": (0.0, 130.0),
}
SKIN_TONES = np.array(
    [
        [255, 224, 196],
        [241, 194, 160],
        [224, 172, 105],
        [198, 134, 66],
        [141, 85, 36],
        [90, 56, 37],
    ],
    dtype=np.float32,
)
RIGHT_SHADE = 0.8  # right-side limbs are drawn darker (left/right cue)


def _rotate(vector, degrees):
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([cos * vector[0] - sin * vector[1], sin * vector[0] + cos * vector[1]])


# --------------------------------------------------------------------------------------
# Poses
# --------------------------------------------------------------------------------------


def sample_pose(rng) -> dict:
    """Random body proportions and joint angles within the limits (degrees)."""
    family = rng.choice(["relaxed", "active", "sitting"], p=[0.35, 0.45, 0.2])
    pose = {"family": family}
    pose["lengths"] = {key: value * rng.uniform(0.92, 1.08) for key, value in LENGTHS.items()}
    # Per-segment foreshortening (the limb points partly towards or away from the camera).
    pose["foreshorten"] = {
        segment: (1.0 if rng.random() < 0.6 else rng.uniform(0.55, 1.0))
        for segment in (
            "upper_arm_r",
            "upper_arm_l",
            "forearm_r",
            "forearm_l",
            "shin_r",
            "shin_l",
            "thigh_r",
            "thigh_l",
        )
    }
    pose["foreshorten"]["torso"] = 1.0 if rng.random() < 0.8 else rng.uniform(0.75, 1.0)
    pose["width_turn"] = 1.0 if rng.random() < 0.6 else rng.uniform(0.55, 1.0)
    low_s, high_s = LIMITS["shoulder"]
    low_h, high_h = LIMITS["hip"]
    angles = {}
    for side in ("r", "l"):
        if family == "relaxed":
            angles[f"shoulder_{side}"] = np.clip(rng.normal(15, 12), low_s, high_s)
            angles[f"elbow_{side}"] = np.clip(abs(rng.normal(10, 20)), *LIMITS["elbow"])
            angles[f"hip_{side}"] = np.clip(rng.normal(6, 5), low_h, high_h)
            angles[f"knee_{side}"] = np.clip(abs(rng.normal(4, 6)), *LIMITS["knee"])
        else:
            angles[f"shoulder_{side}"] = rng.uniform(low_s, high_s)
            angles[f"elbow_{side}"] = rng.uniform(*LIMITS["elbow"])
            angles[f"hip_{side}"] = rng.uniform(low_h, high_h)
            angles[f"knee_{side}"] = rng.uniform(0.0, LIMITS["knee"][1] * 0.7)
        if family == "sitting":
            angles[f"hip_{side}"] = rng.uniform(5.0, 60.0)
            angles[f"knee_{side}"] = rng.uniform(30.0, LIMITS["knee"][1])
            pose["foreshorten"][f"thigh_{side}"] = rng.uniform(0.25, 0.6)
        # The 2-D direction a flexed elbow or knee turns depends on the limb's axial
        # rotation: towards the body (+1) or away from it (-1).
        angles[f"elbow_sign_{side}"] = 1.0 if rng.random() < 0.6 else -1.0
        angles[f"knee_sign_{side}"] = 1.0 if rng.random() < 0.7 else -1.0
    lean_spread = 8.0 if family == "relaxed" else 15.0
    angles["lean"] = float(np.clip(rng.normal(0.0, lean_spread), -LIMITS["lean"], LIMITS["lean"]))
    angles["neck"] = float(np.clip(rng.normal(0.0, 8.0), -LIMITS["head_tilt"], LIMITS["head_tilt"]))
    angles["head"] = float(np.clip(rng.normal(0.0, 8.0), -LIMITS["head_tilt"], LIMITS["head_tilt"]))
    angles["pelvis_tilt"] = float(rng.normal(0.0, 4.0))
    angles["shrug"] = float(rng.normal(0.0, 0.01))
    pose["angles"] = angles
    return pose


def skeleton(pose) -> np.ndarray:
    """Joint positions (16, 2) in the body frame: pelvis at 0, y up, height about 1.

    The figure faces the camera: its right side is at negative x.
    """
    lengths, angles, short = pose["lengths"], pose["angles"], pose["foreshorten"]
    joints = np.zeros((16, 2))
    down = np.array([0.0, -1.0])
    spine = _rotate(np.array([0.0, 1.0]), angles["lean"])
    right_of_spine = _rotate(np.array([-1.0, 0.0]), angles["lean"])
    joints[PELVIS] = (0.0, 0.0)
    joints[THORAX] = spine * lengths["torso"] * short["torso"]
    neck_direction = _rotate(spine, angles["neck"])
    joints[UPPER_NECK] = joints[THORAX] + neck_direction * lengths["neck"]
    joints[HEAD_TOP] = (
        joints[UPPER_NECK] + _rotate(neck_direction, angles["head"]) * lengths["head"]
    )
    hip_axis = _rotate(np.array([-1.0, 0.0]), angles["pelvis_tilt"])
    turn = pose["width_turn"]
    for side, sign in (("r", -1.0), ("l", 1.0)):
        # `sign` turns "outward" for this side: clockwise for the right, counter-clockwise
        # for the left (the body frame has y up).
        side_vector = right_of_spine if side == "r" else -right_of_spine
        hip_vector = hip_axis if side == "r" else -hip_axis
        shoulder = (
            joints[THORAX]
            + side_vector * lengths["shoulder_half"] * turn
            - spine * (0.02 + angles["shrug"])
        )
        upper_arm = _rotate(-spine, sign * angles[f"shoulder_{side}"])
        elbow = shoulder + upper_arm * lengths["upper_arm"] * short[f"upper_arm_{side}"]
        forearm = _rotate(upper_arm, -sign * angles[f"elbow_sign_{side}"] * angles[f"elbow_{side}"])
        wrist = elbow + forearm * lengths["forearm"] * short[f"forearm_{side}"]
        hip = joints[PELVIS] + hip_vector * lengths["hip_half"] * turn
        thigh = _rotate(down, sign * angles[f"hip_{side}"])
        knee = hip + thigh * lengths["thigh"] * short[f"thigh_{side}"]
        shin = _rotate(thigh, -sign * angles[f"knee_sign_{side}"] * angles[f"knee_{side}"])
        ankle = knee + shin * lengths["shin"] * short[f"shin_{side}"]
        if side == "r":
            joints[[R_SHOULDER, R_ELBOW, R_WRIST, R_HIP, R_KNEE, R_ANKLE]] = (
                shoulder,
                elbow,
                wrist,
                hip,
                knee,
                ankle,
            )
        else:
            joints[[L_SHOULDER, L_ELBOW, L_WRIST, L_HIP, L_KNEE, L_ANKLE]] = (
                shoulder,
                elbow,
                wrist,
                hip,
                knee,
                ankle,
            )
    return joints


def place(joints_body, height_px, rotation_deg, center_px) -> np.ndarray:
    """Body frame -> image px: scale, rotate (counter-clockwise on screen), flip y, move."""
    angle = math.radians(rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    rotated = joints_body @ np.array([[cos, sin], [-sin, cos]])
    return np.stack([rotated[:, 0], -rotated[:, 1]], axis=1) * height_px + center_px


# --------------------------------------------------------------------------------------
# Appearance and drawing
# --------------------------------------------------------------------------------------


def _random_color(rng, low=20, high=235):
    return rng.uniform(low, high, size=3).astype(np.float32)


class Texture:
    """A solid, striped or noisy colour pattern, evaluated only at the pixels it paints."""

    def __init__(self, rng, color, size, kind=None):
        self.kind = kind or rng.choice(["solid", "stripes", "noise"], p=[0.5, 0.3, 0.2])
        self.color = np.asarray(color, np.float32)
        if self.kind == "stripes":
            angle = rng.uniform(0, math.pi)
            period = rng.uniform(4.0, 14.0)
            self.direction = np.array([math.cos(angle), math.sin(angle)]) * (2 * math.pi / period)
            self.delta = (_random_color(rng) - self.color) * rng.uniform(0.3, 0.8)
        elif self.kind == "noise":
            coarse = rng.normal(0.0, rng.uniform(10, 35), size=(size // 8, size // 8))
            self.noise = cv2.resize(coarse.astype(np.float32), (size, size))

    def at(self, ys, xs):
        """Colours (n, 3) float32 at pixel rows `ys` and columns `xs`."""
        colors = np.broadcast_to(self.color, (len(ys), 3))
        if self.kind == "stripes":
            phase = xs * self.direction[0] + ys * self.direction[1]
            return colors + (np.sin(phase) > 0)[:, None].astype(np.float32) * self.delta
        if self.kind == "noise":
            return colors + self.noise[ys, xs][:, None]
        return colors


def _paint(image, mask, texture):
    ys, xs = np.nonzero(mask)
    image[ys, xs] = texture.at(ys, xs)


def _appearance(rng) -> dict:
    if rng.random() < 0.8:
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1)
    else:
        skin = _random_color(rng)
    return {
        "skin": np.clip(skin, 0, 255).astype(np.float32),
        "shirt": _random_color(rng),
        "pants": _random_color(rng),
        "shoes": _random_color(rng, 10, 120),
        "hair": _random_color(rng, 5, 160) if rng.random() < 0.8 else None,
        "long_sleeves": rng.random() < 0.6,
        "long_pants": rng.random() < 0.7,
        "build": rng.uniform(0.75, 1.3),
        "arms_behind": rng.random() < 0.15,
        "outline": rng.uniform(0.45, 0.8),
    }


class Canvas:
    """Part-label drawing: shapes are drawn as integer labels, then coloured by group."""

    GROUPS = ("skin", "shirt", "pants", "shoes", "hair")

    def __init__(self, size):
        self.size = size
        self.labels = np.zeros((size, size), np.uint8)
        self.parts = [(None, 1.0)]  # label 0 = nothing

    def _new_label(self, group, shade):
        self.parts.append((group, shade))
        return len(self.parts) - 1

    @staticmethod
    def _fixed(points):
        return np.round(np.asarray(points) * SUBPIXEL).astype(np.int32)

    def capsule(self, start, end, radius_start, radius_end, group, shade=1.0):
        label = self._new_label(group, shade)
        start, end = np.asarray(start, float), np.asarray(end, float)
        direction = end - start
        length = float(np.hypot(*direction))
        normal = np.array([-direction[1], direction[0]]) / length if length > 1e-6 else np.zeros(2)
        polygon = [
            start + normal * radius_start,
            end + normal * radius_end,
            end - normal * radius_end,
            start - normal * radius_start,
        ]
        cv2.fillConvexPoly(self.labels, self._fixed(polygon), label, cv2.LINE_8, SUBPIXEL_BITS)
        for point, radius in ((start, radius_start), (end, radius_end)):
            cv2.circle(
                self.labels,
                tuple(self._fixed(point)),
                int(round(radius * SUBPIXEL)),
                label,
                -1,
                cv2.LINE_8,
                SUBPIXEL_BITS,
            )

    def polygon(self, points, group, shade=1.0):
        label = self._new_label(group, shade)
        cv2.fillPoly(self.labels, [self._fixed(points)], label, cv2.LINE_8, SUBPIXEL_BITS)

    def ellipse(self, center, axes, angle_deg, group, shade=1.0):
        label = self._new_label(group, shade)
        cv2.ellipse(
            self.labels,
            tuple(self._fixed(center)),
            tuple(int(round(axis * SUBPIXEL)) for axis in axes),
            angle_deg,
            0,
            360,
            label,
            -1,
            cv2.LINE_8,
            SUBPIXEL_BITS,
        )
        return label

    def composite(self, image, textures, outline):
        """Paint the labelled parts over `image` (float32 (H, W, 3)); returns the mask."""
        if len(self.parts) > 255:
            raise ValueError("Too many parts for a uint8 label map.")
        groups = np.array(
            [-1 if group is None else self.GROUPS.index(group) for group, _ in self.parts]
        )
        shades = np.array([shade for _, shade in self.parts], np.float32)
        ys, xs = np.nonzero(self.labels)
        labels = self.labels[ys, xs]
        group_at, shade_at = groups[labels], shades[labels]
        for index, name in enumerate(self.GROUPS):
            selected = group_at == index
            if selected.any():
                rows, columns = ys[selected], xs[selected]
                image[rows, columns] = textures[name].at(rows, columns) * shade_at[selected, None]
        figure = self.labels > 0
        edges = np.zeros_like(figure)
        edges[:, 1:] |= self.labels[:, 1:] != self.labels[:, :-1]
        edges[1:, :] |= self.labels[1:, :] != self.labels[:-1, :]
        edges &= figure
        image[edges] *= outline
        return figure


def draw_figure(image, joints_px, height_px, rng, appearance=None):
    """Draw one figure (joints in image px) on `image` in place.

    Returns:
        (figure mask (H, W) bool, head ellipse (center, axes, angle_deg)).
    """
    size = image.shape[0]
    appearance = appearance or _appearance(rng)
    canvas = Canvas(size)
    build = appearance["build"] * height_px
    shirt_or_skin = "shirt" if appearance["long_sleeves"] else "skin"
    pants_or_skin = "pants" if appearance["long_pants"] else "skin"
    shades = {"r": RIGHT_SHADE, "l": 1.0}
    limbs = {
        "r": (R_SHOULDER, R_ELBOW, R_WRIST, R_HIP, R_KNEE, R_ANKLE),
        "l": (L_SHOULDER, L_ELBOW, L_WRIST, L_HIP, L_KNEE, L_ANKLE),
    }
    spine = joints_px[THORAX] - joints_px[PELVIS]
    spine_length = max(float(np.hypot(*spine)), 1e-6)
    spine_unit = spine / spine_length

    def draw_arms():
        for side in ("r", "l"):
            shoulder, elbow, wrist = (joints_px[index] for index in limbs[side][:3])
            shade = shades[side]
            canvas.capsule(shoulder, elbow, 0.04 * build, 0.03 * build, "shirt", shade)
            canvas.capsule(elbow, wrist, 0.03 * build, 0.022 * build, shirt_or_skin, shade)
            hand_direction = wrist - elbow
            hand_direction = hand_direction / max(float(np.hypot(*hand_direction)), 1e-6)
            canvas.capsule(
                wrist,
                wrist + hand_direction * 0.04 * height_px,
                0.024 * build,
                0.02 * build,
                "skin",
                shade,
            )

    if appearance["arms_behind"]:
        draw_arms()
    for side in ("r", "l"):
        _, _, _, hip, knee, ankle = (joints_px[index] for index in limbs[side])
        shade = shades[side]
        canvas.capsule(hip, knee, 0.058 * build, 0.04 * build, "pants", shade)
        canvas.capsule(knee, ankle, 0.04 * build, 0.026 * build, pants_or_skin, shade)
        # Feet point outward-down from the ankle.
        foot = (
            ankle + (ankle - knee) / max(float(np.hypot(*(ankle - knee))), 1e-6) * 0.03 * height_px
        )
        outward = joints_px[R_HIP if side == "r" else L_HIP] - joints_px[PELVIS]
        outward = outward / max(float(np.hypot(*outward)), 1e-6)
        canvas.capsule(
            ankle, foot + outward * 0.05 * height_px, 0.026 * build, 0.022 * build, "shoes", shade
        )
    # Torso: shirt polygon from the shoulders to the waist, trousers from the waist down.
    side_unit = np.array([-spine_unit[1], spine_unit[0]])  # perpendicular
    if np.dot(joints_px[L_SHOULDER] - joints_px[R_SHOULDER], side_unit) < 0:
        side_unit = -side_unit  # points from the right towards the left side
    shoulder_pad = 0.035 * build
    hip_pad = 0.045 * build
    waist_r = joints_px[R_HIP] + spine * 0.3 - side_unit * hip_pad * 0.8
    waist_l = joints_px[L_HIP] + spine * 0.3 + side_unit * hip_pad * 0.8
    canvas.polygon(
        [
            joints_px[R_SHOULDER] - side_unit * shoulder_pad,
            joints_px[L_SHOULDER] + side_unit * shoulder_pad,
            waist_l,
            waist_r,
        ],
        "shirt",
    )
    canvas.polygon(
        [
            waist_r,
            waist_l,
            joints_px[L_HIP] + side_unit * hip_pad - spine_unit * 0.03 * height_px,
            joints_px[R_HIP] - side_unit * hip_pad - spine_unit * 0.03 * height_px,
        ],
        "pants",
    )
    for side, index in (("r", R_SHOULDER), ("l", L_SHOULDER)):
        canvas.capsule(
            joints_px[index],
            joints_px[index],
            shoulder_pad * 1.1,
            shoulder_pad * 1.1,
            "shirt",
            shades[side],
        )
    canvas.capsule(joints_px[THORAX], joints_px[UPPER_NECK], 0.03 * build, 0.026 * build, "skin")
    # Head: an ellipse from the upper neck to the head top, 0.78 as wide as tall.
    neck, top = joints_px[UPPER_NECK], joints_px[HEAD_TOP]
    axis = top - neck
    head_length = float(np.hypot(*axis))
    head_center = (neck + top) / 2.0
    head_angle = math.degrees(math.atan2(axis[1], axis[0]))
    head_axes = (head_length / 2.0, head_length * 0.39)
    canvas.ellipse(head_center, head_axes, head_angle, "skin")
    if appearance["hair"] is not None:
        # A cap: the upper part of a slightly larger ellipse, shifted towards the top.
        cap_center = head_center + axis * 0.12
        canvas.ellipse(cap_center, (head_axes[0] * 0.9, head_axes[1] * 1.04), head_angle, "hair")
        # Re-draw the face region over the hair.
        canvas.ellipse(
            head_center - axis * 0.08,
            (head_axes[0] * 0.72, head_axes[1] * 0.86),
            head_angle,
            "skin",
        )
    if not appearance["arms_behind"]:
        draw_arms()

    hair = appearance["hair"] if appearance["hair"] is not None else appearance["skin"]
    textures = {
        "skin": Texture(rng, appearance["skin"], size, "solid"),
        "shirt": Texture(rng, appearance["shirt"], size),
        "pants": Texture(rng, appearance["pants"], size),
        "shoes": Texture(rng, appearance["shoes"], size, "solid"),
        "hair": Texture(rng, hair, size, "solid"),
    }
    mask = canvas.composite(image, textures, appearance["outline"])
    # Face: eyes and mouth mark the front of the head.
    unit = axis / max(head_length, 1e-6)
    across = np.array([-unit[1], unit[0]])
    for offset in (-0.17, 0.17):
        eye = head_center + unit * 0.08 * head_length + across * offset * head_length
        cv2.circle(
            image,
            tuple(np.round(eye * SUBPIXEL).astype(int)),
            max(1, int(round(0.045 * head_length * SUBPIXEL))),
            (25.0, 25.0, 35.0),
            -1,
            cv2.LINE_AA,
            SUBPIXEL_BITS,
        )
    mouth = head_center - unit * 0.22 * head_length
    cv2.line(
        image,
        tuple(np.round((mouth - across * 0.1 * head_length) * SUBPIXEL).astype(int)),
        tuple(np.round((mouth + across * 0.1 * head_length) * SUBPIXEL).astype(int)),
        (120.0, 40.0, 40.0),
        1,
        cv2.LINE_AA,
        SUBPIXEL_BITS,
    )
    return mask, (head_center, head_axes, head_angle)


def head_box_of_ellipse(center, axes, angle_deg):
    """Axis-aligned bounding box (x0, y0, x1, y1) of a rotated ellipse."""
    angle = math.radians(angle_deg)
    half_width = math.hypot(axes[0] * math.cos(angle), axes[1] * math.sin(angle))
    half_height = math.hypot(axes[0] * math.sin(angle), axes[1] * math.cos(angle))
    return np.array(
        [
            center[0] - half_width,
            center[1] - half_height,
            center[0] + half_width,
            center[1] + half_height,
        ]
    )


def _background(rng, size):
    """Gradient, random shapes, limb-like bars and stripes."""
    coordinate = np.linspace(0.0, 1.0, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = np.add.outer(coordinate * math.sin(angle), coordinate * math.cos(angle))
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    first, second = _random_color(rng), _random_color(rng)
    image = first + ramp[..., None] * (second - first)
    for _ in range(rng.integers(5, 15)):
        color = tuple(float(value) for value in _random_color(rng, 0, 255))
        kind = rng.choice(["circle", "rectangle", "polygon", "bar", "stripes"])
        center = rng.uniform(-0.1, 1.1, size=2) * size
        extent = rng.uniform(0.05, 0.35) * size
        if kind == "circle":
            cv2.circle(
                image, tuple(int(v) for v in center), int(extent / 2), color, -1, cv2.LINE_AA
            )
        elif kind == "rectangle":
            box = (
                (float(center[0]), float(center[1])),
                (float(extent), float(extent * rng.uniform(0.3, 1.5))),
                float(rng.uniform(0, 180)),
            )
            cv2.fillConvexPoly(
                image, np.round(cv2.boxPoints(box)).astype(np.int32), color, cv2.LINE_AA
            )
        elif kind == "polygon":
            count = rng.integers(3, 7)
            angles = np.sort(rng.uniform(0, 2 * math.pi, count))
            radii = extent * rng.uniform(0.3, 0.7, count)
            points = center + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
            cv2.fillPoly(image, [np.round(points).astype(np.int32)], color, cv2.LINE_AA)
        elif kind == "bar":
            # Limb-like clutter: a thick segment with round ends.
            end = center + _rotate(np.array([extent, 0.0]), rng.uniform(0, 360))
            cv2.line(
                image,
                tuple(int(v) for v in center),
                tuple(int(v) for v in end),
                color,
                int(rng.integers(3, 12)),
                cv2.LINE_AA,
            )
        else:
            region = np.zeros((size, size), np.uint8)
            cv2.circle(region, tuple(int(v) for v in center), int(extent), 1, -1)
            _paint(image, region > 0, Texture(rng, color, size, "stripes"))
    return image


def _occluder(rng, image, near_px, extent_px):
    """Draw an occluder near a point; returns its mask."""
    size = image.shape[0]
    mask = np.zeros((size, size), np.uint8)
    center = near_px + rng.normal(0.0, 0.1, 2) * extent_px * 2
    width = extent_px * rng.uniform(0.5, 1.0)
    height = extent_px * rng.uniform(0.5, 1.0)
    kind = rng.choice(["rectangle", "ellipse", "polygon"])
    if kind == "rectangle":
        box = (
            (float(center[0]), float(center[1])),
            (float(width), float(height)),
            float(rng.uniform(0, 180)),
        )
        cv2.fillConvexPoly(mask, np.round(cv2.boxPoints(box)).astype(np.int32), 1)
    elif kind == "ellipse":
        cv2.ellipse(
            mask,
            (int(center[0]), int(center[1])),
            (int(width / 2), int(height / 2)),
            float(rng.uniform(0, 180)),
            0,
            360,
            1,
            -1,
        )
    else:
        count = rng.integers(4, 8)
        angles = np.sort(rng.uniform(0, 2 * math.pi, count))
        radii = extent_px * rng.uniform(0.25, 0.55, count)
        points = center + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    covered = mask > 0
    _paint(image, covered, Texture(rng, _random_color(rng), size))
    return covered


# --------------------------------------------------------------------------------------
# One scene, one person
# --------------------------------------------------------------------------------------


def _rng(seed, split, index):
    return np.random.default_rng([int(seed), SPLITS[split], int(index), VERSION])


def render_person(
    seed: int, split: str, index: int, image_size: int = IMAGE_SIZE, clutter: bool = True
):
    """Render scene `index` of `split`: returns (RGB uint8 image, annotation dict).

    The annotation dict has "keypoints" (16, 2) image px, "visibility" (16,), "center",
    "scale", "head_box" and "normalize", with the conventions of the module docstring.
    `clutter=False` renders the same scene without its distractors and occluders (they
    are drawn on a scratch copy, so the annotation is unchanged): a check of occlusion.
    """
    rng = _rng(seed, split, index)
    size = image_size
    image = _background(rng, size)

    pose = sample_pose(rng)
    body = skeleton(pose)
    height_px = rng.uniform(0.56, 0.78) * size
    rotation = float(np.clip(rng.normal(0.0, 10.0), -30.0, 30.0))
    if rng.random() < 0.05:
        rotation = rng.uniform(-90.0, 90.0)
    joints_unplaced = place(body, height_px, rotation, np.zeros(2))
    middle = (joints_unplaced.min(axis=0) + joints_unplaced.max(axis=0)) / 2.0
    target = np.full(2, (size - 1) / 2.0) + rng.uniform(-0.1, 0.1, 2) * size
    if rng.random() < 0.1:  # cut by the image border
        direction = _rotate(np.array([1.0, 0.0]), rng.uniform(0, 360))
        target = target + direction * rng.uniform(0.2, 0.35) * size
    joints_px = joints_unplaced - middle + target

    # Distractors: partial unannotated figures around the person, behind or in front.
    distractors = []
    for _ in range(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2])):
        other_pose = sample_pose(rng)
        other_height = height_px * rng.uniform(0.6, 1.3)
        offset = (
            _rotate(np.array([1.0, 0.0]), rng.uniform(0, 360)) * height_px * rng.uniform(0.55, 1.0)
        )
        other = place(skeleton(other_pose), other_height, rng.normal(0.0, 12.0), target + offset)
        distractors.append((other, other_height, rng.random() < 0.3))
    scratch = image if clutter else image.copy()
    for other, other_height, in_front in distractors:
        if not in_front:
            draw_figure(scratch, other, other_height, rng)
    if not clutter:
        scratch = image.copy()

    _, head = draw_figure(image, joints_px, height_px, rng)

    if not clutter:
        scratch = image.copy()
    covered = np.zeros((size, size), bool)
    for other, other_height, in_front in distractors:
        if in_front:
            covered |= draw_figure(scratch, other, other_height, rng)[0]
    for _ in range(rng.choice([0, 1, 2], p=[0.55, 0.35, 0.1])):
        near = joints_px[rng.integers(16)]
        covered |= _occluder(rng, scratch, near, height_px * rng.uniform(0.15, 0.3))

    # Camera: blur and sensor noise.
    image = cv2.GaussianBlur(image, (3, 3), rng.uniform(0.3, 0.8))
    noise_level = rng.uniform(0.0, 8.0)
    if noise_level > 1.0:
        image += (
            rng.normal(0.0, noise_level, size=(size // 2, size // 2, 1))
            .astype(np.float32)
            .repeat(2, 0)
            .repeat(2, 1)
        )
    image = np.clip(image, 0, 255).astype(np.uint8)

    inside = np.all((joints_px >= -0.5) & (joints_px < size - 0.5), axis=1)
    visibility = np.where(inside, records.VISIBLE, records.NOT_ANNOTATED)
    pixel = np.clip(np.round(joints_px).astype(int), 0, size - 1)
    occluded = covered[pixel[:, 1], pixel[:, 0]] & inside
    visibility[occluded] = records.OCCLUDED
    keypoints = np.where(inside[:, None], joints_px, 0.0)

    head_box = head_box_of_ellipse(*head)
    # The MPII PCKh normaliser (`metrics.head_sizes`).
    normalize = SC_BIAS * float(np.hypot(*(head_box[2:] - head_box[:2])))
    annotated = joints_px[inside]
    center = (annotated.min(axis=0) + annotated.max(axis=0)) / 2.0 if inside.any() else target
    center = center + rng.normal(0.0, 0.02, 2) * height_px
    annotation = {
        "keypoints": keypoints.astype(np.float32),
        "visibility": visibility.astype(np.int64),
        "center": center.astype(np.float32),
        "scale": normalize / 20.0,  # MPII: 200 * scale = 10 x the PCKh normaliser
        "head_box": head_box.astype(np.float32),
        "normalize": normalize,
    }
    return image, annotation


def make_record(seed: int, split: str, index: int, image_size: int = IMAGE_SIZE):
    """The `PersonRecord` of scene `index` (JPEG-encoded, quality 70-95)."""
    image, annotation = render_person(seed, split, index, image_size)
    quality = int(_rng(seed, split, index).integers(70, 96))
    ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return records.PersonRecord(
        image_encoded=encoded.tobytes(),
        image_format="jpeg",
        image_height=image.shape[0],
        image_width=image.shape[1],
        image_id=f"synthetic/{split}/{index:06d}.jpg",
        dataset="synthetic",
        person_id=index,
        center=annotation["center"],
        scale=annotation["scale"],
        keypoints=annotation["keypoints"],
        visibility=annotation["visibility"],
        head_box=annotation["head_box"],
        normalize=annotation["normalize"],
    )


def _make_record_job(arguments):
    return make_record(*arguments)


def _worker_init():
    cv2.setNumThreads(1)


# --------------------------------------------------------------------------------------
# Splits, cache, CLI
# --------------------------------------------------------------------------------------


def write_split(prefix, count: int, seed: int, split: str, workers: int = 1, progress=None):
    """Generate `count` people of `split` into TFRecord shards at `prefix`.

    Args:
        prefix: str or Path. Output prefix (`<prefix>-00000.tfrecord`, manifest).
        count: int. People to generate.
        seed: int. Generator seed.
        split: str. "train" or "val" (independent random streams).
        workers: int. Processes (1 = in this process). Output does not depend on it.
        progress: `cli.ProgressBar` or None. Updated once per person written.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, received {split!r}.")
    jobs = [(seed, split, index, IMAGE_SIZE) for index in range(count)]
    extra = {
        "generator": {
            "name": "pose_keras.synthetic",
            "version": VERSION,
            "seed": seed,
            "split": split,
            "image_size": IMAGE_SIZE,
        }
    }
    with records.ShardedWriter(
        prefix, MPII, "synthetic", EXAMPLES_PER_SHARD, extra=extra
    ) as writer:
        if workers <= 1:
            results = map(_make_record_job, jobs)
            pool = None
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: the caller may have TensorFlow's threads running; forking those is unsafe.
            pool = ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _worker_init)
            results = pool.map(
                _make_record_job, jobs, chunksize=max(1, min(64, count // (4 * workers)))
            )
        try:
            for record in results:
                writer.write(record)
                if progress is not None:
                    progress.update()
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    return writer


def cache_key(config) -> str:
    """Hash of everything that determines the generated data."""
    data = config.data
    description = {
        "version": VERSION,
        "image_size": IMAGE_SIZE,
        "seed": data.synthetic_seed,
        "train": data.synthetic_train,
        "val": data.synthetic_val,
    }
    return hashlib.sha1(json.dumps(description, sort_keys=True).encode()).hexdigest()[:12]


def _complete(prefix, count) -> bool:
    manifest = records.manifest_path(prefix)
    if not manifest.exists():
        return False
    try:
        data = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    shards_present = all(
        (manifest.parent / shard["file"]).exists() for shard in data.get("shards", [])
    )
    return data.get("count") == count and shards_present


def ensure_synthetic(config, workers: int | None = None, output_dir=None):
    """Generate the synthetic splits, or reuse them from the cache.

    The cache folder `data.cache_dir/synthetic-v<VERSION>-<hash>` is keyed by the generator
    version, image size, seed and split sizes; a split whose manifest is missing (an
    interrupted run) is regenerated.

    Args:
        config: Config. `data.synthetic_train`, `data.synthetic_val`, `data.synthetic_seed`,
            `data.cache_dir`.
        workers: int or None. Processes; None = all CPU cores (at most 8).
        output_dir: str, Path or None. Write here instead of the cache folder.

    Returns:
        (train_prefix, val_prefix): str prefixes for `pipeline` / `records`.
    """
    data = config.data
    folder = (
        Path(output_dir)
        if output_dir
        else Path(data.cache_dir) / f"synthetic-v{VERSION}-{cache_key(config)}"
    )
    workers = workers or min(os.cpu_count() or 1, 8)
    prefixes = {"train": folder / "train", "val": folder / "val"}
    counts = {"train": data.synthetic_train, "val": data.synthetic_val}
    todo = [split for split in ("train", "val") if not _complete(prefixes[split], counts[split])]
    if todo:
        start = time.monotonic()
        people = sum(counts[split] for split in todo)
        print(
            f"Generating the synthetic dataset ({', '.join(f'{counts[s]} {s}' for s in todo)} "
            f"people, seed {data.synthetic_seed}) in {folder} with {workers} worker(s)...",
            file=sys.stderr,
            flush=True,
        )
        for split in todo:
            split_workers = workers if counts[split] >= 100 else 1
            bar = ProgressBar(counts[split], "people", label=f"  {split}")
            try:
                write_split(
                    prefixes[split], counts[split], data.synthetic_seed, split, split_workers, bar
                )
            finally:
                bar.close()
        elapsed = time.monotonic() - start
        print(
            f"Synthetic dataset ready: {people} people in {elapsed:.1f} s.",
            file=sys.stderr,
            flush=True,
        )
    return str(prefixes["train"]), str(prefixes["val"])


def preview_grid(seed: int = 0, count: int = 16, columns: int = 4, split: str = "val"):
    """RGB uint8 grid of generated scenes with skeleton, occluded joints and head box."""
    from pose_keras.draw import draw_skeleton

    tiles = []
    for index in range(count):
        image, annotation = render_person(seed, split, index)
        annotated = annotation["visibility"] > 0
        tile = draw_skeleton(
            image, annotation["keypoints"], MPII, present=annotated, radius=3, thickness=1
        )
        for joint in np.flatnonzero(annotation["visibility"] == records.OCCLUDED):
            x, y = np.round(annotation["keypoints"][joint] * SUBPIXEL).astype(int)
            cv2.circle(
                tile, (int(x), int(y)), 5 * SUBPIXEL, (255, 255, 255), 1, cv2.LINE_AA, SUBPIXEL_BITS
            )
        x0, y0, x1, y1 = np.round(annotation["head_box"]).astype(int)
        cv2.rectangle(tile, (int(x0), int(y0)), (int(x1), int(y1)), (0, 255, 0), 1)
        tiles.append(np.concatenate([image, tile], axis=1))
    rows = []
    for start in range(0, len(tiles), columns):
        row = tiles[start : start + columns]
        row += [np.zeros_like(tiles[0])] * (columns - len(row))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.synthetic",
        description="Generate (or reuse from the cache) the embedded synthetic pose dataset: "
        "rendered articulated figures with MPII's 16 joints, written as TFRecord shards.",
    )
    parser.add_argument(
        "--output",
        help="Output folder (default: the cache folder under --cache-dir, keyed by the parameters).",
    )
    parser.add_argument(
        "--cache-dir", default=None, help="Cache root (default: data.cache_dir, .cache/pose_keras)."
    )
    parser.add_argument(
        "--train", type=int, default=None, help="People in the training split (default 2000)."
    )
    parser.add_argument(
        "--val", type=int, default=None, help="People in the validation split (default 500)."
    )
    parser.add_argument("--seed", type=int, default=None, help="Generator seed (default 0).")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Worker processes (default: CPU cores, at most 8).",
    )
    parser.add_argument(
        "--preview",
        metavar="PNG",
        help="Instead of generating, write a grid of scenes (image | annotations) to this PNG.",
    )
    parser.add_argument(
        "--preview-count", type=int, default=16, help="Scenes in the preview grid (default 16)."
    )
    arguments = parser.parse_args(argv)

    from pose_keras.config import Config

    overrides = []
    for key, value in (
        ("synthetic_train", arguments.train),
        ("synthetic_val", arguments.val),
        ("synthetic_seed", arguments.seed),
        ("cache_dir", arguments.cache_dir),
    ):
        if value is not None:
            overrides.append(f"data.{key}={value}")
    try:
        config = Config().with_overrides(overrides)
        if arguments.workers is not None and arguments.workers < 1:
            raise ValueError(f"--workers must be >= 1, received {arguments.workers}.")
        if arguments.preview:
            if arguments.preview_count < 1:
                raise ValueError(
                    f"--preview-count must be >= 1, received {arguments.preview_count}."
                )
            grid = preview_grid(config.data.synthetic_seed, arguments.preview_count)
            Path(arguments.preview).parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(arguments.preview, grid[..., ::-1]):
                raise ValueError(f"Cannot write {arguments.preview}.")
            print(f"Wrote {arguments.preview}")
            return 0
        train_prefix, val_prefix = ensure_synthetic(config, arguments.workers, arguments.output)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"train: {train_prefix}\nval:   {val_prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
