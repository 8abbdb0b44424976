"""zoo: stable, reversible residual networks derived from ODEs and PDEs.

    import zoo
    model = zoo.build("hamiltonian-74", classes=10, input_shape=(32, 32, 3))
    zoo.list_models()
"""

from zoo import layers, models, regularizers
from zoo.registry import build, list_models

__version__ = "0.1.0"

__all__ = ["build", "layers", "list_models", "models", "regularizers", "__version__"]
