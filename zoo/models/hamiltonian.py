"""Hamiltonian networks of Chang et al. (AAAI 2018): units of Hamiltonian
blocks (Verlet discretisation, Eq. 10) in the layout of
`common.reversible_ode_network`."""

from zoo.layers import HamiltonianBlock
from zoo.models import common
from zoo.registry import Family, register_model

__all__ = ["Hamiltonian74", "Hamiltonian218", "Hamiltonian1202"]

HAMILTONIAN = Family(
    "hamiltonian",
    "a reversible network of Hamiltonian blocks (Verlet discretisation of a Hamiltonian "
    "system, Chang et al. 2018, Eq. 10)",
    citations=("chang2018",))


@register_model("hamiltonian-74", HAMILTONIAN, block=HamiltonianBlock,
                parameters=(428_826, 428_538), paper_params=0.43e6,
                paper_top1={"cifar10": (92.76, "chang2018")})
def Hamiltonian74(h=0.1, **kwargs):
    """Hamiltonian-74: 6-6-6 Hamiltonian blocks (Eq. 10), widths 32-64-112."""
    return common.reversible_ode_network(HamiltonianBlock(h=h), 6, (32, 64, 112),
                                         "hamiltonian_74", **kwargs)


@register_model("hamiltonian-218", HAMILTONIAN, block=HamiltonianBlock,
                parameters=(1_679_434, 1_679_114), paper_params=1.68e6)
def Hamiltonian218(h=0.1, **kwargs):
    """Hamiltonian-218: 18-18-18 Hamiltonian blocks, widths 32-64-128."""
    return common.reversible_ode_network(HamiltonianBlock(h=h), 18, (32, 64, 128),
                                         "hamiltonian_218", **kwargs)


@register_model("hamiltonian-1202", HAMILTONIAN, block=HamiltonianBlock,
                parameters=(9_632_778, 9_632_458), paper_params=9.70e6, differs_from_paper=True)
def Hamiltonian1202(h=0.1, **kwargs):
    """Hamiltonian-1202: 100-100-100 Hamiltonian blocks, widths 32-64-128.

    9.63M parameters with this layout where the paper's Table 1 says 9.70M;
    the same layout matches Hamiltonian-74 and -218 to the paper's precision.
    """
    return common.reversible_ode_network(HamiltonianBlock(h=h), 100, (32, 64, 128),
                                         "hamiltonian_1202", **kwargs)
