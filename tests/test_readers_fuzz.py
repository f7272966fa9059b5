"""Property test: every command that reads files turns a malformed,
truncated or foreign file into one line naming it, never a traceback.

Each example corrupts one file in a different way (random bytes, a CSV cut inside a
row, JSON of the wrong shape, an .npz with the wrong contents, a zip that is not an
.npz) and runs the command through ``fastrnn.cli.main``. Examples are bounded so
the whole file runs in seconds.
"""

import contextlib
import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import metrics
from fastrnn.cli import main

EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real run (CSV and JSON text) and a real model file (bytes) to corrupt."""
    folder = tmp_path_factory.mktemp("good")
    csv, model = folder / "run.csv", folder / "m.npz"
    fastrnn.train(iters=500, log_every=100, csv=csv, save=model)
    return dict(csv=csv.read_text(), json=metrics.json_path_for(csv).read_text(), model=model.read_bytes(),
                config=fastrnn.RNN.load(model).config(), n_params=fastrnn.RNN.load(model).n_params)


def run_cli(args):
    """(exit code, stderr) of ``fastrnn ARGS`` in-process."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in args])
    return info.value.code, err.getvalue()


def assert_names_the_file(code, err, path):
    lines = err.strip().splitlines()
    assert code in (1, 2), err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("Error:"), err
    assert str(path) in lines[0] or Path(path).name in lines[0], lines[0]


# ------------------------------------------------------------------ metrics files


@st.composite
def truncated_csv(draw, text):
    """The CSV cut inside the header or inside a row before its last field: never a whole file."""
    lines = text.splitlines(keepends=True)
    i = draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    if i == 0:  # the header loses at least its last character
        cut = draw(st.integers(0, len(line.rstrip("\n")) - 1))
    else:  # a row keeps at least one character and loses at least its last field
        cut = draw(st.integers(1, line.rindex(",")))
    return "".join(lines[:i]) + line[:cut]


json_not_object = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4), max_leaves=8,
)
json_lacking_fields = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in ("task", "status")),
                                      json_not_object, max_size=5)
json_bad_status = st.fixed_dictionaries({"task": st.text(max_size=5), "status": json_not_object.filter(lambda v: not isinstance(v, str))})
json_bad_result = st.fixed_dictionaries({"task": st.just("binary"), "status": st.just("completed"),
                                         "result": json_not_object.filter(lambda v: v is not None)})


def corrupt_run(good):
    """(which file is broken, new CSV text or bytes, new JSON text or bytes)."""
    return st.one_of(
        st.tuples(st.just("csv"), st.binary(max_size=300), st.just(good["json"])),
        st.tuples(st.just("csv"), truncated_csv(good["csv"]), st.just(good["json"])),
        st.tuples(st.just("json"), st.just(good["csv"]), st.binary(max_size=200)),
        st.tuples(st.just("json"), st.just(good["csv"]),
                  st.one_of(json_not_object, json_lacking_fields, json_bad_status, json_bad_result).map(json.dumps)),
    )


def write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


@pytest.mark.parametrize("command", ["report", "plot"])
def test_run_readers_never_trace_back(good, command):
    @EXAMPLES
    @given(corrupt_run(good))
    def check(case):
        broken, csv_content, json_content = case
        with tempfile.TemporaryDirectory() as folder:
            csv = Path(folder) / "run.csv"
            write(csv, csv_content)
            write(metrics.json_path_for(csv), json_content)
            args = ["report", folder] if command == "report" else ["plot", csv, "--out", Path(folder) / "p.png"]
            code, err = run_cli(args)
            assert_names_the_file(code, err, csv if broken == "csv" else metrics.json_path_for(csv))

    check()


# -------------------------------------------------------------------- model files


def npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def not_a_width(value):
    """Anything but a valid --bits (an int 2..62)."""
    return not (isinstance(value, int) and not isinstance(value, bool) and 2 <= value <= 62)


def corrupt_model(good):
    meta = dict(format="fastrnn-model", version=1, config=good["config"], metadata={"task": "binary", "bits": 8})
    theta = np.linspace(-1, 1, good["n_params"])
    meta_text = np.array(json.dumps(meta))

    def with_meta(**changes):
        return np.array(json.dumps(dict(meta, **changes)))

    shapes = st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple).filter(lambda s: s != (good["n_params"],))
    wrong = st.one_of(
        st.builds(lambda s: npz_bytes(theta=np.zeros(s), meta=meta_text), shapes),                       # wrong shape
        st.sampled_from(["U8", "complex128", "bool"]).map(lambda d: npz_bytes(theta=theta.astype(d), meta=meta_text)),
        st.just(npz_bytes(theta=np.full(good["n_params"], np.nan), meta=meta_text)),                     # not finite
        st.just(npz_bytes(theta=np.array([object()] * 3, dtype=object), meta=meta_text)),               # object array
        st.just(npz_bytes(theta=theta, meta=np.array([meta], dtype=object))),
        st.sampled_from(["theta", "meta"]).map(lambda k: npz_bytes(**{k: theta if k == "theta" else meta_text})),  # a key missing
        st.builds(lambda v: npz_bytes(theta=theta, meta=np.array(json.dumps(v))), json_not_object),     # meta not an object
        st.builds(lambda t: npz_bytes(theta=theta, meta=np.array(t)), st.text(max_size=30)),             # meta not JSON
        st.builds(lambda c: npz_bytes(theta=theta, meta=with_meta(config=c)), json_lacking_fields | json_not_object),
        st.builds(lambda m: npz_bytes(theta=theta, meta=with_meta(metadata=m)),
                  json_not_object.filter(lambda v: v is not None)
                  | st.fixed_dictionaries({"task": st.just("binary"), "bits": json_not_object.filter(not_a_width)})),
        st.builds(lambda v: npz_bytes(theta=theta, meta=with_meta(version=v)), json_not_object.filter(lambda v: v != 1)),
        st.builds(lambda v: npz_bytes(theta=theta, meta=with_meta(format=v)), st.text(max_size=8)),
        st.builds(zip_bytes, st.lists(st.tuples(st.text("abcxyz.npy", min_size=1, max_size=9), st.binary(max_size=40)), max_size=3, unique_by=lambda m: m[0])),
        st.builds(lambda n: good["model"][:n], st.integers(0, len(good["model"]) - 1)),                 # truncated
        st.binary(max_size=300),
    )
    return wrong


MODEL_COMMANDS = {
    "predict": lambda path, folder: ["predict", path, "1", "2"],
    "eval": lambda path, folder: ["eval", path, "--samples", "4"],
    "spectrum": lambda path, folder: ["spectrum", path, "--samples", "2"],
    "paths": lambda path, folder: ["paths", path, "--samples", "2", "--out", Path(folder) / "p.png"],
}


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
def test_model_readers_never_trace_back(good, command):
    @EXAMPLES
    @given(corrupt_model(good))
    def check(content):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "m.npz"
            path.write_bytes(content)
            code, err = run_cli(MODEL_COMMANDS[command](path, folder))
            assert_names_the_file(code, err, path)

    check()
