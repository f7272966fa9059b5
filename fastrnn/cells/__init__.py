"""The cell registry: a name -> integer code, and the njit dispatch the BPTT driver calls.

The driver in :mod:`fastrnn._kernels` never asks which cell runs. It reads the
cell's sizes through the functions below (gates G, state vectors S, extra
parameters, cache and carried state-gradient, in units of H) and calls
:func:`forward_step` / :func:`backward_step`, which branch on the integer code
held in ``dims``. The code is a run-time value, so one compiled kernel serves
every cell (one specialisation per dtype).

Adding a cell: write ``fastrnn/cells/<name>.py`` with the constants and the two
step functions of :mod:`fastrnn.cells.rnn` (same meaning, see its docstring and
``docs`` there), give it a code in ``CELLS`` and a branch in each function below.

Per-step contract, for one layer and the B rows of one step:

* forward: given xu_t (B, G*H) = x_t U^T + b, hw_t (B, G*H) = h_{t-1} W^T, the
  layer's extras ``theta[eoff:]`` and the states at t-1, write the states at t
  (h into ``hs``, the others into ``cs``) and the step's cache.
* backward: given dh_t (B, H) (from the output, the layer above and da_h W of
  step t+1), the direct state-gradient carried from step t+1 (``has_next``), the
  cache and the states, write da_x = dL/d(xu_t) and da_h = dL/d(hw_t) (B, G*H)
  and the direct part of the state-gradient for step t-1 (``carry_cur``).
"""

from numba import njit

from ..config import JIT
from . import rnn

RNN = 0
#: name -> code, in the order the choices are listed to users.
CELLS = {"rnn": RNN}
#: code -> the cell's module (for its Python-level facts: EXTRA_NAMES, G, S).
MODULES = {RNN: rnn}


def module(name):
    """The module of the cell called ``name``."""
    return MODULES[CELLS[name]]


@njit(**JIT)
def gates(cell):
    """G: xu and hw are G*H wide; U_l is (G*H, I_l), W_l (G*H, H), b_l (G*H,)."""
    if cell == RNN:
        return rnn.G
    return rnn.G


@njit(**JIT)
def states(cell):
    """S: the state vectors of a layer (h first)."""
    if cell == RNN:
        return rnn.S
    return rnn.S


@njit(**JIT)
def extra_size(cell, H):
    """Entries of a layer's extra parameters, after b_l."""
    if cell == RNN:
        return rnn.EXTRA * H
    return rnn.EXTRA * H


@njit(**JIT)
def cache_size(cell, H):
    """Per-row, per-step cache entries the backward step reads."""
    if cell == RNN:
        return rnn.CACHE * H
    return rnn.CACHE * H


@njit(**JIT)
def carry_size(cell, H):
    """Per-row entries of the direct state-gradient carried from step t to t-1."""
    if cell == RNN:
        return rnn.CARRY * H
    return rnn.CARRY * H


@njit(**JIT)
def separate_dah(cell):
    """Whether dL/d(hw) differs from dL/d(xu) and needs buffers of its own."""
    if cell == RNN:
        return rnn.SEPARATE_DAH
    return rnn.SEPARATE_DAH


@njit(**JIT)
def forward_step(cell, act, B, H, xu, xoff, hw, theta, eoff, hs, hprev, hout, cs, cprev, cout, cache, coff):
    """One step of one layer: states at t from xu_t, hw_t and the states at t-1."""
    if cell == RNN:
        rnn.forward_step(act, B * H, xu, xoff, hw, hs, hout)


@njit(**JIT)
def backward_step(cell, act, B, H, dd, dh, has_next, rnext, rcur, dax, dah, theta, eoff, hs, hprev, hcur, cs, cprev,
                  ccur, cache, coff):
    """One step of one layer backward, all deltas in the one buffer ``dd``: read dh (B, H)
    at ``dd[dh:]`` and the carry of step t+1 at ``dd[rnext:]`` (valid if has_next);
    write da_x (B, G*H) at ``dd[dax:]``, da_h at ``dd[dah:]`` (the same offset for a
    cell without SEPARATE_DAH) and the carry for step t-1 at ``dd[rcur:]``."""
    if cell == RNN:
        rnn.backward_step(act, B * H, dd, dh, hs, hcur, dax)
