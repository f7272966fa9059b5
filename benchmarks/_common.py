"""Timing helpers shared by the benchmark scripts: warm-up, repeats, medians, spread."""

import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT / "tests"))  # the plain-numpy twin, tests/reference.py


def time_call(fn, repeats=7, min_seconds=0.05):
    """Median, min and max seconds per call of ``fn()`` over ``repeats`` timed batches.

    One warm-up call first; each batch runs ``fn`` enough times to last about
    ``min_seconds`` so that timer resolution does not matter.
    """
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_seconds / once))
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        per_call.append((time.perf_counter() - t0) / n)
    return float(np.median(per_call)), float(np.min(per_call)), float(np.max(per_call))


def environment(command=None):
    """Where and with what a measurement ran, read at run time: one dict that every results row carries.

    Versions of PyTorch and JAX come from the installed distributions (nothing is
    imported for them); thread counts are read from the libraries that are loaded:
    numba's, PyTorch's (if imported) and every BLAS/OpenMP pool threadpoolctl finds.
    """
    import datetime
    from importlib import metadata

    import numba

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    torch = sys.modules.get("torch")
    try:
        from threadpoolctl import threadpool_info

        blas = "; ".join(f"{d.get('internal_api')} {d.get('version')} ({d.get('num_threads')} threads"
                         + (f", {d['architecture']} kernels" if d.get("architecture") else "") + ")"
                         for d in threadpool_info())
    except Exception as exc:  # threadpoolctl missing or failing: say so instead of guessing
        blas = f"unknown ({exc.__class__.__name__})"
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=command or " ".join(["python", _script()] + sys.argv[1:]),
        platform=platform.platform(),
        cpu=_cpu_name(),
        cores=os.cpu_count(),
        python=platform.python_version(),
        numpy=np.__version__,
        numba=numba.__version__,
        torch=version("torch"),
        jax=version("jax"),
        numba_threads=numba.get_num_threads(),
        torch_threads=torch.get_num_threads() if torch is not None else "not loaded",
        blas=blas or "none loaded",
        thread_env=" ".join(f"{k}={os.environ[k]}" for k in THREAD_VARIABLES if k in os.environ) or "none set",
    )


ENVIRONMENT_KEYS = ("date", "command", "platform", "cpu", "cores", "python", "numpy", "numba", "torch", "jax",
                    "numba_threads", "torch_threads", "blas", "thread_env")
#: environment variables that set thread counts (and OpenBLAS's kernels), recorded when set
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "XLA_FLAGS",
                    "OPENBLAS_CORETYPE")


def machine():
    """The environment (see :func:`environment`) without the date and command."""
    info = environment()
    return {k: v for k, v in info.items() if k not in ("date", "command")}


def _script():
    """The running script's path from the repository root (benchmarks/run.py), as a user would type it."""
    path = Path(sys.argv[0]).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return sys.argv[0]


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(row):
    """One sentence naming the machine, versions, threads and date recorded in a results row."""
    if not row.get("date"):
        return "Measured before results files recorded their machine, versions, threads and date (none on file)."
    row = {k: row.get(k, "not recorded") for k in ENVIRONMENT_KEYS}
    def threads(n):
        return f"{n} threads" if isinstance(n, int) or str(n).isdigit() else f"threads {n}"

    return (f"Measured {str(row['date'])[:10]} with `{row['command']}` on {row['cpu']} ({row['cores']} cores, {row['platform']}); "
            f"Python {row['python']}, numpy {row['numpy']}, numba {row['numba']} ({threads(row['numba_threads'])}), "
            f"PyTorch {row['torch']} ({threads(row['torch_threads'])}), JAX {row['jax']}; BLAS: {row['blas']}"
            + (f"; thread variables: {row['thread_env']}" if row["thread_env"] not in ("not recorded", "none set", "") else "") + ".")


def update_readme(block, mark):
    """Put ``block`` between ``<!-- mark:start -->`` and ``<!-- mark:end -->`` in every page that has
    both marks: README.md and the pages under docs/. Returns the pages written (relative paths; an
    empty list, which is false, when no page has the marks)."""
    start, end = f"<!-- {mark}:start -->", f"<!-- {mark}:end -->"
    written = []
    for path in [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md")):
        if not path.is_file():
            continue
        text = path.read_text()
        if start not in text or end not in text:
            continue
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        # the same block on every page: links such as benchmarks/results/throughput.png stay as written
        # (the docs site adds benchmarks/results/*.png under that path: docs/hooks.py)
        new = head + start + "\n" + block + end + tail
        if new != text:
            path.write_text(new)
        written.append(path.relative_to(ROOT).as_posix())
    return written


def write_csv(path, rows, env=None):
    """Write dict rows to a CSV file, each followed by the environment columns; return the path.

    ``env`` is an :func:`environment` dict (read now if not given), so that every
    results file says on which machine, with which versions and threads and when
    its numbers were measured.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    env = environment() if env is None else env
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns + [k for k in env if k not in columns])
        writer.writeheader()
        writer.writerows({**env, **row} for row in rows)
    return path


def size_arguments(doc):
    """The size benchmarks' command line (``--quick``, ``--rounds``, ``--out``), parsed; ``doc`` is the script's docstring."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke-sized grid (numbers mean nothing)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="the folder for the results files")
    return parser.parse_args()


def train_binary(general, iters, **settings):
    """``fastrnn.train(task="binary", iters=iters, lr=0.01, seed=0, **settings)``, on the general driver when
    ``general`` (``FASTRNN_KERNEL=general`` for the call; the variable as it was afterwards)."""
    import fastrnn
    from fastrnn import dispatch

    before = os.environ.pop(dispatch.ENV, None)
    if general:
        os.environ[dispatch.ENV] = "general"
    try:
        return fastrnn.train(task="binary", iters=iters, lr=0.01, seed=0, log_every=iters, **settings)
    finally:
        os.environ.pop(dispatch.ENV, None)
        if before is not None:
            os.environ[dispatch.ENV] = before


def write_results(out, name, rows, lines, env=None):
    """``out/name.csv`` (:func:`write_csv`) and ``out/name.md``: the table's ``lines`` and then the
    machine they were measured on (:func:`describe`); the markdown is printed too. Returns it."""
    env = environment() if env is None else env
    write_csv(Path(out) / f"{name}.csv", rows, env)
    text = "\n".join(lines + ["", describe(env)]) + "\n"
    (Path(out) / f"{name}.md").write_text(text)
    print(text, end="")
    return text


def read_csv(path):
    """Rows of a results CSV with numbers as numbers (empty cells as NaN)."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out = {}
            for k, v in row.items():
                try:
                    out[k] = int(v)
                except ValueError:
                    try:
                        out[k] = float(v) if v not in ("", "None") else float("nan")
                    except ValueError:
                        out[k] = v
            rows.append(out)
    return rows


def fastrnn_after_sgd(p0, X, Y, activation, head, n, lr=0.1):
    """fastrnn's parameters after n plain-SGD iterations at batch 1 from p0 on X, Y.

    The reference trajectory every benchmark contender must reproduce before its
    time counts (and that tests/test_benchmark_baselines.py checks the numpy ones on).
    """
    return fastrnn_after(p0, X, Y, activation, head, n, lr)


def fastrnn_after(p0, X, Y, activation, head, n, lr=0.1, optimizer="sgd", clip=0.0, batch=1):
    """fastrnn's parameters after n iterations of ``optimizer`` (fastrnn.optim's names, its default
    hyperparameters) with global-norm clipping at ``clip`` (0: off) at batch ``batch`` from p0 on
    X, Y (iteration i trains on sequences i*batch .. (i+1)*batch - 1)."""
    import fastrnn
    from fastrnn import engine, optim

    model = fastrnn.RNN(X.shape[2], p0["W0"].shape[0], Y.shape[2], activation=activation, head=head)
    for k, v in p0.items():
        model.params[k][...] = v
    P = model.n_params
    X, Y = np.ascontiguousarray(X[: n * batch]), np.ascontiguousarray(Y[: n * batch])
    buf = np.empty(engine.chunk_scratch_size(model, X.shape[1], batch))
    engine.train_chunk(model, -1, X, Y, np.zeros((0, 0)), batch, optim.OPTIMIZERS[optimizer], lr, optim.hyper_array(),
                       np.zeros((2, P)), 0, float(clip or 0.0), 0.0, engine.new_state(model, batch), None, buf, np.empty(n),
                       np.empty(n), np.empty(n * batch, dtype=np.int64))  # errors: one per sequence
    return {k: v.copy() for k, v in model.params.items()}
