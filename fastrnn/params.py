"""Parameter layout and initialisation.

All parameters of a model live in one flat, C-contiguous vector ``theta``; the
arrays users see (``model.params["W0"]`` and so on) are views into it. One vector
keeps the kernels' argument lists short and lets the optimizers and gradient
clipping work on a single array. Every offset comes from the kernels' own formula,
:func:`fastrnn._kernels.offset_formula` (there is no second copy of it here), called
in plain Python with the cell's gate count and extras as the compiled
:func:`fastrnn._kernels.layer_offset` calls it (so that making a model loads no
compiled code: a cached function costs milliseconds to load):

    U0 (G*H, I), W0 (G*H, H), b0 (G*H,), extras0, U1 (G*H, H), ..., V (O, H), c (O,)

with G the cell's gate count (1 for the vanilla cell) and extras its per-layer
extra vectors (none for the vanilla cell).
"""

import numpy as np

from . import cells
from ._kernels import count_formula, offset_formula


def layout(dims, cell="rnn"):
    """Return ``[(name, shape, offset), ...]`` and the total number of parameters.

    ``dims`` is the model's int64 kernel description (:attr:`fastrnn.RNN.dims`);
    ``cell`` names its cell (for the names of the cell's extra vectors).
    """
    I, H, O, L = (int(v) for v in dims[:4])
    mod = cells.module(cell)
    G, E = mod.G, mod.EXTRA  # what layer_offset reads through cells.gates / cells.extra_size(cell, 1)
    GH = G * H
    entries = []
    for l in range(L):
        o = offset_formula(I, H, G, E, l)
        fan_in = I if l == 0 else H
        entries += [(f"U{l}", (GH, fan_in), o), (f"W{l}", (GH, H), o + GH * fan_in), (f"b{l}", (GH,), o + GH * (fan_in + H))]
        off = o + GH * (fan_in + H + 1)
        for name in mod.EXTRA_NAMES:
            entries.append((f"{name}{l}", (H,), off))
            off += H
    oV = offset_formula(I, H, G, E, L)
    entries += [("V", (O, H), oV), ("c", (O,), oV + O * H)]
    return entries, count_formula(I, H, O, L, G, E)


#: Bytes in a cache line: the arrays the kernels stream through start on one.
LINE = 64


def aligned_empty(shape, dtype=np.float64):
    """An uninitialised C-contiguous array whose first entry starts a 64-byte cache line.

    numpy's allocator promises 16 bytes. The kernels load and store 32-byte AVX2 vectors,
    and in an array that starts 16 bytes into a line every other one straddles two lines.
    Measured with the arrays 16 bytes off a line against on one (medians of alternating
    runs, the same numbers): the text kernel 98.3 against 85.0 us an iteration, the binary
    headline run 0.0704 against 0.0676 s. Where numpy happens to place an array on a line
    nothing changes; this takes the lottery out."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + LINE, np.uint8)
    skip = -raw.ctypes.data % LINE
    return raw[skip : skip + nbytes].view(dtype).reshape(shape)


def aligned_zeros(shape, dtype=np.float64):
    """:func:`aligned_empty`, filled with zeros."""
    out = aligned_empty(shape, dtype)
    out[...] = 0
    return out


def views(flat, entries):
    """Named views of ``flat`` (no copies): writing to a view writes to ``flat``."""
    return {name: flat[off : off + int(np.prod(shape))].reshape(shape) for name, shape, off in entries}


def init_theta(entries, size, dtype, seed, init_scale=None, default_scale=None):
    """Draw initial weights with ``numpy.random.default_rng(seed)``.

    Matrices are uniform in ``[-s, s]`` with ``s = init_scale``, or, when
    ``init_scale`` is None, ``s = default_scale`` if given (the gated cells pass
    1 / sqrt(H), PyTorch's rule for nn.GRU/nn.LSTM) else ``s = 1 / sqrt(fan_in)``;
    biases start at zero.
    """
    rng = np.random.default_rng(seed)
    theta = np.zeros(size, dtype=np.float64)
    for name, shape, off in entries:
        if len(shape) == 2:
            s = init_scale if init_scale is not None else default_scale if default_scale is not None else 1.0 / np.sqrt(shape[1])
            theta[off : off + shape[0] * shape[1]] = rng.uniform(-s, s, size=shape[0] * shape[1])
    out = aligned_empty(size, dtype)
    out[...] = theta
    return out
