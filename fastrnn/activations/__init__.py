"""The activation registry of the vanilla cell: one module per activation, one line each in :data:`MODULES`.

An activation's module (``fastrnn/activations/<name>.py``) declares

* ``NAME`` (what users write) and ``CODE`` (the integer a model's ``dims`` holds);
* ``f(a)``: the activation of one entry, compiled (``fastrnn._mathfn``'s vectorisable
  tanh and sigmoid where they apply);
* ``df(h)``: its derivative f'(a), written from h = f(a) (the backward step keeps h only);
* ``TORCH``: torch.nn.RNN's ``nonlinearity`` for it, or None.

Every kernel loop that applies f or f' is written once, with ``F``/``DF`` for the
function, and compiled into one branch per registered activation by :func:`by_activation`
(an unknown code raises): the vanilla cell's steps (:mod:`fastrnn.cells.rnn`), the
small-model, lean and lanes kernels' fused loops (:mod:`fastrnn._small`), and the
array forms here (:func:`apply`, :func:`derivative`) that the numpy code (text
sampling, the path-length study) calls. docs/extending.md walks through adding one.
"""

import numpy as np

from .. import _generate
from . import relu, sigmoid, softsign, tanh

#: The registered activations, in the order their names are listed to users.
MODULES = (
    tanh,
    sigmoid,
    relu,
    softsign,
)


def _registry(modules):
    codes, names = {}, {}
    for m in modules:
        if m.CODE in codes or m.NAME in names:
            raise ImportError(f"activation {m.NAME!r} (code {m.CODE}) repeats a registered name or code")
        codes[m.CODE] = names[m.NAME] = m
    return names


_BY_NAME = _registry(MODULES)
#: name -> code.
ACTIVATIONS = {name: m.CODE for name, m in _BY_NAME.items()}
#: code -> name.
NAMES = {m.CODE: m.NAME for m in MODULES}
#: torch.nn.RNN's nonlinearity -> name, for the activations PyTorch's RNN has.
TORCH_NAMES = {m.TORCH: m.NAME for m in MODULES if m.TORCH is not None}


def module(name):
    """The module of the activation called ``name``."""
    return _BY_NAME[name]


def by_activation(name, args, body, namespace, doc="", jit=None):
    """``name(act, *args)``: ``body`` (loop source using ``F(a)`` and ``DF(h)``) compiled once per
    registered activation, chosen by the code ``act`` outside the loop; an unknown code raises
    ValueError. ``namespace``: the asking module's ``globals()`` (see :func:`fastrnn._generate.by_code`)."""
    cases = []
    for m in MODULES:
        f, df = f"_f_{m.NAME}", f"_df_{m.NAME}"
        cases.append((m.CODE, _generate.substitute(body, {"F": f, "DF": df}), {f: m.f, df: m.df}))
    return _generate.by_code(name, args, "act", cases, namespace,
                             f"{name}: unknown activation code (fastrnn.activations.ACTIVATIONS lists the codes)", doc,
                             **({} if jit is None else dict(jit=jit)))


_apply = by_activation("_apply", "x, out", """
for i in range(x.shape[0]):
    out[i] = F(x[i])
""", globals(), "out[i] = f(x[i]) over 1-D arrays.")

_derivative = by_activation("_derivative", "h, out", """
for i in range(h.shape[0]):
    out[i] = DF(h[i])
""", globals(), "out[i] = f'(a) written from h[i] = f(a), over 1-D arrays.")


def apply(name, a):
    """f(a) of the activation ``name`` for an array of any shape (the kernels' own f), as float64."""
    a = np.asarray(a, dtype=np.float64)
    flat = np.ascontiguousarray(a).reshape(-1)
    out = np.empty_like(flat)
    _apply(ACTIVATIONS[name], flat, out)
    return out.reshape(a.shape)


def derivative(name, h):
    """f'(a) of the activation ``name`` written from h = f(a), for an array of any shape, as float64."""
    h = np.asarray(h, dtype=np.float64)
    flat = np.ascontiguousarray(h).reshape(-1)
    out = np.empty_like(flat)
    _derivative(ACTIVATIONS[name], flat, out)
    return out.reshape(h.shape)


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
