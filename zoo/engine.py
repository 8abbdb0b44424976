"""The reversible engine: run a unit of blocks over stacked weights, and
backpropagate through it without stored activations.

A unit is `depth` applications of one block type, the weights of block j being
slice j of tensors stacked along a leading axis. Both passes are a
`tf.while_loop` over the block index, so the traced graph has the same size
for 6 blocks as for 100. (`run_forward(..., unroll=True)`, which units trained
by plain autodiff ask for, applies the blocks in a Python loop instead.)

`run_reversible` wraps the loop in `tf.custom_gradient`. Its forward pass keeps
only the unit's output state. Its backward pass walks the blocks in reverse:
each block rebuilds its input from its output and returns the gradients with
respect to that input and its weights (`InvertibleBlock.inverse_vjp`). Nothing
here depends on what the block computes.

Two TensorFlow behaviours matter (seen with TF 2.21):
  * In eager mode `tf.custom_gradient` runs the forward function while the
    caller's GradientTape is recording, so the tape would keep every
    intermediate tensor alive. The forward pass therefore runs on
    `tf.stop_gradient` copies of its inputs, which the tape does not watch.
  * In a tf.function the executor may start the rebuild as soon as the
    forward output exists, long before the incoming gradient arrives; all
    rebuilt activations would then be alive at once. Every backward
    iteration therefore waits (control dependency) for the gradient it
    consumes.
  * `tf.while_loop` lets up to 10 iterations run at once by default. In the
    backward pass iteration j's weight gradients do not feed iteration j-1,
    so with enough threads (or an unlucky schedule on a loaded machine) the
    local gradients of several blocks were alive together and the memory per
    sample grew with depth: 3.1x from Hamiltonian-74 to -1202 in one CI run.
    Both loops therefore run one iteration at a time.
"""

import contextlib

import tensorflow as tf

_unrolled = []


# Autodiff units up to this many blocks run unrolled (`StackedUnit`).
MAX_UNROLLED_DEPTH = 64


@contextlib.contextmanager
def unrolled():
    """Within the block, `run_forward` applies the blocks in a Python loop
    instead of a `tf.while_loop`, so a traced graph holds every block's ops.

    For graph-level tools that do not look inside loops (the profiler's
    operation count), whatever the unit's depth.
    """
    _unrolled.append(True)
    try:
        yield
    finally:
        _unrolled.pop()


def _slice(weights, j):
    return {name: w[j] for name, w in weights.items()}


def _depth(weights):
    depths = {int(w.shape[0]) for w in weights.values()}
    if len(depths) != 1:
        raise ValueError(f"Stacked weights disagree on the depth: {sorted(depths)}.")
    return depths.pop()


def _stat_names(weights, training):
    if not training:
        return []
    return sorted(n[: -len("_moving_mean")] for n in weights if n.endswith("_moving_mean"))


def run_forward(block, state, weights, training, unroll=False):
    """Applies `block` with weights[0], ..., weights[depth-1] in turn.

    Returns (final state, stats) where stats maps each batch-norm name of the
    block to (means, variances) stacked over the blocks (training only).

    With unroll=True (or inside `unrolled()`) the blocks are applied in a
    Python loop, so the traced graph grows with depth but holds no loop.
    """
    depth = _depth(weights)
    stat_names = _stat_names(weights, training)
    arrays = {
        (name, i): tf.TensorArray(tf.float32 if weights[f"{name}_moving_mean"].dtype != tf.float64
                                  else tf.float64, size=depth)
        for name in stat_names for i in range(2)
    }

    def body(j, state, arrays):
        state, stats = block.forward_step(state, _slice(weights, j), j, training)
        arrays = {
            (name, i): ta.write(j, tf.cast(stats[name][i], ta.dtype))
            for (name, i), ta in arrays.items()
        }
        return j + 1, state, arrays

    if unroll or _unrolled:
        state = tuple(state)
        for j in range(depth):
            _, state, arrays = body(j, state, arrays)
        stats = {name: (arrays[(name, 0)].stack(), arrays[(name, 1)].stack())
                 for name in stat_names}
        return state, stats

    _, state, arrays = tf.while_loop(
        lambda j, *_: j < depth,
        body,
        (tf.constant(0), tuple(state), arrays),
        maximum_iterations=depth,
        parallel_iterations=1,
    )
    stats = {name: (arrays[(name, 0)].stack(), arrays[(name, 1)].stack()) for name in stat_names}
    return state, stats


def run_backward(block, state, grads, weights, training, wrt=None):
    """Walks the blocks in reverse from the output `state` and its gradient.

    Returns (input state, gradient w.r.t. input state, stacked gradients of
    the weights named in `wrt`, default all).
    """
    depth = _depth(weights)
    wrt = sorted(weights) if wrt is None else list(wrt)
    arrays = {name: tf.TensorArray(weights[name].dtype, size=depth) for name in wrt}

    def body(i, state, grads, arrays):
        j = depth - 1 - i
        # Rebuild block j's input only once the gradient at its output exists.
        with tf.control_dependencies(list(grads)):
            state = tuple(tf.identity(s) for s in state)
        state, grads, weight_grads = block.inverse_vjp(
            state, grads, _slice(weights, j), j, training, wrt=wrt
        )
        arrays = {name: ta.write(j, weight_grads[name]) for name, ta in arrays.items()}
        return i + 1, state, grads, arrays

    _, state, grads, arrays = tf.while_loop(
        lambda i, *_: i < depth,
        body,
        (tf.constant(0), tuple(state), tuple(grads), arrays),
        maximum_iterations=depth,
        parallel_iterations=1,
    )
    return state, grads, {name: ta.stack() for name, ta in arrays.items()}


def run_reversible(block, state, weights, constants, training):
    """Forward pass of a unit whose backward pass rebuilds activations.

    Args:
      block: an `InvertibleBlock` (used only through forward_step/inverse_vjp).
      state: tuple of tensors entering the unit.
      weights: dict of stacked trainable weight tensors (gradients returned).
      constants: dict of stacked non-trainable tensors (batch-norm moving
        statistics): read, never differentiated.
      training: Python bool.
    Returns:
      (output state, stats) as `run_forward`.
    """
    n_state = len(state)
    names = sorted(weights)
    stat_names = _stat_names(constants, training)

    @tf.custom_gradient
    def unit(*args):
        # Unwatched copies: see the module docstring (eager tapes).
        inputs = tuple(tf.stop_gradient(a) for a in args[:n_state])
        w = {n: tf.stop_gradient(a) for n, a in zip(names, args[n_state:])}
        all_weights = {**w, **constants}
        outputs, stats = run_forward(block, inputs, all_weights, training)
        flat_stats = [s for name in stat_names for s in stats[name]]

        def grad_fn(*upstream):
            grads = tuple(
                tf.zeros_like(o) if g is None else tf.cast(g, o.dtype)
                for o, g in zip(outputs, upstream[:n_state])
            )
            _, input_grads, weight_grads = run_backward(
                block, outputs, grads, all_weights, training, wrt=names
            )
            return list(input_grads) + [weight_grads[n] for n in names]

        return tuple(outputs) + tuple(flat_stats), grad_fn

    results = unit(*state, *[weights[n] for n in names])
    outputs = tuple(results[:n_state])
    flat_stats = results[n_state:]
    stats = {
        name: (tf.stop_gradient(flat_stats[2 * k]), tf.stop_gradient(flat_stats[2 * k + 1]))
        for k, name in enumerate(stat_names)
    }
    return outputs, stats
