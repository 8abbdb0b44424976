"""Layers of the zoo: blocks (each knows its forward and its inverse), units
(stacked blocks at one resolution) and the small layers the models need."""

from zoo.layers.base import (
    Block,
    Coupling,
    CouplingBlock,
    HalvesCouplingBlock,
    InvertibleBlock,
    WeightSpec,
)
from zoo.layers.hamiltonian import HamiltonianBlock
from zoo.layers.multistep import LeapfrogBlock, MidpointBlock
from zoo.layers.normalization import TVNormalization
from zoo.layers.parabolic import ParabolicBlock
from zoo.layers.preprocessing import PerImageStandardization
from zoo.layers.residual import ResidualBlock
from zoo.layers.revnet import RevNetBlock, RevNetDownsampleBlock
from zoo.layers.transition import PoolAndPad
from zoo.layers.unit import ReversibleUnit, StackedUnit

__all__ = [
    "Block",
    "Coupling",
    "CouplingBlock",
    "HalvesCouplingBlock",
    "HamiltonianBlock",
    "InvertibleBlock",
    "LeapfrogBlock",
    "MidpointBlock",
    "ParabolicBlock",
    "PerImageStandardization",
    "PoolAndPad",
    "ResidualBlock",
    "ReversibleUnit",
    "RevNetBlock",
    "RevNetDownsampleBlock",
    "StackedUnit",
    "TVNormalization",
    "WeightSpec",
]
