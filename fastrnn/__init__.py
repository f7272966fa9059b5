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

import importlib
import importlib.util

#: The package version (pyproject.toml's; tests/test_small.py checks they agree). A
#: constant, not importlib.metadata: that import alone cost 0.08 s of every command.
#: Set before any kernel module loads: their cache is keyed on it (fastrnn._cache).
__version__ = "0.1.0"

from . import _startup  # noqa: E402

_startup.prepare()  # numba's variables checked, numba imported as it ships; the command's own shortcuts (_startup)

from .exceptions import FastRNNError, InvalidArgument, InvalidType, ModelFileError, NumericalError, OutputError  # noqa: E402
from .gradcheck import GradcheckReport, gradcheck  # noqa: E402  (eager: the function shadows its module's name)

#: The rest of the public API is imported on first use (module ``__getattr__``),
#: so that a command imports only what it runs: ``fastrnn train`` never loads
#: the sweep machinery, the analysis tools or pandas.
_LAZY = {
    "jacobian_norms": "analysis", "model_spectra": "analysis", "path_gradients": "analysis",
    "path_profile": "analysis", "spectrum": "analysis", "RNN": "model", "read_run": "metrics",
    "Optimizer": "optim", "BinaryAddition": "tasks", "DigitAddition": "tasks", "make_task": "tasks",
    "SweepResult": "sweeps", "sweep": "sweeps", "TrainResult": "training", "train": "training",
    "fit": "fitting",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        # a submodule read as an attribute (fastrnn.training, ...), as when every one was imported eagerly
        if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'fastrnn' has no attribute {name!r}")
        return importlib.import_module("." + name, __name__)
    value = getattr(importlib.import_module("." + module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
    "OutputError",
    "__version__",
]
