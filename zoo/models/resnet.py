"""CIFAR ResNets of He et al. (CVPR 2016, Section 4.2): the non-reversible baseline."""

from zoo.layers import InvertibleBlock, ResidualBlock, StackedUnit
from zoo.models import common
from zoo.registry import Family, register_model

__all__ = ["ResNet32", "ResNet110", "cifar_resnet"]

RESNET = Family("resnet", "the CIFAR ResNet of He et al. (2016), the non-reversible baseline",
                citations=("he2016", "chang2018"))


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
    if reversible and not issubclass(ResidualBlock, InvertibleBlock):
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


@register_model("resnet-32", RESNET, block=ResidualBlock, parameters=(466_426, 464_154),
                paper_params=0.46e6, paper_top1={"cifar10": (92.86, "chang2018")})
def ResNet32(**kwargs):
    """ResNet-32 (n = 5)."""
    kwargs.setdefault("reversible", False)
    return cifar_resnet(5, "resnet_32", **kwargs)


@register_model("resnet-110", RESNET, block=ResidualBlock, parameters=(1_736_058, 1_727_962),
                paper_params=1.7e6)
def ResNet110(**kwargs):
    """ResNet-110 (n = 18)."""
    kwargs.setdefault("reversible", False)
    return cifar_resnet(18, "resnet_110", **kwargs)
