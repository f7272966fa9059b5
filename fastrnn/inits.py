"""Initialisations of the recurrent weights: ``RNN(init=...)``, ``fastrnn train --init``.

Each is a function ``(model, rng)`` that rewrites some of a freshly drawn model's
parameters in place; :data:`INITS` names them. ``default`` keeps the model's own
draw (uniform, ``init_scale`` or fan-in; a task may draw its own, as the text task's
N(0, s^2)). The others:

``orthogonal`` (Saxe, McClelland & Ganguli 2014; Marschall, Cho & Savin 2020)
    Every layer's recurrent matrix W is Q from the QR decomposition of a standard
    normal H x H matrix, its columns' signs corrected by diag(R) (so that Q is drawn
    uniformly from the orthogonal matrices). A gated cell gets one such Q per gate
    block of W (rows g*H..(g+1)*H-1). Every other parameter stays as drawn (U, V as
    ``init_scale`` sets them; an LSTM's ``forget_bias`` stays).
``normal-orthogonal`` (the initialisation of the online-learning comparisons of
    Marschall, Cho & Savin 2020)
    Every layer's W orthogonal as above; every U_l and V from N(0, 1/fan-in) (fan-in:
    the number of columns, I_l for U_l, H for V); every bias 0 (an LSTM's
    ``forget_bias`` stays). With ``--task add --rule rtrl`` this is the configuration of
    their Add-task results.
``identity`` (the IRNN of Le, Jaitly & Hinton 2015)
    W = I and every bias 0; U and V drawn from N(0, 0.001^2). Meant for the vanilla
    cell with ``activation="relu"``; the gated cells refuse it (their W stacks gates).

The draws come from ``default_rng([seed, INIT_STREAM])``, a stream of their own, so
the same seed gives the same weights and ``default`` draws what it always drew.
"""

import numpy as np

from .exceptions import InvalidArgument

#: The second word of the generator's seed: the initialisations' own stream.
INIT_STREAM = 4
#: The identity initialisation's std of U and V (Le et al. 2015: "small").
IDENTITY_STD = 0.001


def orthogonal_matrix(rng, n):
    """An n x n orthogonal matrix: Q of the QR decomposition of a standard normal matrix, times sign(diag(R))."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs[None, :]


def _default(model, rng):
    pass


def _orthogonal(model, rng):
    H = model.n_hidden
    for l in range(model.layers):
        W = model.params[f"W{l}"]
        for g in range(W.shape[0] // H):
            W[g * H : (g + 1) * H] = orthogonal_matrix(rng, H)


def _normal_orthogonal(model, rng):
    _orthogonal(model, rng)
    for name, value in model.params.items():
        if name.startswith("U") or name == "V":
            value[...] = rng.normal(0.0, 1.0 / np.sqrt(value.shape[1]), value.shape)
        elif name == "c":
            value[...] = 0.0
        elif name.startswith("b"):
            H = model.n_hidden
            forget = value[H : 2 * H].copy() if model.cell == "lstm" else None
            value[...] = 0.0
            if forget is not None:  # the LSTM's forget gate block keeps its forget_bias
                value[H : 2 * H] = forget


def _identity(model, rng):
    if model.cell != "rnn":
        raise InvalidArgument(f"init='identity' applies to the vanilla cell only (the IRNN); the {model.cell} cell's W "
                              f"stacks its gates: use init='orthogonal' or 'default', or cell='rnn'")
    H = model.n_hidden
    for name, value in model.params.items():
        if name.startswith("W"):
            value[...] = np.eye(H)
        elif name.startswith("U") or name == "V":
            value[...] = rng.normal(0.0, IDENTITY_STD, value.shape)
        else:
            value[...] = 0.0


#: name -> function(model, rng). One line per initialisation.
INITS = {
    "default": _default,
    "orthogonal": _orthogonal,
    "identity": _identity,
    "normal-orthogonal": _normal_orthogonal,
}


def apply(model, init, seed):
    """Rewrite ``model``'s parameters by the initialisation ``init`` (a name in :data:`INITS`), drawing from
    ``default_rng([seed, INIT_STREAM])``."""
    INITS[init](model, np.random.default_rng([seed, INIT_STREAM]))
    return model
