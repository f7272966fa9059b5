"""A plain numpy LSTM trained with Adam, written from the math (PyTorch's LSTM, fastrnn's layout): the speed
anchor's contender, the kind of naive numpy program the adding-problem literature ships.

One layer, gates [i, f, g, o] stacked in that order: U (4H, I), W (4H, H), b (4H,), a linear
read-out V (O, H), c (O,). For x_t of a batch (B, I):

    a = x_t U^T + h W^T + b;  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t);  z_t = h_t V^T + c

Loss: 1/2 sum over the steps with mask 1 of (z_t - y_t)^2, averaged over the batch.
BPTT by hand, global-norm clipping, Adam as fastrnn and PyTorch write it
(m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). Parameters are a dict of arrays
named as fastrnn's ``model.params``, so gradients compare name by name.
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def loss_and_grads(p, X, Y, M):
    """Loss and gradients (a dict like ``p``) for X (B, T, I), Y (B, T, O), M (B, T)."""
    U, W, b, V, c = p["U0"], p["W0"], p["b0"], p["V"], p["c"]
    B, T, _ = X.shape
    H = W.shape[1]
    h = np.zeros((T + 1, B, H))
    cs = np.zeros((T + 1, B, H))
    gates = np.zeros((T, B, 4 * H))  # i, f, g, o after their functions
    tc = np.zeros((T, B, H))
    z = np.zeros((T, B, V.shape[0]))
    for t in range(T):
        a = X[:, t] @ U.T + h[t] @ W.T + b
        gt = gates[t]
        gt[:, : 2 * H] = sigmoid(a[:, : 2 * H])
        gt[:, 2 * H : 3 * H] = np.tanh(a[:, 2 * H : 3 * H])
        gt[:, 3 * H :] = sigmoid(a[:, 3 * H :])
        cs[t + 1] = gt[:, H : 2 * H] * cs[t] + gt[:, :H] * gt[:, 2 * H : 3 * H]
        tc[t] = np.tanh(cs[t + 1])
        h[t + 1] = gt[:, 3 * H :] * tc[t]
        z[t] = h[t + 1] @ V.T + c
    Yt = np.swapaxes(Y, 0, 1)
    Mt = np.swapaxes(M, 0, 1)[:, :, None]
    err = (z - Yt) * Mt
    loss = 0.5 * float(np.sum(err * err)) / B
    g = err / B
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dh_next = np.zeros((B, H))
    dc_next = np.zeros((B, H))
    for t in reversed(range(T)):
        grads["V"] += g[t].T @ h[t + 1]
        grads["c"] += g[t].sum(axis=0)
        dh = g[t] @ V + dh_next
        gt = gates[t]
        i, f, gg, o = gt[:, :H], gt[:, H : 2 * H], gt[:, 2 * H : 3 * H], gt[:, 3 * H :]
        dc = dc_next + dh * o * (1.0 - tc[t] ** 2)
        da = np.empty((B, 4 * H))
        da[:, :H] = dc * gg * i * (1.0 - i)
        da[:, H : 2 * H] = dc * cs[t] * f * (1.0 - f)
        da[:, 2 * H : 3 * H] = dc * i * (1.0 - gg**2)
        da[:, 3 * H :] = dh * tc[t] * o * (1.0 - o)
        grads["U0"] += da.T @ X[:, t]
        grads["W0"] += da.T @ h[t]
        grads["b0"] += da.sum(axis=0)
        dh_next = da @ W
        dc_next = dc * f
    return loss, grads


class Adam:
    """Adam with global-norm clipping (scale by clip / norm when the norm exceeds clip)."""

    def __init__(self, p, lr, clip=1.0, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.clip, self.b1, self.b2, self.eps, self.t = lr, clip, beta1, beta2, eps, 0
        self.m = {k: np.zeros_like(v) for k, v in p.items()}
        self.v = {k: np.zeros_like(v) for k, v in p.items()}

    def step(self, p, grads):
        norm = np.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
        scale = self.clip / norm if self.clip and norm > self.clip else 1.0
        self.t += 1
        for k in p:
            g = grads[k] * scale
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            p[k] -= self.lr * (self.m[k] / (1 - self.b1**self.t)) / (np.sqrt(self.v[k] / (1 - self.b2**self.t)) + self.eps)
        return norm
