"""zoo: stable, reversible residual networks derived from ODEs and PDEs.

    import zoo
    model = zoo.build("hamiltonian-74", classes=10, input_shape=(32, 32, 3))
    zoo.list_models()
    model = zoo.load("hamiltonian-74-cifar10")      # pretrained weights
    zoo.list_models(pretrained=True)
    zoo.info("hamiltonian-74-cifar10")              # the checkpoint's manifest entry
"""

from zoo import runtime

# Before anything imports TensorFlow: its fast CPU kernels (zoo.runtime).
runtime.enable_fast_cpu_kernels()

from zoo import layers, models, regularizers  # noqa: E402
from zoo.pretrained import info, load  # noqa: E402
from zoo.registry import build, list_models  # noqa: E402

__version__ = "0.1.0"

__all__ = ["build", "info", "layers", "list_models", "load", "models", "regularizers",
           "__version__"]
