"""What the ODE/PDE step blocks share (Hamiltonian, MidPoint, Leapfrog,
parabolic): their hyper-parameters and their full-width kernel, bias and
normalisation weights."""

from zoo.layers.base import WeightSpec
from zoo.layers.normalization import check_normalization, normalization_specs


class ConvStepHyperparameters:
    """The hyper-parameters shared by the ODE/PDE step blocks (Hamiltonian,
    MidPoint, Leapfrog, parabolic): step size, kernel size, the normalisation
    inside σ(N(K·+b)), and initialisers. Mixed into those Keras layers."""

    def _set_step_hyperparameters(self, h, kernel_size, normalization, norm_affine,
                                  kernel_initializer, bias_initializer):
        self.h = float(h)
        self.kernel_size = int(kernel_size)
        self.normalization = check_normalization(normalization)
        self.norm_affine = bool(norm_affine)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def _step_config(self):
        return dict(h=self.h, kernel_size=self.kernel_size, normalization=self.normalization,
                    norm_affine=self.norm_affine, kernel_initializer=self.kernel_initializer,
                    bias_initializer=self.bias_initializer)

    def _full_width_specs(self, channels):
        """One C×C kernel K, bias b and the normalisation's scale and shift."""
        k = self.kernel_size
        return {
            "k": WeightSpec((k, k, channels, channels), self.kernel_initializer, "kernel"),
            "b": WeightSpec((channels,), self.bias_initializer, "bias"),
            **normalization_specs(self.normalization, "n", channels, self.norm_affine),
        }
