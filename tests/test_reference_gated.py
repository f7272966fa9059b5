"""The plain-numpy GRU and LSTM twins against the definition of a derivative, of truncation, and PyTorch.

Everything gated is tested against these twins later, so they are checked three ways here:
central differences (full BPTT), central differences of the truncated loss itself (every loss
started from the detached state K + 1 steps before it), and torch.nn.GRU / torch.nn.LSTM.
"""

import numpy as np
import pytest

import reference as ref
from conftest import GRADCHECK_TOL, RTOL_TORCH_GRAD, TOL_TORCH_FORWARD, make_data

CELLS = ["gru", "lstm"]
HEADS = ["softmax", "sigmoid", "linear"]


def ref_loss_and_grads(cell, params, X, Y, mask, head, K=None, state0=None):
    """Either twin behind one signature; state0 (L, S, B, H) or None. Returns loss, grads, final (L, S, B, H)."""
    if cell == "gru":
        h0 = None if state0 is None else state0[:, 0]
        loss, grads, hT = ref.gru_loss_and_grads(params, X, Y, mask, head, bptt_truncate=K, h0=h0)
        return loss, grads, hT[:, None]
    h0, c0 = (None, None) if state0 is None else (state0[:, 0], state0[:, 1])
    loss, grads, (hT, cT) = ref.lstm_loss_and_grads(params, X, Y, mask, head, bptt_truncate=K, h0=h0, c0=c0)
    return loss, grads, np.stack([hT, cT], axis=1)


def random_state(rng, cell, L, B, H):
    return rng.standard_normal((L, ref._CELLS[cell][2], B, H)) * 0.5


def assert_grads_close(got, expected, rtol, atol=0.0):
    assert set(got) == set(expected)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=rtol, atol=atol, err_msg=k)


# ----------------------------------------------------------------- central differences, full BPTT


def check_against_finite_differences(rng, cell, head, B, T, I, H, O, L, masked):
    params = ref.init_gated_params(cell, I, H, O, L, rng)
    X, Y, mask = make_data(rng, B, T, I, O, head, masked=masked)
    state0 = random_state(rng, cell, L, B, H)

    def loss_fn(p):
        return ref_loss_and_grads(cell, p, X, Y, mask, head, state0=state0)[0]

    _, analytic, _ = ref_loss_and_grads(cell, params, X, Y, mask, head, state0=state0)
    numeric = ref.numerical_grads(loss_fn, params)
    assert set(analytic) == set(params)
    for k in params:
        assert analytic[k].shape == params[k].shape, k
        assert ref.relative_error(analytic[k], numeric[k]) < GRADCHECK_TOL, k


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("layers", [1, 2])
def test_gated_reference_full_bptt_matches_finite_differences(rng, cell, head, layers):
    check_against_finite_differences(rng, cell, head, B=2, T=5, I=3, H=4, O=3, L=layers, masked=True)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "B, T, I, H, O, L",
    [(1, 1, 1, 1, 1, 1), (1, 1, 2, 3, 2, 2), (3, 4, 2, 1, 2, 2), (1, 7, 2, 3, 1, 1)],
    ids=["all-ones", "T1-2layers", "H1-2layers", "B1-long"],
)
def test_gated_reference_edge_shapes_match_finite_differences(rng, cell, B, T, I, H, O, L):
    check_against_finite_differences(rng, cell, "sigmoid", B, T, I, H, O, L, masked=False)


@pytest.mark.parametrize("cell", CELLS)
def test_gated_reference_masked_steps_do_not_count(rng, cell):
    """A step with mask 0 adds nothing: the same as dropping its target altogether."""
    params = ref.init_gated_params(cell, 2, 3, 2, 2, rng)
    X, Y, _ = make_data(rng, 2, 5, 2, 2, "linear")
    mask = np.ones((2, 5))
    mask[0, 1] = mask[1, 4] = 0.0
    Y_moved = Y.copy()
    Y_moved[0, 1] += 100.0
    Y_moved[1, 4] -= 100.0
    loss, grads, _ = ref_loss_and_grads(cell, params, X, Y, mask, "linear")
    loss_moved, grads_moved, _ = ref_loss_and_grads(cell, params, X, Y_moved, mask, "linear")
    assert loss_moved == loss
    assert_grads_close(grads_moved, grads, rtol=0.0)
    _, grads_unmasked, _ = ref_loss_and_grads(cell, params, X, Y_moved, None, "linear")
    assert np.max(np.abs(grads_unmasked["W0"] - grads["W0"])) > 1e-3


# ----------------------------------------------------------------- truncation


def windowed_loss(cell, base_params, X, Y, mask, head, K, state0):
    """The loss with truncation K by its definition, as a function of the parameters.

    The loss at step t is computed from the state of every layer before step t-K, taken from a
    forward pass with ``base_params`` and held fixed (through h and c alike), then run forward
    over steps t-K..t with the parameters given. Its derivative is the gradient truncated at K.
    """
    B, T, _ = X.shape
    L = ref.layer_count(base_params)
    if mask is None:
        mask = np.ones((B, T))
    held = []
    for i in range(B):
        _, states, _ = ref.gated_forward_sequence(cell, base_params, X[i], [tuple(s[:, i]) for s in state0])
        held.append(states)

    def loss_fn(p):
        total = 0.0
        for i in range(B):
            for t in range(T):
                if mask[i, t] == 0:
                    continue
                start = max(0, t - K)
                s_start = [held[i][l][start] for l in range(L)]
                _, _, z = ref.gated_forward_sequence(cell, p, X[i, start : t + 1], s_start)
                total += ref.step_loss(z[-1], Y[i, t], head)[0]
        return total / B

    return loss_fn


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("K", [0, 1, 3])
def test_gated_truncation_is_the_derivative_of_the_windowed_loss(rng, cell, layers, K):
    B, T, I, H, O = 2, 6, 2, 3, 2
    params = ref.init_gated_params(cell, I, H, O, layers, rng, scale=1.0)
    X, Y, mask = make_data(rng, B, T, I, O, "softmax", masked=True)
    state0 = random_state(rng, cell, layers, B, H)
    loss_fn = windowed_loss(cell, {k: v.copy() for k, v in params.items()}, X, Y, mask, "softmax", K, state0)
    loss, analytic, _ = ref_loss_and_grads(cell, params, X, Y, mask, "softmax", K=K, state0=state0)
    assert loss == pytest.approx(loss_fn(params), rel=1e-13)
    numeric = ref.numerical_grads(loss_fn, params)
    for k in params:
        assert ref.relative_error(analytic[k], numeric[k]) < GRADCHECK_TOL, k


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_gated_truncation_with_K_at_least_T_minus_1_is_full_bptt(rng, cell, layers):
    B, T, H = 3, 6, 4
    params = ref.init_gated_params(cell, 2, H, 2, layers, rng)
    X, Y, mask = make_data(rng, B, T, 2, 2, "softmax", masked=True)
    state0 = random_state(rng, cell, layers, B, H)
    loss_full, g_full, final_full = ref_loss_and_grads(cell, params, X, Y, mask, "softmax", state0=state0)
    for K in (T - 1, T, 3 * T):
        loss_k, g_k, final_k = ref_loss_and_grads(cell, params, X, Y, mask, "softmax", K=K, state0=state0)
        assert loss_k == pytest.approx(loss_full, rel=1e-14)
        assert_grads_close(g_k, g_full, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(final_k, final_full)


@pytest.mark.parametrize("cell", CELLS)
def test_gated_truncation_differs_from_full_bptt(rng, cell):
    """Truncation must cut something when K < T - 1, else the test above proves nothing."""
    params = ref.init_gated_params(cell, 2, 4, 2, 1, rng, scale=1.0)
    X, Y, _ = make_data(rng, 2, 6, 2, 2, "softmax")
    _, g_full, _ = ref_loss_and_grads(cell, params, X, Y, None, "softmax")
    _, g_trunc, _ = ref_loss_and_grads(cell, params, X, Y, None, "softmax", K=1)
    for k in ("U0", "W0", "b0"):
        assert np.max(np.abs(g_full[k] - g_trunc[k])) > 1e-6, k
    # the head does not depend on truncation
    np.testing.assert_allclose(g_full["V"], g_trunc["V"], rtol=1e-14)
    np.testing.assert_allclose(g_full["c"], g_trunc["c"], rtol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_gated_path_length_identity(rng, cell, layers):
    """G_p (computed by path length directly) = grad(K=p) - grad(K=p-1); summed over p <= K it is grad(K).

    Summed over every p < T it is the full BPTT gradient, which a different algorithm computes.
    """
    B, T, H = 2, 6, 3
    params = ref.init_gated_params(cell, 2, H, 2, layers, rng, scale=1.0)
    X, Y, mask = make_data(rng, B, T, 2, 2, "softmax")  # unmasked: every path length has a loss to carry
    state0 = random_state(rng, cell, layers, B, H)
    G = ref.gated_path_gradients(cell, params, X, Y, mask, "softmax", T, state0=state0)
    truncated = [ref_loss_and_grads(cell, params, X, Y, mask, "softmax", K=K, state0=state0)[1] for K in range(T)]
    _, full, _ = ref_loss_and_grads(cell, params, X, Y, mask, "softmax", state0=state0)
    layer_keys = [k for k in params if k not in ("V", "c")]
    for p in range(T):
        for k in layer_keys:
            below = truncated[p - 1][k] if p > 0 else 0.0
            np.testing.assert_allclose(G[p][k], truncated[p][k] - below, rtol=1e-9, atol=1e-13, err_msg=f"{k} p={p}")
            summed = sum(G[q][k] for q in range(p + 1))
            np.testing.assert_allclose(summed, truncated[p][k], rtol=1e-10, atol=1e-14, err_msg=f"{k} K={p}")
        assert np.max(np.abs(G[p]["W0"])) > 0.0
    for k in layer_keys:
        np.testing.assert_allclose(sum(G[p][k] for p in range(T)), full[k], rtol=1e-10, atol=1e-14, err_msg=k)


# ----------------------------------------------------------------- PyTorch


def torch_twin(cell, params, batch_first):
    """torch.nn.GRU / LSTM (float64) + nn.Linear holding the twin's parameters.

    PyTorch's bias_hh takes nothing but the GRU's bn; the rest of b goes to bias_ih.
    """
    torch = pytest.importorskip("torch")
    L = ref.layer_count(params)
    H = params["W0"].shape[1]
    I = params["U0"].shape[1]
    O = params["V"].shape[0]
    module_type = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
    module = module_type(I, H, num_layers=L, batch_first=batch_first, dtype=torch.float64)
    head = torch.nn.Linear(H, O, dtype=torch.float64)
    with torch.no_grad():
        for l in range(L):
            bias_hh = np.zeros(ref.GATES[cell] * H)
            if cell == "gru":
                bias_hh[2 * H :] = params[f"bn{l}"]
            getattr(module, f"weight_ih_l{l}").copy_(torch.from_numpy(params[f"U{l}"]))
            getattr(module, f"weight_hh_l{l}").copy_(torch.from_numpy(params[f"W{l}"]))
            getattr(module, f"bias_ih_l{l}").copy_(torch.from_numpy(params[f"b{l}"]))
            getattr(module, f"bias_hh_l{l}").copy_(torch.from_numpy(bias_hh))
        head.weight.copy_(torch.from_numpy(params["V"]))
        head.bias.copy_(torch.from_numpy(params["c"]))
    return module, head


def run_torch(cell, module, head, X, state0, batch_first):
    """Batch-first X (B, T, I) and state0 (L, S, B, H) through the torch modules.

    Returns the top layer's h (B, T, H), the final state (L, S, B, H) and the logits (B, T, O), batch-first.
    """
    import torch

    x = torch.from_numpy(X if batch_first else X.transpose(1, 0, 2).copy())
    s0 = torch.from_numpy(state0)
    out, final = module(x, s0[:, 0].contiguous() if cell == "gru" else (s0[:, 0].contiguous(), s0[:, 1].contiguous()))
    if not batch_first:
        out = out.transpose(0, 1)
    final = final[None] if cell == "gru" else torch.stack(final)
    return out, final.transpose(0, 1), head(out)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head_name", HEADS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("batch_first", [True, False])
def test_gated_reference_equals_torch(rng, cell, head_name, layers, batch_first):
    """Forward outputs to 1e-12 and full-BPTT gradients to rtol 1e-9, float64, against autograd."""
    torch = pytest.importorskip("torch")
    from torch_helpers import head_output, torch_loss

    B, T, I, H, O = 3, 7, 3, 5, 4
    params = ref.init_gated_params(cell, I, H, O, layers, rng)
    X, Y, mask = make_data(rng, B, T, I, O, head_name, masked=True)
    state0 = random_state(rng, cell, layers, B, H)
    module, head = torch_twin(cell, params, batch_first)

    out, final, z = run_torch(cell, module, head, X, state0, batch_first)
    yhat_ref, top_ref, final_ref = ref.gated_forward(cell, params, X, head_name, state0)
    tol = dict(rtol=TOL_TORCH_FORWARD, atol=TOL_TORCH_FORWARD)
    np.testing.assert_allclose(out.detach().numpy(), top_ref, **tol)
    np.testing.assert_allclose(final.detach().numpy(), final_ref, **tol)
    np.testing.assert_allclose(head_output(z, head_name).detach().numpy(), yhat_ref, **tol)

    loss = torch_loss(z, torch.from_numpy(Y), torch.from_numpy(mask), head_name)
    loss.backward()
    loss_ref, grads, final_ref2 = ref_loss_and_grads(cell, params, X, Y, mask, head_name, state0=state0)
    assert loss_ref == pytest.approx(loss.item(), rel=TOL_TORCH_FORWARD)
    np.testing.assert_array_equal(final_ref2, final_ref)
    autograd = {"V": head.weight.grad, "c": head.bias.grad}
    for l in range(layers):
        autograd[f"U{l}"] = getattr(module, f"weight_ih_l{l}").grad
        autograd[f"W{l}"] = getattr(module, f"weight_hh_l{l}").grad
        autograd[f"b{l}"] = getattr(module, f"bias_ih_l{l}").grad
        bias_hh_grad = getattr(module, f"bias_hh_l{l}").grad
        if cell == "gru":
            autograd[f"bn{l}"] = bias_hh_grad[2 * H :]
            # r and z see bias_ih + bias_hh only through their sum
            np.testing.assert_allclose(bias_hh_grad[: 2 * H], grads[f"b{l}"][: 2 * H], rtol=RTOL_TORCH_GRAD, atol=1e-14)
        else:
            np.testing.assert_allclose(bias_hh_grad, grads[f"b{l}"], rtol=RTOL_TORCH_GRAD, atol=1e-14)
    assert_grads_close(grads, {k: v.numpy() for k, v in autograd.items()}, rtol=RTOL_TORCH_GRAD, atol=1e-14)
