"""Bad input to the commands and the files they read: one clear line, a non-zero exit, nothing lost.

The environment's numba variables, model files whose metadata does not fit their arrays,
sampling from every cell, folders holding a run stopped before its first row, models
trained on arrays in the study commands, and the text model's validation sample.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import _startup

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
    ("NUMBA_OPT", "7"), ("NUMBA_BOUNDSCHECK", "yes"),
])
@pytest.mark.parametrize("args", [["--version"], ["--help"], ["train", "--help"]])
def test_bad_numba_variable_gives_one_line_naming_it_on_every_command(variable, value, args):
    proc = _command(["-m", "fastrnn", *args], {variable: value})
    _assert_one_line(proc, 2, f"{variable}={value!r}")
    assert proc.stdout == ""


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
    pytest.importorskip("numba")
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
                                                      "NUMBA_THREADING_LAYER_PRIORITY": "workqueue omp tbb"})
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
