"""Joint metadata (`pose_keras.joints`): the built-in tables by exact numbers from the
datasets' own documentation, flip permutations, and validation of a custom set."""

import pytest

from pose_keras.joints import COCO, FLIC, HEAD_BOX, LSP, MPII, TORSO, JointSet, get_joint_set

# MPII Human Pose, "joint id (0 - r ankle, 1 - r knee, 2 - r hip, 3 - l hip, 4 - l knee,
# 5 - l ankle, 6 - pelvis, 7 - thorax, 8 - upper neck, 9 - head top, 10 - r wrist,
# 11 - r elbow, 12 - r shoulder, 13 - l shoulder, 14 - l elbow, 15 - l wrist)".
MPII_ORDER = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow",
    "l_wrist",
)  # fmt: skip
# LSP `joints.mat` README: Right ankle, Right knee, Right hip, Left hip, Left knee, Left
# ankle, Right wrist, Right elbow, Right shoulder, Left shoulder, Left elbow, Left wrist,
# Neck, Head top.
LSP_ORDER = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
    "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top",
)  # fmt: skip
# COCO keypoints, `categories[0]["keypoints"]` of person_keypoints_*.json.
COCO_ORDER = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
    "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
    "r_ankle",
)  # fmt: skip


def test_mpii_order_flip_and_protocol_by_exact_numbers():
    assert MPII.names == MPII_ORDER and MPII.num_joints == 16
    # Left and right swap; pelvis, thorax, neck and head top stay.
    assert MPII.flip_index == (5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10)
    assert MPII.normalizer == HEAD_BOX
    # Table 1 columns of the paper (evaluatePCKh.m); Mean leaves out pelvis and thorax.
    assert dict(MPII.table_groups) == {
        "Head": (8, 9),
        "Shoulder": (12, 13),
        "Elbow": (11, 14),
        "Wrist": (10, 15),
        "Hip": (2, 3),
        "Knee": (1, 4),
        "Ankle": (0, 5),
    }
    assert MPII.scored_joints == (0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15)


def test_lsp_coco_and_flic_orders_flips_and_torso_joints():
    assert LSP.names == LSP_ORDER
    assert LSP.flip_index == (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13)
    assert COCO.names == COCO_ORDER
    assert COCO.flip_index == (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
    assert FLIC.num_joints == 11
    # Torso PCK: left shoulder to right hip in each.
    for joint_set in (LSP, COCO, FLIC):
        assert joint_set.normalizer == TORSO
        first, second = joint_set.torso_joints
        assert (joint_set.names[first], joint_set.names[second]) == ("l_shoulder", "r_hip")


@pytest.mark.parametrize("joint_set", [MPII, FLIC, LSP, COCO], ids=lambda j: j.name)
def test_flip_index_is_an_involution_that_mirrors_names(joint_set):
    flip = joint_set.flip_index
    assert tuple(flip[index] for index in flip) == tuple(range(joint_set.num_joints))
    for index, name in enumerate(joint_set.names):
        mirrored = joint_set.names[flip[index]]
        if name.startswith(("l_", "r_")):
            assert mirrored == {"l": "r", "r": "l"}[name[0]] + name[1:]
        else:
            assert mirrored == name


@pytest.mark.parametrize("joint_set", [MPII, FLIC, LSP, COCO], ids=lambda j: j.name)
def test_to_dict_round_trips_and_get_joint_set_finds_the_tables(joint_set):
    assert JointSet.from_dict(joint_set.to_dict()) == joint_set
    assert get_joint_set(joint_set.name) is joint_set
    assert joint_set.index(joint_set.names[-1]) == joint_set.num_joints - 1


def test_a_bad_custom_joint_set_is_refused_with_its_name():
    with pytest.raises(ValueError, match=r"'arm': a joint appears in two flip pairs"):
        JointSet("arm", ("a", "b", "c"), flip_pairs=((0, 1), (1, 2)), limbs=())
    with pytest.raises(ValueError, match=r"'arm': limbs entry \(0, 3\) is not a pair"):
        JointSet("arm", ("a", "b", "c"), flip_pairs=(), limbs=((0, 3),))
    with pytest.raises(ValueError, match=r"has no joint 'd'"):
        JointSet("arm", ("a", "b", "c"), flip_pairs=(), limbs=()).index("d")
