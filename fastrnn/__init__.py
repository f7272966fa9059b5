"""fastrnn: a Numba-accelerated training engine for small RNNs (BPTT): vanilla, GRU and LSTM cells.

Public API::

    model = fastrnn.RNN(n_in, n_hidden, n_out, layers=1, activation="tanh", head="softmax", cell="rnn")
    model = fastrnn.RNN.from_torch(torch_lstm, torch_linear); module, head = model.to_torch()
    yhat, hs = model.forward(X)
    loss, grads = model.loss_and_grads(X, Y, mask=None, bptt_truncate=None)
    report = fastrnn.gradcheck(model, X, Y)
    result = fastrnn.train(task="binary", iters=20000, seed=0)   # .model, .history, .train_seconds
    result = fastrnn.fit(model, X, Y, epochs=10)                  # your own arrays, same kernel
"""

from importlib.metadata import PackageNotFoundError, version

from .analysis import jacobian_norms, model_spectra, path_gradients, path_profile, spectrum
from .exceptions import FastRNNError, InvalidArgument, InvalidType, ModelFileError, NumericalError
from .gradcheck import GradcheckReport, gradcheck
from .model import RNN
from .metrics import read_run
from .optim import Optimizer
from .tasks import BinaryAddition, DigitAddition, make_task
from .sweeps import SweepResult, sweep
from .training import TrainResult, train
from .fitting import fit

try:
    __version__ = version("fastrnn")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.1.0"

__all__ = [
    "RNN",
    "train",
    "fit",
    "sweep",
    "SweepResult",
    "path_gradients",
    "path_profile",
    "spectrum",
    "model_spectra",
    "jacobian_norms",
    "TrainResult",
    "read_run",
    "make_task",
    "BinaryAddition",
    "DigitAddition",
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
