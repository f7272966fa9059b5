"""The vanilla (Elman) cell: everything the kernels know about it.

    a_t = xu_t + hw_t,   h_t = f(a_t)      with xu_t = U x_t + b and hw_t = W h_{t-1}

One gate (G = 1), one state vector per layer (S = 1: h), no extra parameters and
no per-step cache: f'(a_t) is recomputed from h_t in the backward step. The
driver (fastrnn._kernels) computes xu and hw; this module does the elementwise
rest. Both derivatives the driver needs are the same array here,
dL/d(xu_t) = dL/d(hw_t) = f'(a_t) * dh_t, so the driver keeps one of them
(``SEPARATE_DAH = False``) and pays for no copy.
"""

from .. import activations

#: Gates (xu and hw are G*H wide), state vectors per layer, entries (in units of H)
#: of per-layer extra parameters, of the per-step cache and of the direct
#: state-gradient carried from step t to t-1 outside W.
G = 1
S = 1
EXTRA = 0
CACHE = 0
CARRY = 0
#: Whether dL/d(hw) differs from dL/d(xu) (the driver then keeps both).
SEPARATE_DAH = False
#: Names of the per-layer extra parameter vectors (each H long), in layout order.
EXTRA_NAMES = ()

#: name -> code of the activations f (the registry's, fastrnn.activations).
ACTIVATIONS = activations.ACTIVATIONS
TANH, SIGMOID, RELU = ACTIVATIONS["tanh"], ACTIVATIONS["sigmoid"], ACTIVATIONS["relu"]

#: ``forward_step(act, n, xu, xoff, hw, hs, hoff)``: hs[hoff + e] = f(hw[e] + xu[xoff + e]) for the
#: n = B*H entries of one step; one loop per registered activation (an unknown code raises).
forward_step = activations.by_activation("forward_step", "n, xu, xoff, hw, hs, hoff", """
for e in range(n):
    hs[hoff + e] = F(hw[e] + xu[xoff + e])
""", globals(), "hs[hoff + e] = f(hw[e] + xu[xoff + e]) for the n = B*H entries of one step.")

#: ``backward_step(act, n, dd, dh, hs, hoff, da)``: dd[da + e] = f'(a) * dd[dh + e], with f'(a)
#: written from h = hs[hoff + e].
backward_step = activations.by_activation("backward_step", "n, dd, dh, hs, hoff, da", """
for e in range(n):
    dd[da + e] = dd[dh + e] * DF(hs[hoff + e])
""", globals(), "dd[da + e] = f'(a) * dd[dh + e], with f'(a) written from h = hs[hoff + e].")


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
