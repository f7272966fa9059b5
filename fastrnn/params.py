"""Parameter layout and initialisation.

All parameters of a model live in one flat, C-contiguous vector ``theta``; the
arrays users see (``model.params["W0"]`` and so on) are views into it. One vector
keeps the kernels' argument lists short and lets the optimizers and gradient
clipping work on a single array. The order matches
:func:`fastrnn._kernels.layer_offset`:

    U0 (H, I), W0 (H, H), b0 (H,), U1 (H, H), W1 (H, H), b1 (H,), ..., V (O, H), c (O,)
"""

import numpy as np


def layout(n_in, n_hidden, n_out, layers):
    """Return ``[(name, shape, offset), ...]`` and the total number of parameters."""
    entries = []
    offset = 0
    for l in range(layers):
        fan_in = n_in if l == 0 else n_hidden
        for name, shape in ((f"U{l}", (n_hidden, fan_in)), (f"W{l}", (n_hidden, n_hidden)), (f"b{l}", (n_hidden,))):
            entries.append((name, shape, offset))
            offset += int(np.prod(shape))
    for name, shape in (("V", (n_out, n_hidden)), ("c", (n_out,))):
        entries.append((name, shape, offset))
        offset += int(np.prod(shape))
    return entries, offset


def views(flat, entries):
    """Named views of ``flat`` (no copies): writing to a view writes to ``flat``."""
    return {name: flat[off : off + int(np.prod(shape))].reshape(shape) for name, shape, off in entries}


def init_theta(entries, size, dtype, seed, init_scale=None):
    """Draw initial weights with ``numpy.random.default_rng(seed)``.

    Matrices are uniform in ``[-s, s]`` with ``s = init_scale``, or
    ``s = 1 / sqrt(fan_in)`` when ``init_scale`` is None (the PyTorch default for
    ``nn.RNN``); biases start at zero.
    """
    rng = np.random.default_rng(seed)
    theta = np.zeros(size, dtype=np.float64)
    for name, shape, off in entries:
        if len(shape) == 2:
            s = init_scale if init_scale is not None else 1.0 / np.sqrt(shape[1])
            theta[off : off + shape[0] * shape[1]] = rng.uniform(-s, s, size=shape[0] * shape[1])
    return theta.astype(dtype)
