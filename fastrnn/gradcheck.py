"""Gradient check: BPTT gradients against central finite differences (docs/math.md, section 7)."""

from dataclasses import dataclass

import numpy as np

from . import _checks
from .model import RNN

#: Relative error under 1e-6 passes for smooth activations (docs/math.md, section 7).
DEFAULT_TOLERANCE = 1e-6


@dataclass
class GradcheckReport:
    """Per-parameter result of :func:`gradcheck`.

    ``errors[name]`` is ``max|a - n| / max(max(|a|) + max(|n|), tiny)`` over the
    entries of that parameter, where ``a`` is the BPTT gradient and ``n`` the
    central difference.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> model = fastrnn.RNN(n_in=2, n_hidden=4, n_out=3, seed=0)
    >>> X = np.random.default_rng(0).standard_normal((2, 4, 2))
    >>> Y = np.eye(3)[np.random.default_rng(1).integers(0, 3, (2, 4))]
    >>> report = fastrnn.gradcheck(model, X, Y)
    >>> report.passed, report.max_error < 1e-6, report.rows()[0][:2]
    (True, True, ('U0', (4, 2)))
    """

    errors: dict
    shapes: dict
    tolerance: float

    @property
    def passed(self):
        return all(err < self.tolerance for err in self.errors.values())

    @property
    def max_error(self):
        return max(self.errors.values())

    def rows(self):
        """``[(name, shape, error, passed), ...]`` in parameter order."""
        return [(name, self.shapes[name], err, err < self.tolerance) for name, err in self.errors.items()]

    def __str__(self):
        lines = [f"{'parameter':<10} {'shape':<12} {'max rel error':>14}  result"]
        for name, shape, err, ok in self.rows():
            lines.append(f"{name:<10} {str(shape):<12} {err:>14.3e}  {'pass' if ok else 'FAIL'}")
        return "\n".join(lines)


def gradcheck(model, X, Y, mask=None, eps=1e-5, h0=None, tolerance=DEFAULT_TOLERANCE):
    """Compare ``model.loss_and_grads`` (full BPTT) with central differences.

    Every parameter entry is nudged by ``+eps`` and ``-eps`` and the loss
    recomputed: ``(J(theta + eps) - J(theta - eps)) / (2 eps)``. The check runs in
    float64 even for a float32 model (on a float64 copy), since float32 cannot
    resolve differences of order eps**2. The model itself is left unchanged.

    Returns
    -------
    GradcheckReport

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> model = fastrnn.RNN(n_in=2, n_hidden=4, n_out=3, layers=2, seed=0)
    >>> X = np.random.default_rng(0).standard_normal((2, 4, 2))
    >>> Y = np.eye(3)[np.random.default_rng(1).integers(0, 3, (2, 4))]
    >>> fastrnn.gradcheck(model, X, Y).passed
    True
    """
    if not isinstance(model, RNN):
        raise _checks.InvalidType(f"model must be a fastrnn.RNN, got {type(model).__name__}")
    eps = _checks.check_float("eps", eps, positive=True)
    tolerance = _checks.check_float("tolerance", tolerance, positive=True)
    config = model.config()
    config["dtype"] = "float64"
    m64 = type(model)(**config)
    m64.theta[:] = model.theta
    _, grads = m64.loss_and_grads(X, Y, mask=mask, h0=h0, parallel=False)
    theta = m64.theta
    errors, shapes = {}, {}
    for name, shape, off in m64.layout:
        size = int(np.prod(shape))
        numeric = np.empty(size)
        for i in range(size):
            keep = theta[off + i]
            theta[off + i] = keep + eps
            plus = m64.loss(X, Y, mask=mask, h0=h0)
            theta[off + i] = keep - eps
            minus = m64.loss(X, Y, mask=mask, h0=h0)
            theta[off + i] = keep
            numeric[i] = (plus - minus) / (2 * eps)
        analytic = grads[name].ravel()
        denom = max(np.max(np.abs(analytic)) + np.max(np.abs(numeric)), np.finfo(np.float64).tiny)
        errors[name] = float(np.max(np.abs(analytic - numeric)) / denom)
        shapes[name] = tuple(shape)
    return GradcheckReport(errors=errors, shapes=shapes, tolerance=tolerance)
