"""JAX on the CPU, float64: ``jax.jit`` of one training step, and the whole loop jitted as one ``lax.scan``.

The step is the same math as fastrnn's (docs/math.md's loss, global-norm clipping, SGD
or Adam with bias correction); ``jax.grad`` does BPTT through a ``lax.scan`` over time.
Both contenders stage the data on the device once per ``train`` call and take each
iteration's batch there (``lax.dynamic_slice`` by the iteration number, or the scan
over iterations), never by slicing arrays in Python; SGD carries no optimizer state,
Adam carries its first and second moments.
"""

import functools
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

KEYS = ("U0", "W0", "b0", "V", "c")


def _make_step(activation, head, lr, optimizer, clip):
    f = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[activation]

    def logits_fn(p, x):  # x (B, T, I) -> (B, T, O)
        def cell(h, xt):
            h = f(xt @ p["U0"].T + h @ p["W0"].T + p["b0"])
            return h, h @ p["V"].T + p["c"]

        h0 = jnp.zeros((x.shape[0], p["W0"].shape[0]))
        _, zs = jax.lax.scan(cell, h0, jnp.swapaxes(x, 0, 1))
        return jnp.swapaxes(zs, 0, 1)

    def loss_fn(p, x, y):
        z = logits_fn(p, x)
        if head == "sigmoid":
            per = jnp.maximum(z, 0) - y * z + jnp.log1p(jnp.exp(-jnp.abs(z)))
        else:
            per = -(y * jax.nn.log_softmax(z, axis=2))
        return per.sum() / x.shape[0], z

    def step(p, state, t, x, y):
        (_, z), g = jax.value_and_grad(loss_fn, has_aux=True)(p, x, y)
        if clip:
            norm = jnp.sqrt(sum(jnp.sum(g[k] ** 2) for k in KEYS))
            scale = jnp.where(norm > clip, clip / norm, 1.0)
            g = {k: g[k] * scale for k in KEYS}
        if optimizer == "sgd":  # no state: ``state`` is the empty tuple and passes through
            p = {k: p[k] - lr * g[k] for k in KEYS}
        elif optimizer == "adam":
            m = {k: 0.9 * state[0][k] + 0.1 * g[k] for k in KEYS}
            v = {k: 0.999 * state[1][k] + 0.001 * g[k] ** 2 for k in KEYS}
            p = {k: p[k] - lr * (m[k] / (1 - 0.9**t)) / (jnp.sqrt(v[k] / (1 - 0.999**t)) + 1e-8) for k in KEYS}
            state = (m, v)
        else:
            raise ValueError(f"the JAX contender has sgd and adam only, not {optimizer!r}")
        if head == "sigmoid":
            wrong = jnp.any((z > 0) != (y > 0.5), axis=2).sum(axis=1)
        else:
            wrong = (jnp.argmax(z, axis=2) != jnp.argmax(y, axis=2)).sum(axis=1)
        return p, state, wrong

    return step


def initial_state(optimizer, p):
    """The optimizer's state: none for SGD, Adam's first and second moments (zeros) for Adam."""
    if optimizer == "sgd":
        return ()
    return tuple({k: jnp.zeros_like(v) for k, v in p.items()} for _ in range(2))


@functools.lru_cache(maxsize=None)
def _jitted_step(activation, head, lr, optimizer, clip, B):
    """One jitted step per configuration, shared by every trainer (compiled once per data shape).

    It takes the whole staged data (X, Y on the device) and the iteration number
    ``it``, and slices batch ``it`` inside the jit (``lax.dynamic_slice_in_dim``), so
    that a step call moves no data and Python slices nothing.
    """
    step = _make_step(activation, head, lr, optimizer, clip)

    def run(p, state, t, X, Y, it):
        x = jax.lax.dynamic_slice_in_dim(X, it * B, B, axis=0)
        y = jax.lax.dynamic_slice_in_dim(Y, it * B, B, axis=0)
        return step(p, state, t, x, y)

    return jax.jit(run)


@functools.lru_cache(maxsize=None)
def _jitted_loop(activation, head, lr, optimizer, clip, B, O):
    """n training iterations in one jitted ``lax.scan`` over the iterations.

    The data arrive compact (int8 inputs; int8 target bits, or int8 class indices for
    the softmax head) and become float64 (one-hot) inside the jit; the parameters and
    optimizer state are donated, so XLA updates them in place.
    """
    step = _make_step(activation, head, lr, optimizer, clip)

    def run(p, state, t0, Xc, Yc):
        n = Xc.shape[0] // B

        def body(carry, xy):
            p, state, t = carry
            x, y = xy
            x = x.astype(jnp.float64)
            y = jax.nn.one_hot(y, O, dtype=jnp.float64) if head == "softmax" else y.astype(jnp.float64)
            p, state, wrong = step(p, state, t + 1, x, y)
            return (p, state, t + 1), wrong.astype(jnp.int32)

        batches = (Xc.reshape((n, B) + Xc.shape[1:]), Yc.reshape((n, B) + Yc.shape[1:]))
        (p, state, _), wrong = jax.lax.scan(body, (p, state, t0), batches)
        return p, state, wrong

    return jax.jit(run, donate_argnums=(0, 1))


def compact(X, Y, head):
    """int8 forms of 0/1 inputs and of the targets (bits, or the class index for softmax)."""
    Xc = X.astype(np.int8)
    if not np.array_equal(Xc, X):
        raise ValueError("the compact JAX loop takes 0/1 (one-hot) inputs only")
    Yc = Y.argmax(axis=2).astype(np.int8) if head == "softmax" else Y.astype(np.int8)
    return Xc, Yc


class _Base:
    def __init__(self, params, activation, head, lr, optimizer="sgd", clip=None, batch=1):
        self.p = {k: jnp.array(params[k], dtype=np.float64) for k in KEYS}  # copies: the buffers are donated
        self.state = initial_state(optimizer, self.p)
        self.t = 0
        self.batch = batch
        self.config = (activation, head, lr, optimizer, clip)

    def params(self):
        return {k: np.asarray(v) for k, v in self.p.items()}


class StepJit(_Base):
    """A Python loop over iterations calling one jitted training step on data staged on the device."""

    name = "jax jit step (lax.scan)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.jstep = _jitted_step(*self.config, self.batch)

    def train(self, X, Y, n):
        B = self.batch
        if len(X) < n * B:
            raise ValueError(f"{n} iterations of batch {B} need {n * B} sequences, got {len(X)}")
        # All of X and Y go to the device once (the same shapes call after call: no recompiling).
        Xd, Yd = jax.device_put(np.asarray(X, dtype=np.float64)), jax.device_put(np.asarray(Y, dtype=np.float64))
        errors = []
        for it in range(n):
            self.t += 1
            self.p, self.state, wrong = self.jstep(self.p, self.state, self.t, Xd, Yd, it)
            errors.append(wrong)
        return np.asarray(jnp.concatenate(errors)) if errors else np.zeros(0, dtype=np.int64)


class JitLoop(_Base):
    """A whole chunk of iterations as one jitted ``lax.scan``, data on the device as int8."""

    name = "jax jit loop (lax.scan over iterations)"

    def train(self, X, Y, n):
        B = self.batch
        run = _jitted_loop(*self.config, B, Y.shape[2])
        Xc, Yc = compact(X[: n * B], Y[: n * B], self.config[1])
        self.p, self.state, errors = run(self.p, self.state, self.t, jax.device_put(Xc), jax.device_put(Yc))
        self.t += n
        return np.asarray(errors).reshape(-1)


def loss_and_grads_fn(params, activation, head):
    """A jitted (X, Y) -> grads function (dict of device arrays, ready), for the throughput grid."""
    step = jax.jit(jax.grad(lambda p, x, y: _make_loss(activation, head)(p, x, y)))
    p = {k: jnp.asarray(np.asarray(params[k], dtype=np.float64)) for k in KEYS}

    def call(X, Y):
        return jax.block_until_ready(step(p, X, Y))

    return call


def _make_loss(activation, head):
    f = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[activation]

    def loss(p, x, y):
        def cell(h, xt):
            h = f(xt @ p["U0"].T + h @ p["W0"].T + p["b0"])
            return h, h @ p["V"].T + p["c"]

        _, zs = jax.lax.scan(cell, jnp.zeros((x.shape[0], p["W0"].shape[0])), jnp.swapaxes(x, 0, 1))
        z = jnp.swapaxes(zs, 0, 1)
        if head == "sigmoid":
            return (jnp.maximum(z, 0) - y * z + jnp.log1p(jnp.exp(-jnp.abs(z)))).sum() / x.shape[0]
        return -(y * jax.nn.log_softmax(z, axis=2)).sum() / x.shape[0]

    return loss
