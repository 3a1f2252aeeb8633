"""Joint metadata, declared once as data.

Every dataset-specific fact about keypoints lives here: joint names in the order the
dataset stores them, left/right flip pairs, the limbs drawn for a skeleton, the PCK
normaliser, and the column groups of the published result tables. Everything else
(converters, augmentation, metrics, drawing) reads these tables; nothing else hard-codes
a joint index.

Sources of the conventions:

- MPII order and names: the MPII Human Pose release (`annopoints.point.id`, 0-based ids),
  as used by `pos_gt_src` in `gt_valid.mat` and by the stacked-hourglass `annot/*.h5`.
  Table groups follow the official evaluation kit (`evaluatePCKh.m`, `genTablePCK.m`):
  Head is upper neck + head top; pelvis and thorax are not scored.
- FLIC: the 11 joints that the stacked-hourglass FLIC annotations keep (person-centric
  left/right), scored on elbows and wrists with the torso normaliser (left shoulder to
  right hip, as in Sapp & Taskar / Tompson et al.).
- LSP / LSP-extended: the 14 joints of `joints.mat`; PCK with the torso normaliser, left
  shoulder to right hip (`eval_pck.m` of bearpaw/eval_pose, the PCK code of Yang et al.
  CVPR'16 and Chen & Yuille NIPS'14: `norm(gt(:,10) - gt(:,3))` in LSP's 1-based order),
  the same diagonal as FLIC's.
- COCO: the 17 keypoints of the COCO person category (`categories[0].keypoints`).
"""

from __future__ import annotations

import dataclasses

# Normaliser kinds understood by the metrics.
HEAD_BOX = "head_box"
TORSO = "torso"
# PCK at a fraction of the person box diagonal, for joint sets without a head box or torso
# (animals, custom keypoints): the converters store that diagonal as `person/normalize`.
BOX = "box"
NORMALIZERS = (HEAD_BOX, TORSO, BOX)


@dataclasses.dataclass(frozen=True)
class JointSet:
    """Metadata of one keypoint layout.

    Args:
        name: str. Short identifier, e.g. `"mpii"`.
        names: tuple of str. Joint names in dataset order (the heatmap channel order).
        flip_pairs: tuple of (int, int). Joints that trade places under a horizontal
            flip (left/right counterparts, person-centric).
        limbs: tuple of (int, int). Joint pairs joined when drawing a skeleton.
        normalizer: str. `"head_box"` (PCKh, MPII), `"torso"` (PCK, FLIC/LSP/COCO) or
            `"box"` (PCK at a fraction of the person box diagonal; DeepLabCut and
            labelling-tool data).
        torso_joints: (int, int) or None. The two joints whose distance is the torso
            size when `normalizer == "torso"`.
        table_groups: tuple of (str, tuple of int). Columns of the published result
            table and the joints averaged into each.
        scored_joints: tuple of int. Joints that enter the table's Mean column.
    """

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    limbs: tuple[tuple[int, int], ...]
    normalizer: str = TORSO
    torso_joints: tuple[int, int] | None = None
    table_groups: tuple[tuple[str, tuple[int, ...]], ...] = ()
    scored_joints: tuple[int, ...] = ()

    def __post_init__(self):
        count = len(self.names)
        if count == 0:
            raise ValueError(f"Joint set {self.name!r} has no joints.")
        if len(set(self.names)) != count:
            raise ValueError(f"Joint set {self.name!r} has repeated joint names: {self.names}")
        for field_name in ("flip_pairs", "limbs"):
            for pair in getattr(self, field_name):
                if len(pair) != 2 or not all(0 <= index < count for index in pair):
                    raise ValueError(
                        f"Joint set {self.name!r}: {field_name} entry {pair} is not a pair of "
                        f"joint indices in [0, {count})."
                    )
        flipped = [index for pair in self.flip_pairs for index in pair]
        if len(flipped) != len(set(flipped)):
            raise ValueError(f"Joint set {self.name!r}: a joint appears in two flip pairs.")
        if self.normalizer not in NORMALIZERS:
            raise ValueError(
                f"Joint set {self.name!r}: normalizer must be one of {list(NORMALIZERS)}, "
                f"received {self.normalizer!r}."
            )
        if self.normalizer == TORSO and self.torso_joints is not None:
            if not all(0 <= index < count for index in self.torso_joints):
                raise ValueError(f"Joint set {self.name!r}: torso_joints out of range.")
        for group, members in self.table_groups:
            if not members or not all(0 <= index < count for index in members):
                raise ValueError(f"Joint set {self.name!r}: table group {group!r} is invalid.")
        if not all(0 <= index < count for index in self.scored_joints):
            raise ValueError(f"Joint set {self.name!r}: scored_joints out of range.")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """Permutation that reorders joints after a horizontal flip.

        `flipped_heatmaps[..., j] = heatmaps[..., flip_index[j]]`.
        """
        order = list(range(self.num_joints))
        for left, right in self.flip_pairs:
            order[left], order[right] = right, left
        return tuple(order)

    def index(self, joint_name: str) -> int:
        try:
            return self.names.index(joint_name)
        except ValueError:
            raise ValueError(
                f"Joint set {self.name!r} has no joint {joint_name!r}; joints: {self.names}"
            ) from None

    def to_dict(self) -> dict:
        """A JSON-ready description (written into TFRecord manifests)."""
        return {
            "name": self.name,
            "names": list(self.names),
            "flip_pairs": [list(pair) for pair in self.flip_pairs],
            "limbs": [list(pair) for pair in self.limbs],
            "normalizer": self.normalizer,
            "torso_joints": list(self.torso_joints) if self.torso_joints else None,
            "table_groups": [[group, list(members)] for group, members in self.table_groups],
            "scored_joints": list(self.scored_joints),
        }

    @classmethod
    def from_dict(cls, data: dict) -> JointSet:
        """Inverse of `to_dict`; also the format of a custom dataset's joint file."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown joint-set keys {unknown}; expected a subset of {sorted(known)}."
            )
        if "name" not in data or "names" not in data:
            raise ValueError("A joint set needs at least 'name' and 'names'.")
        torso = data.get("torso_joints")
        return cls(
            name=str(data["name"]),
            names=tuple(str(name) for name in data["names"]),
            flip_pairs=tuple(tuple(int(i) for i in pair) for pair in data.get("flip_pairs", ())),
            limbs=tuple(tuple(int(i) for i in pair) for pair in data.get("limbs", ())),
            normalizer=str(data.get("normalizer", TORSO)),
            torso_joints=tuple(int(i) for i in torso) if torso else None,
            table_groups=tuple(
                (str(group), tuple(int(i) for i in members))
                for group, members in data.get("table_groups", ())
            ),
            scored_joints=tuple(int(i) for i in data.get("scored_joints", ())),
        )


# fmt: off
MPII = JointSet(
    name="mpii",
    names=(
        "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
        "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder",
        "l_elbow", "l_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    limbs=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    normalizer=HEAD_BOX,
    table_groups=(
        ("Head", (8, 9)),
        ("Shoulder", (12, 13)),
        ("Elbow", (11, 14)),
        ("Wrist", (10, 15)),
        ("Hip", (2, 3)),
        ("Knee", (1, 4)),
        ("Ankle", (0, 5)),
    ),
    # Official kit: every joint but pelvis (6) and thorax (7).
    scored_joints=(0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15),
)

FLIC = JointSet(
    name="flic",
    names=(
        "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
        "l_hip", "r_hip", "l_eye", "r_eye", "nose",
    ),
    flip_pairs=((0, 3), (1, 4), (2, 5), (6, 7), (8, 9)),
    limbs=((0, 1), (1, 2), (3, 4), (4, 5), (0, 3), (0, 6), (3, 7), (6, 7), (8, 10), (9, 10)),
    normalizer=TORSO,
    torso_joints=(0, 7),
    table_groups=(("Elbow", (1, 4)), ("Wrist", (2, 5))),
    scored_joints=(1, 2, 4, 5),
)

LSP = JointSet(
    name="lsp",
    names=(
        "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
        "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9)),
    limbs=(
        (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 12), (12, 9),
        (9, 10), (10, 11), (12, 13), (8, 2), (9, 3),
    ),
    normalizer=TORSO,
    torso_joints=(9, 2),  # l_shoulder - r_hip (eval_pck.m)
    table_groups=(
        ("Head", (12, 13)),
        ("Shoulder", (8, 9)),
        ("Elbow", (7, 10)),
        ("Wrist", (6, 11)),
        ("Hip", (2, 3)),
        ("Knee", (1, 4)),
        ("Ankle", (0, 5)),
    ),
    scored_joints=tuple(range(14)),
)

COCO = JointSet(
    name="coco",
    names=(
        "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
        "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
        "r_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # The COCO `skeleton` field (1-based in the JSON), here 0-based.
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    normalizer=TORSO,
    torso_joints=(5, 12),
    table_groups=(
        ("Head", (0, 1, 2, 3, 4)),
        ("Shoulder", (5, 6)),
        ("Elbow", (7, 8)),
        ("Wrist", (9, 10)),
        ("Hip", (11, 12)),
        ("Knee", (13, 14)),
        ("Ankle", (15, 16)),
    ),
    scored_joints=tuple(range(17)),
)

# fmt: on

JOINT_SETS = {joint_set.name: joint_set for joint_set in (MPII, FLIC, LSP, COCO)}


def get_joint_set(name: str) -> JointSet:
    """Return a built-in joint set by name (`mpii`, `flic`, `lsp`, `coco`)."""
    try:
        return JOINT_SETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown joint set {name!r}; built-in sets are {sorted(JOINT_SETS)}. A custom "
            "dataset declares its joints in its TFRecord manifest."
        ) from None


# --------------------------------------------------------------------------------------
# Joint sets named by their labels (the DeepLabCut, labelling-tool and COCO converters)
# --------------------------------------------------------------------------------------

_SIDE_WORDS = (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"))
_SEPARATORS = "_-. "


def _counterparts(name: str) -> set:
    """Names that `name` turns into when left and right trade places."""
    found = set()
    for left, right in _SIDE_WORDS:
        for word, other in ((left, right), (right, left)):
            if word in name:
                found.add(name.replace(word, other))
    # One-letter side tokens only as a whole token: `l_ear`, `ear_l`, `L-paw`, `paw.R`.
    for left, right in (("l", "r"), ("L", "R")):
        for letter, other in ((left, right), (right, left)):
            if len(name) > 2 and name[0] == letter and name[1] in _SEPARATORS:
                found.add(other + name[1:])
            if len(name) > 2 and name[-1] == letter and name[-2] in _SEPARATORS:
                found.add(name[:-1] + other)
    found.discard(name)
    return found


def flip_pairs_from_names(names) -> tuple:
    """Left/right joint pairs found from the names alone.

    Two joints pair when one name becomes the other by swapping `left`/`right` (any case:
    `leftear`/`rightear`, `LeftEar`/`RightEar`, `left_paw`/`right_paw`), or a one-letter
    side token at the start or end (`l_ear`/`r_ear`, `ear_L`/`ear_R`).

    Raises:
        ValueError: a joint would be in two pairs (give the pairs explicitly).

    >>> flip_pairs_from_names(["snout", "leftear", "rightear", "tailbase"])
    ((1, 2),)
    >>> flip_pairs_from_names(["l_eye", "r_eye", "Nose", "ear_L", "ear_R"])
    ((0, 1), (3, 4))
    """
    names = list(names)
    index = {name: position for position, name in enumerate(names)}
    pairs = set()
    for position, name in enumerate(names):
        for other in _counterparts(name):
            if other in index:
                pairs.add(tuple(sorted((position, index[other]))))
    used = [joint for pair in pairs for joint in pair]
    repeated = sorted({joint for joint in used if used.count(joint) > 1})
    if repeated:
        raise ValueError(
            f"joint(s) {[names[j] for j in repeated]} match more than one left/right "
            "counterpart; give the flip pairs explicitly."
        )
    return tuple(sorted(pairs))


def parse_flip_pairs(text: str, names) -> tuple:
    """`"a:b,c:d"` (joint names) -> index pairs; `"none"` or `""` -> no pairs.

    >>> parse_flip_pairs("leftear:rightear", ["snout", "leftear", "rightear"])
    ((1, 2),)
    """
    names = list(names)
    if text.strip().lower() in ("", "none"):
        return ()
    pairs = []
    for item in text.split(","):
        parts = [part.strip() for part in item.split(":")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"flip pair {item!r} is not 'left:right'")
        for part in parts:
            if part not in names:
                raise ValueError(f"flip pair {item!r}: no joint {part!r}; joints are {names}")
        pairs.append((names.index(parts[0]), names.index(parts[1])))
    return tuple(pairs)


def joint_set_from_names(name, names, limbs=(), flip_pairs=None) -> JointSet:
    """A `JointSet` for labels found in a project; flip pairs from the names unless given.

    Args:
        name: str. Joint-set name.
        names: sequence of str. Joint names in heatmap-channel order.
        limbs: sequence of (str, str). Joint-name pairs drawn as a skeleton.
        flip_pairs: str, sequence of (int, int) or None. `"a:b,c:d"` / `"none"`, index
            pairs, or None to find them with `flip_pairs_from_names`.

    Raises:
        ValueError: unknown joint in `limbs` or `flip_pairs`, or an invalid joint set.
    """
    names = tuple(str(joint) for joint in names)
    if flip_pairs is None:
        pairs = flip_pairs_from_names(names)
    elif isinstance(flip_pairs, str):
        pairs = parse_flip_pairs(flip_pairs, names)
    else:
        pairs = tuple(tuple(int(i) for i in pair) for pair in flip_pairs)
    limb_indices = []
    for limb in limbs:
        if len(limb) != 2:
            raise ValueError(f"skeleton entry {list(limb)} is not a pair of joint names")
        unknown = [joint for joint in limb if joint not in names]
        if unknown:
            raise ValueError(
                f"skeleton entry {list(limb)} names unknown joint(s) {unknown}; "
                f"joints are {list(names)}"
            )
        limb_indices.append((names.index(limb[0]), names.index(limb[1])))
    # No head box or torso on an animal or a custom layout: PCK is scored against the person
    # box diagonal that the converters store as the record's normaliser.
    return JointSet(
        name=str(name), names=names, flip_pairs=pairs, limbs=tuple(limb_indices), normalizer=BOX
    )
