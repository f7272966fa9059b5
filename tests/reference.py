"""Plain-numpy twin of fastrnn's model, written from docs/math.md. Never imports fastrnn.

One sequence at a time, one time step at a time, with the names of the math:

    a_t = U x_t + W h_{t-1} + b,  h_t = f(a_t),  z_t = V h_t + c,  yhat_t = head(z_t)

Two BPTT forms, both from docs/math.md:
* ``bptt_full``: the delta recurrence delta_t = D_t (V^T g_t + W^T delta_{t+1}),
  extended to stacked layers (the layer above sends U_{l+1}^T delta^{l+1}_t down);
* ``bptt_truncated``: the definition of truncation itself: every loss L_t is
  back-propagated on its own through steps t, t-1, ..., t-K (WildML's
  ``bptt_truncate``). With K >= T-1 it must equal ``bptt_full``.

Parameters are a dict with the keys U0, W0, b0, (U1, W1, b1, ...), V, c.

The gated cells (PyTorch's GRU and LSTM) follow at the end, with the same heads, losses, masks
and truncation: ``gru_loss_and_grads``, ``lstm_loss_and_grads``, ``gated_forward`` and
``gated_path_gradients``.
"""

import numpy as np


def layer_count(params):
    return sum(1 for k in params if k.startswith("W"))


def init_params(n_in, n_hidden, n_out, layers, rng, scale=0.5):
    """Random parameters (biases non-zero too, so their gradients are exercised)."""
    p = {}
    for l in range(layers):
        fan_in = n_in if l == 0 else n_hidden
        p[f"U{l}"] = rng.uniform(-scale, scale, (n_hidden, fan_in))
        p[f"W{l}"] = rng.uniform(-scale, scale, (n_hidden, n_hidden))
        p[f"b{l}"] = rng.uniform(-0.1, 0.1, n_hidden)
    p["V"] = rng.uniform(-scale, scale, (n_out, n_hidden))
    p["c"] = rng.uniform(-0.1, 0.1, n_out)
    return p


def activation(a, name):
    if name == "tanh":
        return np.tanh(a)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if name == "relu":
        return np.maximum(a, 0.0)
    if name == "softsign":
        return a / (1.0 + np.abs(a))
    raise ValueError(name)


def activation_grad(a, name):
    """f'(a), written from a (not from h)."""
    if name == "tanh":
        return 1.0 - np.tanh(a) ** 2
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-a))
        return s * (1.0 - s)
    if name == "relu":
        return (a > 0).astype(float)
    if name == "softsign":
        return 1.0 / (1.0 + np.abs(a)) ** 2
    raise ValueError(name)


def head_output(z, head):
    if head == "softmax":
        e = np.exp(z - z.max())
        return e / e.sum()
    if head == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    return z.copy()


def step_loss(z, y, head):
    """Loss of one step and dL/dz (docs/math.md)."""
    yhat = head_output(z, head)
    if head == "softmax":
        logp = z - z.max() - np.log(np.exp(z - z.max()).sum())
        return -np.sum(y * logp), yhat - y
    if head == "sigmoid":
        loss = -np.sum(y * np.log(yhat) + (1 - y) * np.log(1 - yhat))
        return loss, yhat - y
    return 0.5 * np.sum((z - y) ** 2), z - y


def forward_sequence(params, x, activation_name, h0=None):
    """x (T, I) -> pre-activations a[l] (T, H), states h[l] (T+1, H) with h[l][0] = h0, logits z (T, O)."""
    L = layer_count(params)
    T = x.shape[0]
    H = params["W0"].shape[0]
    a_all, h_all = [], []
    inputs = x
    for l in range(L):
        U, W, b = params[f"U{l}"], params[f"W{l}"], params[f"b{l}"]
        h = np.zeros((T + 1, H))
        if h0 is not None:
            h[0] = h0[l]
        a = np.zeros((T, H))
        for t in range(T):
            a[t] = U @ inputs[t] + W @ h[t] + b
            h[t + 1] = activation(a[t], activation_name)
        a_all.append(a)
        h_all.append(h)
        inputs = h[1:]
    z = np.array([params["V"] @ h_all[-1][t + 1] + params["c"] for t in range(T)])
    return a_all, h_all, z


def _zero_grads(params):
    return {k: np.zeros_like(v) for k, v in params.items()}


def _loss_and_output_grads(params, z, y, m, head, grads, h_top):
    """Loss of the sequence and the per-step g_t; also fills dV and dc."""
    T = z.shape[0]
    loss = 0.0
    g = np.zeros_like(z)
    for t in range(T):
        if m[t] == 0:
            continue
        lt, gt = step_loss(z[t], y[t], head)
        loss += lt
        g[t] = gt
        grads["V"] += np.outer(gt, h_top[t + 1])
        grads["c"] += gt
    return loss, g


def bptt_full(params, x, y, m, activation_name, head, h0=None):
    """Loss and gradients of one sequence by the full BPTT recurrence."""
    L = layer_count(params)
    T = x.shape[0]
    a, h, z = forward_sequence(params, x, activation_name, h0)
    grads = _zero_grads(params)
    loss, g = _loss_and_output_grads(params, z, y, m, head, grads, h[-1])
    delta_next = [np.zeros(params["W0"].shape[0]) for _ in range(L)]
    for t in reversed(range(T)):
        delta = [None] * L
        for l in reversed(range(L)):
            if l == L - 1:
                e = params["V"].T @ g[t]
            else:
                e = params[f"U{l + 1}"].T @ delta[l + 1]
            e = e + params[f"W{l}"].T @ delta_next[l]
            delta[l] = activation_grad(a[l][t], activation_name) * e
            inp = x[t] if l == 0 else h[l - 1][t + 1]
            grads[f"U{l}"] += np.outer(delta[l], inp)
            grads[f"W{l}"] += np.outer(delta[l], h[l][t])
            grads[f"b{l}"] += delta[l]
        delta_next = delta
    return loss, grads


def bptt_truncated(params, x, y, m, activation_name, head, K, h0=None):
    """Loss and gradients where the loss at step t reaches only steps t-K..t."""
    L = layer_count(params)
    T = x.shape[0]
    a, h, z = forward_sequence(params, x, activation_name, h0)
    grads = _zero_grads(params)
    loss, g = _loss_and_output_grads(params, z, y, m, head, grads, h[-1])
    for t in range(T):
        delta_next = None
        for k in range(t, max(0, t - K) - 1, -1):
            delta = [None] * L
            for l in reversed(range(L)):
                if l == L - 1:
                    e = params["V"].T @ g[t] if k == t else np.zeros_like(params["b0"])
                else:
                    e = params[f"U{l + 1}"].T @ delta[l + 1]
                if delta_next is not None:
                    e = e + params[f"W{l}"].T @ delta_next[l]
                delta[l] = activation_grad(a[l][k], activation_name) * e
                inp = x[k] if l == 0 else h[l - 1][k + 1]
                grads[f"U{l}"] += np.outer(delta[l], inp)
                grads[f"W{l}"] += np.outer(delta[l], h[l][k])
                grads[f"b{l}"] += delta[l]
            delta_next = delta
    return loss, grads


def loss_and_grads(params, X, Y, mask, activation_name, head, bptt_truncate=None, h0=None):
    """Batch loss (sum over masked steps, mean over sequences) and its gradients.

    X (B, T, I), Y (B, T, O), mask (B, T) or None, h0 (L, B, H) or None.
    """
    B, T, _ = X.shape
    if mask is None:
        mask = np.ones((B, T))
    total = 0.0
    grads = _zero_grads(params)
    for i in range(B):
        hi = None if h0 is None else h0[:, i]
        if bptt_truncate is None:
            loss, g = bptt_full(params, X[i], Y[i], mask[i], activation_name, head, hi)
        else:
            loss, g = bptt_truncated(params, X[i], Y[i], mask[i], activation_name, head, bptt_truncate, hi)
        total += loss
        for k in grads:
            grads[k] += g[k]
    return total / B, {k: v / B for k, v in grads.items()}


def forward(params, X, activation_name, head, h0=None):
    """Batch forward: yhat (B, T, O) and states (L, B, T, H) of h_1..h_T."""
    B = X.shape[0]
    yhats, states = [], []
    for i in range(B):
        hi = None if h0 is None else h0[:, i]
        _, h, z = forward_sequence(params, X[i], activation_name, hi)
        yhats.append(np.array([head_output(zt, head) for zt in z]))
        states.append(np.stack([hl[1:] for hl in h]))
    return np.stack(yhats), np.stack(states, axis=1)


def numerical_grads(loss_fn, params, eps=1e-5):
    """Central differences (J(theta + eps) - J(theta - eps)) / 2 eps for every entry."""
    grads = {}
    for k, p in params.items():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            keep = p[idx]
            p[idx] = keep + eps
            plus = loss_fn(params)
            p[idx] = keep - eps
            minus = loss_fn(params)
            p[idx] = keep
            g[idx] = (plus - minus) / (2 * eps)
        grads[k] = g
    return grads


def relative_error(a, n):
    """docs/math.md: max|a - n| / max(|a| + |n|, tiny), over a whole array."""
    return np.max(np.abs(a - n)) / max(np.max(np.abs(a)) + np.max(np.abs(n)), np.finfo(float).tiny)


# ----------------------------------------------------------------- optimizers


def clip(grad, clip_norm=None, clip_value=None):
    """Value clipping, then rescaling to a global L2 norm of at most clip_norm."""
    norm = np.sqrt(np.sum(grad**2))
    g = grad.copy()
    if clip_value:
        g = np.clip(g, -clip_value, clip_value)
    if clip_norm:
        n2 = np.sqrt(np.sum(g**2))
        if n2 > clip_norm:
            g = g * (clip_norm / n2)
    return g, norm


def sgd(theta, grad, lr):
    return theta - lr * grad


def momentum(theta, grad, vel, lr, mu):
    vel = mu * vel + grad
    return theta - lr * vel, vel


def adam(theta, grad, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    mhat = m / (1 - b1**t)
    vhat = v / (1 - b2**t)
    return theta - lr * mhat / (np.sqrt(vhat) + eps), m, v


def adamw(theta, grad, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01):
    """Loshchilov & Hutter's AdamW as torch.optim.AdamW: decay the weights, then Adam's step."""
    theta = theta - lr * weight_decay * theta
    return adam(theta, grad, m, v, t, lr, b1, b2, eps)


def adagrad(theta, grad, mem, lr, eps=1e-8):
    """min-char-rnn: mem += g*g; theta -= lr g / sqrt(mem + eps)."""
    mem = mem + grad * grad
    return theta - lr * grad / np.sqrt(mem + eps), mem


def rmsprop(theta, grad, ms, lr, decay=0.95, eps=1e-8):
    """char-rnn: ms = decay ms + (1 - decay) g*g; theta -= lr g / sqrt(ms + eps)."""
    ms = decay * ms + (1 - decay) * grad * grad
    return theta - lr * grad / np.sqrt(ms + eps), ms


# ----------------------------------------------------------------- gated cells
#
# PyTorch's torch.nn.GRU and torch.nn.LSTM, written from the math (docs/math.md, "Gated cells"), one
# sequence and one step at a time. Per layer l, with the gates stacked in PyTorch's order:
#
#   U{l} (G*H, I_l), W{l} (G*H, H), b{l} (G*H,); GRU also bn{l} (H,);  LSTM G = 4, GRU G = 3
#
#   LSTM  [i, f, g, o] = [s, s, tanh, s](U x + W h + b)
#         c' = f*c + i*g,  h' = o*tanh(c')                                 state (h, c)
#   GRU   [r, z] = s(U_rz x + W_rz h + b_rz)
#         n = tanh(U_n x + b_n + r*(W_n h + bn)),  h' = (1 - z)*n + z*h    state (h,)
#
# b{l} holds PyTorch's bias_ih + bias_hh, except GRU's n block: there it is bias_in only, and
# bias_hn is bn{l}, which r multiplies. The head, losses and masks are the vanilla ones above.
#
# Each cell is a pair of functions: the step (state -> state, plus what the backward needs) and
# its backward (gradient of the new state -> gradient of the old state and of the step's input;
# it adds its parameter gradients into `grads` itself). The layer/time plumbing is shared.
#
# Truncation K: the loss at step t reaches only the steps t-K..t, through h and c alike. It is
# computed by its definition: one backward sweep per loss origin t, over the steps t..t-K.


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


GATES = {"gru": 3, "lstm": 4}


def init_gated_params(cell, n_in, n_hidden, n_out, layers, rng, scale=0.5):
    """Random parameters of a gated cell (biases non-zero too, so their gradients are exercised)."""
    G = GATES[cell]
    p = {}
    for l in range(layers):
        fan_in = n_in if l == 0 else n_hidden
        p[f"U{l}"] = rng.uniform(-scale, scale, (G * n_hidden, fan_in))
        p[f"W{l}"] = rng.uniform(-scale, scale, (G * n_hidden, n_hidden))
        p[f"b{l}"] = rng.uniform(-0.5, 0.5, G * n_hidden)
        if cell == "gru":
            p[f"bn{l}"] = rng.uniform(-0.5, 0.5, n_hidden)
    p["V"] = rng.uniform(-scale, scale, (n_out, n_hidden))
    p["c"] = rng.uniform(-0.1, 0.1, n_out)
    return p


def gru_step(p, l, x, state):
    """One GRU step of layer l: x (I_l,), state (h,) -> new state (h',), cache."""
    (h,) = state
    H = h.shape[0]
    xu = p[f"U{l}"] @ x + p[f"b{l}"]
    hw = p[f"W{l}"] @ h
    r = sigmoid(xu[:H] + hw[:H])
    z = sigmoid(xu[H : 2 * H] + hw[H : 2 * H])
    hn = hw[2 * H :] + p[f"bn{l}"]  # W_n h + bn, which r gates
    n = np.tanh(xu[2 * H :] + r * hn)
    h_new = (1.0 - z) * n + z * h
    return (h_new,), (x, h, r, z, n, hn)


def gru_step_backward(p, l, cache, dstate, grads):
    """Backward of gru_step: dstate (dh',) -> dx, (dh,); adds dU, dW, db, dbn of layer l into grads."""
    x, h, r, z, n, hn = cache
    (dh_new,) = dstate
    da_n = dh_new * (1.0 - z) * (1.0 - n**2)
    da_z = dh_new * (h - n) * z * (1.0 - z)
    da_r = da_n * hn * r * (1.0 - r)
    da_x = np.concatenate([da_r, da_z, da_n])  # dL/d(U x + b)
    da_h = np.concatenate([da_r, da_z, r * da_n])  # dL/d(W h)
    grads[f"U{l}"] += np.outer(da_x, x)
    grads[f"W{l}"] += np.outer(da_h, h)
    grads[f"b{l}"] += da_x
    grads[f"bn{l}"] += r * da_n
    dx = p[f"U{l}"].T @ da_x
    dh = p[f"W{l}"].T @ da_h + z * dh_new
    return dx, (dh,)


def lstm_step(p, l, x, state):
    """One LSTM step of layer l: x (I_l,), state (h, c) -> new state (h', c'), cache."""
    h, c = state
    H = h.shape[0]
    a = p[f"U{l}"] @ x + p[f"W{l}"] @ h + p[f"b{l}"]
    i = sigmoid(a[:H])
    f = sigmoid(a[H : 2 * H])
    g = np.tanh(a[2 * H : 3 * H])
    o = sigmoid(a[3 * H :])
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    h_new = o * tc
    return (h_new, c_new), (x, h, c, i, f, g, o, tc)


def lstm_step_backward(p, l, cache, dstate, grads):
    """Backward of lstm_step: dstate (dh', dc') -> dx, (dh, dc); adds dU, dW, db of layer l into grads."""
    x, h, c, i, f, g, o, tc = cache
    dh_new, dc_new = dstate
    dc_new = dc_new + dh_new * o * (1.0 - tc**2)  # c' reaches the loss through h' = o tanh(c') too
    da = np.concatenate(
        [
            dc_new * g * i * (1.0 - i),
            dc_new * c * f * (1.0 - f),
            dc_new * i * (1.0 - g**2),
            dh_new * tc * o * (1.0 - o),
        ]
    )
    grads[f"U{l}"] += np.outer(da, x)
    grads[f"W{l}"] += np.outer(da, h)
    grads[f"b{l}"] += da
    dx = p[f"U{l}"].T @ da
    dh = p[f"W{l}"].T @ da
    dc = f * dc_new
    return dx, (dh, dc)


_CELLS = {"gru": (gru_step, gru_step_backward, 1), "lstm": (lstm_step, lstm_step_backward, 2)}


def gated_forward_sequence(cell, params, x, state0):
    """x (T, I), state0[l] = layer l's initial state tuple -> caches[l][t], states[l][t] (T+1 each), logits z (T, O)."""
    step = _CELLS[cell][0]
    L = layer_count(params)
    T = x.shape[0]
    caches, states = [], []
    inputs = x
    for l in range(L):
        st = [state0[l]]
        cl = []
        for t in range(T):
            new, cache = step(params, l, inputs[t], st[t])
            st.append(new)
            cl.append(cache)
        caches.append(cl)
        states.append(st)
        inputs = [s[0] for s in st[1:]]
    z = np.array([params["V"] @ states[-1][t + 1][0] + params["c"] for t in range(T)])
    return caches, states, z


def _zero_state(n_states, H):
    return tuple(np.zeros(H) for _ in range(n_states))


def _gated_backward_step(cell, params, caches, k, dh_top, dstate_next, grads):
    """Step k of a backward sweep, top layer down; dstate_next[l] is the state gradient from step k+1.

    Returns the state gradients this step sends to step k-1, per layer.
    """
    backward = _CELLS[cell][1]
    L = layer_count(params)
    dstate_prev = [None] * L
    dh_in = dh_top
    for l in reversed(range(L)):
        dstate = (dstate_next[l][0] + dh_in,) + tuple(dstate_next[l][1:])
        dh_in, dstate_prev[l] = backward(params, l, caches[l][k], dstate, grads)
    return dstate_prev


def gated_sequence_grads(cell, params, x, y, m, head, K=None, state0=None, depth_grads=None):
    """Loss, gradients and final states of one sequence (full BPTT, or truncated at K).

    With ``depth_grads`` (a list of at least K + 1 zeroed grads dicts) and K given, the
    layer-parameter gradient carried by weight uses exactly p steps before the loss is also added
    into depth_grads[p]: the path-length parts G_p.
    """
    L = layer_count(params)
    T = x.shape[0]
    H = params["W0"].shape[1]
    n_states = _CELLS[cell][2]
    if state0 is None:
        state0 = [_zero_state(n_states, H) for _ in range(L)]
    caches, states, z = gated_forward_sequence(cell, params, x, state0)
    grads = _zero_grads(params)
    loss, g = _loss_and_output_grads(params, z, y, m, head, grads, [s[0] for s in states[-1]])
    zero = [_zero_state(n_states, H) for _ in range(L)]
    if K is None:
        dstate = zero
        for t in reversed(range(T)):
            dstate = _gated_backward_step(cell, params, caches, t, params["V"].T @ g[t], dstate, grads)
    else:
        for t in range(T):
            dstate = zero
            for k in range(t, max(0, t - K) - 1, -1):
                dh_top = params["V"].T @ g[t] if k == t else np.zeros(H)
                part = _zero_grads(params)  # from the weight uses at step k, p = t - k steps before the loss
                dstate = _gated_backward_step(cell, params, caches, k, dh_top, dstate, part)
                for name in part:
                    grads[name] += part[name]
                    if depth_grads is not None:
                        depth_grads[t - k][name] += part[name]
    final = [states[l][T] for l in range(L)]
    return loss, grads, final


def _gated_batch(cell, params, X, Y, mask, head, K, state0, depth_grads=None):
    """Sum over the batch of gated_sequence_grads, divided by B; state0 (L, S, B, H) or None."""
    B, T, _ = X.shape
    if mask is None:
        mask = np.ones((B, T))
    total = 0.0
    grads = _zero_grads(params)
    finals = []
    for i in range(B):
        s0 = None if state0 is None else [tuple(state_l[:, i]) for state_l in state0]
        loss, g, final = gated_sequence_grads(cell, params, X[i], Y[i], mask[i], head, K, s0, depth_grads)
        total += loss
        for k in grads:
            grads[k] += g[k]
        finals.append(final)
    final = np.array(finals).transpose(1, 2, 0, 3)  # (B, L, S, H) -> (L, S, B, H)
    if depth_grads is not None:
        for part in depth_grads:
            for k in part:
                part[k] /= B
    return total / B, {k: v / B for k, v in grads.items()}, final


def gru_loss_and_grads(params, X, Y, mask, head, bptt_truncate=None, h0=None):
    """GRU batch loss (sum over masked steps, mean over sequences), gradients and final state.

    X (B, T, I), Y (B, T, O), mask (B, T) or None, h0 (L, B, H) or None.
    Returns loss, grads (the keys and shapes of params), h_T (L, B, H) (torch's h_n).
    """
    state0 = None if h0 is None else np.asarray(h0)[:, None]
    loss, grads, final = _gated_batch("gru", params, X, Y, mask, head, bptt_truncate, state0)
    return loss, grads, final[:, 0]


def lstm_loss_and_grads(params, X, Y, mask, head, bptt_truncate=None, h0=None, c0=None):
    """LSTM batch loss (sum over masked steps, mean over sequences), gradients and final state.

    X (B, T, I), Y (B, T, O), mask (B, T) or None, h0 and c0 (L, B, H) or None (zeros).
    Returns loss, grads (the keys and shapes of params), (h_T, c_T) each (L, B, H) (torch's (h_n, c_n)).
    """
    state0 = None
    if h0 is not None or c0 is not None:
        L, H = layer_count(params), params["W0"].shape[1]
        zeros = np.zeros((L, X.shape[0], H))
        state0 = np.stack([zeros if h0 is None else h0, zeros if c0 is None else c0], axis=1)
    loss, grads, final = _gated_batch("lstm", params, X, Y, mask, head, bptt_truncate, state0)
    return loss, grads, (final[:, 0], final[:, 1])


def gated_path_gradients(cell, params, X, Y, mask, head, P, state0=None):
    """Path-length parts G_0..G_{P-1} of the layer-parameter gradients, computed directly.

    G_p is the part of the gradient carried by weight uses exactly p steps before the loss that
    they reach (for p > 0 these are the paths that cross p recurrences, through h and c alike).
    state0 (L, S, B, H) or None. Returns a list of P grads dicts (V and c stay zero).
    """
    depth_grads = [_zero_grads(params) for _ in range(P)]
    _gated_batch(cell, params, X, Y, mask, head, P - 1, state0, depth_grads)
    return depth_grads


def gated_forward(cell, params, X, head, state0=None):
    """Batch forward: yhat (B, T, O), top-layer h_1..h_T (B, T, H), final state (L, S, B, H)."""
    B, T, _ = X.shape
    L, H = layer_count(params), params["W0"].shape[1]
    n_states = _CELLS[cell][2]
    yhats, tops, finals = [], [], []
    for i in range(B):
        if state0 is None:
            s0 = [_zero_state(n_states, H) for _ in range(L)]
        else:
            s0 = [tuple(state_l[:, i]) for state_l in state0]
        _, states, z = gated_forward_sequence(cell, params, X[i], s0)
        yhats.append(np.array([head_output(zt, head) for zt in z]))
        tops.append(np.array([s[0] for s in states[-1][1:]]))
        finals.append([states[l][T] for l in range(L)])
    final = np.array(finals).transpose(1, 2, 0, 3)  # (B, L, S, H) -> (L, S, B, H)
    return np.stack(yhats), np.stack(tops), final
