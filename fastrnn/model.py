"""The public model: :class:`RNN`, a stacked vanilla (Elman) RNN.

This module is the boundary between users and the kernels: every argument is
checked here (:mod:`fastrnn._checks`), converted to the model's dtype and to the
time-major, contiguous layout the kernels expect, and only then passed on.
"""

import json
import os

import numba
import numpy as np

from . import _checks, _kernels, params
from .config import DTYPES, PARALLEL_MIN_BATCH_PER_THREAD, PARALLEL_MIN_WORK
from .exceptions import InvalidArgument, ModelFileError

FORMAT = "fastrnn-model"
FORMAT_VERSION = 1


class RNN:
    """A vanilla RNN: ``h_t = f(U x_t + W h_{t-1} + b)``, ``yhat_t = head(V h_t + c)``.

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Input, hidden and output sizes (I, H, O).
    layers : int
        Number of stacked recurrent layers (L); layer l > 0 reads layer l-1's states.
    activation : {"tanh", "sigmoid", "relu"}
        Hidden activation f.
    head : {"softmax", "sigmoid", "linear"}
        Output head and its loss: cross-entropy, binary cross-entropy or squared error.
    dtype : {"float64", "float32"}
    seed : int
        Seed of the ``numpy.random.default_rng`` that draws the initial weights.
    init_scale : float or None
        Weights start uniform in ``[-init_scale, init_scale]``; None means
        ``1 / sqrt(fan_in)`` per matrix. Biases start at zero.

    Attributes
    ----------
    params : mapping of str to ndarray
        The live parameter arrays (views into :attr:`theta`): ``U0 (H, I)``,
        ``W0 (H, H)``, ``b0 (H,)``, ``U1``, ``W1``, ``b1``, ..., ``V (O, H)``,
        ``c (O,)``. Write into them in place (``model.params["W0"][:] = W``).
    theta : ndarray of shape (n_params,)
        All parameters in one vector.
    """

    def __init__(self, n_in, n_hidden, n_out, layers=1, activation="tanh", head="softmax", dtype="float64", seed=0, init_scale=None):
        self.n_in = _checks.check_int("n_in", n_in, minimum=1)
        self.n_hidden = _checks.check_int("n_hidden", n_hidden, minimum=1)
        self.n_out = _checks.check_int("n_out", n_out, minimum=1)
        self.layers = _checks.check_int("layers", layers, minimum=1)
        self.activation = _checks.check_choice("activation", activation, tuple(_kernels.ACTIVATIONS))
        self.head = _checks.check_choice("head", head, tuple(_kernels.HEADS))
        self.dtype = np.dtype(_checks.check_choice("dtype", str(np.dtype(dtype)) if _is_dtype_like(dtype) else dtype, DTYPES))
        self.seed = _checks.check_int("seed", seed, minimum=0)
        self.init_scale = None if init_scale is None else _checks.check_float("init_scale", init_scale, positive=True)
        self._entries, size = params.layout(self.n_in, self.n_hidden, self.n_out, self.layers)
        self.theta = params.init_theta(self._entries, size, self.dtype, self.seed, self.init_scale)
        self._dims = np.array(
            [self.n_in, self.n_hidden, self.n_out, self.layers, _kernels.ACTIVATIONS[self.activation], _kernels.HEADS[self.head]],
            dtype=np.int64,
        )
        self._params = params.views(self.theta, self._entries)

    # ------------------------------------------------------------------ basics

    @property
    def params(self):
        """The live parameter arrays by name (a read-only mapping of writable views)."""
        return _ParamView(self._params)

    @property
    def param_names(self):
        return [name for name, _, _ in self._entries]

    @property
    def n_params(self):
        return self.theta.shape[0]

    def config(self):
        """The constructor arguments, as a JSON-able dict."""
        return dict(
            n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out, layers=self.layers,
            activation=self.activation, head=self.head, dtype=self.dtype.name, seed=self.seed,
            init_scale=self.init_scale,
        )

    def copy(self):
        """An independent model with the same architecture and parameter values."""
        other = RNN(**self.config())
        other.theta[:] = self.theta
        return other

    def __repr__(self):
        return (
            f"RNN(n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, layers={self.layers}, "
            f"activation={self.activation!r}, head={self.head!r}, dtype={self.dtype.name!r}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ checks

    def _check_X(self, X):
        return _checks.as_float_array("X", X, self.dtype, 3, (None, None, self.n_in), f"(batch, time, n_in={self.n_in})")

    def _check_h0(self, h0, B):
        L, H = self.layers, self.n_hidden
        if h0 is None:
            return np.zeros((L, B, H), dtype=self.dtype)
        arr = np.asarray(h0) if not isinstance(h0, np.ndarray) else h0
        if L == 1 and getattr(arr, "ndim", 0) == 2:
            arr = arr[None]
        return _checks.as_float_array("h0", arr, self.dtype, 3, (L, B, H), f"(layers={L}, batch={B}, n_hidden={H})")

    def _check_targets(self, Y, mask, B, T):
        O = self.n_out
        Y = _checks.as_float_array("Y", Y, self.dtype, 3, (B, T, O), f"(batch={B}, time={T}, n_out={O})")
        if mask is None:
            M = np.ones((B, T), dtype=self.dtype)
        else:
            M = _checks.as_float_array("mask", mask, self.dtype, 2, (B, T), f"(batch={B}, time={T})")
            if not np.all((M == 0) | (M == 1)):
                raise InvalidArgument("mask must hold only 0 (no target) and 1 (target); got other values")
        on = M > 0
        if self.head in ("softmax", "sigmoid"):
            if np.any(Y[on] < 0) or np.any(Y[on] > 1):
                raise InvalidArgument(f"Y must lie in [0, 1] for the {self.head} head on every masked step")
        if self.head == "softmax":
            sums = Y.sum(axis=2)[on]
            if sums.size and np.max(np.abs(sums - 1.0)) > 1e-6:
                raise InvalidArgument("Y must be one-hot (each row summing to 1) for the softmax head on every masked step")
        return Y, M

    @staticmethod
    def _check_truncate(bptt_truncate):
        K = _checks.check_optional_int("bptt_truncate", bptt_truncate, minimum=0)
        return -1 if K is None else K

    # ------------------------------------------------------------------ compute

    def forward(self, X, h0=None):
        """Run the model over a batch.

        Parameters
        ----------
        X : array of shape (B, T, n_in)
        h0 : array of shape (layers, B, n_hidden), or (B, n_hidden) for one layer; zeros if None

        Returns
        -------
        yhat : ndarray of shape (B, T, n_out)
            Head outputs (probabilities for softmax and sigmoid, z for linear).
        hs : ndarray of shape (layers, B, T, n_hidden)
            The hidden states h_1..h_T of every layer; ``hs[:, :, -1]`` is the final
            state, which can be passed as the next chunk's ``h0``.
        """
        X = self._check_X(X)
        B, T, _ = X.shape
        h0 = self._check_h0(h0, B)
        Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
        hs = np.empty((self.layers, T + 1, B, self.n_hidden), dtype=self.dtype)
        z = np.empty((T, B, self.n_out), dtype=self.dtype)
        _kernels.predict(self.theta, self._dims, Xt, h0, hs, z)
        return np.ascontiguousarray(z.transpose(1, 0, 2)), np.ascontiguousarray(hs[:, 1:].transpose(0, 2, 1, 3))

    def loss_and_grads(self, X, Y, mask=None, bptt_truncate=None, h0=None, return_state=False, parallel=None):
        """Loss and its gradient with respect to every parameter, by (truncated) BPTT.

        Parameters
        ----------
        X : array of shape (B, T, n_in)
        Y : array of shape (B, T, n_out)
            Targets: one-hot for softmax, in [0, 1] for sigmoid, any real for linear.
        mask : array of shape (B, T) of 0/1, optional
            1 where a step has a target; all ones if None.
        bptt_truncate : int or None
            K: the loss at step t sends gradient back only to steps t-K..t; None is
            full BPTT.
        h0 : array of shape (layers, B, n_hidden), or (B, n_hidden) for one layer
        return_state : bool
            Also return the final hidden state (layers, B, n_hidden), to carry into
            the next chunk of a long stream.
        parallel : bool or None
            Split the batch across numba's threads; None decides by batch size.

        Returns
        -------
        loss : float
            Sum over masked steps, mean over the batch (SPEC.md).
        grads : dict of str to ndarray
            Same keys and shapes as :attr:`params`.
        h_final : ndarray, only with ``return_state=True``
        """
        X = self._check_X(X)
        B, T, _ = X.shape
        Y, M = self._check_targets(Y, mask, B, T)
        K = self._check_truncate(bptt_truncate)
        h0 = self._check_h0(h0, B)
        if parallel is not None and not isinstance(parallel, (bool, np.bool_)):
            raise _checks.InvalidType(f"parallel must be True, False or None, got {parallel!r}")
        Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
        Yt = np.ascontiguousarray(Y.transpose(1, 0, 2))
        Mt = np.ascontiguousarray(M.T)
        grad = np.empty_like(self.theta)
        h_final = np.empty((self.layers, B, self.n_hidden), dtype=self.dtype)
        n_threads = self._n_threads(B, T, parallel)
        if n_threads > 1:
            loss = _kernels.loss_and_grads_parallel(self.theta, self._dims, K, Xt, Yt, Mt, h0, grad, h_final, n_threads)
        else:
            loss = _kernels.loss_and_grads_serial(self.theta, self._dims, K, Xt, Yt, Mt, h0, grad, h_final)
        grads = params.views(grad, self._entries)
        if return_state:
            return float(loss), grads, h_final
        return float(loss), grads

    def loss(self, X, Y, mask=None, h0=None):
        """The loss alone (see :meth:`loss_and_grads`)."""
        return self.loss_and_grads(X, Y, mask=mask, h0=h0, parallel=False)[0]

    def _n_threads(self, B, T, parallel):
        if parallel is False:
            return 1
        n = min(numba.get_num_threads(), B)
        if parallel is None:
            work = B * T * self.n_hidden * self.n_hidden * self.layers
            if B < PARALLEL_MIN_BATCH_PER_THREAD * n or work < PARALLEL_MIN_WORK:
                return 1
        return max(n, 1)

    def _flatten_grads(self, grads):
        if not hasattr(grads, "keys") or set(grads.keys()) != set(self.param_names):
            raise InvalidArgument(f"grads must be a dict with the keys {self.param_names}, as loss_and_grads returns")
        parts = []
        for name, shape, _ in self._entries:
            g = _checks.as_float_array(f"grads[{name!r}]", grads[name], self.dtype, len(shape), shape, str(shape))
            parts.append(g.ravel())
        return np.concatenate(parts)

    # ------------------------------------------------------------------ files

    def save(self, path):
        """Write the model to ``path`` (.npz): the parameters and the architecture."""
        path = os.fspath(path)
        meta = dict(format=FORMAT, version=FORMAT_VERSION, config=self.config())
        with open(path, "wb") as fh:
            np.savez(fh, theta=self.theta, meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; raise ModelFileError if it is not one."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ModelFileError(f"model file {path!r} does not exist; give the path of a model saved with --save or RNN.save")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"][()]))
                theta = np.array(data["theta"])
        except Exception as exc:
            raise ModelFileError(f"model file {path!r} is not a readable fastrnn model ({type(exc).__name__}: {exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelFileError(f"file {path!r} is not a fastrnn model (no fastrnn format tag)")
        if meta.get("version") != FORMAT_VERSION:
            raise ModelFileError(f"model file {path!r} has format version {meta.get('version')}; this fastrnn reads version {FORMAT_VERSION}")
        try:
            model = cls(**meta["config"])
        except Exception as exc:
            raise ModelFileError(f"model file {path!r} has an invalid architecture: {exc}") from None
        if theta.shape != model.theta.shape or not np.all(np.isfinite(theta)):
            raise ModelFileError(f"model file {path!r} is corrupt: {theta.shape[0] if theta.ndim == 1 else theta.shape} parameters stored, {model.n_params} expected, or some are not finite")
        model.theta[:] = theta
        return model


def _is_dtype_like(value):
    return isinstance(value, type) or isinstance(value, np.dtype)


class _ParamView(dict):
    """A dict of live views whose keys cannot be rebound (that would detach them)."""

    def __setitem__(self, key, value):
        raise TypeError(f"params[{key!r}] cannot be replaced; write into it instead: model.params[{key!r}][...] = value")
