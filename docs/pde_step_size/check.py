"""The step-size check of README.md: python docs/pde_step_size/check.py H (from the repo root)."""
import sys, time, numpy as np, keras, tensorflow as tf
import zoo
h = float(sys.argv[1]); model_name = sys.argv[2] if len(sys.argv) > 2 else "second-order-cifar10"
d = np.load("../shared/data/cifar10.npz")
x, y = d["x_train"][:6000], d["y_train"][:6000].reshape(-1)
xt, yt = d["x_test"][:2000], d["y_test"][:2000].reshape(-1)
keras.utils.set_random_seed(0)
m = zoo.build(model_name, h=h)
m.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
t = time.time()
hist = m.fit(x, y, batch_size=128, epochs=3, verbose=2, validation_data=(xt, yt))
print("h", h, model_name, "val", [round(v, 4) for v in hist.history["val_accuracy"]], "train", [round(v, 4) for v in hist.history["accuracy"]], "s", round(time.time() - t))
