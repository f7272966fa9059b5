"""The public model: :class:`RNN`, a stacked recurrent network (the vanilla Elman cell by default).

This module is the boundary between users and the kernels: every argument is
checked here (data through :func:`fastrnn.engine.prepare`), converted to the
model's dtype and layout, and only then passed on through :mod:`fastrnn.engine`.
"""

import json
import os
import threading

import numba
import numpy as np

from . import _checks, _files, _kernels, cells, engine, params
from .config import AUTO_PARALLEL, DTYPES
from .exceptions import FastRNNError, InvalidArgument, ModelFileError

FORMAT = "fastrnn-model"
FORMAT_VERSION = 1


class RNN:
    """A stacked recurrent network: ``h_t = cell(x_t, h_{t-1})``, ``yhat_t = head(V h_t + c)``.

    The cell is the vanilla one, ``h_t = f(U x_t + W h_{t-1} + b)``, or PyTorch's GRU
    or LSTM (docs/math.md, "Gated cells"); :meth:`from_torch` / :meth:`to_torch`
    convert from and to ``torch.nn.RNN``/``GRU``/``LSTM`` (+ ``nn.Linear``).

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Input, hidden and output sizes (I, H, O).
    layers : int
        Number of stacked recurrent layers (L); layer l > 0 reads layer l-1's states.
    activation : {"tanh", "sigmoid", "relu", "softsign"}
        Hidden activation f of the vanilla cell; the gated cells take only "tanh"
        (their activations are fixed).
    head : {"softmax", "sigmoid", "linear"}
        Output head and its loss: cross-entropy, binary cross-entropy or squared error.
    dtype : {"float64", "float32"}
    seed : int
        Seed of the ``numpy.random.default_rng`` that draws the initial weights.
    init_scale : float or None
        Weights start uniform in ``[-init_scale, init_scale]``; None means
        ``1 / sqrt(fan_in)`` per matrix for the vanilla cell and ``1 / sqrt(n_hidden)``
        for every matrix of a gated cell (PyTorch's rule). Biases start at zero
        (but see ``forget_bias``).
    cell : {"rnn", "gru", "lstm"}
        The recurrent cell (:mod:`fastrnn.cells`): "rnn" is the vanilla cell above,
        "gru" and "lstm" compute exactly ``torch.nn.GRU`` and ``torch.nn.LSTM``.
    forget_bias : float
        LSTM only: the forget gate's block of every ``b{l}`` (entries H..2H-1) starts
        at this value instead of 0, so that the initial forget gate is
        sigmoid(forget_bias) rather than 1/2 and the cell starts out remembering
        (Gers et al. 2000; Jozefowicz et al. 2015 recommend 1). Applied once, at
        initialisation; the default 0 is PyTorch's initialisation. Any other cell
        refuses a nonzero value.
    init : {"default", "orthogonal", "identity"}
        How the recurrent weights start (:mod:`fastrnn.inits`): "default" keeps the
        uniform draw above; "orthogonal" makes every W (every gate block of a gated
        cell's W) a random orthogonal matrix; "identity" is the IRNN's W = I, zero
        biases, U and V from N(0, 0.001^2) (the vanilla cell only; meant for
        ``activation="relu"``). Drawn from their own stream of ``seed``.

    Attributes
    ----------
    params : mapping of str to ndarray
        The live parameter arrays (views into :attr:`theta`): ``U0 (G*H, I)``,
        ``W0 (G*H, H)``, ``b0 (G*H,)``, (GRU: ``bn0 (H,)``), ``U1``, ``W1``, ``b1``,
        ..., ``V (O, H)``, ``c (O,)``, with G = 1 (rnn), 3 (gru: gates r, z, n) or
        4 (lstm: i, f, g, o) in PyTorch's order. Write into them in place
        (``model.params["W0"][:] = W``).
    n_states : int
        State vectors per layer: 1 (h) for rnn and gru, 2 (h, c) for lstm. An LSTM's
        ``h0`` and returned state are the pair ``(h, c)``, each (layers, B, n_hidden).
    theta : ndarray of shape (n_params,)
        All parameters in one vector.
    dims : ndarray of int64
        The kernels' description of the architecture (see :attr:`dims`).
    layout : list of (name, shape, offset)
        Where each parameter lives in :attr:`theta`.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
    >>> model
    RNN(n_in=2, n_hidden=8, n_out=3, layers=1, activation='tanh', head='softmax', dtype='float64', seed=0, cell='rnn')
    >>> sorted(model.params), model.params["W0"].shape
    (['U0', 'V', 'W0', 'b0', 'c'], (8, 8))
    """

    def __init__(self, n_in, n_hidden, n_out, layers=1, activation="tanh", head="softmax", dtype="float64", seed=0,
                 init_scale=None, cell="rnn", forget_bias=0.0, init="default"):
        self.n_in = _checks.check_int("n_in", n_in, minimum=1)
        self.n_hidden = _checks.check_int("n_hidden", n_hidden, minimum=1)
        self.n_out = _checks.check_int("n_out", n_out, minimum=1)
        self.layers = _checks.check_int("layers", layers, minimum=1)
        self.activation = _checks.check_choice("activation", activation, tuple(cells.rnn.ACTIVATIONS))
        self.head = _checks.check_choice("head", head, tuple(_kernels.HEADS))
        self.dtype = np.dtype(_checks.check_choice("dtype", str(np.dtype(dtype)) if _is_dtype_like(dtype) else dtype, DTYPES))
        self._dtype_name = self.dtype.name  # numpy builds dtype.name anew each time (about 2 us)
        self.seed = _checks.check_int("seed", seed, minimum=0)
        self.init_scale = None if init_scale is None else _checks.check_float("init_scale", init_scale, positive=True)
        self.cell = _checks.check_choice("cell", cell, tuple(cells.CELLS))
        if self.cell != "rnn" and self.activation != "tanh":
            raise InvalidArgument(
                f"activation={self.activation!r} applies to the vanilla cell only; the {self.cell} cell's activations"
                " are fixed: leave activation='tanh' or use cell='rnn'"
            )
        self.forget_bias = _checks.check_float("forget_bias", forget_bias)
        if self.forget_bias != 0.0 and self.cell != "lstm":
            raise InvalidArgument(
                f"forget_bias={self.forget_bias!r} applies to the LSTM's forget gate only; the {self.cell} cell has none:"
                " leave forget_bias=0 or use cell='lstm'"
            )
        from . import inits

        self.init = _checks.check_choice("init", init, tuple(inits.INITS))
        if self.init == "identity" and self.cell != "rnn":
            raise InvalidArgument(f"init='identity' applies to the vanilla cell only (the IRNN); the {self.cell} cell's W "
                                  f"stacks its gates: use init='orthogonal' or 'default', or cell='rnn'")
        cell_module = cells.module(self.cell)
        #: state vectors per layer (1: h; the LSTM's 2: h and c)
        self.n_states = cell_module.S
        _checks.check_memory(f"a model with n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, layers={self.layers}",
                             _checks.model_bytes(self.n_in, self.n_hidden, self.n_out, self.layers, self.dtype.itemsize,
                                                 self.cell),
                             "choose a smaller n_hidden or fewer layers")
        self._dims = np.array(
            [self.n_in, self.n_hidden, self.n_out, self.layers, cells.rnn.ACTIVATIONS[self.activation],
             _kernels.HEADS[self.head], cells.CELLS[self.cell]],
            dtype=np.int64,
        )
        self._entries, size = params.layout(self._dims, self.cell)
        default_scale = None if self.cell == "rnn" else 1.0 / np.sqrt(self.n_hidden)
        self.theta = params.init_theta(self._entries, size, self.dtype, self.seed, self.init_scale, default_scale)
        self._params = params.views(self.theta, self._entries)
        if self.forget_bias != 0.0:
            H = self.n_hidden
            for l in range(self.layers):  # gates i, f, g, o: f is the second block
                self._params[f"b{l}"][H : 2 * H] = self.forget_bias
        inits.apply(self, self.init, self.seed)
        #: Free-form JSON-able facts saved with the model (the training task, say).
        self.metadata = {}
        self._scratch = np.empty(0, dtype=self.dtype)
        self._scratch_lock = threading.Lock()
        # loss_and_grads' gradient views: a slice per parameter, reshaped only where it is a matrix
        self._grad_views = [(name, slice(off, off + int(np.prod(shape))), shape if len(shape) > 1 else None)
                            for name, shape, off in self._entries]
        self._plans = {}  # (B, T, n_threads) -> engine.plan(...), kept: it depends on nothing else (FASTRNN_KERNEL is read once per shape)
        self._last_grads = (None, None, ())  # loss_and_grads(out=...): the grads it may fill directly

    # ------------------------------------------------------------------ basics

    @property
    def params(self):
        """The live parameter arrays by name (a read-only mapping of writable views)."""
        return _ParamView(self._params)

    @property
    def param_names(self):
        return [name for name, _, _ in self._entries]

    @property
    def dims(self):
        """The architecture as the kernels read it (do not modify): an int64 array
        ``[n_in, n_hidden, n_out, layers, activation, head, cell]`` (the last three
        as integer codes; fields in ``fastrnn._kernels.DIMS_FIELDS``)."""
        return self._dims

    @property
    def layout(self):
        """``[(name, shape, offset), ...]``: where each parameter lives in :attr:`theta`, in order."""
        return list(self._entries)

    @property
    def n_params(self):
        return self.theta.shape[0]

    def config(self):
        """The constructor arguments, as a JSON-able dict."""
        return dict(
            n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out, layers=self.layers,
            activation=self.activation, head=self.head, dtype=self.dtype.name, seed=self.seed,
            init_scale=self.init_scale, cell=self.cell, forget_bias=self.forget_bias, init=self.init,
        )

    def copy(self):
        """An independent model with the same architecture and parameter values."""
        other = RNN(**self.config())
        other.theta[:] = self.theta
        other.metadata = dict(self.metadata)
        return other

    def __repr__(self):
        return (
            f"RNN(n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, layers={self.layers}, "
            f"activation={self.activation!r}, head={self.head!r}, dtype={self.dtype.name!r}, seed={self.seed}, "
            f"cell={self.cell!r})"
        )

    # ------------------------------------------------------------------ PyTorch

    @classmethod
    def from_torch(cls, module, head=None, output="linear", seed=0):
        """A model computing what a PyTorch ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (and head) computes.

        Parameters
        ----------
        module : torch.nn.RNN (nonlinearity tanh or relu), torch.nn.GRU or torch.nn.LSTM
            Unidirectional, without projections, dropout 0; batch_first either way
            (fastrnn's arrays are always (B, T, ...)). float32 or float64: the model
            gets that dtype.
        head : torch.nn.Linear or None
            The output layer (in_features = hidden_size). None gives a linear head
            with V = identity and c = 0, so that ``forward`` returns the module's
            top-layer output.
        output : {"linear", "softmax", "sigmoid"}
            The model's head function and loss on top of ``head``'s logits.
        seed : int
            Seeds the model's own generator (the weights all come from ``module``).

        Returns
        -------
        RNN

        Notes
        -----
        Refusals name the module's attribute that cannot be converted (see
        :mod:`fastrnn.torch_interop`). The module's ``batch_first`` is kept in
        :attr:`metadata` for :meth:`to_torch`.

        Examples
        --------
        >>> import numpy as np, torch, fastrnn
        >>> lstm, head = torch.nn.LSTM(3, 16, batch_first=True).double(), torch.nn.Linear(16, 4).double()
        >>> model = fastrnn.RNN.from_torch(lstm, head, output="linear")
        >>> model.cell, model.params["W0"].shape
        ('lstm', (64, 16))
        >>> X = np.random.default_rng(0).standard_normal((2, 5, 3))
        >>> with torch.no_grad():
        ...     want = head(lstm(torch.from_numpy(X))[0]).numpy()
        >>> bool(np.allclose(model.forward(X)[0], want))
        True
        """
        from . import torch_interop

        output = _checks.check_choice("output", output, tuple(_kernels.HEADS))
        tp = torch_interop.params_from_torch(module, head)
        dtype = next(iter(tp.params.values())).dtype.name
        n_out = tp.n_hidden if tp.n_out is None else tp.n_out
        model = cls(tp.n_in, tp.n_hidden, n_out, layers=tp.layers, activation=tp.activation or "tanh", head=output,
                    dtype=dtype, seed=seed, cell=tp.cell)
        values = dict(tp.params)
        if tp.n_out is None:
            values["V"] = np.eye(tp.n_hidden, dtype=dtype)
            values["c"] = np.zeros(tp.n_hidden, dtype=dtype)
        for name, value in values.items():
            model._params[name][...] = value
        model.metadata["torch_batch_first"] = tp.batch_first
        return model

    def to_torch(self, batch_first=None):
        """``(module, head)``: a PyTorch ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` and ``nn.Linear``
        holding this model's parameters, in its dtype (torch must be installed).

        ``batch_first`` None takes the value recorded by :meth:`from_torch` (False
        otherwise). PyTorch applies no head function: the head's output is the
        logits z, which this model turns into :attr:`head` probabilities. A vanilla
        model with the sigmoid activation has no PyTorch twin and is refused.

        Examples
        --------
        >>> import fastrnn
        >>> module, head = fastrnn.RNN(n_in=3, n_hidden=16, n_out=4, cell="gru", seed=0).to_torch()
        >>> type(module).__name__, module.hidden_size, head.out_features
        ('GRU', 16, 4)
        """
        from . import torch_interop

        if batch_first is None:
            batch_first = bool(self.metadata.get("torch_batch_first", False))
        activation = self.activation if self.cell == "rnn" else None
        return torch_interop.torch_from_params(self.cell, {k: np.array(v) for k, v in self._params.items()},
                                               batch_first=bool(batch_first), activation=activation)

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _check_truncate(bptt_truncate):
        K = _checks.check_optional_int("bptt_truncate", bptt_truncate, minimum=0)
        return -1 if K is None else K

    # ------------------------------------------------------------------ compute

    def forward(self, X, h0=None, return_state=False):
        """Run the model over a batch.

        Parameters
        ----------
        X : array of shape (B, T, n_in)
        h0 : array of shape (layers, B, n_hidden), or (B, n_hidden) for one layer; zeros if None.
            For an LSTM, the pair (h0, c0) of such arrays.

        Returns
        -------
        yhat : ndarray of shape (B, T, n_out)
            Head outputs (probabilities for softmax and sigmoid, z for linear).
        hs : ndarray of shape (layers, B, T, n_hidden)
            The hidden states h_1..h_T of every layer; ``hs[:, :, -1]`` is the final
            state, which can be passed as the next chunk's ``h0`` (an LSTM's also
            needs its c: use ``return_state``).
        h_final : only with ``return_state=True``
            The final state to pass as the next chunk's ``h0``: (layers, B, n_hidden),
            the pair (h, c) of such arrays for an LSTM.

        Examples
        --------
        >>> import numpy as np, fastrnn
        >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
        >>> X = np.random.default_rng(0).standard_normal((4, 5, 2))
        >>> yhat, hs = model.forward(X)
        >>> yhat.shape, hs.shape, bool(np.allclose(yhat.sum(axis=-1), 1.0))
        ((4, 5, 3), (1, 4, 5, 8), True)
        """
        X, _, _, h0 = engine.prepare(self, X, h0=h0)
        return engine.forward(self, X, h0, return_state)

    def loss_and_grads(self, X, Y, mask=None, bptt_truncate=None, h0=None, return_state=False, parallel=None, out=None):
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
            (an LSTM: the pair (h0, c0) of such arrays)
        return_state : bool
            Also return the final hidden state (layers, B, n_hidden), to carry into
            the next chunk of a long stream; for an LSTM the pair (h_T, c_T).
        parallel : bool or None
            True splits the batch across numba's threads (hand-written products in
            each); None and False use the serial kernel, whose products go to BLAS
            (faster on every shape measured on a 2-core machine; config.AUTO_PARALLEL).
        out : dict or None
            Fill these gradient arrays in place instead of returning new ones: a dict
            with the keys and shapes of :attr:`params` in the model's dtype, usually
            the ``grads`` of an earlier call (``loss, g = m.loss_and_grads(X, Y, out=g)``
            in a loop). It is returned as ``grads``. A dict this model returned is
            filled directly (no allocation, no new views); any other is checked
            and copied into.

        Returns
        -------
        loss : float
            Sum over masked steps, mean over the batch (docs/math.md).
        grads : dict of str to ndarray
            Same keys and shapes as :attr:`params`; new arrays on every call (``out`` if given).
        h_final : ndarray (the pair of them for an LSTM), only with ``return_state=True``

        Examples
        --------
        >>> import numpy as np, fastrnn
        >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
        >>> X = np.random.default_rng(0).standard_normal((4, 5, 2))
        >>> Y = np.eye(3)[np.random.default_rng(1).integers(0, 3, (4, 5))]
        >>> loss, grads = model.loss_and_grads(X, Y)
        >>> round(loss, 4), grads["W0"].shape
        (5.4735, (8, 8))
        >>> loss_k, grads_k = model.loss_and_grads(X, Y, bptt_truncate=2)   # the same loss, a truncated gradient
        >>> loss_k == loss, bool(np.allclose(grads_k["W0"], grads["W0"]))
        (True, False)
        """
        X, Y, M, h0 = engine.prepare(self, X, Y, mask, h0)
        K = -1 if bptt_truncate is None else self._check_truncate(bptt_truncate)
        B, T = X.shape[0], X.shape[1]
        n_threads = 1 if parallel is False or (parallel is None and not AUTO_PARALLEL) else self._n_threads(B, T, parallel)
        plan = self._plans.get((B, T, n_threads))
        if plan is None:
            if len(self._plans) >= 64:  # many shapes: keep the memo small
                self._plans.clear()
            plan = self._plans[(B, T, n_threads)] = engine.plan(self, T, B, n_threads)
        P = self.theta.shape[0]
        if out is None:  # the common case first, in as few steps as it takes
            flat = np.empty(P + engine.state_size(self, B), dtype=self.dtype)  # one allocation: gradient, final state
            grad = flat[:P]
            owned = self._scratch_lock.acquire(blocking=False)  # as in _kernel_call, written out: the hot path
            try:
                if not owned:
                    buf = params.aligned_empty(plan[1], self.dtype)
                else:
                    if self._scratch.shape[0] < plan[1]:
                        self._scratch = params.aligned_empty(plan[1], self.dtype)
                    buf = self._scratch
                loss = engine.loss_and_grads_into(self, X, Y, M, h0, K, buf, grad, flat[P:], plan)
            finally:
                if owned:
                    self._scratch_lock.release()
            grads = {name: grad[part] if shape is None else grad[part].reshape(shape) for name, part, shape in self._grad_views}
            self._last_grads = (grads, grad, tuple(grads.values()))
            if return_state:
                return float(loss), grads, engine.split_state(self, flat[P:])
            return float(loss), grads
        last = self._last_grads  # (dict, flat gradient, its arrays) of the last call that made new ones
        direct = out is last[0] and all(a is b for a, b in zip(out.values(), last[2]))
        grad = last[1] if direct else np.empty(P, dtype=self.dtype)
        S = engine.state_size(self, B)
        h_final = np.empty(S, dtype=self.dtype) if return_state else None
        loss = self._kernel_call(X, Y, M, h0, K, plan, grad, h_final, S)
        if not direct:
            self._copy_grads(grad, out)
        if return_state:
            return float(loss), out, engine.split_state(self, h_final)
        return float(loss), out

    def _kernel_call(self, X, Y, M, h0, K, plan, grad, h_final, S):
        """The kernel call with this model's scratch; ``h_final=None``: the state goes to the
        scratch's last ``S`` entries (the kernels carve theirs from the start of ``buf``)."""
        # One scratch vector per model, reused across calls; a concurrent call on
        # the same model (another Python thread) gets a fresh one instead.
        owned = self._scratch_lock.acquire(blocking=False)
        try:
            size = plan[1] + S
            if not owned:
                buf = params.aligned_empty(size, self.dtype)
            else:
                if self._scratch.shape[0] < size:
                    self._scratch = params.aligned_empty(size, self.dtype)
                buf = self._scratch
            if h_final is None:
                h_final = buf[plan[1] : size]
            return engine.loss_and_grads_into(self, X, Y, M, h0, K, buf, grad, h_final, plan)
        finally:
            if owned:
                self._scratch_lock.release()

    def _copy_grads(self, grad, out):
        """Write the flat ``grad`` into the arrays of a user's ``out`` dict, checked first."""
        if not isinstance(out, dict) or set(out.keys()) != set(self.param_names):
            raise InvalidArgument(f"out must be a dict with the keys {self.param_names}, as loss_and_grads returns; "
                                  f"got {type(out).__name__}" + (f" with the keys {list(out.keys())}" if isinstance(out, dict) else ""))
        for name, part, shape in self._grad_views:
            target = out[name]
            want = (part.stop - part.start,) if shape is None else shape
            if not isinstance(target, np.ndarray) or target.shape != want or target.dtype != self.dtype or not target.flags.writeable:
                got = f"{type(target).__name__}" if not isinstance(target, np.ndarray) else f"a {target.dtype} array of shape {target.shape}"
                raise InvalidArgument(f"out[{name!r}] must be a writable {self.dtype.name} array of shape {want}, got {got}; "
                                      f"pass the grads an earlier call returned")
        for name, part, shape in self._grad_views:
            out[name][...] = grad[part] if shape is None else grad[part].reshape(shape)

    def loss(self, X, Y, mask=None, h0=None):
        """The loss alone (see :meth:`loss_and_grads`).

        Examples
        --------
        >>> import numpy as np, fastrnn
        >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
        >>> X = np.random.default_rng(0).standard_normal((4, 5, 2))
        >>> Y = np.eye(3)[np.random.default_rng(1).integers(0, 3, (4, 5))]
        >>> round(model.loss(X, Y), 4)
        5.4735
        """
        return self.loss_and_grads(X, Y, mask=mask, h0=h0, parallel=False)[0]

    def _n_threads(self, B, T, parallel):
        """How many threads loss_and_grads splits the batch over (1: the serial kernel)."""
        if parallel is None:
            parallel = AUTO_PARALLEL
        if parallel is False:
            return 1
        if parallel is True:
            return max(1, min(numba.get_num_threads(), B))
        raise _checks.InvalidType(f"parallel must be True, False or None, got {parallel!r}")

    def flatten_grads(self, grads):
        """A dict like :attr:`params` (as :meth:`loss_and_grads` returns) as one vector in the layout of :attr:`theta`."""
        if not hasattr(grads, "keys") or set(grads.keys()) != set(self.param_names):
            raise InvalidArgument(f"grads must be a dict with the keys {self.param_names}, as loss_and_grads returns")
        parts = []
        for name, shape, _ in self._entries:
            g = _checks.as_float_array(f"grads[{name!r}]", grads[name], self.dtype, len(shape), shape, str(shape))
            parts.append(g.ravel())
        return np.concatenate(parts)

    # ------------------------------------------------------------------ files

    def save(self, path, extra=None, durable=False):
        """Write the model to ``path`` (.npz): the parameters and the architecture.

        ``extra`` maps further npz keys to arrays (a training run's state for
        resume, :mod:`fastrnn.checkpoint`); :meth:`load` ignores them.

        The file is written under a temporary name in the same folder and then
        renamed over ``path`` (``os.replace``), so ``path`` holds either the old
        file or the complete new one, never a partial write. ``durable``: the
        file and its folder are also synced to disk (fsync), so that this holds
        after a power cut too (checkpoints).

        Examples
        --------
        >>> import numpy as np, fastrnn
        >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
        >>> model.save("model.npz")
        'model.npz'
        >>> again = fastrnn.RNN.load("model.npz")
        >>> bool(np.array_equal(again.params["W0"], model.params["W0"]))
        True
        """
        meta = dict(format=FORMAT, version=FORMAT_VERSION, config=self.config(), metadata=self.metadata)
        # a device or a pipe at path is never replaced by the model (replace_file refuses it)
        return _files.replace_file(os.fspath(path), lambda fh: np.savez(fh, theta=self.theta, meta=np.array(json.dumps(meta)),
                                                                         **(extra or {})), durable, what="model file")

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; raise ModelFileError if it is not one.

        Nothing is allocated for the model before its file is known to fit: the
        architecture (``config``) is checked and its parameter count compared with
        the stored ``theta``'s size, read from the array's header, before either
        the array is read or the model is built. A small file whose metadata claims
        a huge model is refused in one line, at once.

        Examples
        --------
        >>> import fastrnn
        >>> fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0).save("model.npz")
        'model.npz'
        >>> model = fastrnn.RNN.load("model.npz")
        >>> model.n_in, model.n_hidden, model.n_out
        (2, 8, 3)
        """
        path = os.fspath(path)
        kind = _files.not_regular(path)
        if kind is not None:
            raise ModelFileError(f"model file {path!r} is {kind}, not a regular file; give the path of a model saved "
                                 f"with --save or RNN.save")
        if not os.path.isfile(path):
            raise ModelFileError(f"model file {path!r} does not exist; give the path of a model saved with --save or RNN.save")
        try:
            with np.load(path, allow_pickle=False) as data:
                if not hasattr(data, "files") or "meta" not in data.files or "theta" not in data.files:
                    raise ModelFileError(f"model file {path!r} is not a readable fastrnn model (it holds no meta and theta arrays)")
                check_stored_size(path, data, "meta", META_LIMIT, "its metadata")
                meta = json.loads(str(data["meta"][()]))
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise ModelFileError(f"file {path!r} is not a fastrnn model (no fastrnn format tag)")
                if meta.get("version") != FORMAT_VERSION:
                    raise ModelFileError(f"model file {path!r} has format version {_short(meta.get('version'))}; "
                                         f"this fastrnn reads version {FORMAT_VERSION}")
                if not isinstance(meta.get("config"), dict):
                    raise ModelFileError(f"model file {path!r} is corrupt: its architecture (config) is not a JSON object")
                try:
                    expected = parameter_count(meta["config"])
                except FastRNNError as exc:
                    raise ModelFileError(f"model file {path!r} has an invalid architecture: {_short(exc)}") from None
                shape, dtype = stored_header(data, "theta")
                if shape != (expected,):
                    raise ModelFileError(
                        f"model file {path!r} is corrupt: its architecture ({_describe(meta['config'])}) has {expected:,} "
                        f"parameters, but it stores {_shape_text(shape)}; nothing was loaded"
                    )
                if dtype.kind not in "fiu":
                    raise ModelFileError(f"model file {path!r} is corrupt: its parameters have dtype {dtype}, not real numbers")
                _checks.check_memory(f"model file {path!r} ({_describe(meta['config'])}: {expected:,} parameters)",
                                     expected * (dtype.itemsize + 8), "load it on a machine with more memory")
                theta = np.array(data["theta"])
        except FastRNNError:
            raise
        except Exception as exc:
            raise ModelFileError(f"model file {path!r} is not a readable fastrnn model ({type(exc).__name__}: {_short(exc)})") from None
        try:
            model = cls(**meta["config"])
        except Exception as exc:
            raise ModelFileError(f"model file {path!r} has an invalid architecture: {_short(exc)}") from None
        if theta.shape != model.theta.shape or not np.all(np.isfinite(theta)):
            raise ModelFileError(f"model file {path!r} is corrupt: parameters of shape {theta.shape} stored, ({model.n_params},) expected, or some are not finite")
        metadata = meta.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise ModelFileError(f"model file {path!r} is corrupt: its metadata is not a JSON object")
        try:
            model.theta[:] = _checks.cast_within_range("its parameters", theta, model.dtype)
        except InvalidArgument as exc:
            raise ModelFileError(f"model file {path!r} is corrupt: {exc}") from None
        model.metadata = dict(metadata or {})
        return model


#: The most bytes a model file's ``meta`` (and a checkpoint's ``train_state``) JSON may hold
#: once decompressed: far above what fastrnn writes (a text model's vocabulary, a run's rows).
META_LIMIT = 256 * 2**20


def parameter_count(config):
    """The number of parameters the architecture ``config`` (:meth:`RNN.config`'s dict) describes.

    Checks the sizes and the cell as the constructor does, in Python integers, and
    allocates nothing; raises InvalidArgument/InvalidType naming a bad field.
    """
    from ._kernels import count_formula

    n_in = _checks.check_int("n_in", config.get("n_in"), minimum=1)
    n_hidden = _checks.check_int("n_hidden", config.get("n_hidden"), minimum=1)
    n_out = _checks.check_int("n_out", config.get("n_out"), minimum=1)
    layers = _checks.check_int("layers", config.get("layers", 1), minimum=1)
    cell = cells.module(_checks.check_choice("cell", config.get("cell", "rnn"), tuple(cells.CELLS)))
    return count_formula(n_in, n_hidden, n_out, layers, cell.G, cell.EXTRA)


def stored_header(data, key):
    """``(shape, dtype)`` of the array ``key`` of an open npz (``numpy.load``'s), from its header alone."""
    from numpy.lib import format as npy

    with data.zip.open(f"{key}.npy") as fh:
        version = npy.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(fh)
        else:
            shape, _, dtype = npy._read_array_header(fh, version)
    return tuple(int(n) for n in shape), np.dtype(dtype)


def check_stored_size(path, data, key, limit, what):
    """Refuse, before reading it, an array ``key`` of the npz ``data`` that would take more than ``limit`` bytes."""
    shape, dtype = stored_header(data, key)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > limit:
        raise ModelFileError(f"model file {path!r} is corrupt: {what} ({key}) would take {_checks.format_bytes(nbytes)} "
                             f"once read, more than fastrnn ever writes ({_checks.format_bytes(limit)}); nothing was loaded")
    return shape, dtype


def _describe(config):
    keys = ("n_in", "n_hidden", "n_out", "layers", "cell")
    return ", ".join(f"{k}={_short(config.get(k), 40)}" for k in keys if k in config)


def _shape_text(shape):
    count = int(np.prod(shape, dtype=object))
    return f"{count:,} values of shape {shape}" if len(shape) != 1 else f"{count:,}"


def _short(value, limit=200):
    """str(value), cut to ``limit`` characters (file contents can be anything)."""
    text = " ".join(str(value).splitlines())  # every line break str.splitlines knows (\x1e, \x85, ...)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_dtype_like(value):
    return isinstance(value, type) or isinstance(value, np.dtype)


class _ParamView(dict):
    """A dict of live views whose keys cannot be rebound (that would detach them)."""

    def __setitem__(self, key, value):
        raise TypeError(f"params[{key!r}] cannot be replaced; write into it instead: model.params[{key!r}][...] = value")
