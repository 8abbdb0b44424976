"""Keras callbacks of the training loop: checkpointed progress, step
checkpoints with a time limit, one `fit` per epoch, and the per-epoch
metrics log."""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from zoo.files import atomic_save_weights, write_metrics


class Progress:
    """Checkpointed progress counters (restored with the model)."""

    def __init__(self):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_in_epoch")
        self.best = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_val_accuracy")
        # Training time already spent in the current epoch, so that an epoch
        # resumed in another session reports its whole time, not only the rest.
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                   name="seconds_in_epoch")

    def start_epoch_clock(self):
        """Starts timing this session's part of the current epoch."""
        self._clock_start = time.perf_counter()
        self._seconds_before = float(self.seconds.numpy())

    def epoch_seconds(self):
        """Time spent in the current epoch, earlier sessions included."""
        return self._seconds_before + time.perf_counter() - self._clock_start


class StepCheckpoint(keras.callbacks.Callback):
    """Saves model, optimizer and progress every `every` steps and every
    `every_seconds` of wall time, and stops (after a save) once `stop_at`
    (time.time()) has passed. `save(step)` writes one checkpoint."""

    def __init__(self, save, progress, epoch, first_batch, every, every_seconds=None,
                 stop_at=None, last_batch=None):
        super().__init__()
        self.save, self.progress = save, progress
        self.epoch, self.batch, self.every = epoch, first_batch, every
        # The epoch's last batch ends with its own save and validation: a stop
        # there is left to the caller, after them.
        self.last_batch = last_batch
        self.every_seconds, self.stop_at = every_seconds, stop_at
        self.stopped_for_time = False
        self.last_save = time.time()

    def deadline(self):
        return self.stop_at() if callable(self.stop_at) else self.stop_at

    def on_epoch_begin(self, epoch, logs=None):
        # The one epoch clock, which EpochLog reads too.
        self.progress.start_epoch_clock()

    def on_train_batch_end(self, batch, logs=None):
        self.batch += 1
        if self.model.stop_training:
            return  # diverged (DivergenceGuard): nothing worth saving
        step = int(self.model.optimizer.iterations.numpy())
        now = time.time()
        deadline = self.deadline()
        out_of_time = (deadline is not None and now >= deadline
                       and (self.last_batch is None or self.batch < self.last_batch))
        if ((self.every and step % self.every == 0) or out_of_time
                or (self.every_seconds and now - self.last_save >= self.every_seconds)):
            self.progress.epoch.assign(self.epoch)
            self.progress.batch.assign(self.batch)
            self.progress.seconds.assign(self.progress.epoch_seconds())
            self.save(step)
            self.last_save = now
        if out_of_time:
            self.stopped_for_time = True
            self.model.stop_training = True


class OneEpoch(keras.callbacks.Callback):
    """Ends `fit` after the current epoch.

    Each epoch gets its own dataset (a function of the epoch, so that a run can
    resume mid-epoch); `fit` is told the total number of epochs only so that
    its progress bar counts them.
    """

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


class EpochLog(keras.callbacks.Callback):
    """One metrics row per whole epoch (CSV and JSON in `output_dir`, written
    as it goes): the epoch's logs, learning rate at its start, time, speed.
    "seconds" is the whole epoch, its evaluation of the validation data
    included, and "train_images_per_second" the epoch's training images over
    it; "validation_seconds" is that evaluation's part of "seconds".

    A resumable run passes its checkpointed `progress` (the epoch clock, which
    counts the part of an epoch before a resume) and `best_path`, where the
    weights of the best validation accuracy so far are saved; a run in phases
    names the `phase` and the `step_offset` of the phases before it."""

    def __init__(self, rows, output_dir, images_per_step, *, progress=None, best_path=None,
                 chief=True, phase=None, step_offset=0):
        super().__init__()
        self.rows, self.output_dir, self.images_per_step = rows, output_dir, images_per_step
        self.progress, self.best_path, self.chief = progress, best_path, chief
        self.phase, self.step_offset = phase, step_offset

    def on_epoch_begin(self, epoch, logs=None):
        # A resumed epoch counts the batches and time before its checkpoint.
        resumed = int(self.progress.batch.numpy()) if self.progress is not None else 0
        self.start_step = int(self.model.optimizer.iterations.numpy()) - resumed
        self.start_time = time.perf_counter()
        self.start_lr = float(current_learning_rate(self.model.optimizer))
        self.validation_seconds = 0.0

    # fit() evaluates validation_data with the same callbacks, between the
    # epoch's last batch and on_epoch_end: its share of the epoch's time.
    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        if getattr(self, "_test_start", None) is not None:
            self.validation_seconds += time.perf_counter() - self._test_start
            self._test_start = None

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            # Cut short (out of time or diverged): not a whole epoch, and a
            # checkpoint resumes it where it stopped.
            return
        seconds = (self.progress.epoch_seconds() if self.progress is not None
                   else time.perf_counter() - self.start_time)
        step = int(self.model.optimizer.iterations.numpy())
        row = {"epoch": epoch + 1, **({"phase": self.phase} if self.phase else {}),
               "step": self.step_offset + step, "learning_rate_at_start": self.start_lr,
               "seconds": round(seconds, 2),
               "train_images_per_second":
                   round((step - self.start_step) * self.images_per_step / max(seconds, 1e-9), 1),
               "validation_seconds": round(getattr(self, "validation_seconds", 0.0), 2)}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        self.rows.append(row)
        val = row.get("val_accuracy")
        if (self.progress is not None and val is not None
                and val > float(self.progress.best.numpy())):
            self.progress.best.assign(val)
            if self.chief and self.best_path:
                atomic_save_weights(self.model, self.best_path)
        if self.chief and self.output_dir:
            write_metrics(self.rows, os.path.join(self.output_dir, "metrics.csv"),
                          os.path.join(self.output_dir, "metrics.json"))


class DivergenceGuard(keras.callbacks.Callback):
    """Stops `fit` at the first step whose loss is NaN or infinite and
    records where: (epoch, batch in the epoch counted from 1, loss). It runs
    before the other callbacks, so no checkpoint holds the diverged state."""

    def __init__(self, epoch, first_batch=0):
        super().__init__()
        self.epoch, self.batch = epoch, first_batch
        self.diverged_at = None

    def on_train_batch_end(self, batch, logs=None):
        self.batch += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.diverged_at = (self.epoch, self.batch, float(loss))
            self.model.stop_training = True


def current_learning_rate(optimizer):
    lr = optimizer.learning_rate
    return lr.numpy() if hasattr(lr, "numpy") else lr
