"""A plain single-purpose numba loop for the headline shape trained with Adam: what a numba user
writes for this one job.

The same model as benchmarks/numba_loop.py (one sequence per iteration, sigmoid hidden
units, a sigmoid head with binary cross-entropy, float64, the weights held transposed so
that every inner loop reads a contiguous row), updated by Adam with bias correction:
m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps),
in place, one weight at a time. Nothing is general. Written from the math (docs/math.md),
with nothing borrowed from fastrnn.
"""

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def _adam(w, g, m, v, lr, b1, b2, eps, c1, c2):
    """Adam's step on one weight array (any shape, flattened views), in place."""
    wf, gf, mf, vf = w.ravel(), g.ravel(), m.ravel(), v.ravel()
    for i in range(wf.shape[0]):
        mf[i] = b1 * mf[i] + (1.0 - b1) * gf[i]
        vf[i] = b2 * vf[i] + (1.0 - b2) * gf[i] * gf[i]
        wf[i] -= lr * (mf[i] * c1) / (math.sqrt(vf[i] * c2) + eps)


@njit(cache=True, error_model="numpy")
def _train(UT, WT, b, VT, c, X, Y, lr, b1, b2, eps, step0, state, errors):
    """n Adam steps on X[it] (T, I), Y[it] (T, O); UT (I, H), WT (H, H), VT (H, O) updated in place;
    ``state``: the (m, v) pairs of each array, in the order UT, WT, b, VT, c."""
    n, T, I = X.shape
    H, O = WT.shape[0], VT.shape[1]
    hs = np.zeros((T + 1, H))
    g = np.empty((T, O))
    delta, dnext = np.empty(H), np.empty(H)
    dUT, dWT, db, dVT, dc = np.empty((I, H)), np.empty((H, H)), np.empty(H), np.empty((H, O)), np.empty(O)
    mU, vU, mW, vW, mb, vb, mV, vV, mc, vc = state
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
        t = step0 + it + 1
        c1 = 1.0 / (1.0 - b1**t)
        c2 = 1.0 / (1.0 - b2**t)
        _adam(UT, dUT, mU, vU, lr, b1, b2, eps, c1, c2)
        _adam(WT, dWT, mW, vW, lr, b1, b2, eps, c1, c2)
        _adam(b, db, mb, vb, lr, b1, b2, eps, c1, c2)
        _adam(VT, dVT, mV, vV, lr, b1, b2, eps, c1, c2)
        _adam(c, dc, mc, vc, lr, b1, b2, eps, c1, c2)


class Trainer:
    """train(X, Y, n): n Adam steps of batch 1, the headline's sigmoid units and sigmoid head only."""

    name = "numba single-purpose loop (Adam)"

    def __init__(self, params, activation="sigmoid", head="sigmoid", lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
        if activation != "sigmoid" or head != "sigmoid":
            raise ValueError("the single-purpose loop has sigmoid units and a sigmoid head only")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.UT, self.WT, self.VT = (np.ascontiguousarray(np.asarray(params[k], dtype=np.float64).T) for k in ("U0", "W0", "V"))
        self.b, self.c = (np.array(params[k], dtype=np.float64) for k in ("b0", "c"))
        self.state = tuple(np.zeros_like(a) for a in (self.UT, self.UT, self.WT, self.WT, self.b, self.b, self.VT,
                                                      self.VT, self.c, self.c))
        self.steps = 0

    def train(self, X, Y, n):
        errors = np.zeros(n, dtype=np.int64)
        _train(self.UT, self.WT, self.b, self.VT, self.c, X[:n], Y[:n], self.lr, self.beta1, self.beta2, self.eps,
               self.steps, self.state, errors)
        self.steps += n
        return errors

    def params(self):
        return {"U0": self.UT.T.copy(), "W0": self.WT.T.copy(), "b0": self.b.copy(), "V": self.VT.T.copy(), "c": self.c.copy()}
