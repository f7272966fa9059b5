"""Shared test settings: tolerances (each kind of test has its own), seeds, and helpers."""

import numpy as np
import pytest

import fastrnn

SEED = 20261122

#: kernel against the plain-numpy twin, float64
RTOL_TWIN = 1e-10
ATOL_TWIN = 1e-12
#: serial against parallel path (only the summation order differs)
RTOL_PARALLEL = 1e-12
#: the reference against central differences (docs/math.md: relative error under 1e-6)
GRADCHECK_TOL = 1e-6
#: float32 against float64 results
RTOL_FLOAT32 = 2e-4
#: the plain-numpy twin against PyTorch in float64: forward outputs, and autograd's gradients
TOL_TORCH_FORWARD = 1e-12
RTOL_TORCH_GRAD = 1e-9


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


@pytest.fixture(params=["auto", "general"], ids=["kernel-auto", "kernel-general"])
def kernel_choice(request, monkeypatch):
    """Run a test twice: with the kernels fastrnn chooses, and with ``FASTRNN_KERNEL=general``
    forcing the general driver everywhere (fastrnn.dispatch). The value is the variable's."""
    monkeypatch.setenv("FASTRNN_KERNEL", request.param)
    return request.param


def make_data(rng, B, T, I, O, head, masked=False):
    """Random inputs, targets that suit the head, and an optional ragged mask."""
    X = rng.standard_normal((B, T, I))
    if head == "softmax":
        Y = np.eye(O)[rng.integers(0, O, (B, T))]
    elif head == "sigmoid":
        Y = rng.integers(0, 2, (B, T, O)).astype(float)
    else:
        Y = rng.standard_normal((B, T, O))
    mask = None
    if masked:
        mask = (rng.random((B, T)) < 0.6).astype(float)
        mask[:, -1] = 1.0  # a target somewhere in every sequence
        lengths = rng.integers(1, T + 1, B)  # and ragged ends: padding after each length
        for i, n in enumerate(lengths):
            mask[i, n:] = 0.0
    return X, Y, mask


def model_from_params(ref_params, activation, head, dtype="float64"):
    """A fastrnn.RNN holding the reference's parameter values."""
    H, I = ref_params["U0"].shape
    O = ref_params["V"].shape[0]
    L = sum(1 for k in ref_params if k.startswith("W"))
    model = fastrnn.RNN(I, H, O, layers=L, activation=activation, head=head, dtype=dtype)
    for k, v in ref_params.items():
        model.params[k][...] = v
    return model


def run_cli(capsys, *args):
    """Run ``fastrnn ARGS`` in-process; return (exit code, stdout, stderr)."""
    from fastrnn.cli import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_error(code, err, expected_code, *fragments):
    """The CLI's promise for bad input: the exit code, one line "Error: ...", no traceback."""
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def csv_rows(path):
    """A metrics CSV without its wall-clock column."""
    import pandas as pd

    return pd.read_csv(path).drop(columns=["elapsed_s"])


def assert_same_run(resumed, whole, resumed_csv, whole_csv):
    """A resumed run equals an uninterrupted one: weights, CSV rows and history (wall clock aside)."""
    import pandas as pd

    assert np.array_equal(resumed.model.theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(resumed_csv), csv_rows(whole_csv), check_exact=True)
    assert resumed.first_perfect_iteration == whole.first_perfect_iteration
    assert resumed.iterations == whole.iterations
    pd.testing.assert_frame_equal(resumed.history.drop(columns=["elapsed_s"]), whole.history.drop(columns=["elapsed_s"]),
                                  check_exact=True)


def interrupt_after_two_rows(train_args, csv):
    """Run ``python -m fastrnn train *train_args`` (which writes its rows to ``csv``), send it SIGINT
    once the CSV holds a header and two rows, and return (returncode, stdout, stderr)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "fastrnn", "train", *train_args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) >= 3:  # the header and two rows
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


# ---------------------------------------------------------------- thread policy
# The thread policy (fastrnn.cpus.policy) gives a run fewer threads while other processes keep
# the CPUs busy. A test's numbers and thread counts must not depend on the load of the machine
# it runs on, so the tests run with FASTRNN_THREADS=cpus (threads by the CPUs allowed, whatever
# else runs); tests/test_threads.py checks the load-aware default with given loads.
import os as _os  # noqa: E402

_os.environ.setdefault("FASTRNN_THREADS", "cpus")
