"""cli.py: the flags and checks the commands share."""

import argparse

import pytest

from pose_keras import cli


def flags(parser, names=("--flip", "--refine", "--box-scale", "--batch-size")):
    return {
        action.option_strings[0]: (action.default, action.choices, action.help, action.type)
        for action in parser._actions
        if action.option_strings and action.option_strings[0] in names
    }


def test_predict_evaluate_and_export_share_the_inference_flags():
    from pose_keras import evaluate, export, predict

    predict_flags = flags(predict.build_parser())
    evaluate_flags = flags(evaluate.build_parser())
    export_flags = flags(export.build_parser())
    assert predict_flags["--batch-size"][0] == 16 and evaluate_flags["--batch-size"][0] == 32
    assert "--batch-size" not in export_flags and "--box-scale" not in evaluate_flags
    assert {key: predict_flags[key] for key in evaluate_flags if key != "--batch-size"} == {
        key: value for key, value in evaluate_flags.items() if key != "--batch-size"
    }
    assert predict_flags["--box-scale"] == export_flags["--box-scale"]
    assert predict_flags["--refine"][1] == ("quarter", "dark", "none")
    assert export_flags["--refine"][1] == ("quarter", "none")
    assert "in the graph" in export_flags["--flip"][2]


def test_bad_batch_size_and_box_scale_are_named():
    parser = argparse.ArgumentParser()
    cli.add_inference_arguments(parser, batch_size=8)
    args = parser.parse_args([])
    assert (args.flip, args.refine, args.box_scale, args.batch_size) == (False, "quarter", None, 8)
    cli.check_inference_arguments(args)
    with pytest.raises(ValueError, match="--batch-size must be >= 1, received 0"):
        cli.check_inference_arguments(parser.parse_args(["--batch-size", "0"]))
    with pytest.raises(ValueError, match="--box-scale must be > 0, received -1.0"):
        cli.check_inference_arguments(parser.parse_args(["--box-scale", "-1"]))
