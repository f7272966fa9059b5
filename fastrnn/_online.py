"""The compiled pieces every online learning rule's driver shares (:mod:`fastrnn.rules`).

Numbers only: no checks, no I/O (:func:`fastrnn.online.run` validates first). A
rule's driver runs, for each step t of B independent streams and one shared
vanilla model (one layer):

1. :func:`forward`: h_t from the current weights (the cell's own ``forward_step``);
   a stream whose ``resets`` entry is set starts again from h = 0 first;
2. :func:`head`: the loss of each stream (:func:`fastrnn._kernels.head_loss`),
   g_t = dL/dz_t / B and c_t = V^T g_t = dL_t/dh_t / B;
3. the rule's own state update with the current weights, and its gradient of the
   recurrent parameters (U, W, b), added into ``grad`` stream by stream;
4. :func:`output_grad`: the immediate gradient of V and c;
5. :func:`update`: the optimizer step (:func:`fastrnn.optim.apply_update`), then the
   gradient buffer is cleared.

So the gradient of a step is the mean over the B streams, and there is one update a
step (BPTT(k1, k2): one every k1 steps). The forward-mode math (D_t, J_t times an
influence matrix, the immediate influence) is in :mod:`fastrnn.cells.rnn`.

Layout: theta is fastrnn's, U (H, I), W (H, H), b (H), V (O, H), c (O)
(:func:`fastrnn._kernels.offset_formula`); the recurrent parameters come first,
``H * (I + H + 1)`` of them. ``ctl`` is the float64 array
``[lr, clip_norm, clip_value, accumulate, optimizer code]`` and ``hyper`` the
optimizer's (:func:`fastrnn.optim.hyper_array`); ``counters`` the int64 array
``[steps seen, optimizer steps taken]``.

Random numbers (UORO's and KF-RTRL's signs, their normal initial factors) come from
one splitmix64 generator a stream, its state a uint64 in ``rng``: deterministic from
the seed, saved with the rest of the state.
"""

import math

import numpy as np
from numba import njit

from . import _simd
from ._kernels import head_loss
from .cells import rnn
from .config import JIT
from .optim import apply_update, clip_grads
from .optimizers import sgd

#: Entries of ``ctl``; the fields in order.
CTL_FIELDS = ("lr", "clip_norm", "clip_value", "accumulate", "optimizer")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)


@njit(**JIT)
def next_u64(rng, b):
    """The next 64 random bits of stream b's generator (splitmix64, Steele et al. 2014)."""
    z = rng[b] + _GOLDEN
    rng[b] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(**JIT)
def uniform(rng, b):
    """A uniform number in (0, 1] from stream b's generator (53 bits)."""
    return (float(next_u64(rng, b) >> _S11) + 1.0) * (1.0 / 9007199254740992.0)


@njit(**JIT)
def fill_normal(rng, b, out, off, n):
    """out[off:off + n] = standard normal draws (Box-Muller, one draw per pair of uniforms)."""
    for e in range(n):
        u1 = uniform(rng, b)
        u2 = uniform(rng, b)
        out[off + e] = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(**JIT)
def fill_signs(rng, b, out, off, n):
    """out[off:off + n] = independent random signs, +1 or -1 with probability 1/2 each."""
    e = 0
    while e < n:
        bits = next_u64(rng, b)
        top = n - e if n - e < 64 else 64
        for q in range(top):
            out[off + e + q] = 1.0 - 2.0 * float((bits >> np.uint64(q)) & _ONE)
        e += top


@njit(**dict(JIT, fastmath={"reassoc"}))
def sumsq(a, off, n):
    """The sum of squares of a[off:off + n]. The compiler may reorder the additions (``reassoc``,
    for this one loop): it then runs in vector partial sums, four times faster than one chain of
    dependent adds. The order is fixed by the compiled code, so the same build gives the same
    numbers every run; it may differ from a left-to-right sum in the last bits."""
    v = a[off : off + n]
    s = 0.0
    for e in range(n):
        s += v[e] * v[e]
    return s


@njit(**JIT)
def scratch(B, H, I, O):
    """The per-step buffers every driver uses: ``(xu, hw, hprev, z, g, c, d, ahat, ones)``.

    xu (B*H) = U x_t + b, hw (B*H) = W h_{t-1}, hprev (B*H) = h_{t-1}, z (B*O) the logits
    then predictions, g (B*O) = dL/dz / B, c (B*H) = V^T g, d (B*H) = D_t, ahat (B*(I+H+1))
    = [x_t; h_{t-1}; 1], ones (max(H, 1)) all 1.
    """
    m = I + H + 1
    xu = np.empty(B * H)
    hw = np.empty(B * H)
    hprev = np.empty(B * H)
    z = np.empty(B * O)
    g = np.empty(B * O)
    c = np.empty(B * H)
    d = np.empty(B * H)
    ahat = np.empty(B * m)
    ones = np.ones(H if H > 1 else 1)
    return xu, hw, hprev, z, g, c, d, ahat, ones


@njit(**JIT)
def is_reset(R, b, t):
    """Whether stream b starts again from h = 0 at step t (R empty: never)."""
    return R.shape[0] > 0 and R[b, t] != 0


@njit(**JIT)
def forward(theta, dims, X, R, t, h, hprev, xu, hw):
    """Step t of every stream: hprev = h_{t-1} (zeros where R resets), then h = h_t in place."""
    B = X.shape[0]
    I, H = dims[0], dims[1]
    oW = H * I
    ob = H * (I + H)
    zero = B - B
    for b in range(B):
        if is_reset(R, b, t):
            for j in range(H):
                hprev[b * H + j] = 0.0
        else:
            for j in range(H):
                hprev[b * H + j] = h[b * H + j]
        for i in range(H):  # indexed, not through a view a row: I is small, and a view costs more than its loop
            acc = theta[ob + i]
            for q in range(I):
                acc += theta[i * I + q] * X[b, t, q]
            xu[b * H + i] = acc
        _simd.matvec(theta, oW, H, H, hprev, b * H, hw, b * H)
    rnn.forward_step(dims[4], B * H, xu, zero, hw, h, zero)


@njit(**JIT)
def head(theta, dims, Y, t, h, z, g, c, ones, losses):
    """Logits, loss and output error of step t: losses[b, t] = L_t of stream b, g = dL/dz / B, c = V^T g."""
    B = Y.shape[0]
    I, H, O = dims[0], dims[1], dims[2]
    oV = H * (I + H + 1)
    oc = oV + O * H
    scale = 1.0 / B
    one = ones[: B - B + 1]
    for b in range(B):
        hb = h[b * H : (b + 1) * H]
        for k in range(O):
            acc = theta[oc + k]
            v = theta[oV + k * H : oV + (k + 1) * H]
            for j in range(H):
                acc += v[j] * hb[j]
            z[b * O + k] = acc
        gb = g[b * O : (b + 1) * O]
        losses[b, t] = head_loss(z[b * O : (b + 1) * O], Y[b, t], one, O, dims[5], 1.0, gb)
        cb = c[b * H : (b + 1) * H]
        for j in range(H):
            cb[j] = 0.0
        for k in range(O):
            gb[k] *= scale
            gk = gb[k]
            v = theta[oV + k * H : oV + (k + 1) * H]
            for j in range(H):
                cb[j] += gk * v[j]


@njit(**JIT)
def output_grad(dims, B, h, g, grad):
    """grad[V] += g h^T and grad[c] += g, summed over the B streams (the immediate gradient)."""
    I, H, O = dims[0], dims[1], dims[2]
    oV = H * (I + H + 1)
    oc = oV + O * H
    for b in range(B):
        hb = h[b * H : (b + 1) * H]
        for k in range(O):
            gk = g[b * O + k]
            grad[oc + k] += gk
            gv = grad[oV + k * H : oV + (k + 1) * H]
            for j in range(H):
                gv[j] += gk * hb[j]


@njit(**JIT)
def sgd_in_pass(B, ctl):
    """Whether a rule may take the step's update of the recurrent parameters in its own pass
    (:func:`fastrnn.cells.rnn.row_outer_scale_step`): one stream (its gradient is then one term
    an entry, final when its pass ends), plain SGD, no clipping (which needs the whole gradient)
    and no accumulation (which needs it kept). The gradient buffer of those parameters then
    stays at zero; :func:`update_rest` takes the rest of the step."""
    return B == 1 and int(ctl[4]) == sgd.CODE and ctl[3] == 0.0 and not (ctl[1] > 0.0 or ctl[2] > 0.0)


@njit(**JIT)
def update_rest(theta, grad, counters, lr, P):
    """:func:`update` where the rule's pass has already stepped theta[:P] (:func:`sgd_in_pass`): the
    SGD step of the output parameters theta[P:] and the clearing of their gradient."""
    counters[1] += 1
    sgd.update_and_clear(theta[P:], grad[P:], lr)


@njit(**JIT)
def update(theta, grad, grad_sum, ctl, hyper, counters, opt_state):
    """Add grad into grad_sum (if ctl asks), clip, take the optimizer step, clear grad."""
    if ctl[3] != 0.0:
        for p in range(grad.shape[0]):
            grad_sum[p] += grad[p]
    if ctl[1] > 0.0 or ctl[2] > 0.0:
        clip_grads(grad, ctl[1], ctl[2])
    counters[1] += 1
    kind = int(ctl[4])
    if kind == sgd.CODE:  # the common case: the step and the clearing in one pass over the parameters
        sgd.update_and_clear(theta, grad, ctl[0])
        return
    apply_update(kind, theta, grad, opt_state, counters[1], ctl[0], hyper)
    for p in range(grad.shape[0]):
        grad[p] = 0.0


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
