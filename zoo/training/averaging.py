"""An exponential moving average of a model's weights, kept beside them and
checkpointed with the run."""

import keras
import tensorflow as tf


class WeightAverage:
    """An exponential moving average of every floating-point weight of a
    model, batch-norm statistics included (as timm's ModelEmaV2 does):
    avg ← d·avg + (1 - d)·w after each step, with d ramped as
    min(decay, (1 + t)/(10 + t)) so that the first steps do not drag the
    average towards the initialisation. Its variables are checkpointed with
    the run, so a resumed run continues the same average."""

    def __init__(self, model, decay):
        self.decay = float(decay)
        self._weights = [w for w in model.weights if "float" in str(w.dtype)]
        self.averages = [tf.Variable(w.value, trainable=False, name="average")
                         for w in self._weights]
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")

    def trackable(self):
        """What a tf.train.Checkpoint saves of it (the averages, not the model again)."""
        return tf.train.Checkpoint(averages=self.averages, updates=self.updates)

    @tf.function
    def update(self):
        t = tf.cast(self.updates, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        for average, weight in zip(self.averages, self._weights):
            average.assign(decay * average + (1.0 - decay) * tf.cast(weight.value, average.dtype))
        self.updates.assign_add(1)

    def swap(self):
        """Exchanges the model's weights and the averages (call again to undo)."""
        for average, weight in zip(self.averages, self._weights):
            current = tf.identity(weight.value)
            weight.assign(average)
            average.assign(current)


class AverageWeights(keras.callbacks.Callback):
    """Updates a WeightAverage after every step and, given `eval_ds`,
    validates the averaged weights at the end of each validated epoch as
    val_ema_accuracy."""

    def __init__(self, average, eval_ds):
        super().__init__()
        self.average, self.eval_ds = average, eval_ds

    def on_train_batch_end(self, batch, logs=None):
        self.average.update()

    def on_epoch_end(self, epoch, logs=None):
        # stop_training here means the epoch was cut short (time or divergence).
        if (self.eval_ds is None or logs is None or "val_accuracy" not in logs
                or self.model.stop_training):
            return
        self.average.swap()
        try:
            scores = self.model.evaluate(self.eval_ds, verbose=0, return_dict=True)
        finally:
            self.average.swap()
        logs["val_ema_accuracy"] = float(scores["accuracy"])
        logs["val_ema_loss"] = float(scores["loss"])
