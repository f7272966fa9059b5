"""fastrnn.torch_interop: PyTorch modules to fastrnn parameters and back, checked against the twins.

A converted module must compute what the plain-numpy twin computes with the converted parameters
(outputs, final states and autograd's gradients, float64), and every module fastrnn cannot
compute must be refused with the attribute named. Skipped without torch, except the test that
fastrnn itself imports without it.
"""

import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from conftest import RTOL_TORCH_GRAD, TOL_TORCH_FORWARD, make_data
from fastrnn.exceptions import InvalidArgument, InvalidType

MODULES = ["rnn-tanh", "rnn-relu", "gru", "lstm"]
FORWARD_TOL = dict(rtol=TOL_TORCH_FORWARD, atol=TOL_TORCH_FORWARD)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def interop(torch):
    from fastrnn import torch_interop

    return torch_interop


def make_module(torch, kind, I, H, layers, batch_first, dtype=None, seed=0, **kwargs):
    """A torch module with PyTorch's own random initialisation (both biases random)."""
    torch.manual_seed(seed)
    dtype = dtype or torch.float64
    common = dict(num_layers=layers, batch_first=batch_first, dtype=dtype, **kwargs)
    if kind.startswith("rnn"):
        return torch.nn.RNN(I, H, nonlinearity=kind.split("-")[1], **common)
    if kind == "gru":
        return torch.nn.GRU(I, H, **common)
    return torch.nn.LSTM(I, H, **common)


def torch_run(torch, module, head, X, state0):
    """Batch-first X (B, T, I), state0 (L, S, B, H) -> top h (B, T, H), final (L, S, B, H), logits (B, T, O)."""
    x = torch.from_numpy(X if module.batch_first else X.transpose(1, 0, 2).copy())
    if isinstance(module, torch.nn.LSTM):
        out, (hn, cn) = module(x, (torch.from_numpy(state0[:, 0].copy()), torch.from_numpy(state0[:, 1].copy())))
        final = torch.stack([hn, cn], dim=1)
    else:
        out, hn = module(x, torch.from_numpy(state0[:, 0].copy()))
        final = hn[:, None]
    if not module.batch_first:
        out = out.transpose(0, 1)
    return out, final, head(out)


def ref_forward(converted, X, head_name, state0):
    """The twin with converted parameters: yhat, top h (B, T, H), final (L, S, B, H)."""
    if converted.cell == "rnn":
        yhat, states = ref.forward(converted.params, X, converted.activation, head_name, h0=state0[:, 0])
        return yhat, states[-1], states[:, :, -1][:, None]
    return ref.gated_forward(converted.cell, converted.params, X, head_name, state0)


def ref_grads(converted, X, Y, mask, head_name, state0):
    p, cell = converted.params, converted.cell
    if cell == "rnn":
        return ref.loss_and_grads(p, X, Y, mask, converted.activation, head_name, h0=state0[:, 0])
    if cell == "gru":
        return ref.gru_loss_and_grads(p, X, Y, mask, head_name, h0=state0[:, 0])[:2]
    return ref.lstm_loss_and_grads(p, X, Y, mask, head_name, h0=state0[:, 0], c0=state0[:, 1])[:2]


# ----------------------------------------------------------------- torch -> fastrnn


@pytest.mark.parametrize("kind", MODULES)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("head_name", ["softmax", "sigmoid", "linear"])
def test_converted_parameters_compute_what_torch_computes(torch, interop, rng, kind, layers, batch_first, head_name):
    from torch_helpers import head_output, torch_loss

    B, T, I, H, O = 3, 6, 3, 4, 2
    module = make_module(torch, kind, I, H, layers, batch_first)
    head = torch.nn.Linear(H, O, dtype=torch.float64)
    converted = interop.params_from_torch(module, head)
    cell = kind.split("-")[0]
    assert converted.cell == cell
    assert (converted.n_in, converted.n_hidden, converted.n_out, converted.layers) == (I, H, O, layers)
    assert converted.batch_first is batch_first
    assert converted.activation == (kind.split("-")[1] if cell == "rnn" else None)
    assert all(v.dtype == np.float64 and v.flags.c_contiguous for v in converted.params.values())

    X, Y, mask = make_data(rng, B, T, I, O, head_name, masked=True)
    state0 = rng.standard_normal((layers, 2 if cell == "lstm" else 1, B, H)) * 0.5
    out, final, z = torch_run(torch, module, head, X, state0)
    yhat_ref, top_ref, final_ref = ref_forward(converted, X, head_name, state0)
    np.testing.assert_allclose(out.detach().numpy(), top_ref, **FORWARD_TOL)
    np.testing.assert_allclose(final.detach().numpy(), final_ref, **FORWARD_TOL)
    np.testing.assert_allclose(head_output(z, head_name).detach().numpy(), yhat_ref, **FORWARD_TOL)

    loss = torch_loss(z, torch.from_numpy(Y), torch.from_numpy(mask), head_name)
    loss.backward()
    loss_ref, grads = ref_grads(converted, X, Y, mask, head_name, state0)
    assert loss_ref == pytest.approx(loss.item(), rel=TOL_TORCH_FORWARD)
    close = dict(rtol=RTOL_TORCH_GRAD, atol=1e-14)
    np.testing.assert_allclose(grads["V"], head.weight.grad.numpy(), **close)
    np.testing.assert_allclose(grads["c"], head.bias.grad.numpy(), **close)
    for l in range(layers):
        np.testing.assert_allclose(grads[f"U{l}"], getattr(module, f"weight_ih_l{l}").grad.numpy(), **close)
        np.testing.assert_allclose(grads[f"W{l}"], getattr(module, f"weight_hh_l{l}").grad.numpy(), **close)
        # b is bias_ih + bias_hh: its gradient is each one's, except the GRU's n block of bias_hh (bn)
        np.testing.assert_allclose(grads[f"b{l}"], getattr(module, f"bias_ih_l{l}").grad.numpy(), **close)
        bias_hh_grad = getattr(module, f"bias_hh_l{l}").grad.numpy()
        if cell == "gru":
            np.testing.assert_allclose(grads[f"b{l}"][: 2 * H], bias_hh_grad[: 2 * H], **close)
            np.testing.assert_allclose(grads[f"bn{l}"], bias_hh_grad[2 * H :], **close)
        else:
            np.testing.assert_allclose(grads[f"b{l}"], bias_hh_grad, **close)


@pytest.mark.parametrize("kind", MODULES)
def test_biases_fold_into_b_except_the_gru_candidate_hidden_bias(torch, interop, kind):
    module = make_module(torch, kind, 2, 3, 2, False)
    p = interop.params_from_torch(module).params
    for l in range(2):
        bias_ih = getattr(module, f"bias_ih_l{l}").detach().numpy()
        bias_hh = getattr(module, f"bias_hh_l{l}").detach().numpy()
        np.testing.assert_array_equal(p[f"U{l}"], getattr(module, f"weight_ih_l{l}").detach().numpy())
        np.testing.assert_array_equal(p[f"W{l}"], getattr(module, f"weight_hh_l{l}").detach().numpy())
        if kind == "gru":
            np.testing.assert_array_equal(p[f"b{l}"], np.concatenate([bias_ih[:6] + bias_hh[:6], bias_ih[6:]]))
            np.testing.assert_array_equal(p[f"bn{l}"], bias_hh[6:])
        else:
            np.testing.assert_array_equal(p[f"b{l}"], bias_ih + bias_hh)
            assert f"bn{l}" not in p


def test_parameters_are_copies_not_views_of_torch_memory(torch, interop):
    module = make_module(torch, "lstm", 2, 3, 1, False)
    p = interop.params_from_torch(module).params
    p["W0"][...] = 0.0
    assert torch.count_nonzero(module.weight_hh_l0) > 0


@pytest.mark.parametrize("kind", MODULES)
def test_float32_module_gives_float32_parameters(torch, interop, kind):
    module = make_module(torch, kind, 2, 3, 2, True, dtype=torch.float32)
    head = torch.nn.Linear(3, 2)
    converted = interop.params_from_torch(module, head)
    assert {v.dtype for v in converted.params.values()} == {np.dtype(np.float32)}
    np.testing.assert_array_equal(converted.params["V"], head.weight.detach().numpy())


@pytest.mark.parametrize("kind", MODULES)
def test_module_without_biases_converts_with_zero_biases(torch, interop, rng, kind):
    module = make_module(torch, kind, 2, 3, 2, True, bias=False)
    head = torch.nn.Linear(3, 2, bias=False, dtype=torch.float64)
    converted = interop.params_from_torch(module, head)
    for name, value in converted.params.items():
        if name.startswith("b") or name == "c":
            np.testing.assert_array_equal(value, 0.0)
    X = rng.standard_normal((2, 4, 2))
    state0 = np.zeros((2, 2 if kind == "lstm" else 1, 2, 3))
    out, _, z = torch_run(torch, module, head, X, state0)
    yhat_ref, top_ref, _ = ref_forward(converted, X, "linear", state0)
    np.testing.assert_allclose(out.detach().numpy(), top_ref, **FORWARD_TOL)
    np.testing.assert_allclose(z.detach().numpy(), yhat_ref, **FORWARD_TOL)


def test_without_a_head_there_is_no_output_layer(torch, interop):
    converted = interop.params_from_torch(make_module(torch, "gru", 2, 3, 1, False))
    assert converted.n_out is None
    assert set(converted.params) == {"U0", "W0", "b0", "bn0"}
    module, head = interop.torch_from_params("gru", converted.params)
    assert head is None
    assert isinstance(module, torch.nn.GRU)


# ----------------------------------------------------------------- fastrnn -> torch, round trips


def random_params(rng, cell, I, H, O, layers, dtype=np.float64):
    if cell == "rnn":
        p = ref.init_params(I, H, O, layers, rng)
    else:
        p = ref.init_gated_params(cell, I, H, O, layers, rng)
    return {k: v.astype(dtype) for k, v in p.items()}


@pytest.mark.parametrize("cell, activation", [("rnn", "tanh"), ("rnn", "relu"), ("gru", None), ("lstm", None)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [True, False])
def test_fastrnn_to_torch_and_back_is_exact(torch, interop, rng, cell, activation, dtype, batch_first):
    params = random_params(rng, cell, 3, 4, 2, 2, dtype)
    module, head = interop.torch_from_params(cell, params, batch_first=batch_first, activation=activation)
    assert module.batch_first is batch_first
    assert module.weight_ih_l0.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    back = interop.params_from_torch(module, head)
    assert (back.cell, back.n_in, back.n_hidden, back.n_out, back.layers) == (cell, 3, 4, 2, 2)
    assert back.activation == activation
    assert back.batch_first is batch_first
    assert set(back.params) == set(params)
    for k in params:
        assert back.params[k].dtype == dtype
        np.testing.assert_array_equal(back.params[k], params[k], err_msg=k)


def test_default_activation_of_the_vanilla_cell_is_tanh(torch, interop, rng):
    module, _ = interop.torch_from_params("rnn", random_params(rng, "rnn", 2, 3, 2, 1))
    assert module.nonlinearity == "tanh"


@pytest.mark.parametrize("kind", MODULES)
@pytest.mark.parametrize("batch_first", [True, False])
def test_torch_to_fastrnn_and_back_computes_the_same(torch, interop, rng, kind, batch_first):
    """The two biases come back folded into bias_ih, so the function, not the biases, is the same."""
    module = make_module(torch, kind, 3, 4, 2, batch_first)
    head = torch.nn.Linear(4, 2, dtype=torch.float64)
    c = interop.params_from_torch(module, head)
    module2, head2 = interop.torch_from_params(c.cell, c.params, batch_first=c.batch_first, activation=c.activation)
    assert type(module2) is type(module)
    assert module2.mode == module.mode
    X = rng.standard_normal((2, 5, 3))
    state0 = rng.standard_normal((2, 2 if kind == "lstm" else 1, 2, 4))
    for a, b in zip(torch_run(torch, module, head, X, state0), torch_run(torch, module2, head2, X, state0)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **FORWARD_TOL)


# ----------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "kind, kwargs, attribute",
    [
        ("gru", dict(bidirectional=True), "module.bidirectional is True"),
        ("rnn-tanh", dict(bidirectional=True), "module.bidirectional is True"),
        ("lstm", dict(proj_size=2), "module.proj_size is 2"),
        ("lstm", dict(dropout=0.25), "module.dropout is 0.25"),
        ("rnn-relu", dict(dropout=0.5), "module.dropout is 0.5"),
    ],
)
def test_modules_fastrnn_cannot_compute_are_refused_naming_the_attribute(torch, interop, kind, kwargs, attribute):
    module = make_module(torch, kind, 2, 3, 2, False, **kwargs)
    with pytest.raises(InvalidArgument, match=attribute):
        interop.params_from_torch(module)


def test_rnn_nonlinearity_other_than_tanh_or_relu_is_refused(torch, interop):
    module = make_module(torch, "rnn-tanh", 2, 3, 1, False)
    module.nonlinearity = "sigmoid"
    with pytest.raises(InvalidArgument, match="module.nonlinearity is 'sigmoid'"):
        interop.params_from_torch(module)


@pytest.mark.parametrize("make", [lambda t: t.nn.GRUCell(2, 3), lambda t: t.nn.Linear(2, 3), lambda t: "lstm"])
def test_a_module_that_is_not_rnn_gru_or_lstm_is_refused(torch, interop, make):
    with pytest.raises(InvalidType, match="module must be a torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM"):
        interop.params_from_torch(make(torch))


def test_half_precision_module_is_refused(torch, interop):
    module = make_module(torch, "gru", 2, 3, 1, False, dtype=torch.float16)
    with pytest.raises(InvalidType, match=r"module.float\(\) or module.double\(\)"):
        interop.params_from_torch(module)


def test_head_of_the_wrong_width_is_refused(torch, interop):
    module = make_module(torch, "lstm", 2, 3, 1, False)
    with pytest.raises(InvalidArgument, match=r"head.in_features is 5 but the module's hidden_size is 3"):
        interop.params_from_torch(module, torch.nn.Linear(5, 2, dtype=torch.float64))


def test_head_that_is_not_linear_or_of_another_dtype_is_refused(torch, interop):
    module = make_module(torch, "gru", 2, 3, 1, False)
    with pytest.raises(InvalidType, match="head must be a torch.nn.Linear"):
        interop.params_from_torch(module, torch.nn.GRU(3, 2))
    with pytest.raises(InvalidType, match="head.weight is torch.float32"):
        interop.params_from_torch(module, torch.nn.Linear(3, 2))


def _without(params, name):
    return {k: v for k, v in params.items() if k != name}


@pytest.mark.parametrize(
    "cell, change, error, message",
    [
        ("rnn", lambda p: _without(p, "b1"), InvalidArgument, "params has no 'b1'"),
        ("gru", lambda p: _without(p, "bn0"), InvalidArgument, "params has no 'bn0'"),
        ("gru", lambda p: _without(p, "V"), InvalidArgument, "params has no 'V'"),
        ("lstm", lambda p: {**p, "bn0": p["b0"][:4]}, InvalidArgument, r"params\['bn0'\] is not a parameter"),
        ("lstm", lambda p: {**p, "W1": p["W1"][:4]}, InvalidArgument, r"params\['W1'\] has shape \(4, 4\)"),
        ("gru", lambda p: {**p, "U0": p["U0"].T}, InvalidArgument, r"params\['U0'\] has shape"),
        ("rnn", lambda p: {**p, "c": p["c"].astype(np.float32)}, InvalidType, r"params\['c'\] is float32"),
        ("rnn", lambda p: {k: v.astype(int) for k, v in p.items()}, InvalidType, r"params\['W0'\] is int"),
        ("rnn", lambda p: "params", InvalidType, "params must be a dict"),
    ],
)
def test_torch_from_params_refuses_bad_parameters(torch, interop, rng, cell, change, error, message):
    params = change(random_params(rng, cell, 3, 4, 2, 2))
    with pytest.raises(error, match=message):
        interop.torch_from_params(cell, params)


@pytest.mark.parametrize("cell", ["LSTM", "elman", None])
def test_torch_from_params_refuses_an_unknown_cell(torch, interop, rng, cell):
    with pytest.raises(InvalidArgument, match=f"cell must be one of 'rnn', 'gru', 'lstm', got {cell!r}"):
        interop.torch_from_params(cell, random_params(rng, "lstm", 2, 3, 2, 1))


@pytest.mark.parametrize("cell, activation", [("rnn", "sigmoid"), ("gru", "relu"), ("lstm", "sigmoid")])
def test_torch_from_params_refuses_an_activation_torch_cannot_compute(torch, interop, rng, cell, activation):
    with pytest.raises(InvalidArgument, match=f"activation is '{activation}'"):
        interop.torch_from_params(cell, random_params(rng, cell, 2, 3, 2, 1), activation=activation)


def test_fastrnn_imports_without_torch():
    """torch is optional: importing fastrnn and the interop module must not import it."""
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "import fastrnn, fastrnn.torch_interop\n"
        "try:\n"
        "    fastrnn.torch_interop.params_from_torch(None)\n"
        "except ImportError as err:\n"
        "    print('needs torch' if 'pip install torch' in str(err) else err)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "needs torch"
