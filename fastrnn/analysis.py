"""Gradient studies: path-length gradients, W's spectrum and step-Jacobian products.

Plain numpy on top of :meth:`fastrnn.RNN.forward`: these run once per study, not per
training step, and stay readable next to the math (docs/math.md, section 6).

Path-length decomposition: G_p is the part of a
recurrent parameter's gradient carried by paths of exactly p recurrences, from the
loss at step t to the parameter's use at step t - p. Summed over p it is the full
gradient; summed over p <= K it is the gradient of truncated BPTT with
``bptt_truncate=K``. ``mean |G_p|`` against p shows vanishing (or exploding)
gradients.

For the gated cells a path crosses recurrences through h and c alike, and the
parts are defined by truncation itself: G_p = grad(K = p) - grad(K = p - 1)
(with grad(K = -1) = 0), so the identities above hold by construction; the
vanilla cell's parts are computed directly from the delta recurrence, and equal
the same differences (tests/test_cells.py checks both).
"""

from dataclasses import dataclass

import numpy as np

from . import _checks, activations, engine
from .model import RNN


def _activation_grad_from_h(h, activation):
    """f'(a) written from h = f(a): the kernels' own (fastrnn.activations)."""
    return activations.derivative(activation, h)


def _check_model(model):
    if not isinstance(model, RNN):
        raise _checks.InvalidType(f"model must be a fastrnn.RNN, got {type(model).__name__}")


def path_gradients(model, X, Y, mask=None, max_length=None, h0=None):
    """G_p for p = 0..max_length of every recurrent parameter (U_l, W_l, b_l; GRU bn_l).

    Parameters
    ----------
    model : fastrnn.RNN
    X, Y, mask, h0 : as for :meth:`fastrnn.RNN.loss_and_grads`
    max_length : int or None
        The longest path length to compute (default T - 1: all of them).

    Returns
    -------
    dict of str to ndarray
        ``G[name]`` has shape ``(max_length + 1, *params[name].shape)``; for every
        name, ``G[name].sum(axis=0)`` equals the full-BPTT gradient of that parameter
        (when max_length >= T - 1), and ``G[name][:K + 1].sum(axis=0)`` the gradient
        with ``bptt_truncate=K``.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
    >>> X = np.random.default_rng(0).standard_normal((4, 5, 2))
    >>> Y = np.eye(3)[np.random.default_rng(1).integers(0, 3, (4, 5))]
    >>> G = fastrnn.path_gradients(model, X, Y)
    >>> sorted(G), G["W0"].shape                     # G_p for p = 0..T-1
    (['U0', 'W0', 'b0'], (5, 8, 8))
    >>> loss, grads = model.loss_and_grads(X, Y)
    >>> bool(np.allclose(G["W0"].sum(axis=0), grads["W0"]))    # summed over p: the full gradient
    True
    """
    _check_model(model)
    X, Y, M, h0c = engine.prepare(model, X, Y, mask, h0)
    B, T = X.shape[0], X.shape[1]
    max_length = T - 1 if max_length is None else _checks.check_int("max_length", max_length, minimum=0)
    n_paths = min(max_length, T - 1) + 1
    if model.cell != "rnn":
        return _path_gradients_by_truncation(model, X, Y, mask, h0, n_paths)
    L, H = model.layers, model.n_hidden
    p = {k: np.asarray(v, dtype=np.float64) for k, v in model.params.items()}
    yhat, hs = model.forward(X, h0=None if h0 is None else h0c)
    yhat, hs = yhat.astype(np.float64), hs.astype(np.float64)
    start = np.zeros((L, B, H)) if h0 is None else h0c.astype(np.float64)
    m = np.ones((B, T)) if mask is None else M.astype(np.float64)
    g = (yhat - Y) * (m / B)[:, :, None]  # dL/dz for all three heads (z = yhat for linear)
    G = {}
    for l in range(L):
        for name in (f"U{l}", f"W{l}", f"b{l}"):
            G[name] = np.zeros((n_paths,) + p[name].shape)
    dact = _activation_grad_from_h(hs, model.activation)  # (L, B, T, H)
    for t in range(T):
        delta_next = None
        for k in range(t, max(-1, t - n_paths), -1):
            path = t - k
            delta = [None] * L
            for l in reversed(range(L)):
                if l == L - 1:
                    e = g[:, t] @ p["V"] if k == t else np.zeros((B, H))
                else:
                    e = delta[l + 1] @ p[f"U{l + 1}"]
                if delta_next is not None:
                    e = e + delta_next[l] @ p[f"W{l}"]
                delta[l] = e * dact[l, :, k]
                inp = X[:, k] if l == 0 else hs[l - 1, :, k]
                prev = hs[l, :, k - 1] if k > 0 else start[l]
                G[f"U{l}"][path] += delta[l].T @ inp
                G[f"W{l}"][path] += delta[l].T @ prev
                G[f"b{l}"][path] += delta[l].sum(axis=0)
            delta_next = delta
    return G


def _path_gradients_by_truncation(model, X, Y, mask, h0, n_paths):
    """G_p = grad(K = p) - grad(K = p - 1) for p < n_paths, for every layer parameter."""
    names = [name for name in model.param_names if name not in ("V", "c")]
    G = {name: np.zeros((n_paths,) + model.params[name].shape) for name in names}
    previous = {name: 0.0 for name in names}
    for p in range(n_paths):
        grads = model.loss_and_grads(X, Y, mask, bptt_truncate=p, h0=h0)[1]
        for name in names:
            g = grads[name].astype(np.float64)
            G[name][p] = g - previous[name]
            previous[name] = g
    return G


def path_profile(G, name="W0"):
    """mean |G_p| against p for one parameter: an array of length n_paths.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
    >>> X = np.random.default_rng(0).standard_normal((4, 5, 2))
    >>> Y = np.eye(3)[np.random.default_rng(1).integers(0, 3, (4, 5))]
    >>> profile = fastrnn.path_profile(fastrnn.path_gradients(model, X, Y))
    >>> profile.shape, bool(profile[0] > profile[3])
    ((5,), True)
    """
    return np.abs(G[name]).reshape(G[name].shape[0], -1).mean(axis=1)


@dataclass
class Spectrum:
    """Eigen- and singular values of one recurrent matrix W."""

    name: str
    spectral_radius: float
    eigenvalues: np.ndarray
    singular_values: np.ndarray


def spectrum(W, name="W"):
    """Spectral radius, eigenvalues (by modulus, largest first) and singular values of W.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> s = fastrnn.spectrum(np.array([[0.58, 0.24], [0.24, 0.72]]))
    >>> round(s.spectral_radius, 6), np.round(s.eigenvalues.real, 6).tolist()
    (0.9, [0.9, 0.4])
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.size == 0:
        raise _checks.InvalidArgument(f"{name} must be a non-empty square matrix, got shape {W.shape}")
    if not np.isfinite(W).all():
        raise _checks.InvalidArgument(f"{name} contains NaN or infinite values; its spectrum is undefined")
    eig = np.linalg.eigvals(W)
    eig = eig[np.argsort(-np.abs(eig))]
    return Spectrum(name, float(np.abs(eig[0])), eig, np.linalg.svd(W, compute_uv=False))


#: The gates of each gated cell, in the order their blocks are stacked in W (PyTorch's).
GATES = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}


def model_spectra(model):
    """:class:`Spectrum` of every layer's W.

    The vanilla cell's W{l} is square (H, H). A gated cell's W{l} stacks one (H, H)
    matrix per gate (PyTorch's order: GRU r, z, n; LSTM i, f, g, o): each block gets
    its own spectrum, named ``W{l}[gate]``.

    Examples
    --------
    >>> import fastrnn
    >>> spectra = fastrnn.model_spectra(fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, layers=2, seed=0))
    >>> [s.name for s in spectra], len(spectra[0].singular_values)
    (['W0', 'W1'], 8)
    """
    _check_model(model)
    if model.cell == "rnn":
        return [spectrum(model.params[f"W{l}"], f"W{l}") for l in range(model.layers)]
    H = model.n_hidden
    return [spectrum(model.params[f"W{l}"][k * H:(k + 1) * H], f"W{l}[{gate}]")
            for l in range(model.layers) for k, gate in enumerate(GATES[model.cell])]


def jacobian_norms(model, X, layer=0, h0=None):
    """||prod_{j=t-k+1..t} diag(f'(a_j)) W|| (spectral norm) for k = 1..T, mean over t and the batch.

    The product of k step Jacobians dh_t/dh_{t-k} says how much of a signal (or a
    gradient) survives k steps through the recurrence: its norm shrinking
    geometrically with k is the vanishing gradient, growing is the exploding one.

    Returns an array of length T: entry k-1 is the mean norm over k steps.
    Defined for the vanilla cell only (a gated cell's step Jacobian is not
    diag(f') W); gated models are refused.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
    >>> norms = fastrnn.jacobian_norms(model, np.random.default_rng(0).standard_normal((4, 5, 2)))
    >>> norms.shape, bool(norms[0] > norms[-1])       # k = 1..T: the products shrink here
    ((5,), True)
    """
    _check_model(model)
    if model.cell != "rnn":
        raise _checks.InvalidArgument(
            f"jacobian_norms is defined for the vanilla cell (cell='rnn'), got a {model.cell} model;"
            " use path_gradients, which works for every cell"
        )
    layer = _checks.check_int("layer", layer, minimum=0)
    if layer >= model.layers:
        raise _checks.InvalidArgument(f"layer must be below {model.layers} (the model's layers), got {layer}")
    _, hs = model.forward(X, h0=h0)
    hs = hs.astype(np.float64)
    W = np.asarray(model.params[f"W{layer}"], dtype=np.float64)
    D = _activation_grad_from_h(hs[layer], model.activation)  # (B, T, H)
    B, T, _ = D.shape
    sums = np.zeros(T)
    counts = np.zeros(T)
    for i in range(B):
        for t in range(T):
            J = np.eye(W.shape[0])
            for k in range(1, t + 2):  # steps t, t-1, ..., 0
                J = J @ (D[i, t - k + 1][:, None] * W)
                if np.isfinite(J).all():
                    sums[k - 1] += np.linalg.norm(J, 2)
                else:  # the states or the product overflowed: no SVD of it
                    sums[k - 1] += np.nan if np.isnan(J).any() else np.inf
                counts[k - 1] += 1
    return sums / np.maximum(counts, 1)
