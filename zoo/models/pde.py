"""The PDE-motivated CNNs of Ruthotto & Haber, "Deep Neural Networks Motivated
by Partial Differential Equations" (JMIV 2020): parabolic, hyperbolic
Hamiltonian and second-order networks.

Layout (their CIFAR-10 / STL-10 architecture): a 3×3 convolution,
normalisation and ReLU; per unit a PDE block of 3 time steps; then a 1×1
connector convolution with normalisation and ReLU, and 2×2 average pooling
(global average pooling after the last unit); channels 32-64-112-112: the
units run at 32, 64 and 112 channels and the connectors map 32→64, 64→112 and
112→112. The normalisation is TV normalisation throughout, and h = 0.1 per
step. The authors' CIFAR-10 driver (Meganet.m, examples/2018-jmiv) differs in
both: h = 1, and batch norm after the opening and connector convolutions; the
shipped checkpoints were trained as here (docs/pde_step_size/).
"""

import keras

from zoo.layers import (
    HamiltonianBlock,
    InvertibleBlock,
    LeapfrogBlock,
    ParabolicBlock,
    ReversibleUnit,
    StackedUnit,
    TVNormalization,
)
from zoo.models import common
from zoo.regularizers import weight_decay_regularizer
from zoo.registry import Family, register_model

__all__ = ["HyperbolicHamiltonian", "Parabolic", "SecondOrder", "pde_network"]

WIDTHS = (32, 64, 112, 112)
STEPS = 3

PDE = Family("pde", "a PDE-motivated CNN of Ruthotto & Haber (2020)", citations=("ruthotto2020",))


def _card_description(dynamics, block):
    """The card phrase of one PDE-CNN: its dynamics, steps and reversibility."""
    reversible = "reversible" if issubclass(block, InvertibleBlock) else "not reversible"
    return f"{dynamics}, {STEPS} steps per unit; {reversible}"


def pde_network(block, name, *, widths=WIDTHS, steps=STEPS, control_points=None,
                reversible=True, weight_decay=0.0, smoothness_decay=0.0, **kwargs):
    """Builds a PDE-CNN of `block`s.

    Args:
      block: template block (ParabolicBlock, or a Hamiltonian/Leapfrog block
        with normalization="tv").
      widths: unit widths and the last connector's width.
      steps: time steps per unit.
      control_points: weights on their own time grid (M ≤ steps control
        points per unit, linearly interpolated); None for one set per step.
      reversible: use the reversible engine where the block is invertible
        (the parabolic block is not, and always uses ordinary backprop).
      **kwargs: as in `common.classifier` (keras.applications arguments).
    """
    invertible = isinstance(block, InvertibleBlock)

    def body(x):
        for k in range(len(widths) - 1):
            unit_kwargs = dict(weight_decay=weight_decay, smoothness_decay=smoothness_decay,
                               control_points=control_points, name=f"unit{k + 1}")
            if invertible:
                x = ReversibleUnit(block, steps, reversible=reversible, **unit_kwargs)(x)
            else:
                x = StackedUnit(block, steps, **unit_kwargs)(x)
            x = keras.layers.Conv2D(
                widths[k + 1], 1, use_bias=False, name=f"connector{k + 1}",
                kernel_regularizer=weight_decay_regularizer(weight_decay))(x)
            x = TVNormalization(name=f"connector{k + 1}_norm")(x)
            x = keras.layers.ReLU(name=f"connector{k + 1}_relu")(x)
            if k < len(widths) - 2:
                x = keras.layers.AveragePooling2D(2, name=f"pool{k + 1}")(x)
        return x

    kwargs.setdefault("synchronized_bn", False)
    return common.classifier(name, widths[0], body, weight_decay=weight_decay, final_norm=False,
                             stem_normalization="tv", **kwargs)


# Diffusion loses information: no engine can rebuild a parabolic unit's input.
@register_model(
    "parabolic", PDE, block=ParabolicBlock, parameters=(503_194, 503_194), paper_params=0.50e6,
    paper_top1={"cifar10": (90.5, "ruthotto2020")},
    description=_card_description(
        "a parabolic CNN of Ruthotto & Haber (2020): forward Euler on the heat-like equation "
        "Y' = -K^T σ(N(KY + b)) with TV normalisation N", ParabolicBlock))
def Parabolic(h=0.1, **kwargs):
    """Parabolic CNN: Y_{j+1} = Y_j − h K^T σ(N(K Y_j + b)) (not reversible)."""
    return pde_network(ParabolicBlock(h=h), "parabolic", **kwargs)


@register_model(
    "hyperbolic-hamiltonian", PDE, block=HamiltonianBlock, parameters=(264_730, 264_730),
    paper_params=0.26e6, paper_top1={"cifar10": (90.7, "ruthotto2020")},
    description=_card_description(
        "a hyperbolic CNN of Ruthotto & Haber (2020): a Hamiltonian system with one kernel "
        "per half and their symmetric layer, TV normalisation, Verlet steps", HamiltonianBlock))
def HyperbolicHamiltonian(h=0.1, **kwargs):
    """Hamiltonian CNN with one kernel per half and F_sym (reversible)."""
    return pde_network(HamiltonianBlock(h=h, normalization="tv"), "hyperbolic_hamiltonian",
                       **kwargs)


@register_model(
    "second-order", PDE, block=LeapfrogBlock, parameters=(503_194, 503_194), paper_params=0.50e6,
    paper_top1={"cifar10": (90.6, "ruthotto2020")},
    description=_card_description(
        "a second-order (hyperbolic) CNN of Ruthotto & Haber (2020): the leapfrog scheme "
        "Y_{j+1} = 2Y_j - Y_{j-1} - h^2 K^T σ(N(KY_j + b)) with TV normalisation",
        LeapfrogBlock))
def SecondOrder(h=0.1, **kwargs):
    """Second-order CNN: Y_{j+1} = 2Y_j − Y_{j−1} − h² K^T σ(N(K Y_j + b)) (reversible)."""
    return pde_network(LeapfrogBlock(h=h, normalization="tv"), "second_order", **kwargs)
