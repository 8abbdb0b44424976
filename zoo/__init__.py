"""zoo: stable, reversible residual networks derived from ODEs and PDEs.

    import zoo
    model = zoo.build("hamiltonian-74", classes=10, input_shape=(32, 32, 3))
    zoo.list_models()
    model = zoo.load("hamiltonian-74-cifar10")      # pretrained weights
    zoo.list_models(pretrained=True)
    zoo.info("hamiltonian-74-cifar10")              # the checkpoint's manifest entry
"""

from zoo import layers, models, regularizers
from zoo.pretrained import info, load
from zoo.registry import build, list_models

__version__ = "0.1.0"

__all__ = ["build", "info", "layers", "list_models", "load", "models", "regularizers",
           "__version__"]
