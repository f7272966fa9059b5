"""fastrnn: a Numba-accelerated training engine for vanilla RNNs (BPTT).

Public API::

    model = fastrnn.RNN(n_in, n_hidden, n_out, layers=1, activation="tanh", head="softmax")
    yhat, hs = model.forward(X)
    loss, grads = model.loss_and_grads(X, Y, mask=None, bptt_truncate=None)
    report = fastrnn.gradcheck(model, X, Y)
"""

from importlib.metadata import PackageNotFoundError, version

from .exceptions import FastRNNError, InvalidArgument, InvalidType, ModelFileError, NumericalError
from .gradcheck import GradcheckReport, gradcheck
from .model import RNN
from .optim import Optimizer

try:
    __version__ = version("fastrnn")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.1.0"

__all__ = [
    "RNN",
    "Optimizer",
    "gradcheck",
    "GradcheckReport",
    "FastRNNError",
    "InvalidArgument",
    "InvalidType",
    "ModelFileError",
    "NumericalError",
    "__version__",
]
