"""MidPoint networks of Chang et al. (AAAI 2018): units of midpoint blocks
(the midpoint rule on an antisymmetric system, Eq. 15) in the layout of
`common.reversible_ode_network`.

With the authors' layout the parameter counts are 0.54M and 1.80M where the
paper's Table 1 says 0.50M and 1.78M (the README's parameter table)."""

from zoo.layers import MidpointBlock
from zoo.models import common
from zoo.registry import Family, register_model

__all__ = ["Midpoint26", "Midpoint62"]

MIDPOINT = Family(
    "midpoint",
    "a reversible network of midpoint blocks (the midpoint rule on an antisymmetric "
    "system, Chang et al. 2018, Eq. 15)",
    citations=("chang2018",))


@register_model("midpoint-26", MIDPOINT, block=MidpointBlock, parameters=(535_546, 535_258),
                paper_params=0.50e6, differs_from_paper=True,
                paper_top1={"cifar10": (91.16, "chang2018")})
def Midpoint26(h=0.1, **kwargs):
    """MidPoint-26: 4-4-4 MidPoint blocks (Eq. 15), widths 32-64-112."""
    return common.reversible_ode_network(MidpointBlock(h=h), 4, (32, 64, 112), "midpoint_26",
                                         **kwargs)


@register_model("midpoint-62", MIDPOINT, block=MidpointBlock, parameters=(1_802_058, 1_801_738),
                paper_params=1.78e6, differs_from_paper=True)
def Midpoint62(h=0.1, **kwargs):
    """MidPoint-62: 10-10-10 MidPoint blocks, widths 32-64-128."""
    return common.reversible_ode_network(MidpointBlock(h=h), 10, (32, 64, 128), "midpoint_62",
                                         **kwargs)
