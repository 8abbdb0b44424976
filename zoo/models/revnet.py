"""RevNets of Gomez et al. (NeurIPS 2017): the reversible baseline."""

from zoo.layers import ReversibleUnit, RevNetBlock, RevNetDownsampleBlock
from zoo.models import common
from zoo.registry import Family, register_model

__all__ = ["RevNet38", "RevNet110", "revnet"]

REVNET = Family(
    "revnet", "the reversible residual network of Gomez et al. (2017), the reversible baseline",
    citations=("gomez2017", "chang2018"))


def revnet(blocks_per_stage, widths, name, *, reversible=True, weight_decay=0.0,
           smoothness_decay=0.0, **kwargs):
    """RevNet: 3×3 conv + BN + ReLU; three stages of n RevNet blocks; the
    first block of stages 2 and 3 is the non-reversible downsampling block;
    final BN + ReLU + global average pooling + dense.

    Other keyword arguments as in `common.classifier` (keras.applications).
    synchronized_bn applies to the stem and final BN; the BN inside the blocks
    uses per-replica statistics under a distribution strategy.
    """
    n = int(blocks_per_stage)

    def body(x):
        for k, width in enumerate(widths):
            depth = n
            if k > 0:
                x = RevNetDownsampleBlock(width, name=f"stage{k + 1}_downsample")(x)
                depth = n - 1
            if depth > 0:
                x = ReversibleUnit(
                    RevNetBlock(), depth, reversible=reversible, weight_decay=weight_decay,
                    smoothness_decay=smoothness_decay, name=f"stage{k + 1}",
                )(x)
        return x

    return common.classifier(name, widths[0], body, weight_decay=weight_decay, **kwargs)


@register_model("revnet-38", REVNET, block=RevNetBlock, parameters=(467_626, 464_922),
                paper_params=0.46e6, paper_top1={"cifar10": (92.76, "chang2018")})
def RevNet38(**kwargs):
    """RevNet-38: 3-3-3 blocks, widths 32-64-112."""
    return revnet(3, (32, 64, 112), "revnet_38", **kwargs)


@register_model("revnet-110", REVNET, block=RevNetBlock, parameters=(1_737_514, 1_729_226),
                paper_params=1.73e6)
def RevNet110(**kwargs):
    """RevNet-110: 9-9-9 blocks, widths 32-64-128."""
    return revnet(9, (32, 64, 128), "revnet_110", **kwargs)
