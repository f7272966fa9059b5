"""Training speed of the gated cells: fastrnn's GRU and LSTM against torch.nn.GRU/LSTM and JAX.

    python benchmarks/bench_gated.py            # both shapes, writes the CSV and the README table
    python benchmarks/bench_gated.py --quick    # fewer repeats (a smoke run)

Every contender trains the same model (one layer, a linear read-out, softmax
cross-entropy summed over steps and averaged over the batch, plain SGD, float64)
from the same initial weights on the same data:

* fastrnn: one ``engine.train_chunk`` call per chunk of iterations (the training loop
  inside numba), serial kernel; its matrix products at B=32 go to OpenBLAS with the
  thread count OpenBLAS starts with (read by threadpoolctl: the ``blas`` column of the
  CSV and the table's caption; ``OPENBLAS_NUM_THREADS=1`` for one thread);
* torch: ``nn.GRU``/``nn.LSTM`` + ``nn.Linear`` from ``model.to_torch()``, a Python
  loop of forward, ``backward`` and ``optimizer.step``, with 1 and with 2 intra-op threads;
* JAX: the same cell written with ``jax.numpy`` in a ``lax.scan``, ``jax.grad`` for
  BPTT, and the whole chunk of iterations jitted as one ``lax.fori_loop``.

Before any timing, each contender runs a few iterations and its parameters must
equal fastrnn's to 1e-9 (relative): they do the same work. PyTorch keeps two
biases where fastrnn keeps their sum, and SGD on both would move the sum twice, so
the torch side trains ``bias_hh`` only where it is not folded (the GRU's n block,
fastrnn's ``bn``) by a gradient mask.

Self-contained (only numpy, fastrnn, torch, jax): the CSV goes to
benchmarks/results/bench_gated.csv and the table between the README's
``<!-- gated:start -->`` and ``<!-- gated:end -->`` marks.
"""

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"

import fastrnn  # noqa: E402
from fastrnn import engine, optim  # noqa: E402
from _common import environment, update_readme  # noqa: E402

#: (batch, hidden) of the two shapes; T steps, I inputs, O outputs, SGD rate
SHAPES = [(1, 16), (32, 100)]
T, I, O, LR = 20, 8, 4, 0.05
CHECK_ITERS = 3
CHECK_RTOL = 1e-9


def data(B, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n * B, T, I))
    Y = np.eye(O)[rng.integers(0, O, (n * B, T))]
    return X, Y


def time_chunks(fn, n_iters, repeats, min_seconds=0.3):
    """Median iterations per second of ``fn()`` (which trains n_iters iterations) over repeats."""
    fn()
    rates = []
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                break
        rates.append(calls * n_iters / elapsed)
    return float(np.median(rates)), float(np.min(rates)), float(np.max(rates))


# ----------------------------------------------------------------- contenders


class Fastrnn:
    name = "fastrnn"

    def __init__(self, model, B):
        self.model, self.B = model.copy(), B
        self.P = self.model.n_params
        self.buf = np.empty(engine.chunk_scratch_size(self.model, T, B))
        self.opt_state = np.zeros((2, self.P))
        self.hyper = optim.hyper_array()

    def train(self, X, Y, n):
        losses, norms = np.empty(n), np.empty(n)
        errors = np.empty(n * self.B, dtype=np.int64)
        done = engine.train_chunk(self.model, -1, X, Y, np.zeros((0, 0)), self.B, optim.SGD, LR, self.hyper,
                                  self.opt_state, 0, 0.0, 0.0, engine.new_state(self.model, self.B), None, self.buf,
                                  losses, norms, errors)
        assert done == n

    def params(self):
        return {k: np.array(v) for k, v in self.model.params.items()}


class Torch:
    def __init__(self, model, B, threads):
        import torch

        self.torch, self.B, self.threads = torch, B, threads
        self.name = f"torch nn.{model.cell.upper()} ({threads} thread{'s' if threads > 1 else ''})"
        self.cell, self.H = model.cell, model.n_hidden
        self.module, self.head = model.to_torch(batch_first=True)
        mask = torch.zeros(model.params["b0"].shape[0], dtype=torch.float64)
        if self.cell == "gru":
            mask[2 * self.H :] = 1.0  # bias_hh's n block is fastrnn's bn; the rest is folded into b
        self.module.bias_hh_l0.register_hook(lambda g: g * mask)
        self.opt = torch.optim.SGD(list(self.module.parameters()) + list(self.head.parameters()), lr=LR)

    def train(self, X, Y, n):
        torch = self.torch
        torch.set_num_threads(self.threads)
        X, Y = torch.from_numpy(X), torch.from_numpy(Y)
        B = self.B
        for it in range(n):
            x, y = X[it * B : (it + 1) * B], Y[it * B : (it + 1) * B]
            self.opt.zero_grad(set_to_none=True)
            z = self.head(self.module(x)[0])
            loss = -(y * torch.log_softmax(z, dim=2)).sum() / B
            loss.backward()
            self.opt.step()

    def params(self):
        m, l = self.module, 0
        out = {"U0": m.weight_ih_l0, "W0": m.weight_hh_l0, "V": self.head.weight, "c": self.head.bias}
        out = {k: v.detach().numpy().copy() for k, v in out.items()}
        b_ih, b_hh = m.bias_ih_l0.detach().numpy(), m.bias_hh_l0.detach().numpy()
        if self.cell == "gru":
            out["b0"] = b_ih.copy()
            out["b0"][: 2 * self.H] += b_hh[: 2 * self.H]
            out["bn0"] = b_hh[2 * self.H :].copy()
        else:
            out["b0"] = b_ih + b_hh
        return out


class Jax:
    name = "jax (lax.scan, jitted loop)"

    def __init__(self, model, B):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp, self.B, self.cell = jax, jnp, B, model.cell
        self.p = {k: jnp.asarray(np.array(v)) for k, v in model.params.items()}
        self.run = jax.jit(self._make_loop(model.cell, model.n_hidden, B), static_argnums=(3,))

    @staticmethod
    def _make_loop(cell, H, B):
        import jax
        import jax.numpy as jnp

        def step_gru(p, h, x):
            xu = x @ p["U0"].T + p["b0"]
            hw = h @ p["W0"].T
            r = jax.nn.sigmoid(xu[:, :H] + hw[:, :H])
            z = jax.nn.sigmoid(xu[:, H : 2 * H] + hw[:, H : 2 * H])
            n = jnp.tanh(xu[:, 2 * H :] + r * (hw[:, 2 * H :] + p["bn0"]))
            h = (1 - z) * n + z * h
            return h, h

        def step_lstm(p, hc, x):
            h, c = hc
            a = x @ p["U0"].T + h @ p["W0"].T + p["b0"]
            i, f = jax.nn.sigmoid(a[:, :H]), jax.nn.sigmoid(a[:, H : 2 * H])
            g, o = jnp.tanh(a[:, 2 * H : 3 * H]), jax.nn.sigmoid(a[:, 3 * H :])
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), h

        def loss(p, x, y):
            zeros = jnp.zeros((x.shape[0], H))
            if cell == "gru":
                _, hs = jax.lax.scan(lambda h, xt: step_gru(p, h, xt), zeros, jnp.swapaxes(x, 0, 1))
            else:
                _, hs = jax.lax.scan(lambda hc, xt: step_lstm(p, hc, xt), (zeros, zeros), jnp.swapaxes(x, 0, 1))
            z = hs @ p["V"].T + p["c"]  # (T, B, O)
            return -(jnp.swapaxes(y, 0, 1) * jax.nn.log_softmax(z, axis=2)).sum() / x.shape[0]

        grad = jax.grad(loss)

        def run(p, X, Y, n):
            def body(i, p):
                x = jax.lax.dynamic_slice_in_dim(X, i * B, B)
                y = jax.lax.dynamic_slice_in_dim(Y, i * B, B)
                g = grad(p, x, y)
                return {k: p[k] - LR * g[k] for k in p}

            return jax.lax.fori_loop(0, n, body, p)

        return run

    def train(self, X, Y, n):
        self.p = self.run(self.p, self.jnp.asarray(X[: n * self.B]), self.jnp.asarray(Y[: n * self.B]), n)
        self.jax.block_until_ready(self.p)

    def params(self):
        return {k: np.asarray(v) for k, v in self.p.items()}


# ----------------------------------------------------------------- driver


def check_same_work(contender, reference, X, Y):
    contender.train(X, Y, CHECK_ITERS)
    mine = contender.params()
    for k, want in reference.items():
        got = mine[k]
        err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)
        if not err < CHECK_RTOL:
            raise AssertionError(f"{contender.name}: {k} differs from fastrnn's after {CHECK_ITERS} iterations "
                                 f"(relative {err:.2e}); it does not do the same work")


def run(quick):
    import jax
    import torch

    repeats = 3 if quick else 5
    rows = []
    for cell in ("gru", "lstm"):
        for B, H in SHAPES:
            n = 200 if B == 1 else 20
            model = fastrnn.RNN(I, H, O, cell=cell, seed=0, init_scale=0.3)
            Xc, Yc = data(B, CHECK_ITERS, seed=1)
            ref = Fastrnn(model, B)
            ref.train(Xc, Yc, CHECK_ITERS)
            reference = ref.params()
            X, Y = data(B, n, seed=2)
            contenders = [lambda: Fastrnn(model, B), lambda: Torch(model, B, 1), lambda: Torch(model, B, 2),
                          lambda: Jax(model, B)]
            results = []
            for make in contenders:
                check_same_work(make(), reference, Xc, Yc)
                c = make()
                med, lo, hi = time_chunks(lambda: c.train(X, Y, n), n, repeats)
                results.append((c.name, med, lo, hi))
                print(f"{cell} B={B:<3d} H={H:<4d} {c.name:<30s} {med:12.1f} it/s  [{lo:.1f} .. {hi:.1f}]", flush=True)
            fast = results[0][1]
            for name, med, lo, hi in results:
                rows.append(dict(cell=cell, batch=B, hidden=H, steps=T, contender=name, iters_per_s=round(med, 2),
                                 min_iters_per_s=round(lo, 2), max_iters_per_s=round(hi, 2),
                                 fastrnn_speedup=round(fast / med, 2)))
    info = environment()  # machine, versions, date and the thread counts read from the loaded libraries
    info.update(python=platform.python_version(), numpy=np.__version__, torch=torch.__version__, jax=jax.__version__,
                cores=os.cpu_count())
    rows = [dict(r, **info) for r in rows]
    return rows, info


def markdown(rows, info, command):
    lines = [
        f"Training iterations per second (median of timed chunks; float64, SGD, T={T}, I={I}, O={O}, one layer), "
        f"`{command}`; every contender first reproduced fastrnn's parameters after {CHECK_ITERS} iterations to "
        f"{CHECK_RTOL:g}. Machine: {info['cores']} cores, Python {info['python']}, numpy {info['numpy']}, "
        f"torch {info['torch']}, jax {info['jax']}, measured {info['date']}; fastrnn's BLAS: {info['blas']}.",
        "",
        "| cell | batch | hidden | contender | iterations/s | fastrnn speed-up |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['batch']} | {r['hidden']} | {r['contender']} | {r['iters_per_s']:.1f} | "
                     f"{r['fastrnn_speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    rows, info = run(args.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench_gated.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    block = markdown(rows, info, "python benchmarks/bench_gated.py" + (" --quick" if args.quick else ""))
    print(block)
    if update_readme(block, "gated"):
        print("README table updated")


if __name__ == "__main__":
    main()
