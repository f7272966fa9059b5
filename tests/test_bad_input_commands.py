"""Bad input to the commands and the files they read: one clear line, a non-zero exit, nothing lost.

The environment's numba variables, model files whose metadata does not fit their arrays,
sampling from every cell, folders holding a run stopped before its first row, models
trained on arrays in the study commands, and the text model's validation sample.
"""

import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn
import reference as ref  # the plain-numpy twins (tests/reference.py)
from conftest import assert_one_line_error, run_cli
from fastrnn import _checks, _startup, checkpoint, metrics, text, training
from fastrnn.model import parameter_count
from fastrnn.tasks.text import TextRunMetrics

ROOT = Path(__file__).resolve().parents[1]


def _command(args, env_extra, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_") and k != "FASTRNN_PLAIN_NUMBA"}
    env.update(PYTHONPATH=str(ROOT), **env_extra)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300, cwd=cwd)


def _assert_one_line(proc, code, *fragments):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------ environment variables


@pytest.mark.parametrize("variable, value", [
    ("NUMBA_NUM_THREADS", "0"), ("NUMBA_NUM_THREADS", "-1"), ("NUMBA_NUM_THREADS", "two"),
    ("NUMBA_THREADING_LAYER", "bogus"), ("NUMBA_THREADING_LAYER_PRIORITY", "tbb"),
    ("NUMBA_OPT", "7"), ("NUMBA_BOUNDSCHECK", "yes"), ("NUMBA_DISABLE_JIT", "1"),
])
@pytest.mark.parametrize("args", [["--version"], ["--help"], ["train", "--help"]])
def test_bad_numba_variable_gives_one_line_naming_it_on_every_command(variable, value, args):
    proc = _command(["-m", "fastrnn", *args], {variable: value})
    _assert_one_line(proc, 2, f"{variable}={value!r}")
    assert proc.stdout == ""


def test_bad_numba_variable_gives_one_line_through_the_checkouts_wrapper_too():
    proc = _command([str(ROOT / "cli.py"), "--version"], {"NUMBA_NUM_THREADS": "0"})
    _assert_one_line(proc, 2, "NUMBA_NUM_THREADS='0'")


def test_bad_numba_variable_is_refused_in_plain_numba_mode_too():
    proc = _command(["-m", "fastrnn", "--version"], {"NUMBA_NUM_THREADS": "0", "FASTRNN_PLAIN_NUMBA": "1"})
    _assert_one_line(proc, 2, "NUMBA_NUM_THREADS='0'")
    proc = _command(["-m", "fastrnn", "--version"], {"NUMBA_OPT": "7", "FASTRNN_PLAIN_NUMBA": "1"})
    _assert_one_line(proc, 2, "NUMBA_OPT='7'")


def test_library_import_with_bad_numba_threads_raises_invalid_argument_naming_it():
    code = ("try:\n    import fastrnn\nexcept ValueError as exc:\n"
            "    print(type(exc).__module__, type(exc).__name__, exc)\n")
    proc = _command(["-c", code], {"NUMBA_NUM_THREADS": "-1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("fastrnn.exceptions InvalidArgument NUMBA_NUM_THREADS='-1'"), proc.stdout


def test_threading_layer_that_cannot_load_is_refused_before_any_run():
    """tbb is not installed here: numba would fail only when a sweep first starts its threads."""
    try:
        import numba.np.ufunc.tbbpool  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TBB is installed here, so the tbb layer loads")
    proc = _command(["-m", "fastrnn", "--version"], {"NUMBA_THREADING_LAYER": "tbb"})
    _assert_one_line(proc, 2, "NUMBA_THREADING_LAYER='tbb'", "workqueue")


def test_good_numba_variables_still_run():
    proc = _command(["-m", "fastrnn", "--version"], {"NUMBA_NUM_THREADS": "1", "NUMBA_THREADING_LAYER": "workqueue",
                                                      "NUMBA_THREADING_LAYER_PRIORITY": "workqueue omp tbb",
                                                      "NUMBA_DISABLE_JIT": "0"})
    assert proc.returncode == 0 and proc.stderr == "" and "0.1.0" in proc.stdout, proc.stderr


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_numba_threads_rule_accepts_exactly_the_positive_whole_numbers(n):
    problem = _startup.environment_problem({"NUMBA_NUM_THREADS": str(n)})
    assert (problem is None) == (n >= 1)
    if problem is not None:
        assert problem.startswith(f"NUMBA_NUM_THREADS='{n}'")


@given(st.text(max_size=12))
def test_numba_threads_rule_refuses_text_that_is_no_whole_number(text):
    try:
        ok = int(text.strip()) >= 1
    except ValueError:
        ok = False
    assert (_startup.environment_problem({"NUMBA_NUM_THREADS": text}) is None) == ok


# ------------------------------------------------------------------ model files: metadata against arrays


def _model_file(path, config, theta, metadata=None, **extra):
    """A model file written by hand: ``meta`` claiming ``config``, whatever ``theta`` is stored."""
    meta = dict(format="fastrnn-model", version=1, config=config, metadata=metadata or {})
    np.savez(path, theta=theta, meta=np.array(json.dumps(meta)), **extra)
    return path


def _peak_bytes(fn):
    """(result or exception, peak bytes traced while ``fn`` ran); numpy reports its allocations to tracemalloc."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - returned for the test to inspect
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


_CONFIGS = st.fixed_dictionaries(dict(
    n_in=st.integers(1, 4000), n_hidden=st.integers(1, 4000), n_out=st.integers(1, 4000), layers=st.integers(1, 3),
    cell=st.sampled_from(["rnn", "gru", "lstm"]),
))


@settings(max_examples=40, deadline=None)
@given(config=_CONFIGS, stored=st.integers(0, 50))
def test_model_whose_metadata_claims_another_size_is_refused_before_allocating(tmp_path_factory, config, stored):
    expected = parameter_count(config)
    if stored == expected:
        stored += 1
    path = _model_file(tmp_path_factory.mktemp("m") / "m.npz", dict(config, activation="tanh", head="softmax"),
                       np.zeros(stored))
    out, peak = _peak_bytes(lambda: fastrnn.RNN.load(path))
    assert isinstance(out, fastrnn.ModelFileError), out
    assert f"has {expected:,} parameters, but it stores {stored:,}" in str(out)
    assert "\n" not in str(out)
    assert peak < 2**20, peak  # the model it claims would take expected * 8 bytes


@settings(max_examples=25, deadline=None)
@given(config=st.fixed_dictionaries(dict(
    n_in=st.integers(1, 40), n_hidden=st.integers(1, 40), n_out=st.integers(1, 40), layers=st.integers(1, 3),
    cell=st.sampled_from(["rnn", "gru", "lstm"]))))
def test_model_whose_metadata_fits_its_arrays_loads(tmp_path_factory, config):
    model = fastrnn.RNN(**config, seed=3)
    path = model.save(tmp_path_factory.mktemp("m") / "ok.npz")
    loaded = fastrnn.RNN.load(path)
    assert loaded.config() == model.config() and np.array_equal(loaded.theta, model.theta)


def test_model_file_claiming_huge_hidden_is_refused_at_once_by_every_command(tmp_path):
    """A 2 KB file whose metadata says n_hidden=25000 (5 GB of weights): refused in one line by each loader."""
    small = fastrnn.RNN(2, 4, 1, head="sigmoid")
    config = dict(small.config(), n_hidden=25000)
    path = _model_file(tmp_path / "huge.npz", config, small.theta, metadata={"task": "binary", "bits": 8, "vocab": "ab"})
    assert path.stat().st_size < 4096
    for args in (["eval", path], ["sample", path], ["predict", path, 1, 2], ["spectrum", path],
                 ["train", "--resume", path, "--iters", 10],
                 ["train", "--task", "binary", "--init-from", path, "--iters", 10, "--no-csv"]):
        proc = _command(["-m", "fastrnn", *map(str, args)], {}, cwd=tmp_path)
        _assert_one_line(proc, 2, "625,100,001 parameters", "stores 33")


def test_checkpoint_arrays_that_do_not_fit_the_model_are_refused_from_their_headers(tmp_path):
    result = fastrnn.train(task="binary", iters=20, log_every=10, hidden=4, save=tmp_path / "run.npz")
    with np.load(result.save_path, allow_pickle=False) as data:
        arrays = {k: np.array(data[k]) for k in data.files}
    P = result.model.n_params
    arrays["train_opt_state"] = np.zeros((3, P))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(fastrnn.ModelFileError, match=rf"optimizer state has shape \(3, {P}\), \(2, {P}\) expected"):
        checkpoint.load(tmp_path / "bad.npz")


def test_oversized_metadata_is_refused_before_it_is_read(tmp_path, monkeypatch):
    model = fastrnn.RNN(2, 3, 1)
    model.metadata = {"note": "x" * 5000}
    model.save(tmp_path / "m.npz")
    monkeypatch.setattr(fastrnn.model, "META_LIMIT", 4096)
    with pytest.raises(fastrnn.ModelFileError, match="its metadata .meta. would take"):
        fastrnn.RNN.load(tmp_path / "m.npz")


def test_file_without_model_arrays_is_refused_naming_them(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(fastrnn.ModelFileError, match="holds no meta and theta arrays"):
        fastrnn.RNN.load(tmp_path / "x.npz")


# ------------------------------------------------------------------ sampling from every cell

VOCAB = " abdeghilnorstuw"


def _twin_argmax_text(cell, params, vocab, prime, length, state0=None):
    """The T = 0 sample by the plain-numpy twins of the cell step (tests/reference.py), one-hot inputs."""
    step, S = (ref.gru_step, 1) if cell == "gru" else (ref.lstm_step, 2) if cell == "lstm" else (None, 1)
    L = ref.layer_count(params)
    H = params["W0"].shape[1]
    V = len(vocab)
    states = [tuple(np.zeros(H) for _ in range(S)) for _ in range(L)] if state0 is None else state0

    def advance(ix):
        x = np.eye(V)[ix]
        for l in range(L):
            if cell == "rnn":
                new = (np.tanh(params[f"U{l}"] @ x + params[f"W{l}"] @ states[l][0] + params[f"b{l}"]),)
            else:
                new, _ = step(params, l, x, states[l])
            states[l] = new
            x = new[0]
        return params["V"] @ x + params["c"]

    z = params["V"] @ states[-1][0] + params["c"]
    for ch in prime:
        z = advance(vocab.index(ch))
    out = ""
    for _ in range(length):
        ix = int(np.argmax(z))
        out += vocab[ix]
        z = advance(ix)
    return out


def _text_model(cell, layers, seed):
    model = fastrnn.RNN(len(VOCAB), 9, len(VOCAB), layers=layers, cell=cell, seed=seed, init_scale=3.0)
    model.params["c"][...] = np.random.default_rng(seed).normal(0, 0.3, len(VOCAB))
    for l in range(layers):
        model.params[f"b{l}"][...] = np.random.default_rng([seed, l]).normal(0, 0.5, model.params[f"b{l}"].shape)
    model.metadata = {"task": "text", "vocab": VOCAB}
    return model


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_sample_command_follows_the_cells_numpy_twin(tmp_path, capsys, cell, layers):
    model = _text_model(cell, layers, seed=layers + 7)
    path = model.save(tmp_path / f"{cell}.npz")
    params = {k: np.array(v) for k, v in model.params.items()}
    drawn = set()
    for prime in ("the bird ", "we saw", "a", "huge tree", "slow ", "ou", "bright ", "dune"):
        code, out, err = run_cli(capsys, "sample", path, "--length", 25, "--temperature", 0, "--prime", prime)
        assert code == 0, err
        want = _twin_argmax_text(cell, params, VOCAB, prime, 25)
        assert out == prime + want + "\n"
        drawn |= set(want)
    assert len(drawn) > 2  # the state steers the draw: the check compares paths that go somewhere


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_sample_of_a_gated_model_continues_a_given_state_like_the_twin(cell):
    model = _text_model(cell, 2, seed=3)
    rng = np.random.default_rng(5)
    h0 = rng.uniform(-1, 1, (2, 9))
    c0 = rng.uniform(-2, 2, (2, 9))
    given = h0 if cell == "gru" else (h0, c0)
    got = text.sample(model, VOCAB, 30, temperature=0, prime="ab", h0=given)
    state0 = [(h0[l],) if cell == "gru" else (h0[l], c0[l]) for l in range(2)]
    params = {k: np.array(v) for k, v in model.params.items()}
    assert got == _twin_argmax_text(cell, params, VOCAB, "ab", 30, state0)


def test_sample_of_an_lstm_refuses_a_single_state_array():
    with pytest.raises(fastrnn.InvalidArgument, match=r"pair \(h0, c0\)"):
        text.sample(_text_model("lstm", 1, 0), VOCAB, 5, h0=np.zeros((1, 9)))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_text_model_trained_by_the_command_samples_reproducibly(tmp_path, capsys, cell):
    path = tmp_path / f"{cell}.npz"
    code, _, err = run_cli(capsys, "train", "--task", "text", "--cell", cell, "--iters", 40, "--hidden", 8,
                           "--log-every", 20, "--save", path, "--no-csv", "-q")
    assert code == 0, err
    code, first, err = run_cli(capsys, "sample", path, "--length", 80, "--seed", 4)
    assert code == 0 and err == "", err
    vocab = fastrnn.RNN.load(path).metadata["vocab"]
    assert len(first) == 81 and set(first[:-1]) <= set(vocab)
    assert run_cli(capsys, "sample", path, "--length", 80, "--seed", 4)[1] == first


# ------------------------------------------------------------------ runs stopped before their first row


def _stopped_before_first_row(csv_path, header=True):
    """The files a run leaves when it is stopped while compiling: the JSON (status interrupted) and
    the CSV with its header alone (``header=False``: an empty CSV, stopped before the header)."""
    writer = metrics.MetricsWriter(csv_path, dict(task="binary", lr=0.1, hidden=16, seed=5, iters=100))
    writer.write_json(status="interrupted", result=dict(iterations_done=0, final_accuracy=None))
    writer.close()
    if not header:
        Path(csv_path).write_text("")
    return csv_path


@pytest.fixture
def folder_with_a_run_stopped_while_compiling(tmp_path):
    runs = tmp_path / "runs"
    fastrnn.train(task="binary", iters=200, log_every=100, hidden=4, seed=1, csv=runs / "done.csv")
    _stopped_before_first_row(runs / "stopped.csv")
    _stopped_before_first_row(runs / "blank.csv", header=False)
    return runs


def test_run_with_header_only_reads_as_an_empty_numeric_frame(folder_with_a_run_stopped_while_compiling):
    for name in ("stopped.csv", "blank.csv"):
        frame, meta = fastrnn.read_run(folder_with_a_run_stopped_while_compiling / name)
        assert len(frame) == 0 and meta["status"] == "interrupted"
        assert list(frame.columns[:9]) == metrics.COLUMNS
        assert all(frame[c].dtype == np.float64 for c in metrics.COLUMNS)


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_report_lists_runs_without_rows_and_reports_the_others(folder_with_a_run_stopped_while_compiling, capsys, fmt):
    code, out, err = run_cli(capsys, "report", folder_with_a_run_stopped_while_compiling, "--format", fmt)
    assert code == 0, err
    note = out if fmt == "table" else err
    line = [ln for ln in note.splitlines() if "no rows" in ln]
    assert len(line) == 1 and "stopped.csv (status interrupted)" in line[0] and "blank.csv (status interrupted)" in line[0]
    table = out if fmt != "table" else out.replace(line[0], "")
    assert "no rows" not in table and "binary" in table
    if fmt == "csv":
        summary = pd.read_csv(io.StringIO(out))
        assert summary["runs"].tolist() == [1]  # the finished run alone


def test_report_of_a_folder_of_runs_without_rows_says_so_in_one_line(tmp_path, capsys):
    _stopped_before_first_row(tmp_path / "a.csv")
    code, out, err = run_cli(capsys, "report", tmp_path)
    assert_one_line_error(code, err, 2, "no run with rows", "a.csv (status interrupted)")


def test_plot_draws_the_runs_with_rows_and_lists_the_others(folder_with_a_run_stopped_while_compiling, capsys, tmp_path):
    runs = folder_with_a_run_stopped_while_compiling
    out_png = tmp_path / "p.png"
    code, out, err = run_cli(capsys, "plot", runs / "done.csv", runs / "stopped.csv", "--out", out_png)
    assert code == 0, err
    assert out_png.stat().st_size > 0
    assert "plot of 1 run(s)" in out and "stopped.csv (status interrupted)" in out
    code, out, err = run_cli(capsys, "plot", runs / "stopped.csv", "--out", tmp_path / "q.png")
    assert_one_line_error(code, err, 2, "nothing to draw", "stopped.csv (status interrupted)")
    assert not (tmp_path / "q.png").exists()


# ------------------------------------------------------------------ models trained on arrays, gated models


@pytest.fixture
def data_models(tmp_path, capsys):
    """Two models trained by ``fastrnn train --data``: one on arrays shaped like binary addition's
    (n_in 2, one sigmoid output), one on arrays no task has (n_in 3, softmax over 2)."""
    rng = np.random.default_rng(4)
    X = rng.integers(0, 2, (16, 8, 2)).astype(float)
    np.savez(tmp_path / "bits.npz", X=X, Y=rng.integers(0, 2, (16, 8, 1)).astype(float))
    np.savez(tmp_path / "other.npz", X=rng.standard_normal((8, 5, 3)), Y=np.eye(2)[rng.integers(0, 2, (8, 5))])
    paths = {}
    for name in ("bits", "other"):
        paths[name] = tmp_path / f"{name}-model.npz"
        code, _, err = run_cli(capsys, "train", "--data", tmp_path / f"{name}.npz", "--epochs", 2, "--hidden", 4,
                               "--save", paths[name], "--no-csv", "-q")
        assert code == 0, err
        assert fastrnn.RNN.load(paths[name]).metadata["task"] == "data"
    return paths


def test_spectrum_of_a_model_trained_on_arrays_needs_only_the_model(data_models, capsys):
    code, out, err = run_cli(capsys, "spectrum", data_models["other"])
    assert code == 0, err
    W = fastrnn.RNN.load(data_models["other"]).params["W0"]
    radius = np.abs(np.linalg.eigvals(W)).max()
    assert f"W0: spectral radius {radius:.4f}" in out
    assert "no task to draw input sequences from" in out and "--task" in out


@pytest.mark.parametrize("command", [["eval", "{m}"], ["predict", "{m}", "1", "2"], ["paths", "{m}", "--out", "{o}"]])
def test_commands_that_need_a_task_name_the_option_for_a_model_trained_on_arrays(data_models, capsys, tmp_path, command):
    # paths takes any task of 2 inputs (binary, adding, the streams ...); the others only binary
    fits = "pass --task binary or --task adding or " if command[0] == "paths" else "pass --task binary to give it that task's data"
    for model, fragment in ((data_models["bits"], fits),
                            (data_models["other"], "none has inputs of its size n_in=3 (binary 2, digits 20")):
        args = [a.format(m=model, o=tmp_path / "p.png") for a in command]
        code, out, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, 2, "carries no task", "trained on arrays", fragment)
        assert "corrupt" not in err
        assert not (tmp_path / "p.png").exists()


def test_model_trained_on_arrays_is_scored_as_the_task_given(data_models, capsys, tmp_path):
    code, out, err = run_cli(capsys, "eval", data_models["bits"], "--task", "binary", "--bits", 8, "--samples", 50)
    assert code == 0, err
    assert "scored on 50 sums of 8-bit numbers" in out and "exact match:" in out
    code, out, err = run_cli(capsys, "predict", data_models["bits"], "3", "4", "--task", "binary")
    assert code == 0 and "true =" in out and "model =" in out, err
    code, out, err = run_cli(capsys, "paths", data_models["bits"], "--task", "binary", "--out", tmp_path / "p.png")
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 0, err
    code, out, err = run_cli(capsys, "spectrum", data_models["bits"], "--task", "binary", "--samples", 4)
    assert code == 0 and "k=1" in out, err


@pytest.mark.parametrize("cell, gates", [("gru", "rzn"), ("lstm", "ifgo")])
def test_spectrum_of_a_gated_model_gives_each_gate_block(tmp_path, capsys, cell, gates):
    model = fastrnn.RNN(3, 5, 2, layers=2, cell=cell, seed=2, init_scale=0.7)
    path = model.save(tmp_path / "g.npz")
    code, out, err = run_cli(capsys, "spectrum", path)
    assert code == 0, err
    H = 5
    for l in range(2):
        for k, gate in enumerate(gates):
            block = np.array(model.params[f"W{l}"][k * H:(k + 1) * H])
            radius = np.abs(np.linalg.eigvals(block)).max()
            sv = np.linalg.svd(block, compute_uv=False)
            assert f"W{l}[{gate}]: spectral radius {radius:.4f}; singular values {sv[0]:.3f}" in out
    assert "defined for the vanilla cell" in out


# ------------------------------------------------------------------ the text model's validation sample


def _words_file(path, n_chars, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the", "bird", "sings", "over", "a", "tree", "while", "we", "listen", "slowly"]
    text = ""
    while len(text) < n_chars:
        text += " ".join(rng.choice(words, 8)) + ".\n"
    path.write_text(text[:n_chars])
    return path


def _twin_bpc(model, ids):
    """bpc of next-character prediction over ``ids`` from a zero state, by tests/reference.py's forward."""
    V = model.n_in
    params = {k: np.array(v) for k, v in model.params.items()}
    yhat, _ = ref.forward(params, np.eye(V)[ids[:-1]][None], model.activation, "softmax")
    p = yhat[0, np.arange(len(ids) - 1), ids[1:]]
    return float(-np.log(p).sum() / ((len(ids) - 1) * np.log(2.0)))


def test_validation_scores_the_same_bounded_sample_each_row_and_all_held_out_text_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "VAL_SAMPLE", 60)
    scored = []
    real = text.evaluate

    def spy(model, ids, chunk=1000):
        scored.append(np.array(ids))
        return real(model, ids, chunk)

    monkeypatch.setattr(text, "evaluate", spy)
    path = _words_file(tmp_path / "words.txt", 3000)
    result = fastrnn.train(task="text", text=path, iters=40, log_every=10, hidden=12, seq_length=10, val_fraction=0.2,
                           csv=tmp_path / "r.csv", save=tmp_path / "m.npz")
    held_out = text.read_text(path, seq_length=10, val_fraction=0.2).val_ids
    assert len(held_out) == 600
    rows = len(result.rows)
    assert rows == 4 and len(scored) == rows + 1
    for ids in scored[:rows]:  # each row: the first 61 held-out characters (60 predictions), the same ones
        assert np.array_equal(ids, held_out[:61])
    assert np.array_equal(scored[-1], held_out)  # the end: all of it, once
    model = fastrnn.RNN.load(tmp_path / "m.npz")
    assert result.rows[-1]["val_bpc"] == pytest.approx(_twin_bpc(model, held_out[:61]), rel=1e-10)
    whole = result.final_scores
    assert whole["val_bpc_all"] == pytest.approx(_twin_bpc(model, held_out), rel=1e-10)
    assert whole["val_chars_all"] == 599 and whole["val_chars_row"] == 60
    assert json.loads((tmp_path / "r.json").read_text())["result"]["val_bpc_all"] == whole["val_bpc_all"]


def test_held_out_text_shorter_than_the_sample_is_scored_whole_at_every_row(tmp_path):
    path = _words_file(tmp_path / "words.txt", 1500)
    result = fastrnn.train(task="text", text=path, iters=20, log_every=10, hidden=8, seq_length=10, val_fraction=0.1,
                           save=tmp_path / "m.npz")
    held_out = text.read_text(path, seq_length=10, val_fraction=0.1).val_ids
    assert len(held_out) - 1 < text.VAL_SAMPLE
    model = fastrnn.RNN.load(tmp_path / "m.npz")
    assert result.rows[-1]["val_bpc"] == pytest.approx(_twin_bpc(model, held_out), rel=1e-10)
    assert result.final_scores["val_bpc_all"] == pytest.approx(result.rows[-1]["val_bpc"], rel=1e-12)


def test_train_summary_gives_the_whole_held_out_score_beside_the_rows_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(text, "VAL_SAMPLE", 50)
    path = _words_file(tmp_path / "words.txt", 2000)
    code, out, err = run_cli(capsys, "train", "--task", "text", "--text", path, "--iters", 20, "--log-every", 10,
                             "--hidden", 8, "--seq-length", 10, "--val-fraction", 0.2, "--no-csv", "-q")
    assert code == 0, err
    assert "on all 399 held-out characters, " in out and " on the 50 each row scores" in out


def test_text_model_whose_text_file_is_gone_is_not_called_corrupt(tmp_path, capsys):
    text_file = _words_file(tmp_path / "words.txt", 1200)
    model_path = tmp_path / "t.npz"
    code, _, err = run_cli(capsys, "train", "--task", "text", "--text", text_file, "--iters", 20, "--log-every", 10,
                           "--hidden", 6, "--seq-length", 10, "--save", model_path, "--no-csv", "-q")
    assert code == 0, err
    text_file.rename(tmp_path / "moved.txt")
    code, out, err = run_cli(capsys, "spectrum", model_path)  # needs only the model
    assert code == 0, err
    assert "W0: spectral radius" in out and "cannot be read now" in out and str(text_file) in out
    code, out, err = run_cli(capsys, "sample", model_path, "--length", 10)
    assert code == 0 and len(out) == 11, err
    code, out, err = run_cli(capsys, "paths", model_path, "--out", tmp_path / "p.png")  # needs the text
    assert_one_line_error(code, err, 2, str(text_file), "cannot be read now", "put it back")
    assert "corrupt" not in err
    code, out, err = run_cli(capsys, "eval", model_path)
    assert_one_line_error(code, err, 2, "the text task has no decoding")


def test_model_larger_than_the_machine_is_refused_before_its_weights_are_read(tmp_path, monkeypatch):
    path = fastrnn.RNN(3, 10, 2).save(tmp_path / "m.npz")
    monkeypatch.setattr(_checks, "memory_limit", lambda: 1000)  # 162 parameters: 2592 bytes read and built
    with pytest.raises(fastrnn.InvalidArgument, match="162 parameters.* would need at least"):
        fastrnn.RNN.load(path)


@pytest.mark.parametrize("status", ["interrupted", "diverged"])
def test_a_run_that_did_not_complete_skips_the_whole_held_out_score(status, monkeypatch):
    calls = []
    monkeypatch.setattr(text, "evaluate", lambda model, ids, chunk=1000: calls.append(len(ids)) or {"bpc": 1.0})
    extra = TextRunMetrics(fastrnn.RNN(5, 3, 5), 5, 4, np.arange(5000) % 5, sample=100)
    run = SimpleNamespace(extra=extra, status=status, rows=[{"val_bpc": 1.0}])
    assert training._final_scores(run) == dict(val_chars_all=4999, val_chars_row=100)
    assert calls == []
    run.status = "completed"
    assert training._final_scores(run) == dict(val_chars_all=4999, val_chars_row=100, val_bpc_all=1.0)
    assert calls == [5000]
