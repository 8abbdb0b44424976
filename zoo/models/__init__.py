"""Model builders (keras.applications signature), one file per architecture
family: `hamiltonian`, `midpoint`, `leapfrog`, `resnet`, `revnet`, `pde`;
`common` holds what they share and `backbone` the structure of a fine-tuned
model.

Each architecture file registers its builders with their facts (zoo.registry)
and lists them in `__all__`. Importing this package imports every module in it,
so that a new architecture is one new file here (and its test): it registers
itself and its builders appear as `zoo.models.<Builder>`.
"""

import importlib
import pkgutil

__all__ = []

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    _loaded = importlib.import_module(f"{__name__}.{_module}")
    for _name in getattr(_loaded, "__all__", ()):
        globals()[_name] = getattr(_loaded, _name)
        __all__.append(_name)
__all__.sort()
