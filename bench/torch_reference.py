"""A plain stacked hourglass in PyTorch: the reference `bench/train_bench.py` races against.

The shape is Newell, Yang, Deng, "Stacked hourglass networks for human pose estimation"
(ECCV 2016) as princeton-vl/pytorch_stacked_hourglass builds it (`models/posenet.py`,
`models/layers.py`; facts taken from there, code written here): a 7x7/2 conv-BN-ReLU stem
followed by residual(64->128), 2x2 max-pool, residual(128->128), residual(128->C); per stack
a depth-4 hourglass (skip, pool, down residuals per level, one residual at the bottom, then
residual + nearest x2 upsample + skip addition per level), a residual and a 1x1
conv-BN-ReLU for the features, a 1x1 conv to the heatmaps, and between stacks the
intermediate-supervision merge (1x1 convs of features and heatmaps added to the stack's
input). Residual = pre-activation bottleneck BN-ReLU-1x1(C/2), BN-ReLU-3x3(C/2),
BN-ReLU-1x1(C), plus the input (through a 1x1 conv only when the width changes). Every conv
has a bias, as there.

It is the same network as pose_keras' plain configuration (`model.supervised_scales=1`,
`model.global_regression=false`, `model.deconv=upsample`): same layers, same parameter and
MAC counts (`tests/test_bench_smoke.py` checks both), so the two frameworks time the same
arithmetic. Two deliberate differences from princeton-vl: the residual's projection conv is
created only when it is used (theirs allocates it always: a parameter, not a compute,
difference), and the loss is paper Eq. 1 (sum over pixels, mean over joints), as
pose_keras trains, where theirs averages over pixels (the same cost).

Only `torch` is needed (the `bench` extra). Tensors are NCHW, as in princeton-vl.

Examples:

>>> import torch
>>> model = StackedHourglass(stacks=2, channels=16, stem_channels=16, num_joints=16)
>>> [tuple(h.shape) for h in model(torch.zeros(1, 3, 64, 64))]
[(1, 16, 16, 16), (1, 16, 16, 16)]
"""

import torch
from torch import nn

HOURGLASS_DEPTH = 4  # 64 -> 32 -> 16 -> 8 -> 4 for a 256 px input


class ConvBnRelu(nn.Sequential):
    """Conv -> BN -> ReLU (post-activation): the stem's first layer and the feature layer."""

    def __init__(self, channels_in, channels_out, kernel_size, stride=1):
        super().__init__(
            nn.Conv2d(channels_in, channels_out, kernel_size, stride, padding=kernel_size // 2),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
        )


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1, plus the input."""

    def __init__(self, channels_in, channels_out):
        super().__init__()
        middle = channels_out // 2
        self.skip = None
        if channels_in != channels_out:
            self.skip = nn.Conv2d(channels_in, channels_out, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels_in),
            nn.ReLU(),
            nn.Conv2d(channels_in, middle, 1),
            nn.BatchNorm2d(middle),
            nn.ReLU(inplace=True),
            nn.Conv2d(middle, middle, 3, padding=1),
            nn.BatchNorm2d(middle),
            nn.ReLU(inplace=True),
            nn.Conv2d(middle, channels_out, 1),
        )

    def forward(self, x):
        shortcut = x if self.skip is None else self.skip(x)
        return shortcut + self.body(x)


class Hourglass(nn.Module):
    """Recursive hourglass of `depth` levels, nearest-neighbour upsampling on the way up."""

    def __init__(self, depth, channels):
        super().__init__()
        self.skip = Residual(channels, channels)
        self.pool = nn.MaxPool2d(2)
        self.down = Residual(channels, channels)
        if depth > 1:
            self.inner = Hourglass(depth - 1, channels)
        else:
            self.inner = Residual(channels, channels)
        self.up = Residual(channels, channels)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        lower = self.up(self.inner(self.down(self.pool(x))))
        return self.skip(x) + self.upsample(lower)


class StackedHourglass(nn.Module):
    """Newell et al.'s stacked hourglass with intermediate supervision.

    Args:
        stacks: int. Hourglass modules. Default 4.
        channels: int. Features inside the hourglasses. Default 64.
        num_joints: int. Heatmaps per stack. Default 16.
        stem_channels: int. Width of the stem's residuals (its 7x7 conv has half).
            Default 128.

    `forward` takes images (batch, 3, height, width) and returns one heatmap tensor
    (batch, num_joints, height/4, width/4) per stack.
    """

    def __init__(self, stacks=4, channels=64, num_joints=16, stem_channels=128):
        super().__init__()
        self.stacks = stacks
        self.stem = nn.Sequential(
            ConvBnRelu(3, stem_channels // 2, 7, stride=2),
            Residual(stem_channels // 2, stem_channels),
            nn.MaxPool2d(2),
            Residual(stem_channels, stem_channels),
            Residual(stem_channels, channels),
        )
        self.hourglasses = nn.ModuleList(
            Hourglass(HOURGLASS_DEPTH, channels) for _ in range(stacks)
        )
        self.features = nn.ModuleList(
            nn.Sequential(Residual(channels, channels), ConvBnRelu(channels, channels, 1))
            for _ in range(stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(channels, num_joints, 1) for _ in range(stacks))
        self.merge_features = nn.ModuleList(
            nn.Conv2d(channels, channels, 1) for _ in range(stacks - 1)
        )
        self.merge_heatmaps = nn.ModuleList(
            nn.Conv2d(num_joints, channels, 1) for _ in range(stacks - 1)
        )

    def forward(self, images):
        x = self.stem(images / 127.5 - 1.0)
        heatmaps_per_stack = []
        for stack in range(self.stacks):
            features = self.features[stack](self.hourglasses[stack](x))
            heatmaps = self.heads[stack](features)
            heatmaps_per_stack.append(heatmaps)
            if stack < self.stacks - 1:
                x = x + self.merge_features[stack](features) + self.merge_heatmaps[stack](heatmaps)
        return heatmaps_per_stack


def heatmap_loss(heatmaps_per_stack, targets, joint_weights):
    """Paper Eq. 1 on every stack, summed: sum over pixels, weighted mean over batch x joints.

    The same reduction as pose_keras' `HeatmapLoss` with Keras' `sum_over_batch_size`.
    """
    total = 0.0
    for heatmaps in heatmaps_per_stack:
        per_joint = torch.square(heatmaps - targets).sum(dim=(2, 3))  # (batch, joints)
        total = total + (per_joint * joint_weights).mean()
    return total


def parameter_count(model) -> int:
    """Parameters plus BN running statistics: what `keras.Model.count_params` counts."""
    count = sum(parameter.numel() for parameter in model.parameters())
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            count += module.running_mean.numel() + module.running_var.numel()
    return int(count)


def count_macs(model, input_size) -> int:
    """Multiply-accumulates of the convolutions for one image, by forward hooks.

    Counted like `pose_keras.summary.count_macs`: output pixels x kernel area x input
    channels x output channels per conv; BN, ReLU, pooling and additions are not counted.
    """
    total = 0

    def count(module, inputs, output):
        nonlocal total
        kernel_h, kernel_w = module.kernel_size
        per_pixel = kernel_h * kernel_w * module.in_channels // module.groups * module.out_channels
        total += output.shape[2] * output.shape[3] * per_pixel

    hooks = [
        module.register_forward_hook(count)
        for module in model.modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, 3, input_size, input_size))
        model.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    return int(total)
