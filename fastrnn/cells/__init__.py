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
A cell with extra per-layer parameters also writes their gradient from the
summed dL/d(xu) / dL/d(hw) in :func:`extras_grad` (the driver computes U, W and b's).

Compiling only what runs: the step functions take ``cellset`` first. ``None``
means "the vanilla cell only": numba prunes the ``cellset is None`` branch at
compile time (dead-branch pruning of a None-typed argument), so the kernels a
vanilla model runs never compile the gated cells' code. Any integer means "every
registered cell", chosen at run time by the code in ``dims``. So there are at
most two specialisations per dtype (vanilla only; all cells), whatever the
activation, head or cell; :func:`fastrnn.engine.cellset` picks the argument.

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
from . import gru, lstm, rnn

RNN, GRU, LSTM = 0, 1, 2
#: name -> code, in the order the choices are listed to users.
CELLS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}
#: code -> the cell's module (for its Python-level facts: EXTRA_NAMES, G, S).
MODULES = {RNN: rnn, GRU: gru, LSTM: lstm}


def module(name):
    """The module of the cell called ``name``."""
    return MODULES[CELLS[name]]


@njit(**JIT)
def gates(cell):
    """G: xu and hw are G*H wide; U_l is (G*H, I_l), W_l (G*H, H), b_l (G*H,)."""
    if cell == GRU:
        return gru.G
    if cell == LSTM:
        return lstm.G
    return rnn.G


@njit(**JIT)
def states(cell):
    """S: the state vectors of a layer (h first)."""
    if cell == GRU:
        return gru.S
    if cell == LSTM:
        return lstm.S
    return rnn.S


@njit(**JIT)
def extra_size(cell, H):
    """Entries of a layer's extra parameters, after b_l."""
    if cell == GRU:
        return gru.EXTRA * H
    if cell == LSTM:
        return lstm.EXTRA * H
    return rnn.EXTRA * H


@njit(**JIT)
def cache_size(cell, H):
    """Per-row, per-step cache entries the backward step reads."""
    if cell == GRU:
        return gru.CACHE * H
    if cell == LSTM:
        return lstm.CACHE * H
    return rnn.CACHE * H


@njit(**JIT)
def carry_size(cell, H):
    """Per-row entries of the direct state-gradient carried from step t to t-1."""
    if cell == GRU:
        return gru.CARRY * H
    if cell == LSTM:
        return lstm.CARRY * H
    return rnn.CARRY * H


@njit(**JIT)
def separate_dah(cell):
    """Whether dL/d(hw) differs from dL/d(xu) and needs buffers of its own."""
    if cell == GRU:
        return gru.SEPARATE_DAH
    if cell == LSTM:
        return lstm.SEPARATE_DAH
    return rnn.SEPARATE_DAH


@njit(**JIT)
def forward_step(cellset, cell, act, B, H, xu, xoff, hw, theta, eoff, hs, hprev, hout, cs, cprev, cout, cache, coff):
    """One step of one layer: states at t from xu_t, hw_t and the states at t-1."""
    if cellset is None:
        rnn.forward_step(act, B * H, xu, xoff, hw, hs, hout)
    elif cell == GRU:
        gru.forward_step(B, H, xu, xoff, hw, theta, eoff, hs, hprev, hout, cache, coff)
    elif cell == LSTM:
        lstm.forward_step(B, H, xu, xoff, hw, hs, hout, cs, cprev, cout, cache, coff)
    else:
        rnn.forward_step(act, B * H, xu, xoff, hw, hs, hout)


@njit(**JIT)
def backward_step(cellset, cell, act, B, H, dd, dh, has_next, rnext, rcur, dax, dah, theta, eoff, hs, hprev, hcur, cs, cprev,
                  ccur, cache, coff):
    """One step of one layer backward, all deltas in the one buffer ``dd``: read dh (B, H)
    at ``dd[dh:]`` and the carry of step t+1 at ``dd[rnext:]`` (valid if has_next);
    write da_x (B, G*H) at ``dd[dax:]``, da_h at ``dd[dah:]`` (the same offset for a
    cell without SEPARATE_DAH) and the carry for step t-1 at ``dd[rcur:]``."""
    if cellset is None:
        rnn.backward_step(act, B * H, dd, dh, hs, hcur, dax)
    elif cell == GRU:
        gru.backward_step(B, H, dd, dh, has_next, rnext, rcur, dax, dah, hs, hprev, cache, coff)
    elif cell == LSTM:
        lstm.backward_step(B, H, dd, dh, has_next, rnext, rcur, dax, cs, cprev, cache, coff)
    else:
        rnn.backward_step(act, B * H, dd, dh, hs, hcur, dax)


@njit(**JIT)
def extras_grad(cellset, cell, H, rows, dsx, dsh, doff, grad, eoff):
    """The gradient of a layer's extra parameters (at grad[eoff:]) from the sums over
    all rows of dL/d(xu) (rows, G*H) at dsx[doff:] and dL/d(hw) at dsh[doff:]."""
    if cellset is not None and cell == GRU:
        gru.extras_grad(H, rows, dsh, doff, grad, eoff)


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
