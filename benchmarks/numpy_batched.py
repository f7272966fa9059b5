"""The batched numpy form of one-layer RNN forward + full BPTT, written from SPEC.md.

This is the fastest way we know to write BPTT in plain numpy, and so the fair
baseline for fastrnn's kernels: a Python loop over time only where the recurrence
forces it, every other product (input projection, output layer, all weight
gradients) as one matmul over all T*B rows, and the activations vectorised over the
whole batch. It is validated against tests/reference.py before it is timed.
"""

import numpy as np


def _act(a, name):
    if name == "tanh":
        return np.tanh(a)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    return np.maximum(a, 0.0)


def _act_grad_from_h(h, name):
    if name == "tanh":
        return 1.0 - h * h
    if name == "sigmoid":
        return h * (1.0 - h)
    return (h > 0).astype(h.dtype)


def loss_and_grads(p, X, Y, mask, activation="tanh", head="softmax"):
    """p: dict U0, W0, b0, V, c. X (B, T, I), Y (B, T, O), mask (B, T) or None."""
    U, W, b, V, c = p["U0"], p["W0"], p["b0"], p["V"], p["c"]
    B, T, I = X.shape
    H, O = W.shape[0], V.shape[0]
    Xt = X.transpose(1, 0, 2).reshape(T * B, I)
    XU = (Xt @ U.T + b).reshape(T, B, H)
    hs = np.zeros((T + 1, B, H))
    for t in range(T):
        hs[t + 1] = _act(XU[t] + hs[t] @ W.T, activation)
    Htop = hs[1:].reshape(T * B, H)
    Z = Htop @ V.T + c
    Yt = Y.transpose(1, 0, 2).reshape(T * B, O)
    M = np.ones(T * B) if mask is None else mask.T.reshape(T * B)
    if head == "softmax":
        Zs = Z - Z.max(axis=1, keepdims=True)
        logp = Zs - np.log(np.exp(Zs).sum(axis=1, keepdims=True))
        losses = -(Yt * logp).sum(axis=1)
        G = np.exp(logp) - Yt
    elif head == "sigmoid":
        losses = (np.maximum(Z, 0) - Yt * Z + np.log1p(np.exp(-np.abs(Z)))).sum(axis=1)
        G = 1.0 / (1.0 + np.exp(-Z)) - Yt
    else:
        G = Z - Yt
        losses = 0.5 * (G * G).sum(axis=1)
    loss = float(M @ losses) / B
    G *= (M / B)[:, None]
    GV = (G @ V).reshape(T, B, H)
    D = np.empty((T, B, H))
    dnext = np.zeros((B, H))
    for t in range(T - 1, -1, -1):
        dnext = (GV[t] + dnext @ W) * _act_grad_from_h(hs[t + 1], activation)
        D[t] = dnext
    D2 = D.reshape(T * B, H)
    grads = {
        "U0": D2.T @ Xt,
        "W0": D2.T @ hs[:-1].reshape(T * B, H),
        "b0": D2.sum(axis=0),
        "V": G.T @ Htop,
        "c": G.sum(axis=0),
    }
    return loss, grads
