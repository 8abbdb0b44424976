"""Hamiltonian-74 at initialisation, h = 0.1 against h = 1: the size of the
features after the stem and each unit (training-mode batch norm), how far
a mixed-bfloat16 forward pass is from float32 with the same weights, and how
exactly each reversible unit rebuilds its input from its output (float32).

    ZOO_DATA_DIR=../shared/data python docs/hamiltonian_step_size/forward_check.py
"""
import os

import keras
import numpy as np
import tensorflow as tf

import zoo
from zoo.research import analysis

images = np.load(os.path.join(os.environ["ZOO_DATA_DIR"], "cifar10.npz"))["x_train"][:64]
images = images.astype("float32")
for h in (0.1, 1.0):
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    model = zoo.build("hamiltonian-74-cifar10", h=h)
    taps = keras.Model(model.input, [model.get_layer(name).output
                                     for name in ("stem_relu", "unit1", "unit2", "unit3")])
    rms = [float(np.sqrt(np.mean(np.square(t)))) for t in taps(images, training=True)]
    keras.config.set_dtype_policy("mixed_bfloat16")
    model16 = zoo.build("hamiltonian-74-cifar10", h=h)
    model16.set_weights(model.get_weights())
    gap = max(float(np.abs(model(images, training=t).numpy()
                           - model16(images, training=t).numpy()).max()) for t in (False, True))
    keras.config.set_dtype_policy("float32")
    reversible = zoo.build("hamiltonian-74-cifar10", h=h, reversible=True)
    reversible.set_weights(model.get_weights())
    rebuild = []
    for unit in analysis.stacked_units(reversible):
        unit_input = keras.Model(reversible.input, reversible.get_layer(unit.name).input)
        rebuild.append(analysis.reconstruction_error(
            unit, tf.convert_to_tensor(unit_input(images, training=False))))
    print(f"h={h}: rms after stem / unit1 / unit2 / unit3: "
          + " / ".join(f"{r:.3g}" for r in rms)
          + f"; max |float32 - bfloat16| of the softmax output: {gap:.2e}"
          + "; rebuild error of units 1-3: " + " / ".join(f"{e:.1e}" for e in rebuild))
