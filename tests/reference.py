"""Plain-numpy twin of fastrnn's model, written from SPEC.md. Never imports fastrnn.

One sequence at a time, one time step at a time, with the names of the math:

    a_t = U x_t + W h_{t-1} + b,  h_t = f(a_t),  z_t = V h_t + c,  yhat_t = head(z_t)

Two BPTT forms, both from SPEC.md:
* ``bptt_full``: the delta recurrence delta_t = D_t (V^T g_t + W^T delta_{t+1}),
  extended to stacked layers (the layer above sends U_{l+1}^T delta^{l+1}_t down);
* ``bptt_truncated``: the definition of truncation itself: every loss L_t is
  back-propagated on its own through steps t, t-1, ..., t-K (WildML's
  ``bptt_truncate``). With K >= T-1 it must equal ``bptt_full``.

Parameters are a dict with the keys U0, W0, b0, (U1, W1, b1, ...), V, c.
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
    raise ValueError(name)


def head_output(z, head):
    if head == "softmax":
        e = np.exp(z - z.max())
        return e / e.sum()
    if head == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    return z.copy()


def step_loss(z, y, head):
    """Loss of one step and dL/dz (SPEC.md)."""
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
    """SPEC.md: max|a - n| / max(|a| + |n|, tiny), over a whole array."""
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


def adagrad(theta, grad, mem, lr, eps=1e-8):
    """min-char-rnn: mem += g*g; theta -= lr g / sqrt(mem + eps)."""
    mem = mem + grad * grad
    return theta - lr * grad / np.sqrt(mem + eps), mem


def rmsprop(theta, grad, ms, lr, decay=0.95, eps=1e-8):
    """char-rnn: ms = decay ms + (1 - decay) g*g; theta -= lr g / sqrt(ms + eps)."""
    ms = decay * ms + (1 - decay) * grad * grad
    return theta - lr * grad / np.sqrt(ms + eps), ms
