"""What the papers report, and how to cite them: the figures our checkpoints
and model cards are compared against."""

CITATIONS = {
    "chang2018": (
        "Bo Chang, Lili Meng, Eldad Haber, Lars Ruthotto, David Begert and Elliot Holtham. "
        "Reversible Architectures for Arbitrarily Deep Residual Neural Networks. "
        "AAAI 2018. arXiv:1709.03698."),
    "ruthotto2020": (
        "Lars Ruthotto and Eldad Haber. Deep Neural Networks Motivated by Partial "
        "Differential Equations. Journal of Mathematical Imaging and Vision 62, 352-364 "
        "(2020). arXiv:1804.04272."),
    "he2016": (
        "Kaiming He, Xiangyu Zhang, Shaoqing Ren and Jian Sun. Deep Residual Learning for "
        "Image Recognition. CVPR 2016. arXiv:1512.03385."),
    "gomez2017": (
        "Aidan N. Gomez, Mengye Ren, Raquel Urtasun and Roger B. Grosse. The Reversible "
        "Residual Network: Backpropagation Without Storing Activations. NeurIPS 2017. "
        "arXiv:1707.04585."),
    "krizhevsky2009": (
        "Alex Krizhevsky. Learning Multiple Layers of Features from Tiny Images. "
        "Technical report, University of Toronto, 2009."),
}

# Which papers to cite for a model family (the architecture, then the paper
# whose setting the zoo reproduces).
FAMILY_CITATIONS = {
    "hamiltonian": ["chang2018"],
    "midpoint": ["chang2018"],
    "leapfrog": ["chang2018"],
    "resnet": ["he2016", "chang2018"],
    "revnet": ["gomez2017", "chang2018"],
    "pde": ["ruthotto2020"],
}

DATASET_CITATIONS = {"cifar10": ["krizhevsky2009"], "cifar100": ["krizhevsky2009"]}

PAPER_SOURCES = {
    "chang2018": ("Chang et al. (2018), CIFAR-10 test accuracy, after 80k steps of batch 100 "
                  "(160 epochs)"),
    "ruthotto2020": "Ruthotto & Haber (2020), Table 1, CIFAR-10 test accuracy",
}

# Test accuracy (%) each architecture's paper reports, and which paper: Chang
# et al. (2018) after 80k steps of their recipe (the baselines as reported
# there); Ruthotto & Haber (2020) for the PDE-CNNs.
PAPER_TOP1 = {
    ("hamiltonian-74", "cifar10"): (92.76, "chang2018"),
    ("midpoint-26", "cifar10"): (91.16, "chang2018"),
    ("leapfrog-26", "cifar10"): (91.92, "chang2018"),
    ("resnet-32", "cifar10"): (92.86, "chang2018"),
    ("revnet-38", "cifar10"): (92.76, "chang2018"),
    ("parabolic", "cifar10"): (90.5, "ruthotto2020"),
    ("hyperbolic-hamiltonian", "cifar10"): (90.7, "ruthotto2020"),
    ("second-order", "cifar10"): (90.6, "ruthotto2020"),
}


def paper_result(architecture, dataset):
    """{"top1": %, "source": text} the architecture's paper reports on
    `dataset`, or None where it reports nothing."""
    found = PAPER_TOP1.get((architecture, dataset))
    if found is None:
        return None
    top1, source = found
    return {"top1": top1, "source": PAPER_SOURCES[source]}


def citations_for(family, dataset):
    keys = FAMILY_CITATIONS.get(family, []) + DATASET_CITATIONS.get(dataset, [])
    return [{"key": key, "text": CITATIONS[key]} for key in keys]
