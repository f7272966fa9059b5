"""A plain-numpy transcription of vanilla-rtrl's online step, one rule at a time.

``omarschall/vanilla-rtrl`` (Marschall, Cho & Savin 2020) trains a vanilla RNN online, one
time step at a time, in Python: its ``Simulation`` calls the network's forward step, the
learning algorithm's ``update_learning_vars``, the algorithm's gradient and the optimizer's
update for every step. This module redoes that step with the same numpy operations in the
same order, for the configuration of its reference runs: no leak (alpha = 1), tanh,
softmax cross-entropy, plain SGD, batch 1, no regularisation, no noise. The arithmetic of
each rule is the library's, so that the port can stand in for it in ``bench_online.py``
where the library is not installed; :func:`check_against_vanilla_rtrl` runs both on the
same data from the same start and compares the weights.

The rules (their vanilla-rtrl names in brackets):

``RTRL``      the influence matrix dh/dtheta, H x H(H+I+1), carried forward densely
              (M' = J M + kron(a_hat, D), with J = D W) [RTRL]
``UORO``      the rank-one estimate A B^T with +-1 noise and the two scale factors [UORO]
``KFRTRL``    the Kronecker-factored estimate A (x) B with two +-1 signs [KF_RTRL]
``RFLO``      the eligibility trace filtered by alpha, error fed back through a fixed
              random matrix W_FB [RFLO]
``EBPTT``     non-overlapping windows of T steps, backpropagated at each window's end
              (Williams & Peng's BPTT(T, T)) [Efficient_BPTT]
``FBPTT``     each step's error backpropagated T - 1 steps into a queue of credit
              vectors; the oldest leaves the queue as the step's gradient [Future_BPTT]
``SnAp1``     vanilla-rtrl has no SnAp; this is SnAp-1 written in the library's style: the
              influence kept only where the one-step Jacobian is non-zero, so it fits in an
              H x (H+I+1) array, M' = D (diag(W) M + a_hat)
``WPBPTT``    Williams & Peng's BPTT(k1, k2), which vanilla-rtrl does not have in this form:
              every k1 steps, the errors of the last k1 steps go back through the last k2
              stored states with the weights of the moment, and every parameter, the output
              weights too, is updated once (E-BPTT updates the output weights every step;
              F-BPTT delays each gradient by T - 1 steps)

Notation follows the library: ``h`` is the pre-activation, ``a`` the state (tanh(h)),
``a_hat`` = [a_prev, x, 1], ``q`` = dL/da through the output weights (or W_FB), the
recurrent gradient is an H x (H+I+1) array split into W_rec, W_in, b_rec.
"""

import os
import sys

import numpy as np

#: vanilla-rtrl's floor on the softmax probabilities inside the loss (not the gradient)
LOSS_FLOOR = 1e-4


def norm(z):
    """The Euclidean norm of all entries, the library's way."""
    return np.sqrt(np.sum(np.square(z)))


def softmax(z):
    z = z - np.amax(z)
    return np.exp(z) / np.sum(np.exp(z))


def tanh_prime(h):
    return 1 - np.tanh(h) ** 2


class Net:
    """vanilla-rtrl's RNN at alpha = 1 with tanh and softmax cross-entropy, state a = 0 at the start.

    Parameters are copied; :attr:`params` lists them in the library's order
    [W_rec, W_in, b_rec, W_out, b_out].
    """

    alpha = 1.0

    def __init__(self, W_in, W_rec, W_out, b_rec, b_out):
        self.W_in, self.W_rec, self.W_out = np.array(W_in, float), np.array(W_rec, float), np.array(W_out, float)
        self.b_rec, self.b_out = np.array(b_rec, float), np.array(b_out, float)
        self.n_h, self.n_in = self.W_in.shape
        self.n_out = self.W_out.shape[0]
        self.m = self.n_h + self.n_in + 1
        self.a = np.zeros(self.n_h)
        self.h = np.zeros(self.n_h)

    @property
    def params(self):
        return [self.W_rec, self.W_in, self.b_rec, self.W_out, self.b_out]

    @params.setter
    def params(self, values):
        self.W_rec, self.W_in, self.b_rec, self.W_out, self.b_out = values

    def forward(self, x, y):
        """One step: new state, output, loss and dL/dz (``error``)."""
        self.x = x
        self.a_prev = np.copy(self.a)
        self.h = self.W_rec.dot(self.a) + self.W_in.dot(x) + self.b_rec
        self.a = (1 - self.alpha) * self.a + self.alpha * np.tanh(self.h)
        self.z = self.W_out.dot(self.a) + self.b_out
        p = softmax(self.z)
        self.loss = -y.dot(np.log(np.maximum(p, LOSS_FLOOR)))
        self.error = softmax(self.z) - y

    def jacobian(self, h=None):
        """da_t/da_{t-1} = alpha diag(f'(h)) W_rec + (1 - alpha) I, at the current W_rec."""
        D = np.diag(tanh_prime(self.h if h is None else h))
        return self.alpha * D.dot(self.W_rec) + (1 - self.alpha) * np.eye(self.n_h)

    def a_hat(self):
        return np.concatenate([self.a_prev, self.x, np.array([1])])


class Rule:
    """What every rule shares: output gradients and the feedback q = error W_out (or W_FB)."""

    W_FB = None

    def __init__(self, net):
        self.n_h, self.n_in, self.m = net.n_h, net.n_in, net.m
        self.q = np.zeros(self.n_h)

    def feedback(self, net):
        self.q = net.error.dot(net.W_out if self.W_FB is None else self.W_FB)

    def grads(self, net):
        """[dW_rec, dW_in, db_rec, dW_out, db_out] of this step (after :meth:`update`)."""
        outer = np.multiply.outer(net.error, np.concatenate([net.a, np.array([1])]))
        self.feedback(net)
        rec = self.rec_grads(net)
        H, I = self.n_h, self.n_in
        return [rec[:, :H], rec[:, H:H + I], rec[:, H + I], outer[:, :H], outer[:, H]]


class RTRL(Rule):
    def __init__(self, net):
        super().__init__(net)
        self.dadw = np.zeros((self.n_h, self.n_h * self.m))

    def update(self, net):
        D = net.alpha * np.diag(tanh_prime(net.h))
        papw = np.kron(net.a_hat(), D)
        self.dadw = net.jacobian().dot(self.dadw) + papw

    def rec_grads(self, net):
        return self.q.dot(self.dadw).reshape((self.n_h, self.m), order="F")


class SnAp1(Rule):
    """SnAp-1: RTRL's influence masked to the one-step pattern, kept as the H x (H+I+1) non-zero entries."""

    def __init__(self, net):
        super().__init__(net)
        self.M = np.zeros((self.n_h, self.m))

    def update(self, net):
        D = net.alpha * tanh_prime(net.h)
        self.M = (D * (np.diag(net.W_rec) * self.M.T + net.a_hat()[:, None])).T

    def rec_grads(self, net):
        return (self.q * self.M.T).T


class UORO(Rule):
    """``A`` (H) and ``B`` (H x m) start as given (the library draws them from N(0, 1))."""

    def __init__(self, net, rng, A=None, B=None):
        super().__init__(net)
        self.rng = rng
        self.A = rng.normal(0, 1, self.n_h) if A is None else np.array(A, float)
        self.B = rng.normal(0, 1, (self.n_h, self.m)) if B is None else np.array(B, float)

    def update(self, net):
        D = net.alpha * tanh_prime(net.h)
        papw = np.multiply.outer(D, net.a_hat())
        nu = self.rng.choice([-1, 1], self.n_h)
        M_projection = (papw.T * nu).T
        A_forwards = net.jacobian().dot(self.A)
        p0 = np.sqrt(norm(self.B) / norm(A_forwards))
        p1 = np.sqrt(norm(M_projection) / np.sqrt(self.n_h))
        self.A = p0 * A_forwards + p1 * nu
        self.B = (1 / p0) * self.B + (1 / p1) * M_projection

    def rec_grads(self, net):
        return self.q.dot(self.A) * self.B


class KFRTRL(Rule):
    """``A`` (m) and ``B`` (H x H) start as given (the library draws them from N(0, 1))."""

    def __init__(self, net, rng, A=None, B=None):
        super().__init__(net)
        self.rng = rng
        self.A = rng.normal(0, 1, self.m) if A is None else np.array(A, float)
        self.B = rng.normal(0, 1, (self.n_h, self.n_h)) if B is None else np.array(B, float)

    def update(self, net):
        a_hat = net.a_hat()
        D = np.diag(net.alpha * tanh_prime(net.h))
        B_forwards = net.jacobian().dot(self.B)
        nu = self.rng.choice([-1, 1], 2)
        p0 = np.sqrt(norm(B_forwards) / norm(self.A))
        p1 = np.sqrt(norm(D) / norm(a_hat))
        self.A = nu[0] * p0 * self.A + nu[1] * p1 * a_hat
        self.B = nu[0] * (1 / p0) * B_forwards + nu[1] * (1 / p1) * D

    def rec_grads(self, net):
        qB = self.q.dot(self.B)
        return np.kron(self.A, qB).reshape((self.n_h, self.m), order="F")


class RFLO(Rule):
    def __init__(self, net, alpha, W_FB=None):
        super().__init__(net)
        self.alpha = alpha
        self.W_FB = None if W_FB is None else np.array(W_FB, float)
        self.B = np.zeros((self.n_h, self.m))

    def update(self, net):
        M_immediate = self.alpha * np.multiply.outer(tanh_prime(net.h), net.a_hat())
        self.B = (1 - self.alpha) * self.B + M_immediate

    def rec_grads(self, net):
        return (self.q * self.B.T).T


class EBPTT(Rule):
    """Histories are lists with the newest first, as in the library."""

    def __init__(self, net, T):
        super().__init__(net)
        self.T = T
        self.a_hats, self.hs, self.qs = [], [], []

    def update(self, net):
        self.a_hats.insert(0, net.a_hat())
        self.hs.insert(0, net.h)
        self.feedback(net)
        self.qs.insert(0, self.q)

    def rec_grads(self, net):
        if len(self.a_hats) < self.T:
            return np.zeros((self.n_h, self.m))
        rec = np.zeros((self.n_h, self.m))
        c = self.qs.pop(0)
        for i in range(self.T):
            h, a_hat = self.hs.pop(0), self.a_hats.pop(0)
            rec += np.multiply.outer(c * (net.alpha * tanh_prime(h)), a_hat)
            if i == self.T - 1:
                continue
            c = self.qs.pop(0) + c.dot(net.jacobian(h))
        return rec


class FBPTT(Rule):
    """Histories are lists with the newest first, as in the library."""

    def __init__(self, net, T):
        super().__init__(net)
        self.T = T
        self.cs, self.a_hats, self.hs = [], [], []

    def update(self, net):
        self.a_hats.insert(0, net.a_hat())
        self.hs.insert(0, net.h)
        self.feedback(net)
        q = np.copy(self.q)
        self.cs.insert(0, q)
        for i in range(1, len(self.cs)):
            q = q.dot(net.jacobian(self.hs[i - 1]))
            self.cs[i] += q

    def rec_grads(self, net):
        if len(self.cs) < self.T:
            return np.zeros((self.n_h, self.m))
        c, h, a_hat = self.cs.pop(-1), self.hs.pop(-1), self.a_hats.pop(-1)
        return np.multiply.outer(c * (net.alpha * tanh_prime(h)), a_hat)


class WPBPTT(Rule):
    """Williams & Peng's BPTT(k1, k2): the last k2 states kept (newest first); every k1 steps the
    errors q of the last k1 steps go back through all k2, with the current W_rec, and the output
    weights get the gradient of the same k1 losses; between updates every gradient is zero."""

    def __init__(self, net, k1, k2):
        super().__init__(net)
        self.k1, self.k2 = k1, k2
        self.a_hats, self.hs, self.qs, self.outers = [], [], [], []
        self.count = 0

    def update(self, net):
        self.a_hats.insert(0, net.a_hat())
        self.hs.insert(0, net.h)
        self.feedback(net)
        self.qs.insert(0, self.q)
        self.outers.insert(0, np.multiply.outer(net.error, np.concatenate([net.a, np.array([1])])))
        del self.a_hats[self.k2:], self.hs[self.k2:], self.qs[self.k1:], self.outers[self.k1:]
        self.count += 1

    def grads(self, net):
        H, I = self.n_h, self.n_in
        if self.count % self.k1:
            rec, outer = np.zeros((H, self.m)), np.zeros((net.n_out, H + 1))
        else:
            rec, outer = self.rec_grads(net), sum(self.outers)
        return [rec[:, :H], rec[:, H:H + I], rec[:, H + I], outer[:, :H], outer[:, H]]

    def rec_grads(self, net):
        rec = np.zeros((self.n_h, self.m))
        c = np.zeros(self.n_h)
        for i in range(len(self.hs)):
            if i < len(self.qs):
                c = c + self.qs[i]
            h, a_hat = self.hs[i], self.a_hats[i]
            rec += np.multiply.outer(c * (net.alpha * tanh_prime(h)), a_hat)
            c = c.dot(net.jacobian(h))
        return rec


def sgd(params, grads, lr):
    """The library's SGD: each parameter plus its velocity -lr g."""
    return [p + (-lr * g) for p, g in zip(params, grads)]


def train(net, rule, X, Y, lr):
    """Online SGD over the stream (X, Y), one update a step; the losses of the steps."""
    losses = np.empty(len(X))
    for t in range(len(X)):
        net.forward(X[t], Y[t])
        losses[t] = net.loss
        rule.update(net)
        net.params = sgd(net.params, rule.grads(net), lr)
    return losses


def evaluate(net, X, Y):
    """The stream run with no updates, the state carried; the losses of the steps."""
    losses = np.empty(len(X))
    for t in range(len(X)):
        net.forward(X[t], Y[t])
        losses[t] = net.loss
    return losses


def make_rule(name, net, rng, **settings):
    """A rule by name: rtrl, snap1, uoro, kf-rtrl, rflo (alpha, W_FB), ebptt/fbptt (T), wpbptt (k1, k2)."""
    kinds = {"rtrl": RTRL, "snap1": SnAp1, "uoro": UORO, "kf-rtrl": KFRTRL, "rflo": RFLO,
             "ebptt": EBPTT, "fbptt": FBPTT, "wpbptt": WPBPTT}
    if name in ("uoro", "kf-rtrl"):
        return kinds[name](net, rng, **settings)
    return kinds[name](net, **settings)


# --- vanilla-rtrl itself ---------------------------------------------------------------------------

#: the environment variable that points at a checkout of omarschall/vanilla-rtrl
ENV = "VANILLA_RTRL"


def vanilla_rtrl_path():
    """The checkout named by $VANILLA_RTRL if it holds the library, else None."""
    path = os.environ.get(ENV)
    if path and os.path.isfile(os.path.join(path, "learning_algorithms", "RTRL.py")):
        return path
    return None


def import_vanilla_rtrl():
    """vanilla-rtrl's modules (a namespace), imported from $VANILLA_RTRL, or None with the reason."""
    path = vanilla_rtrl_path()
    if path is None:
        return None, f"${ENV} is not set to a checkout of omarschall/vanilla-rtrl"
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        import core
        import functions
        import learning_algorithms
        import optimizers
    except Exception as exc:  # a broken checkout or a missing dependency: the port stands in
        return None, f"vanilla-rtrl at {path} does not import ({exc.__class__.__name__}: {exc})"

    class VR:
        RNN, Simulation = core.RNN, core.Simulation
        tanh, softmax, softmax_cross_entropy = functions.tanh, functions.softmax, functions.softmax_cross_entropy
        la = learning_algorithms
        SGD = optimizers.Stochastic_Gradient_Descent

    return VR, None


def vanilla_rtrl_sim(VR, params, rule, settings):
    """vanilla-rtrl's RNN, learning algorithm, SGD and Simulation for ``params`` (the port's order)."""
    W_rec, W_in, b_rec, W_out, b_out = [np.array(p, float) for p in params]
    rnn = VR.RNN(W_in, W_rec, W_out, b_rec, b_out, activation=VR.tanh, alpha=1,
                 output=VR.softmax, loss=VR.softmax_cross_entropy)
    la = VR.la
    if rule == "rtrl":
        alg = la.RTRL(rnn)
    elif rule in ("uoro", "kf-rtrl"):  # A, B None: the library draws them from np.random
        starts = {k: np.array(settings[k], float) for k in ("A", "B") if settings.get(k) is not None}
        alg = (la.UORO if rule == "uoro" else la.KF_RTRL)(rnn, **starts)
    elif rule == "rflo":
        alg = la.RFLO(rnn, alpha=settings["alpha"], W_FB=np.array(settings["W_FB"]))
    elif rule == "ebptt":
        alg = la.Efficient_BPTT(rnn, settings["T"])
    elif rule == "fbptt":
        alg = la.Future_BPTT(rnn, settings["T"])
    else:
        raise ValueError(f"vanilla-rtrl has no rule {rule!r}")
    return rnn, alg, VR.Simulation(rnn)


def vanilla_rtrl_train(VR, params, rule, settings, X, Y, lr, seed=None, monitor=True, return_state=False):
    """Train with vanilla-rtrl's own Simulation.run; (final params in the port's order, losses or None), and
    the final state ``a`` with ``return_state``. ``seed`` seeds np.random (the library's generator) once the
    objects are built, before the run."""
    rnn, alg, sim = vanilla_rtrl_sim(VR, params, rule, settings)
    if seed is not None:
        np.random.seed(seed)
    none = {"trial_type": None, "trial_switch": None, "loss_mask": None}
    data = {"train": {"X": X, "Y": Y, **none}, "test": {"X": X[:1], "Y": Y[:1], **none}}
    sim.run(data, mode="train", learn_alg=alg, optimizer=VR.SGD(lr=lr),
            monitors=["rnn.loss_"] if monitor else [], verbose=False)
    losses = np.asarray(sim.mons["rnn.loss_"]) if monitor else None
    if return_state:
        return [np.array(p) for p in sim.rnn.params], losses, np.array(sim.rnn.a)
    return [np.array(p) for p in sim.rnn.params], losses


def port_rng(seed, n_h):
    """A RandomState that draws the noise vanilla-rtrl's Simulation.run draws after ``np.random.seed(seed)``:
    ``run`` first resets the network, which draws n_h normals for a random pre-activation (unused at
    alpha = 1 with the state set to 0); the rules' +-1 noise follows."""
    rng = np.random.RandomState(seed)
    rng.normal(0, 1, n_h)
    return rng


def initial(n_in, n_h, n_out, seed):
    """Starting weights as in Marschall et al.'s runs: W_in, W_out ~ N(0, 1/fan_in), W_rec orthogonal
    (QR of a normal matrix, signs of diag(R)), biases 0. In the port's order."""
    rng = np.random.default_rng(seed)
    W_in = rng.normal(0, np.sqrt(1 / n_in), (n_h, n_in))
    q, r = np.linalg.qr(rng.standard_normal((n_h, n_h)))
    W_rec = q * np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]
    W_out = rng.normal(0, np.sqrt(1 / n_h), (n_out, n_h))
    return [W_rec, W_in, np.zeros(n_h), W_out, np.zeros(n_out)]


def rule_settings(rule, n_in, n_h, n_out, seed, T=10, k1=10, k2=10):
    """Settings of a rule for a comparison: noise starts (UORO, KF-RTRL), W_FB (RFLO), horizons."""
    rng = np.random.default_rng([seed, 1])
    m = n_h + n_in + 1
    if rule == "uoro":
        return dict(A=rng.normal(0, 1, n_h), B=rng.normal(0, 1, (n_h, m)))
    if rule == "kf-rtrl":
        return dict(A=rng.normal(0, 1, m), B=rng.normal(0, 1, (n_h, n_h)))
    if rule == "rflo":
        return dict(alpha=1.0, W_FB=rng.normal(0, np.sqrt(1 / n_out), (n_out, n_h)))
    if rule in ("ebptt", "fbptt"):
        return dict(T=T)
    if rule == "wpbptt":
        return dict(k1=k1, k2=k2)
    return {}


def check_against_vanilla_rtrl(VR, rule, X, Y, lr, seed=0, n_h=None):
    """Train the port and vanilla-rtrl from the same start on the same data; the largest difference
    of any weight after len(X) steps, and the largest of the per-step losses."""
    n_in, n_out = X.shape[1], Y.shape[1]
    params = initial(n_in, n_h, n_out, seed)
    settings = rule_settings(rule, n_in, n_h, n_out, seed)
    theirs, their_losses = vanilla_rtrl_train(VR, params, rule, settings, X, Y, lr, seed=seed)
    net = Net(params[1], params[0], params[3], params[2], params[4])
    ours = make_rule(rule, net, port_rng(seed, n_h), **settings)
    our_losses = train(net, ours, X, Y, lr)
    dw = max(float(np.max(np.abs(a - b))) for a, b in zip(net.params, theirs))
    dl = float(np.max(np.abs(our_losses - their_losses)))
    return dw, dl
