"""The batched numpy form of one-layer RNN forward + full BPTT, written from docs/math.md.

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


def loss_and_grads(p, X, Y, mask, activation="tanh", head="softmax", return_logits=False):
    """p: dict U0, W0, b0, V, c. X (B, T, I), Y (B, T, O), mask (B, T) or None.

    With ``return_logits`` also the logits Z, time-major (T*B, O).
    """
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
    if return_logits:
        return loss, grads, Z
    return loss, grads


class Trainer:
    """Batched numpy training: loss_and_grads above, global-norm clipping, SGD or Adam."""

    name = "numpy batched"

    def __init__(self, params, activation, head, lr, optimizer="sgd", clip=None, batch=1):
        self.p = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        self.activation, self.head, self.lr, self.optimizer, self.clip, self.batch = activation, head, lr, optimizer, clip, batch
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.t = 0

    def train(self, X, Y, n):
        B = self.batch
        errors = np.zeros(n * B, dtype=np.int64)
        for it in range(n):
            xb, yb = X[it * B : (it + 1) * B], Y[it * B : (it + 1) * B]
            _, grads, Z = loss_and_grads(self.p, xb, yb, None, self.activation, self.head, return_logits=True)
            errors[it * B : (it + 1) * B] = self._errors(Z, yb)
            norm = np.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
            if self.clip and norm > self.clip:
                grads = {k: g * (self.clip / norm) for k, g in grads.items()}
            self.t += 1
            for k, g in grads.items():
                if self.optimizer == "sgd":
                    self.p[k] -= self.lr * g
                else:
                    self.m[k] = 0.9 * self.m[k] + 0.1 * g
                    self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
                    mhat = self.m[k] / (1 - 0.9**self.t)
                    vhat = self.v[k] / (1 - 0.999**self.t)
                    self.p[k] -= self.lr * mhat / (np.sqrt(vhat) + 1e-8)
        return errors

    @staticmethod
    def _errors(Z, Y):
        """Wrong positions per sample, from this iteration's logits (before its update)."""
        B, T, O = Y.shape
        Z = Z.reshape(T, B, O)
        Yt = Y.transpose(1, 0, 2)
        if O > 1:
            wrong = Z.argmax(axis=2) != Yt.argmax(axis=2)
        else:
            wrong = np.any((Z > 0) != (Yt > 0.5), axis=2)
        return wrong.sum(axis=0)

    def params(self):
        return self.p
