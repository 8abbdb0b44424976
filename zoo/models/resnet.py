"""CIFAR ResNets of He et al. (CVPR 2016, Section 4.2): the non-reversible baseline."""

from zoo.layers import ResidualBlock, StackedUnit
from zoo.models import common
from zoo.registry import register_model


def cifar_resnet(blocks_per_stage, name, *, widths=(16, 32, 64), reversible=False,
                 weight_decay=0.0, smoothness_decay=0.0, **kwargs):
    """ResNet-(6n+2): 3×3 conv to 16 channels + BN + ReLU, three stages of n
    basic blocks at 16, 32, 64 channels (the first block of stages 2 and 3
    has stride 2 and a zero-padded identity shortcut, option A), global
    average pooling, dense.

    Other keyword arguments as in `common.classifier` (keras.applications).
    `reversible` is accepted for a uniform builder signature; a ResNet block is
    not invertible, so only reversible=False is valid. `smoothness_decay`
    applies across the stacked blocks of each stage. synchronized_bn applies
    to the stem BN only; the BN inside the blocks uses per-replica statistics
    under a distribution strategy.
    """
    if reversible:
        raise ValueError("ResNet blocks are not invertible; build ResNets with reversible=False.")
    n = int(blocks_per_stage)

    def body(x):
        for k, width in enumerate(widths):
            depth = n
            if k > 0:
                x = ResidualBlock(width, strides=2, name=f"stage{k + 1}_downsample")(x)
                depth = n - 1
            if depth > 0:
                x = StackedUnit(
                    ResidualBlock(), depth, weight_decay=weight_decay,
                    smoothness_decay=smoothness_decay, name=f"stage{k + 1}",
                )(x)
        return x

    return common.classifier(name, widths[0], body, weight_decay=weight_decay,
                             final_norm=False, **kwargs)


@register_model("resnet-32", family="resnet", paper_params=0.46e6, invertible=False)
def ResNet32(**kwargs):
    """ResNet-32 (n = 5)."""
    kwargs.setdefault("reversible", False)
    return cifar_resnet(5, "resnet_32", **kwargs)


@register_model("resnet-110", family="resnet", paper_params=1.7e6, invertible=False)
def ResNet110(**kwargs):
    """ResNet-110 (n = 18)."""
    kwargs.setdefault("reversible", False)
    return cifar_resnet(18, "resnet_110", **kwargs)
