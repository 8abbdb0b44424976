"""Model builders (keras.applications signature). Importing this package
registers every architecture."""

from zoo.models.hamiltonian import (
    Hamiltonian74,
    Hamiltonian218,
    Hamiltonian1202,
    Leapfrog26,
    Leapfrog62,
    Midpoint26,
    Midpoint62,
    reversible_ode_network,
)
from zoo.models.pde import HyperbolicHamiltonian, Parabolic, SecondOrder, pde_network
from zoo.models.resnet import ResNet32, ResNet110, cifar_resnet
from zoo.models.revnet import RevNet38, RevNet110, revnet
