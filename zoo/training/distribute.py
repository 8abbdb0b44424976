"""Distribution strategies, which worker writes files, and the workaround that
lets Keras 3 `fit` run under MultiWorkerMirroredStrategy."""

import os

import numpy as np
import tensorflow as tf

from zoo import data as zdata


def make_strategy(name):
    """default | mirrored | multi_worker (reads TF_CONFIG) | tpu."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError, RuntimeError) as error:
            raise RuntimeError(f"--strategy=tpu: no TPU found ({error}).") from error
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; choose default, mirrored, multi_worker or tpu.")


def is_chief(strategy):
    """True on the worker that writes files (always, without multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def prebuild_for_multi_worker(model, strategy, train_split):
    """Works around two failures of Keras 3 `fit` under MultiWorkerMirroredStrategy
    (keras-team/keras#20585; seen with Keras 3.15, TF 2.21):

    * `fit` first all-reduces a distributed input batch to build the compiled
      loss and metrics symbolically, and that reduce fails ("Attempt to
      convert a value (PerReplica ...)"). We build them from a local batch
      instead, which is all the reduce was for, and skip Keras' build.
    * `fit` reduces the logged metrics of every step with a "mean" along
      axis 0, which fails for scalars. The step functions here return them
      as 1-vectors, which that reduce turns into the mean over workers.
    The gradients are all-reduced by the strategy as usual.
    """
    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def as_vectors(data, step=step):
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}

        setattr(model, name, as_vectors)
    images, labels = next(iter(zdata.eval_dataset(train_split.subset(np.arange(2)), 2)))
    with strategy.scope():
        model._symbolic_build(data_batch=(images, labels))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
