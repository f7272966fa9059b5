"""The plain-numpy per-sample training loop a student writes from the math (docs/math.md).

One sequence per iteration: a forward loop over time, a backward loop over time
(delta_t = f'(a_t) (V^T g_t + W^T delta_{t+1})), then a plain SGD step. Sigmoid or
softmax head; tanh, sigmoid or relu hidden units. Written from the math, with
nothing borrowed from fastrnn.
"""

import numpy as np


def _f(a, activation):
    if activation == "tanh":
        return np.tanh(a)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    return np.maximum(a, 0.0)


def _df_from_h(h, activation):
    if activation == "tanh":
        return 1.0 - h * h
    if activation == "sigmoid":
        return h * (1.0 - h)
    return (h > 0).astype(float)


class Trainer:
    """train(X, Y, n): n SGD steps of batch 1 on X[i] (T, I), Y[i] (T, O)."""

    name = "numpy per-sample loop"

    def __init__(self, params, activation, head, lr):
        self.p = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        self.activation, self.head, self.lr = activation, head, lr

    def train(self, X, Y, n):
        U, W, b, V, c = (self.p[k] for k in ("U0", "W0", "b0", "V", "c"))
        T, H = X.shape[1], W.shape[0]
        errors = np.zeros(n, dtype=np.int64)
        for it in range(n):
            x, y = X[it], Y[it]
            hs = np.zeros((T + 1, H))
            yhat = np.zeros_like(y)
            for t in range(T):
                hs[t + 1] = _f(U @ x[t] + W @ hs[t] + b, self.activation)
                z = V @ hs[t + 1] + c
                if self.head == "sigmoid":
                    yhat[t] = 1.0 / (1.0 + np.exp(-z))
                else:
                    e = np.exp(z - z.max())
                    yhat[t] = e / e.sum()
            if self.head == "sigmoid":
                errors[it] = np.sum((yhat > 0.5) != (y > 0.5), axis=1).clip(0, 1).sum()
            else:
                errors[it] = np.sum(yhat.argmax(axis=1) != y.argmax(axis=1))
            dU, dW, db = np.zeros_like(U), np.zeros_like(W), np.zeros_like(b)
            dV, dc = np.zeros_like(V), np.zeros_like(c)
            delta_next = np.zeros(H)
            for t in reversed(range(T)):
                g = yhat[t] - y[t]
                dV += np.outer(g, hs[t + 1])
                dc += g
                delta = _df_from_h(hs[t + 1], self.activation) * (V.T @ g + W.T @ delta_next)
                dU += np.outer(delta, x[t])
                dW += np.outer(delta, hs[t])
                db += delta
                delta_next = delta
            for param, grad in ((U, dU), (W, dW), (b, db), (V, dV), (c, dc)):
                param -= self.lr * grad
        return errors

    def params(self):
        return self.p
