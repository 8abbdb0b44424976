"""The datasets the zoo knows by name, in one table: what a model name's
dataset suffix sets on a builder (classes, input shape), the class names in
label order, the local file names looked for, and what to cite.

Adding a dataset is one `Dataset` here; `zoo.data.load` finds its files,
`zoo.build("<architecture>-<name>")` takes its classes and input size, and a
checkpoint trained on it gets its labels and citation.
"""

import dataclasses
from typing import Optional, Tuple

CIFAR10 = (
    'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
    'truck',
)


CIFAR100 = (
    'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle',
    'bicycle', 'bottle', 'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can',
    'castle', 'caterpillar', 'cattle', 'chair', 'chimpanzee', 'clock', 'cloud',
    'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur', 'dolphin', 'elephant',
    'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
    'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree',
    'motorcycle', 'mountain', 'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid',
    'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree', 'plain', 'plate',
    'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket',
    'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake',
    'spider', 'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank',
    'telephone', 'television', 'tiger', 'tractor', 'train', 'trout', 'tulip', 'turtle',
    'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
)


STL10 = (
    'airplane', 'bird', 'car', 'cat', 'deer', 'dog', 'horse', 'monkey', 'ship', 'truck',
)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One dataset of the table.

    name: the dataset suffix of model names and the name `zoo.data.load`
      takes ("cifar10").
    classes, input_shape: what the suffix sets on a builder.
    labels: class names in label order.
    files: local file names looked for in the data directories, first match
      wins (default "<name>.npz").
    citations: keys of zoo.references.CITATIONS.
    """

    name: str
    classes: int
    input_shape: Tuple[int, int, int]
    labels: Tuple[str, ...]
    files: Optional[Tuple[str, ...]] = None
    citations: Tuple[str, ...] = ()

    def __post_init__(self):
        if len(self.labels) != self.classes:
            raise ValueError(f"{self.name}: {len(self.labels)} labels for {self.classes} classes.")

    @property
    def local_files(self):
        return self.files or (f"{self.name}.npz",)

    @property
    def builder_args(self):
        """What a model name's dataset suffix sets on the builder."""
        return {"classes": self.classes, "input_shape": self.input_shape}


DATASETS = {d.name: d for d in (
    Dataset("cifar10", 10, (32, 32, 3), CIFAR10, citations=("krizhevsky2009",)),
    Dataset("cifar100", 100, (32, 32, 3), CIFAR100,
            files=("cifar100.npz", "cifar100_partial.npz"), citations=("krizhevsky2009",)),
    Dataset("stl10", 10, (96, 96, 3), STL10),
)}


def find(name):
    """The table's Dataset of a name (local files may be "<name>_partial"), or None."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    return DATASETS.get(key) or DATASETS.get(key.removesuffix("_partial"))
