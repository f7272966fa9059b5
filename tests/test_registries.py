"""The optimizer and activation registries: AdamW and softsign against references written from the math
(and PyTorch), on every driver; dispatch derived from the registries raises on an unknown code; the
options users see come from the registries."""

import json

import numpy as np
import pytest

import fastrnn
import reference as ref
from conftest import ATOL_TWIN, RTOL_TWIN, assert_one_line_error, make_data, model_from_params, run_cli
from fastrnn import _small, _train_kernel, activations, dispatch, engine, metrics, optim, optimizers, settings
from fastrnn.cells import rnn


def _flat(model, grads):
    return np.concatenate([grads[k].ravel() for k in model.param_names])


# ------------------------------------------------------------------ AdamW


@pytest.mark.parametrize("weight_decay,clip", [(0.01, None), (0.3, 2.0), (0.0, None)])
def test_adamw_steps_match_the_reference(rng, weight_decay, clip):
    model = fastrnn.RNN(3, 5, 2, seed=1)
    theta_ref = model.theta.copy()
    m, v = np.zeros_like(theta_ref), np.zeros_like(theta_ref)
    opt = fastrnn.Optimizer("adamw", lr=0.05, weight_decay=weight_decay, clip_norm=clip)
    X, Y, _ = make_data(rng, 4, 6, 3, 2, "softmax")
    for t in range(1, 7):
        _, grads = model.loss_and_grads(X, Y)
        g, _ = ref.clip(_flat(model, grads), clip_norm=clip)
        theta_ref, m, v = ref.adamw(theta_ref, g, m, v, t, 0.05, weight_decay=weight_decay)
        opt.step(model, grads)
        np.testing.assert_allclose(model.theta, theta_ref, rtol=1e-12, atol=1e-15)


def test_adamw_without_weight_decay_is_adam_number_for_number(rng):
    a, b = fastrnn.RNN(3, 5, 2, seed=1), fastrnn.RNN(3, 5, 2, seed=1)
    oa, ob = fastrnn.Optimizer("adam", lr=0.02), fastrnn.Optimizer("adamw", lr=0.02, weight_decay=0.0)
    X, Y, _ = make_data(rng, 4, 6, 3, 2, "softmax")
    for _ in range(5):
        oa.step(a, a.loss_and_grads(X, Y)[1])
        ob.step(b, b.loss_and_grads(X, Y)[1])
    np.testing.assert_array_equal(a.theta, b.theta)


def test_adamw_matches_torch_optim_adamw(rng):
    torch = pytest.importorskip("torch")
    theta0 = rng.standard_normal(40)
    grads = rng.standard_normal((6, 40))
    p = torch.nn.Parameter(torch.tensor(theta0.copy(), dtype=torch.float64))
    topt = torch.optim.AdamW([p], lr=0.03, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.2)
    theta, state = theta0.copy(), np.zeros((2, 40))
    hyper = optim.hyper_array(beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.2)
    for t, g in enumerate(grads, start=1):
        p.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
        optim.apply_update(optim.ADAMW, theta, g.copy(), state, t, 0.03, hyper)
        np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_adamw_defaults_are_pytorchs():
    torch = pytest.importorskip("torch")
    defaults = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))]).defaults
    assert optim.HYPER_DEFAULTS["weight_decay"] == defaults["weight_decay"] == 0.01
    assert (optim.HYPER_DEFAULTS["beta1"], optim.HYPER_DEFAULTS["beta2"]) == defaults["betas"]
    assert optim.HYPER_DEFAULTS["eps"] == defaults["eps"]


def _adamw_chunk(fn, model, X, Y, B, n, wd, extra=()):
    hstate = np.zeros(engine.state_size(model, B))
    losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, dtype=np.int64)
    state = np.zeros((2, model.n_params))
    buf = np.empty(_train_kernel.chunk_scratch_size(X.shape[1], B, model.dims, model.n_params))
    done = fn(model.theta, model.dims, -1, X, Y, np.zeros((0, 0)), B, optim.ADAMW, 0.05,
              optim.hyper_array(weight_decay=wd), state, 0, 0.0, 0.0, hstate, np.ones(n, np.int64), buf, losses, norms,
              errors, *extra)
    return done, losses


def test_adamw_trains_alike_on_the_small_and_the_general_kernel_and_as_the_reference(rng):
    """Three AdamW iterations of a small model (each from a zero state) on both one-model kernels: the
    same numbers bit for bit, and those of the reference's gradients with the reference's AdamW."""
    n, B, T, I, H, O, wd = 3, 2, 5, 3, 4, 2, 0.1
    X, Y, _ = make_data(rng, n * B, T, I, O, "softmax")
    params = ref.init_params(I, H, O, 1, rng, scale=0.8)
    small, general = model_from_params(params, "tanh", "softmax"), model_from_params(params, "tanh", "softmax")
    assert dispatch.small_fits(small.dims, T, B)
    got = _adamw_chunk(_small.train_chunk, small, X, Y, B, n, wd)
    want = _adamw_chunk(_train_kernel.train_chunk_general, general, X, Y, B, n, wd, (True, None))
    assert got[0] == want[0] == n
    np.testing.assert_array_equal(small.theta, general.theta)
    np.testing.assert_array_equal(got[1], want[1])
    names = small.param_names
    theta = np.concatenate([params[k].ravel() for k in names])
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for it in range(n):
        rows = slice(it * B, (it + 1) * B)
        p = {}
        o = 0
        for k in names:
            p[k] = theta[o : o + params[k].size].reshape(params[k].shape)
            o += params[k].size
        loss, g = ref.loss_and_grads(p, X[rows], Y[rows], None, "tanh", "softmax")
        np.testing.assert_allclose(got[1][it], loss, rtol=RTOL_TWIN)
        theta, m, v = ref.adamw(theta, np.concatenate([g[k].ravel() for k in names]), m, v, it + 1, 0.05,
                                weight_decay=wd)
    np.testing.assert_allclose(small.theta, theta, rtol=RTOL_TWIN, atol=ATOL_TWIN)


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("shape", [dict(), dict(hidden=40)], ids=["small", "general"])
def test_adamw_runs_in_train_and_train_many_and_weight_decay_acts(shape):
    """train (small or general driver) and train_many (many models) give the same AdamW run, and
    weight_decay changes it (the setting reaches the kernel). At hidden 40 train's products go to
    BLAS and train_many's to hand loops: the same run to rounding."""
    base = dict(task="binary", iters=60, log_every=30, optimizer="adamw", lr=0.01, **shape)
    one = fastrnn.train(seed=0, weight_decay=0.1, **base)
    many = fastrnn.training.train_many([dict(seed=0, weight_decay=0.1, **base), dict(seed=1, **base)])
    rtol = 0.0 if not shape else RTOL_TWIN
    np.testing.assert_allclose(many[0].model.theta, one.model.theta, rtol=rtol, atol=0.0 if not shape else ATOL_TWIN)
    np.testing.assert_allclose(many[0].history["loss"].to_numpy(), one.history["loss"].to_numpy(), rtol=rtol)
    assert one.settings["weight_decay"] == 0.1 and many[1].settings["weight_decay"] == 0.01
    other = fastrnn.train(seed=0, weight_decay=0.0, **base)
    assert not np.array_equal(other.model.theta, one.model.theta)


def test_a_text_run_with_adamw_takes_the_general_driver_and_says_why():
    model = fastrnn.RNN(30, 100, 30, head="softmax")
    choice = dispatch.choose_kernel(model.dims, model.dtype, 25, 1, opt=optim.ADAMW, chars=True)
    assert choice.name == "general"
    assert "Adagrad or RMSprop" in choice.reason
    assert dispatch.choose_kernel(model.dims, model.dtype, 25, 1, opt=optim.ADAGRAD, chars=True).name == "text"
    run = fastrnn.train(task="text", optimizer="adamw", lr=0.002, iters=4, log_every=2)
    assert run.kernel.name == "general" and "Adagrad or RMSprop" in run.kernel.reason
    assert run.history["loss"].notna().all()


def test_an_optimizer_setting_for_another_optimizer_is_refused():
    with pytest.raises(fastrnn.InvalidArgument, match="weight_decay=0.1 applies to optimizer='adamw' only"):
        fastrnn.train(task="binary", iters=10, optimizer="adam", weight_decay=0.1)
    with pytest.raises(fastrnn.InvalidArgument, match="momentum=0.5 applies to optimizer='momentum' only"):
        fastrnn.fit(fastrnn.RNN(2, 3, 2), np.zeros((4, 3, 2)), np.eye(2)[np.zeros((4, 3), int)], optimizer="adamw",
                    momentum=0.5)
    with pytest.raises(fastrnn.InvalidArgument, match="weight_decay must be at least 0"):
        fastrnn.Optimizer("adamw", weight_decay=-1.0)
    with pytest.raises(fastrnn.InvalidArgument, match="unknown optimizer setting 'betta1'"):
        fastrnn.Optimizer("adam", betta1=0.5)


def test_fit_takes_weight_decay_and_records_it(rng):
    X, Y, _ = make_data(rng, 8, 5, 3, 2, "softmax")
    runs = [fastrnn.fit(fastrnn.RNN(3, 4, 2, seed=0), X, Y, epochs=2, optimizer="adamw", weight_decay=wd) for wd in (0.5, 0.0)]
    assert runs[0].settings["weight_decay"] == 0.5
    assert not np.array_equal(runs[0].model.theta, runs[1].model.theta)
    with pytest.raises(fastrnn.InvalidType, match="unexpected keyword argument 'weight_decy'"):
        fastrnn.fit(fastrnn.RNN(3, 4, 2), X, Y, optimizer="adamw", weight_decy=0.5)


# ------------------------------------------------------------------ softsign


def test_softsign_and_its_derivative_from_h_match_the_math():
    a = np.linspace(-50.0, 50.0, 1001)
    h = activations.apply("softsign", a)
    np.testing.assert_allclose(h, a / (1 + np.abs(a)), rtol=1e-15)
    np.testing.assert_allclose(activations.derivative("softsign", h), ref.activation_grad(a, "softsign"), rtol=1e-12)
    d = np.zeros_like(h)  # the online rules' D_t
    rnn.derivative(rnn.ACTIVATIONS["softsign"], h.size, h, 0, d, 0)
    np.testing.assert_allclose(d, ref.activation_grad(a, "softsign"), rtol=1e-12)


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_softsign_gradients_match_torch_autograd(rng, head):
    """A one-layer softsign RNN written with torch ops, differentiated by autograd, against the kernel."""
    torch = pytest.importorskip("torch")
    B, T, I, H, O = 2, 5, 3, 4, 2
    params = ref.init_params(I, H, O, 1, rng, scale=0.8)
    X, Y, _ = make_data(rng, B, T, I, O, head)
    model = model_from_params(params, "softsign", head)
    loss, grads = model.loss_and_grads(X, Y)
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    x, y = torch.tensor(X), torch.tensor(Y)
    h = torch.zeros(B, H, dtype=torch.float64)
    total = 0.0
    for t in range(T):
        h = torch.nn.functional.softsign(x[:, t] @ p["U0"].T + h @ p["W0"].T + p["b0"])
        z = h @ p["V"].T + p["c"]
        if head == "softmax":
            total = total - (y[:, t] * torch.log_softmax(z, dim=1)).sum()
        else:
            total = total + torch.nn.functional.binary_cross_entropy_with_logits(z, y[:, t], reduction="sum")
    total = total / B
    total.backward()
    assert loss == pytest.approx(total.item(), rel=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], p[k].grad.numpy(), rtol=1e-9, atol=1e-13, err_msg=k)


def test_softsign_trains_on_the_lean_and_lanes_kernels_as_on_the_general_one():
    """Binary addition with softsign: the headline's lean kernel (train), the lanes kernel (train_many of
    lean runs) and the general driver (forced) give the same numbers."""
    base = dict(task="binary", iters=200, log_every=100, activation="softsign", optimizer="sgd", lr=0.5)
    runs = [fastrnn.train(seed=s, **base) for s in (0, 1)]
    assert runs[0].kernel.name == "small-lean"
    many = fastrnn.training.train_many([dict(seed=s, **base) for s in (0, 1)])
    assert many[0].kernel.name == "lanes-sgd"
    for a, b in zip(runs, many):
        np.testing.assert_array_equal(a.model.theta, b.model.theta)
        np.testing.assert_array_equal(a.history["loss"].to_numpy(), b.history["loss"].to_numpy())


def test_softsign_on_the_forced_general_driver_equals_the_lean_kernel(monkeypatch):
    base = dict(task="binary", iters=200, log_every=100, activation="softsign", seed=3)
    fast = fastrnn.train(**base)
    monkeypatch.setenv("FASTRNN_KERNEL", "general")
    general = fastrnn.train(**base)
    assert (fast.kernel.name, general.kernel.name) == ("small-lean", "general")
    np.testing.assert_array_equal(fast.model.theta, general.model.theta)


# ------------------------------------------------------------------ unknown codes raise


UNKNOWN = 99


def test_apply_update_raises_on_an_unknown_optimizer_code():
    theta, grad, state = np.ones(4), np.ones(4), np.zeros((2, 4))
    with pytest.raises(ValueError, match="unknown optimizer code"):
        optim.apply_update(UNKNOWN, theta, grad, state, 1, 0.1, optim.hyper_array())
    np.testing.assert_array_equal(theta, np.ones(4))  # nothing ran


@pytest.mark.parametrize("call", [
    lambda: rnn.forward_step(UNKNOWN, 3, np.ones(3), 0, np.ones(3), np.zeros(3), 0),
    lambda: rnn.backward_step(UNKNOWN, 3, np.ones(6), 0, np.ones(3), 0, 3),
    lambda: rnn.derivative(UNKNOWN, 3, np.ones(3), 0, np.zeros(3), 0),
    lambda: _small._slope(UNKNOWN, np.ones((2, 3)), 0, np.zeros((2, 3)), 0),
    lambda: _small._activate(UNKNOWN, np.ones((2, 3)), 0, 1, np.zeros((2, 3)), 0),
    lambda: _small._derive(UNKNOWN, np.ones((3, 3)), 0, 1, np.ones((2, 3)), 0),
    lambda: _small._activate_lanes(UNKNOWN, np.ones((2, 3, 4)), 0, 1, np.zeros((2, 3, 4)), 0),
    lambda: _small._derive_lanes(UNKNOWN, np.ones((3, 3, 4)), 0, 1, np.ones((2, 3, 4)), 0),
], ids=["cell-forward", "cell-backward", "cell-derivative", "lean-slope", "lean-activate", "lean-derive", "lanes-activate",
        "lanes-derive"])
def test_every_activation_dispatch_raises_on_an_unknown_code(call):
    with pytest.raises(ValueError, match="unknown activation code"):
        call()


@pytest.mark.usefixtures("kernel_choice")
def test_a_model_with_an_unknown_activation_code_raises_instead_of_running_another(rng):
    model = fastrnn.RNN(2, 3, 1, head="sigmoid")
    model.dims[4] = UNKNOWN
    X, Y, _ = make_data(rng, 1, 4, 2, 1, "sigmoid")
    with pytest.raises(ValueError, match="unknown activation code"):
        model.loss_and_grads(X, Y)


def test_the_numpy_forms_refuse_an_unknown_activation():
    with pytest.raises(KeyError):
        activations.apply("swish", np.zeros(2))


# ------------------------------------------------------------------ the registries and what users see


def test_the_option_lists_come_from_the_registries():
    from fastrnn.cli import _activation_names

    assert settings.get("optimizer").choice_list() == tuple(optimizers.OPTIMIZERS) == tuple(m.NAME for m in optimizers.MODULES)
    assert settings.get("activation").choice_list() == tuple(activations.ACTIVATIONS) == tuple(_activation_names())
    assert "adamw" in optim.OPTIMIZERS and "softsign" in rnn.ACTIVATIONS
    for h in optimizers.OPTIONS:  # each optimizer's own options are training settings, sweepable
        assert settings.get(h.name).default == h.default
        assert settings.parse(h.name, "0.5") == 0.5
    assert {h.name for h in optimizers.OPTIONS} == {"momentum", "weight_decay"}


def test_the_hyper_array_keeps_its_layout_and_each_update_reads_its_own_settings():
    assert optimizers.HYPER_NAMES == ("momentum", "beta1", "beta2", "eps", "decay", "weight_decay")
    for m in optimizers.MODULES:
        for h in m.SETTINGS:
            assert f"hyper[{optimizers.HYPER_INDEX[h.name]}]" in optim.apply_update.source


def test_two_tasks_declaring_one_parameter_differently_raise():
    from fastrnn.tasks import TASKS

    lag = settings.get("lag")
    other = settings.Setting("lag", "int", "another task's lag.", 3, minimum=0)

    class Mine(TASKS["recall"]):
        PARAMS = (other,)

    class Agrees(TASKS["recall"]):
        PARAMS = (lag,)

    with pytest.raises(ImportError, match="'recall' and 'mine' both declare the setting 'lag'"):
        settings.task_params({**TASKS, "mine": Mine})
    assert settings.task_params({**TASKS, "agrees": Agrees}) == settings.task_params(TASKS)

    class Clash(TASKS["recall"]):
        PARAMS = (settings.Setting("lr", "float", "a task's lr.", 0.1),)

    with pytest.raises(ImportError, match="'lr', which is a training setting"):
        settings.task_params({**TASKS, "clash": Clash})


def test_cli_trains_adamw_with_weight_decay_and_softsign(capsys, tmp_path):
    csv = tmp_path / "run.csv"
    code, out, err = run_cli(capsys, "train", "--task", "binary", "--iters", "40", "--log-every", "20", "--optimizer",
                             "adamw", "--weight-decay", "0.1", "--lr", "0.01", "--activation", "softsign", "--csv", csv)
    assert code == 0, err
    record = json.loads(metrics.json_path_for(csv).read_text())
    assert (record["optimizer"], record["weight_decay"], record["activation"]) == ("adamw", 0.1, "softsign")


def test_cli_refuses_weight_decay_for_another_optimizer(capsys):
    code, _, err = run_cli(capsys, "train", "--task", "binary", "--iters", "10", "--optimizer", "sgd", "--weight-decay",
                           "0.1", "--no-csv")
    assert_one_line_error(code, err, 2, "weight_decay=0.1 applies to optimizer='adamw' only")


def test_sweep_sets_weight_decay():
    assert settings.parse("weight_decay", "0.2") == 0.2
    with pytest.raises(fastrnn.InvalidArgument, match="weight_decay needs a number"):
        settings.parse("weight_decay", "much")


def test_study_commands_take_every_tasks_options(capsys, tmp_path):
    """paths and spectrum offer each task's own parameters (from the task registry), not only bits and digits."""
    import pandas as pd

    from fastrnn.tasks import make_task

    T = make_task("recall", lag=3).T
    out, csv = tmp_path / "paths.png", tmp_path / "paths.csv"
    code, _, err = run_cli(capsys, "paths", "--task", "recall", "--lag", "3", "--samples", "4", "--activation",
                           "softsign", "--out", out, "--csv", csv)
    assert code == 0, err
    assert pd.read_csv(csv)["path_length"].max() == T - 1
    code, text, err = run_cli(capsys, "spectrum", "--task", "adding", "--length", "7", "--samples", "2")
    assert code == 0, err
    assert "k=7" in text and "k=8" not in text
    code, _, err = run_cli(capsys, "spectrum", "--task", "binary", "--lag", "5")
    assert_one_line_error(code, err, 2, "lag belongs to the recall and copy tasks")


def test_the_registries_refuse_two_modules_with_one_code_or_one_setting_declared_twice():
    from types import SimpleNamespace

    from fastrnn.optimizers import _registry, adam, sgd
    from fastrnn.optimizers._base import Hyper

    twin = SimpleNamespace(NAME="sgd2", CODE=sgd.CODE, STATE=0, SETTINGS=())
    with pytest.raises(ImportError, match="share the code 0"):
        _registry((sgd, twin))
    other_eps = SimpleNamespace(NAME="mine", CODE=17, STATE=1, SETTINGS=(Hyper("eps", 1e-3, "another eps."),))
    with pytest.raises(ImportError, match="declare the setting 'eps' differently"):
        _registry((adam, other_eps))
    with pytest.raises(ImportError, match="repeats a registered name or code"):
        activations._registry(activations.MODULES + (SimpleNamespace(NAME="soft", CODE=activations.tanh.CODE),))


def test_an_online_rule_takes_adamw_and_its_weight_decay(rng):
    """The online rules' driver (fastrnn.online) reads the chosen optimizer's own settings from the registry:
    weight_decay reaches it, in train and in fit."""
    base = dict(task="add", rule="rtrl", optimizer="adamw", lr=0.01, iters=40, log_every=20, hidden=4)
    runs = [fastrnn.train(weight_decay=wd, **base) for wd in (0.5, 0.0)]
    assert runs[0].settings["weight_decay"] == 0.5
    assert not np.array_equal(runs[0].model.theta, runs[1].model.theta)
    X, Y, _ = make_data(rng, 3, 6, 2, 2, "softmax")
    fits = [fastrnn.fit(fastrnn.RNN(2, 3, 2, seed=0), X, Y, epochs=1, rule="rtrl", optimizer="adamw", weight_decay=wd)
            for wd in (0.5, 0.0)]
    assert not np.array_equal(fits[0].model.theta, fits[1].model.theta)
    with pytest.raises(fastrnn.InvalidArgument, match="weight_decay=0.5 applies to optimizer='adamw' only"):
        fastrnn.fit(fastrnn.RNN(2, 3, 2), X, Y, rule="rtrl", optimizer="sgd", weight_decay=0.5)
