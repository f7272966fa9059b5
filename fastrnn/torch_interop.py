"""Conversion between PyTorch's recurrent modules and fastrnn's named parameter arrays.

torch is optional: it is imported inside the functions, so fastrnn works without it.

PyTorch keeps two biases per layer, ``bias_ih`` and ``bias_hh``; fastrnn keeps their sum ``b``
wherever only the sum matters. The one place where it does not is the GRU's candidate gate,
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``: ``r`` multiplies ``b_hn``, so fastrnn keeps it
apart as ``bn``. Per layer ``l``, with ``G`` gates stacked in PyTorch's order (RNN: 1; GRU: r, z, n;
LSTM: i, f, g, o) and ``I_l`` the layer's input width::

    U{l} = weight_ih_l{l}   (G*H, I_l)
    W{l} = weight_hh_l{l}   (G*H, H)
    b{l} = bias_ih_l{l} + bias_hh_l{l}   (G*H,)   GRU: bias_hh's n block left out
    bn{l} = bias_hh_l{l}[2H:]            (H,)     GRU only

and an ``nn.Linear`` head gives ``V = weight`` (O, H) and ``c = bias`` (O,). A module without biases
converts with zero biases. Going back, :func:`torch_from_params` puts ``b`` in ``bias_ih`` and
zeros (GRU: ``bn`` in the n block) in ``bias_hh``: the same function, not the same two biases.
"""

from typing import NamedTuple

import numpy as np

from .exceptions import InvalidArgument, InvalidType

#: gates per cell; the vanilla cell is "rnn"
GATES = {"rnn": 1, "gru": 3, "lstm": 4}

def _torch_names():
    """torch.nn.RNN's nonlinearity -> fastrnn's activation (the activations that declare one)."""
    from .activations import TORCH_NAMES

    return TORCH_NAMES


class TorchParams(NamedTuple):
    """What :func:`params_from_torch` reads from a module (and an optional head)."""

    cell: str  #: "rnn", "gru" or "lstm"
    n_in: int
    n_hidden: int
    n_out: int | None  #: None without a head
    layers: int
    params: dict  #: name -> ndarray (U0, W0, b0, [bn0], ..., [V, c]), float32 or float64 as the module
    batch_first: bool
    activation: str | None  #: nn.RNN's nonlinearity ("tanh" or "relu"); None for the gated cells


def _import_torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError("fastrnn's PyTorch conversion needs torch: pip install torch") from err
    return torch


def _module_cell(torch, module):
    nn = torch.nn
    if isinstance(module, nn.LSTM):
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    if isinstance(module, nn.RNN):
        return "rnn"
    raise InvalidType(
        f"module must be a torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM, got {type(module).__name__}"
        " (single-step cells such as nn.GRUCell are not converted)"
    )


def _check_module(torch, module, cell):
    """Refuse what fastrnn cannot compute, naming the attribute; return nn.RNN's activation."""
    if module.bidirectional:
        raise InvalidArgument(
            "module.bidirectional is True; fastrnn runs one direction only: convert a module built with bidirectional=False"
        )
    if getattr(module, "proj_size", 0) > 0:
        raise InvalidArgument(
            f"module.proj_size is {module.proj_size}; fastrnn's LSTM has no projection: convert a module built with proj_size=0"
        )
    if module.dropout > 0:
        raise InvalidArgument(
            f"module.dropout is {module.dropout}; fastrnn has no dropout between layers: set module.dropout = 0 first"
        )
    activation = None
    if cell == "rnn":
        activation = _torch_names().get(module.nonlinearity)
        if activation is None or module.mode != "RNN_" + module.nonlinearity.upper():
            raise InvalidArgument(
                f"module.nonlinearity is {module.nonlinearity!r}; fastrnn converts nn.RNN with "
                f"{' or '.join(repr(n) for n in _torch_names())} only"
            )
    dtype = module.weight_ih_l0.dtype
    if dtype not in (torch.float32, torch.float64):
        raise InvalidType(
            f"module's parameters are {dtype}; fastrnn computes in float32 or float64: call module.float() or module.double() first"
        )
    return activation


def _to_numpy(tensor):
    return np.array(tensor.detach().cpu().numpy(), copy=True, order="C")


def params_from_torch(module, head=None):
    """Read an ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM`` (and an optional ``nn.Linear`` head) as fastrnn parameters.

    Parameters
    ----------
    module : torch.nn.RNN (nonlinearity 'tanh' or 'relu'), torch.nn.GRU or torch.nn.LSTM
        unidirectional, without projections (LSTM proj_size=0) and with dropout=0; batch_first either way
    head : torch.nn.Linear or None
        the output layer, with in_features equal to the module's hidden_size

    Returns
    -------
    TorchParams
        ``(cell, n_in, n_hidden, n_out, layers, params, batch_first, activation)``. ``params`` holds
        copies (float32 or float64, as the module) with fastrnn's names and shapes; ``n_out`` is
        None and ``V``, ``c`` are absent when ``head`` is None.
    """
    torch = _import_torch()
    cell = _module_cell(torch, module)
    activation = _check_module(torch, module, cell)
    H = module.hidden_size
    layers = module.num_layers
    np_dtype = np.float64 if module.weight_ih_l0.dtype == torch.float64 else np.float32
    params = {}
    for l in range(layers):
        params[f"U{l}"] = _to_numpy(getattr(module, f"weight_ih_l{l}"))
        params[f"W{l}"] = _to_numpy(getattr(module, f"weight_hh_l{l}"))
        if module.bias:
            bias_ih = _to_numpy(getattr(module, f"bias_ih_l{l}"))
            bias_hh = _to_numpy(getattr(module, f"bias_hh_l{l}"))
        else:
            bias_ih = bias_hh = np.zeros(GATES[cell] * H, dtype=np_dtype)
        if cell == "gru":
            b = bias_ih.copy()
            b[: 2 * H] += bias_hh[: 2 * H]  # r and z see only the sum
            params[f"b{l}"] = b
            params[f"bn{l}"] = bias_hh[2 * H :].copy()  # r multiplies b_hn, so it stays apart
        else:
            params[f"b{l}"] = bias_ih + bias_hh
    n_out = None
    if head is not None:
        if not isinstance(head, torch.nn.Linear):
            raise InvalidType(f"head must be a torch.nn.Linear or None, got {type(head).__name__}")
        if head.in_features != H:
            raise InvalidArgument(
                f"head.in_features is {head.in_features} but the module's hidden_size is {H}; pass a head built as nn.Linear({H}, n_out)"
            )
        if head.weight.dtype != module.weight_ih_l0.dtype:
            raise InvalidType(
                f"head.weight is {head.weight.dtype} but the module's parameters are {module.weight_ih_l0.dtype};"
                " convert both to one dtype (.float() or .double())"
            )
        n_out = head.out_features
        params["V"] = _to_numpy(head.weight)
        params["c"] = _to_numpy(head.bias) if head.bias is not None else np.zeros(n_out, dtype=np_dtype)
    return TorchParams(cell, module.input_size, H, n_out, layers, params, bool(module.batch_first), activation)


def _check_params(cell, params, activation):
    """Shapes and dtype of fastrnn parameters; returns n_in, n_hidden, n_out (None without V, c), layers, dtype."""
    if cell not in GATES:
        raise InvalidArgument(f"cell must be one of {', '.join(repr(c) for c in GATES)}, got {cell!r}")
    if cell == "rnn" and activation not in _torch_names().values():
        raise InvalidArgument(f"activation is {activation!r}; torch.nn.RNN computes "
                              f"{' or '.join(repr(n) for n in _torch_names().values())} only")
    if cell != "rnn" and activation not in (None, "tanh"):
        raise InvalidArgument(f"activation is {activation!r}; the {cell} cell has none to set: leave activation=None")
    if not isinstance(params, dict) or "W0" not in params:
        raise InvalidType("params must be a dict of arrays with fastrnn's names (U0, W0, b0, ...)")
    W0 = np.asarray(params["W0"])
    if W0.ndim != 2:
        raise InvalidArgument(f"params['W0'] has shape {W0.shape}; it must be (G*H, H)")
    H = W0.shape[1]
    G = GATES[cell]
    layers = 0
    while f"W{layers}" in params:
        layers += 1
    n_in = np.shape(params.get("U0", ()))[-1] if np.ndim(params.get("U0", ())) == 2 else None
    expected = {}
    for l in range(layers):
        expected[f"U{l}"] = (G * H, n_in if l == 0 else H)
        expected[f"W{l}"] = (G * H, H)
        expected[f"b{l}"] = (G * H,)
        if cell == "gru":
            expected[f"bn{l}"] = (H,)
    n_out = None
    if "V" in params or "c" in params:
        n_out = np.shape(params.get("V", ()))[0] if np.ndim(params.get("V", ())) == 2 else None
        expected["V"] = (n_out, H)
        expected["c"] = (n_out,)
    for name in params:
        if name not in expected:
            raise InvalidArgument(f"params[{name!r}] is not a parameter of a {layers}-layer {cell} cell; remove it")
    dtype = W0.dtype
    if dtype not in (np.float32, np.float64):
        raise InvalidType(f"params['W0'] is {dtype}; pass float32 or float64 arrays")
    for name, shape in expected.items():
        if name not in params:
            raise InvalidArgument(f"params has no {name!r}; a {layers}-layer {cell} cell needs it, shape {shape}")
        arr = np.asarray(params[name])
        if arr.shape != shape:
            raise InvalidArgument(f"params[{name!r}] has shape {arr.shape}; a {cell} cell with H={H} needs {shape}")
        if arr.dtype != dtype:
            raise InvalidType(f"params[{name!r}] is {arr.dtype} but params['W0'] is {dtype}; pass one dtype")
    return n_in, H, n_out, layers, dtype


def torch_from_params(cell, params, batch_first=False, activation=None):
    """Build PyTorch modules holding fastrnn parameters.

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm"}
    params : dict of ndarray
        fastrnn's names and shapes (U0, W0, b0, [bn0], ..., and optionally V, c), all float32 or all
        float64; the modules get that dtype
    batch_first : bool
        the module's ``batch_first``
    activation : {"tanh", "relu"} or None
        nn.RNN's nonlinearity for ``cell="rnn"`` (None means "tanh"); None for the gated cells

    Returns
    -------
    (module, head)
        ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` with ``bias_ih = b`` and ``bias_hh = 0`` (GRU: ``bn``
        in its n block), and an ``nn.Linear`` with ``weight = V``, ``bias = c``, or None without V, c.
    """
    torch = _import_torch()
    if cell == "rnn" and activation is None:
        activation = "tanh"
    n_in, H, n_out, layers, dtype = _check_params(cell, params, activation)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    kwargs = dict(num_layers=layers, batch_first=batch_first, dtype=torch_dtype)
    if cell == "rnn":
        torch_name = {v: k for k, v in _torch_names().items()}[activation]
        module = torch.nn.RNN(n_in, H, nonlinearity=torch_name, **kwargs)
    elif cell == "gru":
        module = torch.nn.GRU(n_in, H, **kwargs)
    else:
        module = torch.nn.LSTM(n_in, H, **kwargs)
    head = torch.nn.Linear(H, n_out, dtype=torch_dtype) if n_out is not None else None
    with torch.no_grad():
        for l in range(layers):
            bias_hh = np.zeros(GATES[cell] * H, dtype=dtype)
            if cell == "gru":
                bias_hh[2 * H :] = params[f"bn{l}"]
            getattr(module, f"weight_ih_l{l}").copy_(torch.from_numpy(np.ascontiguousarray(params[f"U{l}"])))
            getattr(module, f"weight_hh_l{l}").copy_(torch.from_numpy(np.ascontiguousarray(params[f"W{l}"])))
            getattr(module, f"bias_ih_l{l}").copy_(torch.from_numpy(np.ascontiguousarray(params[f"b{l}"])))
            getattr(module, f"bias_hh_l{l}").copy_(torch.from_numpy(bias_hh))
        if head is not None:
            head.weight.copy_(torch.from_numpy(np.ascontiguousarray(params["V"])))
            head.bias.copy_(torch.from_numpy(np.ascontiguousarray(params["c"])))
    return module, head
