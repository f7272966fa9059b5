"""A plain single-purpose numba loop for the headline: what a numba user writes for this one job.

One sequence per iteration, sigmoid hidden units, a sigmoid head with binary
cross-entropy, plain SGD; float64. The weights are transposed once, so every inner
loop reads a contiguous row, and the exponentials are scalar ``np.exp``. Nothing is
general: no batches, layers, masks, truncation or optimizer choice. Written from
the math (docs/math.md), with nothing borrowed from fastrnn.
"""

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def _train(UT, WT, b, VT, c, X, Y, lr, errors):
    """n SGD steps on X[it] (T, I), Y[it] (T, O); UT (I, H), WT (H, H), VT (H, O) updated in place."""
    n, T, I = X.shape
    H, O = WT.shape[0], VT.shape[1]
    hs = np.zeros((T + 1, H))
    g = np.empty((T, O))
    delta, dnext = np.empty(H), np.empty(H)
    dUT, dWT, db, dVT, dc = np.empty((I, H)), np.empty((H, H)), np.empty(H), np.empty((H, O)), np.empty(O)
    for it in range(n):
        errors[it] = 0
        for t in range(T):  # forward: h_t = sigmoid(U x_t + W h_{t-1} + b), p_t = sigmoid(V h_t + c)
            for j in range(H):
                hs[t + 1, j] = b[j]
            for i in range(I):
                for j in range(H):
                    hs[t + 1, j] += X[it, t, i] * UT[i, j]
            for k in range(H):
                for j in range(H):
                    hs[t + 1, j] += hs[t, k] * WT[k, j]
            for j in range(H):
                hs[t + 1, j] = 1.0 / (1.0 + np.exp(-hs[t + 1, j]))
            miss = False
            for o in range(O):
                z = c[o]
                for j in range(H):
                    z += hs[t + 1, j] * VT[j, o]
                p = 1.0 / (1.0 + np.exp(-z))
                g[t, o] = p - Y[it, t, o]  # dL/dz for BCE on a sigmoid
                miss |= (p > 0.5) != (Y[it, t, o] > 0.5)
            errors[it] += miss
        dUT[:], dWT[:], db[:], dVT[:], dc[:], dnext[:] = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        for t in range(T - 1, -1, -1):  # backward: delta_t = h(1-h) (V^T g_t + W^T delta_{t+1})
            for k in range(H):
                s = 0.0
                for o in range(O):
                    s += VT[k, o] * g[t, o]
                for j in range(H):
                    s += WT[k, j] * dnext[j]
                delta[k] = hs[t + 1, k] * (1.0 - hs[t + 1, k]) * s
            for k in range(H):
                for j in range(H):
                    dWT[k, j] += hs[t, k] * delta[j]
                for o in range(O):
                    dVT[k, o] += hs[t + 1, k] * g[t, o]
                db[k] += delta[k]
                dnext[k] = delta[k]
            for i in range(I):
                for j in range(H):
                    dUT[i, j] += X[it, t, i] * delta[j]
            for o in range(O):
                dc[o] += g[t, o]
        for k in range(H):  # SGD, in place: no temporaries
            for j in range(H):
                WT[k, j] -= lr * dWT[k, j]
            for o in range(O):
                VT[k, o] -= lr * dVT[k, o]
            b[k] -= lr * db[k]
        for i in range(I):
            for j in range(H):
                UT[i, j] -= lr * dUT[i, j]
        for o in range(O):
            c[o] -= lr * dc[o]


class Trainer:
    """train(X, Y, n): n SGD steps of batch 1, the headline's sigmoid units and sigmoid head only."""

    name = "numba single-purpose loop"

    def __init__(self, params, activation="sigmoid", head="sigmoid", lr=0.1):
        if activation != "sigmoid" or head != "sigmoid":
            raise ValueError("the single-purpose loop has sigmoid units and a sigmoid head only")
        self.lr = lr
        # copies, always: the loop updates them in place (np.ascontiguousarray would return a view of V.T when O = 1)
        self.UT, self.WT, self.VT = (np.array(np.asarray(params[k], dtype=np.float64).T, order="C") for k in ("U0", "W0", "V"))
        self.b, self.c = (np.array(params[k], dtype=np.float64) for k in ("b0", "c"))

    def train(self, X, Y, n):
        errors = np.zeros(n, dtype=np.int64)
        _train(self.UT, self.WT, self.b, self.VT, self.c, X[:n], Y[:n], self.lr, errors)
        return errors

    def params(self):
        return {"U0": self.UT.T.copy(), "W0": self.WT.T.copy(), "b0": self.b.copy(), "V": self.VT.T.copy(), "c": self.c.copy()}
