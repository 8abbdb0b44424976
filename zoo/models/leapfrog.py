"""Leapfrog networks of Chang et al. (AAAI 2018): units of leapfrog blocks (a
second-order system discretised by leapfrog, Eq. 17) in the layout of
`common.reversible_ode_network`.

With the authors' layout the parameter counts are 0.54M and 1.80M where the
paper's Table 1 says 0.50M and 1.78M (the README's parameter table)."""

from zoo.layers import LeapfrogBlock
from zoo.models import common
from zoo.registry import Family, register_model

__all__ = ["Leapfrog26", "Leapfrog62"]

LEAPFROG = Family(
    "leapfrog",
    "a reversible network of leapfrog blocks (a second-order system discretised by "
    "leapfrog, Chang et al. 2018, Eq. 17)",
    citations=("chang2018",))


@register_model("leapfrog-26", LEAPFROG, block=LeapfrogBlock, parameters=(535_546, 535_258),
                paper_params=0.50e6, differs_from_paper=True,
                paper_top1={"cifar10": (91.92, "chang2018")})
def Leapfrog26(h=0.1, **kwargs):
    """Leapfrog-26: 4-4-4 Leapfrog blocks (Eq. 17), widths 32-64-112."""
    return common.reversible_ode_network(LeapfrogBlock(h=h), 4, (32, 64, 112), "leapfrog_26",
                                         **kwargs)


@register_model("leapfrog-62", LEAPFROG, block=LeapfrogBlock, parameters=(1_802_058, 1_801_738),
                paper_params=1.78e6, differs_from_paper=True)
def Leapfrog62(h=0.1, **kwargs):
    """Leapfrog-62: 10-10-10 Leapfrog blocks, widths 32-64-128."""
    return common.reversible_ode_network(LeapfrogBlock(h=h), 10, (32, 64, 128), "leapfrog_62",
                                         **kwargs)
