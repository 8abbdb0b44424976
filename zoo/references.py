"""The papers the zoo cites: their references (`CITATIONS`) and where in them
a reported figure comes from (`PAPER_SOURCES`). Which paper an architecture
or dataset cites, and the figures it reports, are given where the
architecture is registered (zoo/models/) and in the dataset table
(zoo.data.datasets)."""

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

PAPER_SOURCES = {
    "chang2018": ("Chang et al. (2018), CIFAR-10 test accuracy, after 80k steps of batch 100 "
                  "(160 epochs)"),
    "ruthotto2020": "Ruthotto & Haber (2020), Table 1, CIFAR-10 test accuracy",
}
