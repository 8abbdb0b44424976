"""RevNets of Gomez et al. (NeurIPS 2017): the reversible baseline."""

from zoo.layers import ReversibleUnit, RevNetBlock, RevNetDownsampleBlock
from zoo.models import common
from zoo.registry import register_model


def revnet(
    blocks_per_stage,
    widths,
    name,
    *,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    reversible=True,
    weight_decay=0.0,
    smoothness_decay=0.0,
    synchronized_bn=False,
):
    """RevNet: 3×3 conv + BN + ReLU; three stages of n RevNet blocks; the
    first block of stages 2 and 3 is the non-reversible downsampling block;
    final BN + ReLU + global average pooling + dense.

    synchronized_bn applies to the stem and final BN; the BN inside the blocks
    uses per-replica statistics under a distribution strategy."""
    input_shape = common.validate_input_shape(input_shape, include_top)
    common.validate_head(include_top, classes, pooling, classifier_activation)
    n = int(blocks_per_stage)
    inputs, x = common.model_inputs(input_shape, input_tensor)
    x = common.stem(x, widths[0], weight_decay, synchronized_bn=synchronized_bn)
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
    model = common.head(
        x, inputs, name, include_top=include_top, classes=classes, pooling=pooling,
        classifier_activation=classifier_activation, weight_decay=weight_decay,
        synchronized_bn=synchronized_bn,
    )
    return common.load_weights(model, weights)


@register_model("revnet-38", family="revnet", paper_params=0.46e6)
def RevNet38(**kwargs):
    """RevNet-38: 3-3-3 blocks, widths 32-64-112."""
    return revnet(3, (32, 64, 112), "revnet_38", **kwargs)


@register_model("revnet-110", family="revnet", paper_params=1.73e6)
def RevNet110(**kwargs):
    """RevNet-110: 9-9-9 blocks, widths 32-64-128."""
    return revnet(9, (32, 64, 128), "revnet_110", **kwargs)
