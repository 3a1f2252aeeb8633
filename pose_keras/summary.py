"""`python -m pose_keras.summary`: parameters, GMAC per image, output names and shapes.

Examples:

    python -m pose_keras.summary                        # the paper's configuration
    python -m pose_keras.summary --set model.stacks=8 --set model.channels=256
    python -m pose_keras.summary --config my.json --json

GMAC counts the multiply-accumulates of the convolutions and dense layers for one image
(batch normalisation, activations, additions and pooling are not counted, as in the
analytic figures of SPEC §1).
"""

import argparse
import json
import os
import sys

from pose_keras import cli


def count_macs(model) -> int:
    """Multiply-accumulates of one forward pass for one image (convolutions and dense)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            kernel_h, kernel_w, filters_out, filters_in = layer.kernel.shape
            _, height_in, width_in, _ = layer.input.shape
            total += height_in * width_in * kernel_h * kernel_w * filters_in * filters_out
        elif isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, filters_in, filters_out = layer.kernel.shape
            _, height_out, width_out, _ = layer.output.shape
            total += height_out * width_out * kernel_h * kernel_w * filters_in * filters_out
        elif isinstance(layer, keras.layers.Dense):
            filters_in, filters_out = layer.kernel.shape
            total += filters_in * filters_out
    return int(total)


def describe(model) -> dict:
    """The summary as a JSON-ready dict: params, gmac, outputs (name -> shape list)."""
    return {
        "params": int(model.count_params()),
        "gmac": round(count_macs(model) / 1e9, 4),
        "outputs": {
            name: [None if dim is None else int(dim) for dim in tensor.shape]
            for name, tensor in zip(model.output_names, model.outputs, strict=True)
        },
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.summary",
        description="Build the network of a configuration and print its size: parameters, "
        "GMAC per image, and every output's name and shape.",
    )
    cli.add_config_arguments(parser, default_preset="paper")
    parser.add_argument(
        "--json",
        action="store_true",
        help="Print exactly one JSON object with keys params, gmac, outputs.",
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = cli.config_from_arguments(args, default_preset="paper")
    except ValueError as error:
        return cli.error_exit(error)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from pose_keras.model import build_model

    model = build_model(config.model)
    summary = describe(model)
    if args.json:
        print(json.dumps(summary))
        return 0
    model_config = config.model
    print(
        f"MultiScaleHourglass: {model_config.stacks} stacks x {model_config.channels} channels, "
        f"{model_config.input_size} px input, {model_config.num_joints} joints, supervised "
        f"scales {list(model_config.supervised_scales)}, deconv={model_config.deconv}, "
        f"feedback={model_config.scale_feedback}, regression={model_config.global_regression}"
    )
    print(f"parameters: {summary['params']:,}")
    print(f"GMAC/image: {summary['gmac']:.3f}")
    print("outputs:")
    width = max(len(name) for name in summary["outputs"])
    for name, shape in summary["outputs"].items():
        print(f"  {name:<{width}}  {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
