"""min-char-rnn's training at batch B written the way a numpy expert writes it: all streams at once.

The same algorithm as tests/reference_text.py (B equal contiguous parts of the text,
windows of L characters, the state carried from window to window, full BPTT inside a
window, the mean loss and gradient over the streams, every gradient entry clipped to
[-clip, clip], Adagrad), but vectorised over the streams instead of looping over them:

* the input projection of every step of every stream is one row gather of Wxh^T
  (one-hot inputs need no product);
* the recurrence is one (B, H) x (H, H) product a step, forward and backward;
* the output layer, the softmax, and the gradients of Why, Whh and Wxh are one product
  each over all B L rows.

Written from the math, with nothing borrowed from fastrnn; its losses and weights are
checked against fastrnn's before it is timed (benchmarks/bench_text.py) and against the
plain per-stream loop by tests/test_benchmark_baselines.py.
"""

import numpy as np


class Trainer:
    """train(n) runs n iterations; ``losses`` holds the mean window loss over the streams of each."""

    name = "numpy batched (all streams at once)"

    def __init__(self, ids, params, seq_length, batch, lr, clip=5.0):
        ids = np.asarray(ids, dtype=np.int64)
        part = len(ids) // batch
        self.streams = ids[: part * batch].reshape(batch, part)  # stream b: ids[b*part:(b+1)*part]
        self.L, self.B, self.lr, self.clip = seq_length, batch, lr, clip
        self.WxhT = np.array(params["Wxh"], dtype=np.float64).T.copy()  # (V, H): a row per character
        self.Whh = np.array(params["Whh"], dtype=np.float64)
        self.bh = np.array(params["bh"], dtype=np.float64)
        self.Why = np.array(params["Why"], dtype=np.float64)
        self.by = np.array(params["by"], dtype=np.float64)
        self.mem = [np.zeros_like(a) for a in (self.WxhT, self.Whh, self.bh, self.Why, self.by)]
        V, H = self.WxhT.shape
        self.eye = np.eye(V)
        self.h = np.zeros((batch, H))
        self.pointer = 0
        self.n = 0
        self.hs = np.empty((seq_length + 1, batch, H))  # hs[0]: the state carried in
        self.draw = np.empty((seq_length, batch, H))

    def train(self, n):
        losses = np.empty(n)
        L, B = self.L, self.B
        V, H = self.WxhT.shape
        part = self.streams.shape[1]
        hs, draw = self.hs, self.draw
        for it in range(n):
            if self.n == 0 or self.pointer + L + 1 >= part:  # every stream has the same length: they reset together
                self.h[:] = 0.0
                self.pointer = 0
            q = self.pointer
            inputs = self.streams[:, q : q + L].T  # (L, B), time-major
            targets = self.streams[:, q + 1 : q + L + 1].T
            xw = self.WxhT[inputs]  # (L, B, H): Wxh x_t for one-hot x_t
            xw += self.bh
            hs[0] = self.h
            for t in range(L):  # one (B, H) x (H, H) product a step
                np.tanh(xw[t] + hs[t] @ self.Whh.T, out=hs[t + 1])
            top = hs[1:].reshape(L * B, H)
            z = top @ self.Why.T + self.by  # (L B, V)
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            rows = np.arange(L * B)
            flat_targets = targets.reshape(-1)
            losses[it] = float(np.sum(np.log(s[:, 0]) - z[rows, flat_targets])) / B
            dy = e / s
            dy[rows, flat_targets] -= 1.0
            dy /= B  # the mean over the streams
            dWhy = dy.T @ top
            dby = dy.sum(axis=0)
            dh_out = (dy @ self.Why).reshape(L, B, H)
            dnext = np.zeros((B, H))
            for t in range(L - 1, -1, -1):  # one (B, H) x (H, H) product a step
                d = dh_out[t] + dnext
                d *= 1.0 - hs[t + 1] * hs[t + 1]
                draw[t] = d
                dnext = d @ self.Whh
            D = draw.reshape(L * B, H)
            dWhh = D.T @ hs[:-1].reshape(L * B, H)
            dbh = D.sum(axis=0)
            dWxhT = self.eye[inputs.reshape(-1)].T @ D  # (V, H)
            self.h = hs[L].copy()
            self.pointer += L
            self.n += 1
            for p, g, m in zip((self.WxhT, self.Whh, self.bh, self.Why, self.by), (dWxhT, dWhh, dbh, dWhy, dby), self.mem):
                if self.clip is not None:
                    np.clip(g, -self.clip, self.clip, out=g)
                m += g * g
                p -= self.lr * g / np.sqrt(m + 1e-8)
        return losses

    def params(self):
        """min-char-rnn's names: Wxh, Whh, bh, Why, by."""
        return dict(Wxh=self.WxhT.T.copy(), Whh=self.Whh.copy(), bh=self.bh.copy(), Why=self.Why.copy(), by=self.by.copy())
