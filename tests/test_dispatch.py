"""One decision names the kernel of every call (fastrnn.dispatch), runs record it, FASTRNN_KERNEL forces the general one."""

import io
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import fastrnn
from conftest import assert_one_line_error, run_cli
from fastrnn import _kernels, config, dispatch, engine, metrics, optim
from fastrnn.cells import CELLS, MODULES, rnn

SGD, ADAM, ADAGRAD = optim.SGD, optim.ADAM, optim.ADAGRAD


def _choose(model, T, B, **kw):
    return dispatch.choose_kernel(model.dims, model.dtype, T, B, **kw).name


def test_the_codes_the_decision_reads_are_the_registries():
    """dispatch imports no kernel module: its copies of the codes and the BLAS threshold must be theirs."""
    assert (dispatch._SGD, dispatch._ADAGRAD, dispatch._RMSPROP) == (optim.SGD, optim.ADAGRAD, optim.RMSPROP)
    assert dispatch._TANH == rnn.ACTIVATIONS["tanh"] and dispatch._CELL_RNN == CELLS["rnn"]
    assert (dispatch._HEAD_SOFTMAX, dispatch._HEAD_SIGMOID) == (_kernels.HEADS["softmax"], _kernels.HEADS["sigmoid"])
    assert dispatch._BLAS_MIN_WORK == config.BLAS_MIN_WORK
    assert dispatch._GATES == {code: module.G for code, module in MODULES.items()}  # every registered cell's gates


def test_each_call_gets_the_kernel_that_serves_it(monkeypatch):
    monkeypatch.delenv(dispatch.ENV, raising=False)
    headline = fastrnn.RNN(2, 16, 1, head="sigmoid")
    # every optimizer, clipping, truncation and head of a small model: the lean kernel
    assert _choose(headline, 8, 1, opt=SGD) == "small-lean"
    assert _choose(headline, 8, 1, opt=SGD, K=7) == "small-lean"
    assert _choose(headline, 8, 1, opt=SGD, K=3) == "small-lean"
    assert _choose(headline, 8, 1, opt=ADAM) == "small-lean"
    assert _choose(headline, 8, 1, opt=SGD, clip_norm=1.0) == "small-lean"
    assert _choose(headline, 8, 1, opt=SGD, clip_value=1.0) == "small-lean"
    assert _choose(fastrnn.RNN(2, 16, 2, head="softmax"), 8, 1, opt=SGD) == "small-lean"
    # stacked layers and gated cells of a small model with full BPTT: the small-model kernel for every cell
    assert _choose(fastrnn.RNN(2, 16, 1, layers=2), 8, 1, opt=SGD) == "small-cells"
    assert _choose(fastrnn.RNN(2, 16, 1, cell="gru"), 8, 1, opt=ADAM) == "small-cells"
    assert _choose(fastrnn.RNN(2, 16, 1, cell="gru"), 8, 1, opt=SGD, K=3) == "general"
    assert _choose(fastrnn.RNN(2, 16, 1, cell="gru"), 8, 1, call="grads") == "general"
    assert _choose(fastrnn.RNN(20, 100, 10), 10, 32, opt=SGD) == "general"  # products for BLAS
    # past the hand loops, one vanilla layer with a small batch x widest layer still trains on the lean kernel
    assert _choose(fastrnn.RNN(2, 32, 1, head="sigmoid"), 8, 1, opt=SGD) == "small-lean"
    assert _choose(fastrnn.RNN(8, 64, 10), 8, 4, opt=ADAM) == "small-lean"
    assert _choose(fastrnn.RNN(8, 48, 10), 8, 16, opt=ADAM) == "general"
    assert _choose(fastrnn.RNN(2, 32, 1, head="sigmoid"), 8, 1, call="grads") == "small"
    assert _choose(fastrnn.RNN(8, 48, 10), 8, 16, call="grads") == "general"

    chars = fastrnn.RNN(30, 20, 30, head="softmax")
    assert _choose(chars, 25, 1, opt=ADAGRAD, chars=True) == "text"
    assert _choose(chars, 25, 1, opt=ADAGRAD, chars=False) == "small-lean"  # the same model fed arrays
    assert _choose(chars, 25, 4, opt=ADAGRAD, chars=True) == "general"
    assert _choose(chars, 25, 1, opt=ADAM, chars=True) == "general"
    assert _choose(chars, 25, 1, opt=ADAGRAD, clip_norm=1.0, chars=True) == "general"
    assert _choose(fastrnn.RNN(30, 20, 30, head="softmax", dtype="float32"), 25, 1, opt=ADAGRAD, chars=True) == "general"

    assert _choose(headline, 8, 1, call="grads") == "small"
    assert _choose(headline, 8, 4, call="grads", n_threads=2) == "general-threads"
    assert _choose(fastrnn.RNN(2, 16, 1, layers=2), 8, 4, call="grads") == "general"

    def many(models, opts, Ks=None, clips=None):
        n = len(models)
        return dispatch.choose_kernel(np.stack([m.dims for m in models]), models[0].dtype, 8, 1, "many",
                                      opt=np.array(opts), K=np.full(n, -1) if Ks is None else np.array(Ks),
                                      clip_norm=np.zeros(n) if clips is None else np.array(clips)).name

    assert many([headline, headline], [SGD, SGD]) == "lanes-sgd"
    f32 = fastrnn.RNN(2, 16, 1, head="sigmoid", dtype="float32")
    assert many([f32, f32], [SGD, SGD]) == "many-small-sgd"
    assert many([headline, headline], [SGD, ADAM]) == "many-small"
    assert many([headline, headline], [SGD, SGD], clips=[0.0, 1.0]) == "many-small"
    wide = fastrnn.RNN(2, 64, 1, head="sigmoid")  # the lean kernel's size, past the hand loops: one model a thread
    assert many([wide, wide], [SGD, SGD]) == "many-small-sgd"
    assert many([wide, wide], [SGD, ADAM]) == "many-small"
    wider = fastrnn.RNN(2, 100, 1, head="sigmoid")
    assert many([wider, wider], [SGD, SGD]) == "many-general"


def test_forcing_the_general_kernel_reaches_every_call(monkeypatch):
    monkeypatch.setenv(dispatch.ENV, "general")
    headline = fastrnn.RNN(2, 16, 1, head="sigmoid")
    choice = dispatch.choose_kernel(headline.dims, headline.dtype, 8, 1, opt=SGD)
    assert choice.name == "general" and "FASTRNN_KERNEL=general" in choice.reason and choice.general
    chars = fastrnn.RNN(30, 20, 30, head="softmax")
    assert _choose(chars, 25, 1, opt=ADAGRAD, chars=True) == "general"
    assert _choose(headline, 8, 1, call="grads") == "general"
    assert engine.plan(headline, 8, 1)[0] == engine.GENERAL
    dims = np.stack([headline.dims, headline.dims])
    assert dispatch.choose_kernel(dims, headline.dtype, 8, 1, "many", opt=np.zeros(2, np.int64), K=np.full(2, -1),
                                  clip_norm=np.zeros(2)).name == "many-general"
    # the scratch follows the choice: the general kernel's size, not the small model's
    assert engine.chunk_scratch_size(headline, 8, 1) == engine._train_kernel.chunk_scratch_size(8, 1, headline.dims,
                                                                                             headline.n_params)
    monkeypatch.setenv(dispatch.ENV, "auto")
    assert _choose(headline, 8, 1, opt=SGD) == "small-lean"
    assert engine.plan(headline, 8, 1)[0] == engine.SMALL


def test_the_compile_note_names_the_chosen_kernel(tmp_path, monkeypatch):
    fake = SimpleNamespace(signatures=[], _cache=SimpleNamespace(_cache_file=SimpleNamespace(_index_path=str(tmp_path / "k.nbi"))))
    monkeypatch.setattr(engine._train_kernel, "general_kernel", lambda opt, head, act: fake)
    model = fastrnn.RNN(2, 16, 1, head="sigmoid")
    monkeypatch.setenv(dispatch.ENV, "general")
    out = io.StringIO()
    assert engine.compile_note(model, 8, 1, out, options=(SGD, -1, 0.0, 0.0)) is not None
    assert "compiling the general training kernels once" in out.getvalue()
    choice = engine.run_kernel(model, 8, 1, (SGD, -1, 0.0, 0.0))
    assert choice.name == "general"
    assert "general training" in engine.compile_note(model, 8, 1, io.StringIO(), kernel=choice)


def _run_record(capsys, tmp_path, name, *args):
    csv = tmp_path / f"{name}.csv"
    code, _, err = run_cli(capsys, "train", *args, "--csv", csv)
    assert code == 0, err
    meta = json.loads(metrics.json_path_for(csv).read_text())
    return meta["result"], pd.read_csv(csv)


def test_a_run_records_its_kernel_and_forcing_the_general_one_changes_only_that(capsys, tmp_path, monkeypatch):
    """The JSON names the kernel and says why; with FASTRNN_KERNEL=general the same run trains on the
    general kernel, records that, and computes the same numbers (float64: bit for bit)."""
    monkeypatch.delenv(dispatch.ENV, raising=False)
    args = ("--iters", "200", "--log-every", "50", "--seed", "3")
    chosen, rows = _run_record(capsys, tmp_path, "chosen", *args)
    assert chosen["kernel"] == "small-lean" and "one vanilla layer" in chosen["kernel_reason"]
    adam, _ = _run_record(capsys, tmp_path, "adam", *args, "--optimizer", "adam", "--lr", "0.01")
    assert adam["kernel"] == "small-lean" and "optimizer, head and truncation" in adam["kernel_reason"]
    monkeypatch.setenv(dispatch.ENV, "general")
    forced, forced_rows = _run_record(capsys, tmp_path, "forced", *args)
    assert forced["kernel"] == "general" and "FASTRNN_KERNEL=general" in forced["kernel_reason"]
    for column in ("loss", "accuracy", "grad_norm"):
        np.testing.assert_array_equal(rows[column].to_numpy(), forced_rows[column].to_numpy())


def test_text_runs_record_the_fused_kernel_unless_forced(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv(dispatch.ENV, raising=False)
    args = ("--task", "text", "--iters", "30", "--log-every", "10", "--hidden", "8")
    chosen, rows = _run_record(capsys, tmp_path, "text", *args)
    assert chosen["kernel"] == "text" and "character indices" in chosen["kernel_reason"]
    monkeypatch.setenv(dispatch.ENV, "general")
    forced, forced_rows = _run_record(capsys, tmp_path, "forced", *args)
    assert forced["kernel"] == "general"
    np.testing.assert_allclose(rows["loss"].to_numpy(), forced_rows["loss"].to_numpy(), rtol=1e-10)


def test_fits_and_sweeps_record_their_kernel(tmp_path, monkeypatch):
    monkeypatch.delenv(dispatch.ENV, raising=False)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5, 2))
    Y = np.eye(2)[rng.integers(0, 2, (6, 5))]
    result = fastrnn.fit(fastrnn.RNN(2, 4, 2, head="softmax"), X, Y, epochs=2, batch=3, csv=tmp_path / "fit.csv")
    assert fastrnn.read_run(tmp_path / "fit.csv")[1]["result"]["kernel"] == result.kernel.name == "small-lean"
    settings = [dict(task="binary", iters=100, log_every=50, seed=s) for s in (0, 1)]
    together = fastrnn.training.train_many(settings)
    assert [r.summary()["kernel"] for r in together] == ["lanes-sgd", "lanes-sgd"]
    monkeypatch.setenv(dispatch.ENV, "general")
    forced = fastrnn.training.train_many(settings)
    assert [r.summary()["kernel"] for r in forced] == ["many-general", "many-general"]
    for a, b in zip(together, forced):
        np.testing.assert_array_equal(a.model.theta, b.model.theta)
    fitted = fastrnn.fit(fastrnn.RNN(2, 4, 2, head="softmax"), X, Y, epochs=2, batch=3)
    assert fitted.kernel.name == "general"
    np.testing.assert_array_equal(fitted.model.theta, result.model.theta)


def test_an_unknown_kernel_choice_is_a_usage_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(dispatch.ENV, "fastest")
    code, _, err = run_cli(capsys, "train", "--iters", "10", "--csv", tmp_path / "r.csv")
    assert_one_line_error(code, err, 2, "FASTRNN_KERNEL='fastest'", "'general'")
    assert not (tmp_path / "r.csv").exists()
    with pytest.raises(fastrnn.InvalidArgument, match="FASTRNN_KERNEL"):
        fastrnn.RNN(2, 4, 1, head="linear").loss_and_grads(np.zeros((1, 3, 2)), np.zeros((1, 3, 1)))


def test_the_kernel_modules_import_each_other_in_one_direction():
    """No import circle among the modules that define kernels, the decision and the way into them
    (every import counted, at the top of a module or inside a function)."""
    import ast
    from pathlib import Path

    package = Path(fastrnn.__file__).parent
    files = {p.relative_to(package).with_suffix("").as_posix().replace("/", "."): p for p in package.rglob("*.py")}
    kernels = {name for name, p in files.items() if "@njit" in p.read_text() or "njit(**" in p.read_text()}
    nodes = kernels | {"dispatch", "engine"}

    def imports(name):
        here = name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(files[name].read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                stem = base + (node.module.split(".") if node.module else [])
                for target in ([stem] if node.module else [stem + [a.name] for a in node.names]):
                    dotted = ".".join(target)
                    if dotted in nodes:
                        found.add(dotted)
                    elif dotted + ".__init__" in nodes:
                        found.add(dotted + ".__init__")
        return found

    graph = {name: imports(name) for name in nodes}
    assert "_small" not in graph["_train_kernel"]
    assert graph["dispatch"] == set()  # the decision loads no kernel
    done, visiting = set(), []

    def visit(name):
        assert name not in visiting, " -> ".join(visiting[visiting.index(name):] + [name])
        if name in done:
            return
        visiting.append(name)
        for other in sorted(graph[name]):
            visit(other)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_a_fit_compiles_the_kernel_of_its_full_batches_before_the_clock(monkeypatch):
    """The warm-up call (zero iterations) has the full batch's shape, so it takes the kernel the run records."""
    monkeypatch.delenv(dispatch.ENV, raising=False)
    seen = []
    real = engine.train_chunk

    def spy(model, K, X, Y, M, batch, *args, **kwargs):
        at_shape = dispatch.for_model(model, X.shape[1], batch, opt=args[0], K=K, clip_norm=args[5], clip_value=args[6])
        assert kwargs["kernel"].name == at_shape.name  # the run's kernel is given, and it is the call's shape's
        seen.append(kwargs["kernel"].name)
        return real(model, K, X, Y, M, batch, *args, **kwargs)

    monkeypatch.setattr(engine, "train_chunk", spy)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 8, 8))
    Y = np.eye(4)[rng.integers(0, 4, (64, 8))]
    result = fastrnn.fit(fastrnn.RNN(8, 48, 4, head="softmax"), X, Y, epochs=1, batch=32)
    assert result.kernel.name == "general"  # 32 * 48 * 48 multiply-adds a step: past the lean kernel's size
    assert seen[0] == "general" and set(seen) == {"general"}


def test_a_text_run_whose_fused_kernel_cannot_be_built_records_the_general_one(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv(dispatch.ENV, raising=False)
    monkeypatch.setattr(engine, "chars_ready", lambda stream=None: False)
    result, rows = _run_record(capsys, tmp_path, "fallback", "--task", "text", "--iters", "20", "--log-every", "10",
                               "--hidden", "8")
    assert result["kernel"] == "general" and "the fused text kernel could not be compiled" in result["kernel_reason"]
    assert len(rows) == 2 and np.isfinite(rows["loss"]).all()
