"""Base classes for the blocks of the zoo.

A block is a Keras layer whose mathematics is written as a function of an
explicit state tuple and an explicit dict of weight tensors:

    state, stats = block.forward_step(state, weights, step, training)

so that one block object can run on its own variables (as an ordinary Keras
layer) or as one step of a `StackedUnit`, which stores the weights of many
blocks stacked along a leading axis and loops over them.

`InvertibleBlock` adds `inverse_step` and `inverse_vjp`: given a block's output
and the gradient with respect to it, rebuild the block's input and return the
gradients with respect to the input and the weights. That is all the
reversible engine (`zoo.engine`) needs to know about a block.

`CouplingBlock` implements both for blocks made of additive coupling steps

    x[target] <- scale * x[target] + f(x[source]),   scale = ±1,

(Hamiltonian, RevNet, MidPoint and Leapfrog blocks are all of this form). The
inverse of such a step evaluates f on exactly the input the forward pass saw,
so the rebuild and the local gradient share one evaluation of f: the backward
pass costs one extra forward pass, not two.
"""

import dataclasses
from typing import Callable, Sequence

import keras
import tensorflow as tf

from zoo.initializers import for_weight
from zoo.layers import ops

MOVING_ROLES = ("moving_mean", "moving_variance")


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """Shape, initialiser and role of one weight of one block.

    Roles: "kernel" (convolution kernels: weight decay and smoothness decay
    apply), "bias", "gamma", "beta", "moving_mean", "moving_variance".
    """

    shape: tuple
    initializer: str
    role: str

    @property
    def trainable(self):
        return self.role not in MOVING_ROLES

    @property
    def autocast(self):
        # Batch-norm parameters stay float32 under mixed precision.
        return self.role in ("kernel", "bias")


def batch_norm_specs(name, channels):
    """The four weights of a batch normalisation named `name`."""
    return {
        f"{name}_gamma": WeightSpec((channels,), "ones", "gamma"),
        f"{name}_beta": WeightSpec((channels,), "zeros", "beta"),
        f"{name}_moving_mean": WeightSpec((channels,), "zeros", "moving_mean"),
        f"{name}_moving_variance": WeightSpec((channels,), "ones", "moving_variance"),
    }


def apply_batch_norm(name, x, weights, training, stats):
    """Runs the batch normalisation `name` on x and records its batch stats."""
    y, batch_stats = ops.batch_norm(
        x,
        weights[f"{name}_gamma"],
        weights[f"{name}_beta"],
        weights[f"{name}_moving_mean"],
        weights[f"{name}_moving_variance"],
        training,
    )
    if batch_stats is not None:
        stats[name] = batch_stats
    return y


def update_moving_statistics(variables, stats):
    """moving = momentum * moving + (1 - momentum) * batch, for every BN in stats
    (momentum: `ops.moving_statistics_momentum()`).

    `variables` maps weight names to Keras variables; works unchanged for a
    block's own (C,) variables and a unit's stacked (N, C) variables.
    """
    m = ops.moving_statistics_momentum()
    for name, (mean, variance) in stats.items():
        for suffix, value in (("moving_mean", mean), ("moving_variance", variance)):
            var = variables[f"{name}_{suffix}"]
            value = tf.cast(value, var.dtype)
            var.assign(var * m + value * (1.0 - m))


class Block(keras.layers.Layer):
    """A residual-network block written as a pure function of its weights.

    Subclasses define:
      * `weight_specs(channels)`: dict name -> WeightSpec for an input with
        `channels` channels;
      * `forward_step(state, weights, step, training)` -> (state, stats), where
        stats maps batch-norm names to their (mean, variance) batch statistics;
      * optionally `input_to_state` / `state_to_output` (default: the state is
        the 1-tuple of the input tensor).

    `step` is the index of the block inside its unit (0 for a standalone block
    unless the block says otherwise); multistep schemes use it to start with a
    one-step method.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._block_variables = {}

    # -- what subclasses define -------------------------------------------
    def weight_specs(self, channels):
        raise NotImplementedError

    def forward_step(self, state, weights, step, training):
        raise NotImplementedError

    def input_to_state(self, x):
        return (x,)

    def state_to_output(self, state):
        return state[0]

    def unit_entry(self, x):
        """The state a unit starts from, given the tensor entering the unit."""
        return self.input_to_state(x)

    def unit_exit(self, state):
        """The tensor a unit hands on, given its final state."""
        return self.state_to_output(state)

    def output_channels(self, channels):
        return channels

    @property
    def standalone_step(self):
        """The step index used when the block runs on its own."""
        return 0

    # -- Keras plumbing ---------------------------------------------------
    def batch_norm_names(self, channels):
        return [
            name[: -len("_moving_mean")]
            for name, spec in self.weight_specs(channels).items()
            if spec.role == "moving_mean"
        ]

    def build(self, input_shape):
        channels = _channels_of(input_shape)
        for name, spec in self.weight_specs(channels).items():
            self._block_variables[name] = self.add_weight(
                name=name,
                shape=spec.shape,
                initializer=for_weight(spec.initializer, name),
                trainable=spec.trainable,
                autocast=spec.autocast,
            )

    def own_weights(self):
        """The block's own variables as tensors (autocast under mixed precision)."""
        return {name: v.value for name, v in self._block_variables.items()}

    def call(self, inputs, training=None):
        training = bool(training)
        state = self.input_to_state(inputs)
        state, stats = self.forward_step(
            state, self.own_weights(), self.standalone_step, training
        )
        if training and stats:
            update_moving_statistics(self._block_variables, stats)
        return self.state_to_output(state)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(
            input_shape[0], (list, tuple)
        ):
            return [tuple(s) for s in input_shape]
        return tuple(input_shape[:-1]) + (self.output_channels(input_shape[-1]),)


class InvertibleBlock(Block):
    """A block whose input can be rebuilt from its output.

    Public, for use on the block's own weights:
      * `forward(state)`  -> the block's output state;
      * `inverse(state)`  -> the input state that gives `state`.
    The engine uses the functional forms with explicit weights.
    """

    def inverse_step(self, state, weights, step, training):
        raise NotImplementedError

    def inverse_vjp(self, state, grads, weights, step, training, wrt=None):
        """Rebuild the input of the block and pull gradients back through it.

        Args:
          state: the block's output state.
          grads: dL/d(output state), same structure.
          weights: dict of this block's weight tensors.
          wrt: names of the weights to differentiate (default: all).
        Returns:
          (input state, dL/d(input state), dict name -> dL/d(weight) for `wrt`).

        This generic version rebuilds the input with `inverse_step` and then
        differentiates a fresh forward pass: two extra forward evaluations.
        `CouplingBlock` overrides it with a version that needs one.
        """
        inputs = self.inverse_step(state, weights, step, training)
        names = sorted(weights) if wrt is None else list(wrt)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            tape.watch([weights[n] for n in names])
            outputs, _ = self.forward_step(inputs, weights, step, training)
        g = tape.gradient(
            outputs,
            (list(inputs), [weights[n] for n in names]),
            output_gradients=list(grads),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return inputs, tuple(g[0]), dict(zip(names, g[1]))

    def _build_from_state(self, state):
        if not self.built:
            # The layer input that corresponds to this state fixes the shapes.
            self.build(_shape_of(self.state_to_output(tuple(state))))

    def forward(self, state, training=False):
        self._build_from_state(state)
        state, _ = self.forward_step(
            tuple(state), self.own_weights(), self.standalone_step, training
        )
        return state

    def inverse(self, state, training=False):
        self._build_from_state(state)
        return self.inverse_step(
            tuple(state), self.own_weights(), self.standalone_step, training
        )


@dataclasses.dataclass(frozen=True)
class Coupling:
    """One coupling step of a block:

        x[target] <- scale * x[target] + source_scale * x[source] + fn(x[source])

    `fn(source, weights, step, training, stats)` returns the nonlinear update and
    may record batch statistics in `stats`; `scale` must be +1 or -1 so that
    the step is exactly invertible. The linear `source_scale` term is kept out
    of `fn` so that it is computed in the state dtype (float32 under mixed
    precision), not in bfloat16.
    """

    target: int
    source: int
    fn: Callable
    scale: float = 1.0
    source_scale: float = 0.0


class CouplingBlock(InvertibleBlock):
    """A block made of additive coupling steps, then a permutation of the state.

    Subclasses define `couplings()` (a sequence of `Coupling`) and may set
    `permutation` (the order in which the updated state is returned; the
    two-step schemes return (Y_j, Y_{j+1}) from (Y_{j-1}, Y_j) by swapping).

    Under mixed precision the state is kept in the dtype it arrives in (the
    unit passes float32) and only the update functions run in the compute
    dtype: the rebuild in the backward pass then loses float32, not bfloat16,
    precision per step.
    """

    permutation = None

    def couplings(self) -> Sequence[Coupling]:
        raise NotImplementedError

    def _update(self, coupling, source, weights, step, training, stats):
        """source_scale * source + fn(source), fn run in the compute dtype."""
        value = coupling.fn(
            tf.cast(source, self.compute_dtype), weights, step, training, stats
        )
        value = tf.cast(value, source.dtype)
        if coupling.source_scale:
            value = value + _scaled(source, coupling.source_scale)
        return value

    def forward_step(self, state, weights, step, training):
        x = list(state)
        stats = {}
        for c in self.couplings():
            update = self._update(c, x[c.source], weights, step, training, stats)
            x[c.target] = _scaled(x[c.target], c.scale) + update
        if self.permutation is not None:
            x = [x[i] for i in self.permutation]
        return tuple(x), stats

    def _unpermute(self, values):
        if self.permutation is None:
            return list(values)
        out = [None] * len(values)
        for position, index in enumerate(self.permutation):
            out[index] = values[position]
        return out

    def inverse_step(self, state, weights, step, training):
        x = self._unpermute(state)
        for c in reversed(self.couplings()):
            update = self._update(c, x[c.source], weights, step, training, {})
            x[c.target] = _scaled(x[c.target] - update, c.scale)
        return tuple(x)

    def inverse_vjp(self, state, grads, weights, step, training, wrt=None):
        x = self._unpermute(state)
        g = self._unpermute(grads)
        names = sorted(weights) if wrt is None else list(wrt)
        weight_list = [weights[n] for n in names]
        weight_grads = [tf.zeros_like(w) for w in weight_list]
        for c in reversed(self.couplings()):
            source = x[c.source]
            with tf.GradientTape() as tape:
                tape.watch(source)
                tape.watch(weight_list)
                update = self._update(c, source, weights, step, training, {})
            # One evaluation of fn serves both the rebuild and the local VJP.
            d_source, d_weights = tape.gradient(
                update,
                (source, weight_list),
                output_gradients=g[c.target],
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            x[c.target] = _scaled(x[c.target] - update, c.scale)
            g[c.source] = g[c.source] + d_source
            g[c.target] = _scaled(g[c.target], c.scale)
            weight_grads = [a + b for a, b in zip(weight_grads, d_weights)]
        return tuple(x), tuple(g), dict(zip(names, weight_grads))


class HalvesCouplingBlock(CouplingBlock):
    """A coupling block whose state is the input's channels split into two
    halves (Y, Z) = (first half, second half)."""

    def _half(self, channels):
        if channels % 2:
            raise ValueError(
                f"{type(self).__name__} splits channels into halves; got {channels} channels.")
        return channels // 2

    def input_to_state(self, x):
        return tuple(tf.split(x, 2, axis=-1))

    def state_to_output(self, state):
        return tf.concat(state, axis=-1)


def _scaled(x, scale):
    return x if scale == 1 else (-x if scale == -1 else x * scale)


def _channels_of(input_shape):
    if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(
        input_shape[0], (list, tuple, tf.TensorShape)
    ):
        input_shape = input_shape[0]
    channels = input_shape[-1]
    if channels is None:
        raise ValueError(f"The channel dimension of the input must be known, got {input_shape}.")
    return int(channels)


def _shape_of(tensors):
    if isinstance(tensors, (list, tuple)):
        return [tuple(t.shape) for t in tensors]
    return tuple(tensors.shape)
