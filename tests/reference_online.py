"""Plain-numpy twins of the online learning rules, written from the math. Never imports fastrnn.

One step at a time, one stream at a time, with the names of the papers (notation of
Marschall, Cho & Savin 2020):

    a_t = U x_t + W h_{t-1} + b,  h_t = f(a_t),  D_t = diag(f'(a_t)),  ahat_t = [x_t; h_{t-1}; 1]
    z_t = V h_t + c,  g_t = dL_t/dz_t,  c_t = V^T g_t

The recurrent parameters are held as one matrix Theta = [U | W | b] (H, I + H + 1),
so Theta[k, j] multiplies ahat_j in row k. An influence matrix is a 3-tensor
M[i, k, j] = dh_i / dTheta[k, j] (not fastrnn's flat layout), and a gradient is an
(H, I + H + 1) matrix, split into U, W, b at the end.

Each step of :func:`run_online`, in vanilla-rtrl's order: forward with the current
weights, the loss, the rule's update with the current weights, the gradient (the
mean over the streams), plain SGD. D_t is written from a_t here (fastrnn writes it
from h_t).

Random numbers: splitmix64 (Steele, Lea & Flood 2014), one generator a stream, as
plain Python integers modulo 2^64; a sign is 1 - 2 * (bit q of a 64-bit draw), 64
signs a draw, lowest bit first.
"""

import numpy as np

from reference import activation, activation_grad, step_loss

MASK64 = (1 << 64) - 1


def splitmix64(state):
    """(new state, 64 random bits)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def draw_signs(state, n):
    """(new state, n signs +-1)."""
    out = np.empty(n)
    e = 0
    while e < n:
        state, bits = splitmix64(state)
        for q in range(min(64, n - e)):
            out[e + q] = 1.0 - 2.0 * ((bits >> q) & 1)
        e += min(64, n - e)
    return state, out


def split_theta(G, I, H):
    """[U | W | b] -> (U, W, b)."""
    return G[:, :I], G[:, I : I + H], G[:, I + H]


# ------------------------------------------------------------------ rules (one stream)


class RTRL:
    """M_t = J_t M_{t-1} + Mbar_t, Mbar_t[i, k, j] = delta_ik D_ii ahat_j; gradient c_t M_t."""

    def __init__(self, H, m, mask=False):
        self.M = np.zeros((H, H, m))
        self.mask = mask  # SnAp-1 as RTRL masked to the one-step pattern (only k == i kept)

    def step(self, W, D, ahat, c, g, rng):
        H = W.shape[0]
        J = D[:, None] * W
        Mbar = np.einsum("ik,i,j->ikj", np.eye(H), D, ahat)
        self.M = np.einsum("il,lkj->ikj", J, self.M) + Mbar
        if self.mask:
            self.M = self.M * np.eye(H)[:, :, None]
        return np.einsum("i,ikj->kj", c, self.M), rng


class SnAp1:
    """Menick et al.'s SnAp-1 for a dense vanilla cell, one number per parameter:
    S[i, j] = D_ii (W_ii S[i, j] + ahat_j); gradient c_i S[i, j]."""

    def __init__(self, H, m):
        self.S = np.zeros((H, m))

    def step(self, W, D, ahat, c, g, rng):
        self.S = D[:, None] * (np.diag(W)[:, None] * self.S + ahat[None, :])
        return c[:, None] * self.S, rng


class UORO:
    """Tallec & Ollivier's rank-one estimate M ~ A (x) Btil, Btil (H, m):

    A' = rho0 J A + rho1 nu,  Btil' = Btil / rho0 + (nu D)(outer) ahat / rho1,
    rho0 = sqrt(|Btil| / (|J A| + eps)) + eps,  rho1 = sqrt(|(nu D)(outer) ahat| / (|nu| + eps)) + eps,
    gradient (c . A') Btil'."""

    def __init__(self, A, Btil, eps):
        self.A, self.B, self.eps = A.copy(), Btil.copy(), eps

    def step(self, W, D, ahat, c, g, rng):
        H = W.shape[0]
        rng, nu = draw_signs(rng, H)
        JA = (D[:, None] * W) @ self.A
        imm = np.outer(nu * D, ahat)
        rho0 = np.sqrt(np.linalg.norm(self.B) / (np.linalg.norm(JA) + self.eps)) + self.eps
        rho1 = np.sqrt(np.linalg.norm(imm) / (np.linalg.norm(nu) + self.eps)) + self.eps
        self.A = rho0 * JA + rho1 * nu
        self.B = self.B / rho0 + imm / rho1
        return (c @ self.A) * self.B, rng


class KFRTRL:
    """Mujika et al.'s Kronecker-factored estimate M[i, k, j] ~ B[i, k] A[j], as vanilla-rtrl writes it:

    A' = nu0 p0 A + nu1 p1 ahat,  B' = nu0 / p0 J B + nu1 / p1 D,
    p0 = sqrt(|J B| / (|A| + eps)) + eps,  p1 = sqrt(|D| / (|ahat| + eps)) + eps,
    gradient G[k, j] = (c B')_k A'_j."""

    def __init__(self, A, B, eps):
        self.A, self.B, self.eps = A.copy(), B.copy(), eps

    def step(self, W, D, ahat, c, g, rng):
        rng, nu = draw_signs(rng, 2)
        JB = (D[:, None] * W) @ self.B
        Dm = np.diag(D)
        p0 = np.sqrt(np.linalg.norm(JB) / (np.linalg.norm(self.A) + self.eps)) + self.eps
        p1 = np.sqrt(np.linalg.norm(Dm) / (np.linalg.norm(ahat) + self.eps)) + self.eps
        self.A = nu[0] * p0 * self.A + nu[1] * p1 * ahat
        self.B = nu[0] / p0 * JB + nu[1] / p1 * Dm
        return np.outer(c @ self.B, self.A), rng


class RFLO:
    """Murray's RFLO: trace E = (1 - alpha) E + alpha D (outer) ahat; error e = B_fb^T g
    (or V^T g: symmetric feedback); gradient e_i E[i, j]."""

    def __init__(self, H, m, alpha, Bfb, V=None):
        self.E = np.zeros((H, m))
        self.alpha, self.Bfb, self.symmetric = alpha, Bfb, V is not None

    def step(self, W, D, ahat, c, g, rng):
        self.E = (1 - self.alpha) * self.E + self.alpha * np.outer(D, ahat)
        e = c if self.symmetric else self.Bfb.T @ g
        return e[:, None] * self.E, rng


# ------------------------------------------------------------------ drivers


def run_online(params, X, Y, act, head, rules_per_stream, lr, rngs=None, resets=None, fresh=None, update=None):
    """Online SGD on B streams: each step, the mean over streams of each rule's gradient.

    ``params`` U, W, b, V, c (modified copies are returned); ``rules_per_stream`` one rule
    object a stream; ``rngs`` the streams' generator states (ints); ``fresh(b, rng)``
    returns (a fresh rule object, rng) where a stream resets; ``update(theta, grad, t)``,
    if given, replaces SGD: theta and grad are the parameters U, W, b, V, c raveled in
    that order, t = 1, 2, ... the step. Returns (losses (B, N), params, grad_sum, rules, rngs).
    """
    p = {k: v.copy() for k, v in params.items()}
    B, N, I = X.shape
    H = p["W"].shape[0]
    rngs = list(rngs) if rngs is not None else [0] * B
    h = np.zeros((B, H))
    losses = np.zeros((B, N))
    gsum = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(N):
        G = np.zeros((H, I + H + 1))
        gV = np.zeros_like(p["V"])
        gc = np.zeros_like(p["c"])
        for b in range(B):
            if resets is not None and resets[b, t]:
                h[b] = 0.0
                rules_per_stream[b], rngs[b] = fresh(b, rngs[b])
            hprev = h[b].copy()
            a = p["U"] @ X[b, t] + p["W"] @ hprev + p["b"]
            h[b] = activation(a, act)
            z = p["V"] @ h[b] + p["c"]
            loss, g = step_loss(z, Y[b, t], head)
            losses[b, t] = loss
            g = g / B
            c = p["V"].T @ g
            D = activation_grad(a, act)
            ahat = np.concatenate([X[b, t], hprev, [1.0]])
            Gb, rngs[b] = rules_per_stream[b].step(p["W"], D, ahat, c, g, rngs[b])
            G += Gb
            gV += np.outer(g, h[b])
            gc += g
        gU, gW, gb = split_theta(G, I, H)
        grads = dict(U=gU, W=gW, b=gb, V=gV, c=gc)
        for k in p:
            gsum[k] += grads[k]
        if update is None:
            for k in p:
                p[k] = p[k] - lr * grads[k]
        else:
            keys = ("U", "W", "b", "V", "c")
            theta = update(np.concatenate([p[k].ravel() for k in keys]), np.concatenate([grads[k].ravel() for k in keys]), t + 1)
            off = 0
            for k in keys:
                p[k] = theta[off : off + p[k].size].reshape(p[k].shape)
                off += p[k].size
    return losses, p, gsum, rules_per_stream, rngs


def run_bptt_k1k2(params, X, Y, act, head, k1, k2, lr):
    """Williams & Peng's BPTT(k1, k2) on B streams with stored states.

    Every step stores ahat_t, a_t and g_t = dL_t/dz_t (computed with the weights of
    that time). After every k1 steps: for each stream, the losses of the last k1 steps
    are backpropagated through the last k2 stored steps with the current weights,
    delta_s = D_s (V^T g_s [s in the last k1] + W^T delta_{s+1}); the gradient is
    sum_s delta_s ahat_s^T for [U | W | b] and sum over the last k1 steps of g_s h_s^T,
    g_s for V, c; mean over streams; one SGD step. Returns (losses, params).
    """
    p = {k: v.copy() for k, v in params.items()}
    B, N, I = X.shape
    H = p["W"].shape[0]
    h = np.zeros((B, H))
    losses = np.zeros((B, N))
    history = [[] for _ in range(B)]  # per stream: (ahat, a, h, g), oldest first
    since = 0
    for t in range(N):
        for b in range(B):
            hprev = h[b].copy()
            a = p["U"] @ X[b, t] + p["W"] @ hprev + p["b"]
            h[b] = activation(a, act)
            z = p["V"] @ h[b] + p["c"]
            loss, g = step_loss(z, Y[b, t], head)
            losses[b, t] = loss
            history[b].append((np.concatenate([X[b, t], hprev, [1.0]]), a, h[b].copy(), g / B))
            history[b] = history[b][-k2:]
        since += 1
        if since < k1:
            continue
        since = 0
        G = np.zeros((H, I + H + 1))
        gV = np.zeros_like(p["V"])
        gc = np.zeros_like(p["c"])
        for b in range(B):
            stored = history[b]
            n = len(stored)
            delta = np.zeros(H)
            for r in range(n):  # r = 0: the newest step
                ahat, a, hs, g = stored[n - 1 - r]
                dh = p["W"].T @ delta if r > 0 else np.zeros(H)
                if r < k1:
                    dh = dh + p["V"].T @ g
                    gV += np.outer(g, hs)
                    gc += g
                delta = activation_grad(a, act) * dh
                G += np.outer(delta, ahat)
        gU, gW, gb = split_theta(G, I, H)
        grads = dict(U=gU, W=gW, b=gb, V=gV, c=gc)
        for k in p:
            p[k] = p[k] - lr * grads[k]
    return losses, p


def draw_normals(state, n):
    """(new state, n standard normals): Box-Muller, u = (top 53 bits + 1) / 2^53, one normal per pair."""
    out = np.empty(n)
    for e in range(n):
        state, b1 = splitmix64(state)
        state, b2 = splitmix64(state)
        u1 = ((b1 >> 11) + 1) / 9007199254740992.0
        u2 = ((b2 >> 11) + 1) / 9007199254740992.0
        out[e] = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return state, out


def theta_vector_to_matrix(v, I, H):
    """A vector over the recurrent parameters in fastrnn's order (U row-major, W row-major, b)
    as the matrix [U | W | b] (H, I + H + 1)."""
    U = v[: H * I].reshape(H, I)
    W = v[H * I : H * I + H * H].reshape(H, H)
    b = v[H * I + H * H : H * (I + H + 1)]
    return np.concatenate([U, W, b[:, None]], axis=1)
