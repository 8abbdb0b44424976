"""zoo: stable, reversible residual networks derived from ODEs and PDEs.

    import zoo
    model = zoo.build("hamiltonian-74", classes=10, input_shape=(32, 32, 3))
    zoo.list_models()
    model = zoo.load("hamiltonian-74-cifar10")      # pretrained weights
    zoo.list_models(pretrained=True)
    zoo.info("hamiltonian-74-cifar10")              # the checkpoint's manifest entry
    zoo.predict_images(model, "cat.png", label_names=zoo.info(name)["labels"])
"""

from zoo import runtime

# Before anything imports TensorFlow: its fast CPU kernels (zoo.runtime).
runtime.enable_fast_cpu_kernels()

# The tools ask for TensorFlow's start-up messages to be hidden (zoo.runtime);
# they are written back if the start-up fails.
with runtime.quiet_native_stderr(enabled=runtime.quiet_requested()):
    from zoo import layers, models, regularizers  # noqa: E402
    from zoo.inference import predict_images  # noqa: E402
    from zoo.pretrained import info, list_models, load  # noqa: E402
    from zoo.registry import build  # noqa: E402

    if runtime.quiet_requested():
        import tensorflow as _tf

        # CUDA probing prints its complaint when devices are first listed; this
        # fixes TensorFlow's thread pools, which the tools do not set.
        _tf.config.list_physical_devices()

__version__ = "0.1.0"

__all__ = ["build", "info", "layers", "list_models", "load", "models", "predict_images",
           "regularizers", "__version__"]
