"""Learning-rate schedules: step decay (Chang et al. 2018, Section 4) and
linear warm-up followed by cosine decay."""

import math

import keras
import tensorflow as tf

from zoo.training.config import RECIPES


@keras.saving.register_keras_serializable(package="zoo")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr = base · factor^(number of boundaries passed); boundaries in steps."""

    def __init__(self, base_learning_rate, boundaries, factor=0.1):
        self.base_learning_rate = float(base_learning_rate)
        self.boundaries = [int(b) for b in boundaries]
        self.factor = float(factor)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        passed = tf.zeros((), tf.float32)
        for boundary in self.boundaries:
            passed += tf.cast(step >= boundary, tf.float32)
        return self.base_learning_rate * tf.pow(self.factor, passed)

    def get_config(self):
        return {"base_learning_rate": self.base_learning_rate, "boundaries": self.boundaries,
                "factor": self.factor}


@keras.saving.register_keras_serializable(package="zoo")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 for `warmup_steps`, then cosine decay to 0 at `total_steps`."""

    def __init__(self, base_learning_rate, total_steps, warmup_steps=0):
        self.base_learning_rate = float(base_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = float(max(self.warmup_steps, 1))
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
        ramp = tf.minimum((step + 1.0) / warmup, 1.0) if self.warmup_steps else 1.0
        return self.base_learning_rate * ramp * cosine

    def get_config(self):
        return {"base_learning_rate": self.base_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def make_schedule(config, steps_per_epoch, total_steps):
    recipe = RECIPES[config.recipe]
    if recipe.schedule == "step":
        return StepDecay(config.learning_rate, [e * steps_per_epoch for e in recipe.decay_epochs])
    if recipe.schedule == "cosine":
        return WarmupCosine(config.learning_rate, total_steps,
                            int(round(recipe.warmup_epochs * steps_per_epoch)))
    raise ValueError(f"Unknown schedule {recipe.schedule!r}.")
