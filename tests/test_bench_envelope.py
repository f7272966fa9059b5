"""benchmarks/bench_envelope.py at smoke size: the table's rows and columns, the same work for
every contender, and its single-purpose loops computing fastrnn's numbers."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import optim
from fastrnn.cells import rnn as rnn_cell

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import numba_loop  # noqa: E402
import numba_loop_adam  # noqa: E402


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("envelope")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_envelope.py"), "--quick", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "envelope.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows, (out / "envelope.md").read_text()


def test_the_envelope_has_a_row_for_every_registered_setting(quick):
    rows, _ = quick
    names = [r["setting"] for r in rows if r["section"] == "envelope"]
    expected = (["defaults (sgd)"] + [f"optimizer={o}" for o in optim.OPTIMIZERS if o != "sgd"]
                + ["clip=1.0 (by norm)", "clip_value=1.0 (by value)", "bptt_truncate=4"]
                + [f"activation={a}" for a in rnn_cell.ACTIVATIONS]
                + ["fit, softmax head (O=2)", "hidden=32", "layers=2", "cell=gru", "cell=lstm"])
    assert names == expected


def test_every_contender_does_the_same_work(quick):
    rows, _ = quick
    envelope = {r["setting"]: r for r in rows if r["section"] == "envelope"}
    for name, r in envelope.items():
        assert int(r["iterations"]) == 300 and r["status"] == "completed", name
        want_h = 32 if name == "hidden=32" else 16
        want_o = 2 if name.startswith("fit") else 1
        assert (int(r["T"]), int(r["I"]), int(r["H"]), int(r["O"]), int(r["batch"])) == (8, 2, want_h, want_o, 1), name
        assert float(r["us_per_iter"]) > 0 and r["within"] in ("yes", "no", "reference")
        if r["loop"]:  # the single-purpose loop trained as many iterations on the same shape
            assert int(r["loop_iterations"]) == int(r["iterations"]), name
            assert float(r["x_loop"]) == pytest.approx(float(r["us_per_iter"]) / float(r["loop_us_per_iter"]))
    assert envelope["defaults (sgd)"]["loop"] and envelope["optimizer=adam"]["loop"]
    assert float(envelope["defaults (sgd)"]["x_default"]) == 1.0
    bounds = {name: float(r["bound"]) for name, r in envelope.items() if r["bound"]}
    assert bounds.pop("hidden=32") == 4 and bounds.pop("layers=2") == 2.7
    assert bounds.pop("cell=gru") == 3 and bounds.pop("cell=lstm") == 4
    assert set(bounds.values()) == {1.25}


def test_the_neighbour_rows_report_quiet_and_busy_side_by_side(quick):
    rows, md = quick
    near = {r["setting"]: r for r in rows if r["section"] == "neighbour"}
    assert len(near) == 6 and any(name.startswith("control") for name in near)
    for name, r in near.items():
        assert float(r["quiet"]) > 0 and float(r["busy"]) > 0 and r["threads_quiet"] and r["threads_busy"], name
    fit = near["fit B=32 T=8 I=8 H=64 O=10 (adam), FASTRNN_THREADS=auto"]
    text = near["text model, batch 1 (command), FASTRNN_THREADS=auto"]
    assert float(fit["bound"]) == 1.5 and float(text["bound"]) == 1.7
    assert near["text model, batch 1 (command), FASTRNN_THREADS=2"]["threads_busy"] == "2"  # forced: honoured
    assert near["text model, batch 1 (command), FASTRNN_THREADS=1"]["threads_quiet"] == "1"
    tables = [line for line in md.splitlines() if line.startswith("|")]
    assert len(tables) == 3 * 2 + len(rows)  # three tables (envelope, neighbour, the policy's cost): a line a row


def test_the_policy_cost_row_compares_the_default_policy_with_no_policy(quick):
    rows, md = quick
    (cost,) = [r for r in rows if r["section"] == "policy"]
    assert float(cost["auto_us"]) > 0 and float(cost["cpus_us"]) > 0 and float(cost["bound"]) == 1.1
    assert float(cost["auto_x_cpus"]) == pytest.approx(float(cost["auto_us"]) / float(cost["cpus_us"]))
    assert cost["threads_auto"] and cost["threads_cpus"] and float(cost["decide_us"]) > 0


@pytest.mark.parametrize("module, optimizer, lr", [(numba_loop, "sgd", 0.1), (numba_loop_adam, "adam", 0.01)])
def test_the_single_purpose_loops_compute_fastrnns_numbers(rng, module, optimizer, lr):
    X = rng.integers(0, 2, (50, 8, 2)).astype(float)
    Y = rng.integers(0, 2, (50, 8, 1)).astype(float)
    model = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid", seed=3)
    loop = module.Trainer({k: v.copy() for k, v in model.params.items()}, "sigmoid", "sigmoid", lr)
    loop.train(X, Y, 30)
    loop.train(X[30:], Y[30:], 20)  # a second call goes on from the first (Adam's step count)
    fastrnn.fit(model, X, Y, epochs=1, batch=1, optimizer=optimizer, lr=lr, clip=None, shuffle=False)
    for k, v in loop.params().items():
        np.testing.assert_allclose(v, model.params[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_the_lean_size_benchmark_compares_both_kernels_and_names_the_choice(tmp_path):
    """benchmarks/bench_lean_size.py at smoke size: each grid cell timed on the lean kernel and the general driver
    (which the script first checks end at the same parameters), with the kernel fastrnn chooses there."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_lean_size.py"), "--quick", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "lean_size.csv", newline="") as fh:
        rows = {(int(r["H"]), int(r["B"])): r for r in csv.DictReader(fh)}
    assert set(rows) == {(32, 1), (16, 4)}
    assert rows[(32, 1)]["chosen"] == "small-lean"  # 32 x 32 a step: within the lean kernel's bound
    for r in rows.values():
        assert float(r["lean_us"]) > 0 and float(r["general_us"]) > 0
        assert np.isclose(float(r["general_x_lean"]), float(r["general_us"]) / float(r["lean_us"]))
    assert "| H | batch | step work | lean us | general us | general / lean | chosen |" in (tmp_path / "lean_size.md").read_text()


def test_the_cells_size_benchmark_compares_both_kernels_and_names_the_choice(tmp_path):
    """benchmarks/bench_cells_size.py at smoke size: each grid cell timed on small-cells and the general driver
    (which the script first checks end at the same parameters), with the kernel fastrnn chooses there."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cells_size.py"), "--quick", "--out",
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "cells_size.csv", newline="") as fh:
        rows = {(r["model"], int(r["H"]), int(r["B"])): r for r in csv.DictReader(fh)}
    assert set(rows) == {("gru", 8, 1), ("rnn x2", 8, 2)}
    assert rows[("gru", 8, 1)]["chosen"] == "small-cells"  # 24 gate units at batch 1: within the bounds
    for r in rows.values():
        assert float(r["cells_us"]) > 0 and float(r["general_us"]) > 0
        assert np.isclose(float(r["general_x_cells"]), float(r["general_us"]) / float(r["cells_us"]))
    assert "| model | H | batch | gate units | small-cells us | general us |" in (tmp_path / "cells_size.md").read_text()
