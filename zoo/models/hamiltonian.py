"""Hamiltonian, MidPoint and Leapfrog networks of Chang et al. (AAAI 2018).

Layout (from the authors' code): a 3×3 convolution to 32 channels + BN + ReLU;
three units of n blocks; the first block of units 2 and 3 runs at the old
width and resolution, then 2×2 average pooling and zero-padding of channels;
final BN + ReLU + global average pooling + dense.

Because the first block of unit k+1 runs at the resolution and width of unit
k, it is the last time step of the same ODE: we run it inside that unit's
loop. The three loops therefore hold n+1, n and n−1 blocks. This is the same
function and parameter count as the paper's grouping; the smoothness decay
(Eq. 22) couples that block with its neighbours in time.
"""

from zoo.layers import HamiltonianBlock, LeapfrogBlock, MidpointBlock, PoolAndPad, ReversibleUnit
from zoo.models import common
from zoo.registry import register_model


def reversible_ode_network(block, blocks_per_unit, widths, name, *, reversible=True,
                           weight_decay=0.0, smoothness_decay=0.0, control_points=None,
                           **kwargs):
    """Builds a network of `block`s in the layout of Chang et al. (2018).

    Args:
      block: template block (its hyper-parameters are used, e.g. h).
      blocks_per_unit: n, the number of blocks of each of the three units.
      widths: channels of the three units.
      reversible: backprop by reconstruction (True) or plain autodiff (False).
      weight_decay: λ of (λ/2)Σw² on every kernel (SGD weight decay λ).
      smoothness_decay: coefficient of the smoothness term of Eq. 22.
      control_points: weights on their own time grid: at most this many
        weight sets per unit, linearly interpolated (None: one per block).
      **kwargs: as in `common.classifier` (keras.applications arguments;
        synchronized_bn applies to the stem and final BN, the blocks have none).
    """
    n = int(blocks_per_unit)
    if n < 2:
        raise ValueError(f"Each unit needs at least 2 blocks, got {n}.")
    groups = 2 if isinstance(block, HamiltonianBlock) else 1

    def body(x):
        for k, (depth, width) in enumerate(zip((n + 1, n, n - 1), widths)):
            if k > 0:
                x = PoolAndPad(width, groups=groups, name=f"transition{k}")(x)
            x = ReversibleUnit(
                block, depth, reversible=reversible, weight_decay=weight_decay,
                smoothness_decay=smoothness_decay, name=f"unit{k + 1}",
                control_points=None if control_points is None else min(control_points, depth),
            )(x)
        return x

    return common.classifier(name, widths[0], body, weight_decay=weight_decay, **kwargs)


def _family(block_cls, n, widths, model_name, h=0.1, **kwargs):
    return reversible_ode_network(block_cls(h=h), n, widths, model_name, **kwargs)


@register_model("hamiltonian-74", family="hamiltonian", paper_params=0.43e6)
def Hamiltonian74(h=0.1, **kwargs):
    """Hamiltonian-74: 6-6-6 Hamiltonian blocks (Eq. 10), widths 32-64-112."""
    return _family(HamiltonianBlock, 6, (32, 64, 112), "hamiltonian_74", h, **kwargs)


@register_model("hamiltonian-218", family="hamiltonian", paper_params=1.68e6)
def Hamiltonian218(h=0.1, **kwargs):
    """Hamiltonian-218: 18-18-18 Hamiltonian blocks, widths 32-64-128."""
    return _family(HamiltonianBlock, 18, (32, 64, 128), "hamiltonian_218", h, **kwargs)


@register_model("hamiltonian-1202", family="hamiltonian", paper_params=9.70e6)
def Hamiltonian1202(h=0.1, **kwargs):
    """Hamiltonian-1202: 100-100-100 Hamiltonian blocks, widths 32-64-128.

    9.63M parameters with this layout where the paper's Table 1 says 9.70M;
    the same layout matches Hamiltonian-74 and -218 to the paper's precision.
    """
    return _family(HamiltonianBlock, 100, (32, 64, 128), "hamiltonian_1202", h, **kwargs)


@register_model("midpoint-26", family="midpoint", paper_params=0.50e6)
def Midpoint26(h=0.1, **kwargs):
    """MidPoint-26: 4-4-4 MidPoint blocks (Eq. 15), widths 32-64-112."""
    return _family(MidpointBlock, 4, (32, 64, 112), "midpoint_26", h, **kwargs)


@register_model("midpoint-62", family="midpoint", paper_params=1.78e6)
def Midpoint62(h=0.1, **kwargs):
    """MidPoint-62: 10-10-10 MidPoint blocks, widths 32-64-128."""
    return _family(MidpointBlock, 10, (32, 64, 128), "midpoint_62", h, **kwargs)


@register_model("leapfrog-26", family="leapfrog", paper_params=0.50e6)
def Leapfrog26(h=0.1, **kwargs):
    """Leapfrog-26: 4-4-4 Leapfrog blocks (Eq. 17), widths 32-64-112."""
    return _family(LeapfrogBlock, 4, (32, 64, 112), "leapfrog_26", h, **kwargs)


@register_model("leapfrog-62", family="leapfrog", paper_params=1.78e6)
def Leapfrog62(h=0.1, **kwargs):
    """Leapfrog-62: 10-10-10 Leapfrog blocks, widths 32-64-128."""
    return _family(LeapfrogBlock, 10, (32, 64, 128), "leapfrog_62", h, **kwargs)
