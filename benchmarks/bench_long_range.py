"""The speed anchor: a public pure-numpy LSTM's adding-problem configuration, in fastrnn, in plain numpy and in PyTorch.

    python benchmarks/bench_long_range.py            # fastrnn's whole run; all three timed in interleaved rounds
    python benchmarks/bench_long_range.py --full     # numpy and torch also train all 8000 iterations (minutes)

The configuration (npow/schmidhuber-problems, adding-problem/adding_problem.py): T = 100,
one LSTM layer of 8 units, a linear read-out, batch 32, 8000 iterations; values U(-1, 1),
markers {0, 1} (one in each half), target X1 + X2 (fastrnn's ``--adding-form signed``:
predicting 0 scores MSE 2/3); Adam at lr 5e-3 halved every 1500 iterations, gradients
clipped to global norm 1, forget-gate bias 1. The three contenders start from the same
weights (fastrnn's draw, seed 0) and train on the same data stream, float64, one thread:

* fastrnn: ``fastrnn.train(task="adding", adding_form="signed", cell="lstm", lr_step=1500,
  lr_gamma=0.5, ...)`` for the whole run (its held-out test MSE, its time for 8000
  iterations, the compile or cache load apart); for the timing rounds, the same kernel
  call it makes (``engine.train_chunk``, 100 iterations a call, cut at the rate's steps);
* numpy: benchmarks/numpy_lstm.py, the same math written out in numpy, one Python step per
  iteration (its gradients are checked against fastrnn's first, to 1e-10 relative);
* torch: ``nn.LSTM`` + ``nn.Linear`` from ``model.to_torch()``, autograd and ``torch.optim.Adam``
  with ``StepLR(1500, 0.5)``, the clipping written as fastrnn's (scale by 1/norm above 1) and
  ``bias_hh`` frozen at zero so that the one bias fastrnn trains is the one torch trains.

Before any timing, 20 iterations of each contender from the same weights on the same
data must give fastrnn's mean loss (numpy to 1e-9, torch to 1e-6 relative): they do the
same work. Speed: ``--rounds`` rounds, each timing fastrnn on 100 iterations, then numpy
on 10, then torch on 10 (every contender warmed up first, its first call timed apart),
each drawing its batches with ``AddingProblem.sample`` inside the timed block; so a
change of the machine's load touches all three alike. Reported: the median seconds an
iteration over the rounds, and the median (and range) of the round-by-round ratios.
With ``--full`` numpy and torch also train the whole 8000 iterations, for their time and
held-out MSE (fastrnn's fixed batch of 256 sequences). A last row trains fastrnn's tanh
RNN of the same size for 5000 iterations, the numpy program's vanilla baseline.

Results: benchmarks/results/long_range.csv (one row per contender, with the machine).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, write_csv  # noqa: E402

sys.path.insert(0, str(ROOT))
import fastrnn  # noqa: E402
import numpy_lstm  # noqa: E402
from fastrnn.tasks import make_task  # noqa: E402
from fastrnn.tasks._base import HELD_OUT, HELD_OUT_SEED  # noqa: E402

CONFIG = dict(task="adding", adding_form="signed", length=100, cell="lstm", hidden=8, batch=32, iters=8000,
              optimizer="adam", lr=5e-3, lr_step=1500, lr_gamma=0.5, clip=1.0, forget_bias=1.0, seed=0,
              log_every=500)
#: the numpy program's published figures (README of npow/schmidhuber-problems)
PUBLISHED = "about 39 s on an Apple-silicon laptop core, test MSE 0.0007 (its tanh RNN: 0.0706 after 5000 iterations)"


def start():
    """The initial model (fastrnn's draw for CONFIG), the task, the training stream and the held-out batch."""
    model = fastrnn.RNN(2, CONFIG["hidden"], 1, head="linear", cell="lstm", forget_bias=CONFIG["forget_bias"],
                        seed=CONFIG["seed"])
    task = make_task("adding", length=CONFIG["length"], adding_form="signed")
    held_out = task.sample(np.random.default_rng(HELD_OUT_SEED), HELD_OUT)
    return model, task, np.random.default_rng([CONFIG["seed"], 1]), held_out


def lr_at(i):
    return CONFIG["lr"] * CONFIG["lr_gamma"] ** (i // CONFIG["lr_step"])


def check_numpy_gradients():
    """numpy_lstm's gradients against fastrnn's on one batch; the largest relative error."""
    model, task, rng, _ = start()
    model.params["V"][...] *= 3.0  # a read-out large enough that every gradient is far from zero
    X, Y, M = task.sample(rng, CONFIG["batch"])
    loss, grads = model.loss_and_grads(X, Y, M)
    loss2, grads2 = numpy_lstm.loss_and_grads({k: np.array(v) for k, v in model.params.items()}, X, Y, M)
    err = max(np.abs(grads[k] - grads2[k]).max() / np.abs(grads[k]).max() for k in grads)
    assert abs(loss - loss2) <= 1e-12 * abs(loss) and err < 1e-10, (loss, loss2, err)
    return err


class Contender:
    """One contender's training, advanced block by block from CONFIG's initial weights and data stream."""

    def __init__(self, name):
        from fastrnn import engine, optim

        self.name, self.done = name, 0
        model, self.task, self.rng, _ = start()
        B = CONFIG["batch"]
        if name == "fastrnn":
            self.model = model
            self.state = np.zeros((2, model.n_params))
            self.hstate = engine.new_state(model, B)
            self.buf = np.empty(engine.chunk_scratch_size(model, CONFIG["length"], B))
            self.hyper = optim.hyper_array()
            self.engine, self.adam = engine, optim.ADAM
        elif name == "numpy":
            self.p = {k: np.array(v) for k, v in model.params.items()}
            self.opt = numpy_lstm.Adam(self.p, CONFIG["lr"], CONFIG["clip"])
        else:
            import torch

            torch.set_num_threads(1)
            self.torch = torch
            self.lstm, self.head = model.to_torch(batch_first=True)
            self.lstm.bias_hh_l0.requires_grad_(False)  # zeros: fastrnn's one bias is bias_ih
            self.params = [q for q in list(self.lstm.parameters()) + list(self.head.parameters()) if q.requires_grad]
            self.opt = torch.optim.Adam(self.params, lr=CONFIG["lr"], eps=1e-8)
            self.sched = torch.optim.lr_scheduler.StepLR(self.opt, CONFIG["lr_step"], CONFIG["lr_gamma"])

    def block(self, n):
        """Train n iterations (drawing their data); return their mean loss."""
        B = CONFIG["batch"]
        if self.name == "fastrnn":  # one kernel call per rate, as fastrnn.train cuts a chunk at a step boundary
            X, Y, M = self.task.sample(self.rng, n * B)
            losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, dtype=np.int64)
            a = 0
            while a < n:
                i = self.done + a
                b = min(n, (i // CONFIG["lr_step"] + 1) * CONFIG["lr_step"] - self.done)
                rows = slice(a * B, b * B)
                self.engine.train_chunk(self.model, -1, X[rows], Y[rows], M[rows], B, self.adam, lr_at(i), self.hyper,
                                        self.state, i, CONFIG["clip"], 0.0, self.hstate, None, self.buf,
                                        losses[a:b], norms[a:b], errors[rows])
                a = b
            self.done += n
            return float(losses.mean())
        total = 0.0
        for _ in range(n):
            X, Y, M = self.task.sample(self.rng, B)
            if self.name == "numpy":
                self.opt.lr = lr_at(self.done)
                loss, grads = numpy_lstm.loss_and_grads(self.p, X, Y, M)
                self.opt.step(self.p, grads)
            else:
                torch = self.torch
                x, y = torch.from_numpy(X), torch.from_numpy(Y[:, -1, 0])
                self.opt.zero_grad()
                out, _ = self.lstm(x)
                err = self.head(out[:, -1])[:, 0] - y
                loss_t = 0.5 * (err * err).sum() / B
                loss_t.backward()
                with torch.no_grad():  # fastrnn's clipping: scale by clip / norm above clip
                    norm = torch.sqrt(sum((q.grad * q.grad).sum() for q in self.params))
                    if norm > CONFIG["clip"]:
                        for q in self.params:
                            q.grad.mul_(CONFIG["clip"] / norm)
                self.opt.step()
                self.sched.step()
                loss = float(loss_t.detach())
            total += loss
            self.done += 1
        return total / n

    def test_mse(self, held_out):
        task = make_task("adding", length=CONFIG["length"], adding_form="signed")
        if self.name == "fastrnn":
            model = self.model
        elif self.name == "numpy":
            model, _, _, _ = start()
            for k, v in self.p.items():
                model._params[k][...] = v
        else:
            model = fastrnn.RNN.from_torch(self.lstm, self.head)
        return task.score(model.forward(held_out.X)[0], held_out)["test_mse"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--full", action="store_true", help="numpy and torch train all 8000 iterations too")
    parser.add_argument("--out", default=str(RESULTS / "long_range.csv"))
    args = parser.parse_args()

    grad_err = check_numpy_gradients()
    print(f"numpy LSTM gradients against fastrnn's: max relative error {grad_err:.1e}")
    # the same work: 20 iterations from the same weights on the same data, the same losses
    check = fastrnn.train(**{**CONFIG, "iters": 20, "log_every": 20})
    ref = check.history["loss"].iloc[0]
    firsts = {name: Contender(name).block(20) for name in ("fastrnn", "numpy", "torch")}
    assert abs(firsts["fastrnn"] - ref) <= 1e-12 * ref and abs(firsts["numpy"] - ref) <= 1e-9 * ref, (firsts, ref)
    assert abs(firsts["torch"] - ref) <= 1e-6 * ref, (firsts, ref)
    print("mean loss of the first 20 iterations: train() " + f"{ref:.12f}, "
          + ", ".join(f"{k} {v:.12f}" for k, v in firsts.items()))

    # the library's whole run: the held-out MSE, the time for 8000 iterations, the compile apart
    result = fastrnn.train(**CONFIG)
    fr_mse = result.rows[-1]["test_mse"]
    print(f"fastrnn.train: {result.train_seconds:.1f} s for 8000 iterations (compile or cache load "
          f"{result.compile_seconds:.2f} s apart), held-out test MSE {fr_mse:.5f}")

    # speed: interleaved rounds (fastrnn 100 iterations, numpy 10, torch 10, each after warm-up), so that a
    # change of the machine's load touches every contender alike; medians over the rounds
    contenders = {name: Contender(name) for name in ("fastrnn", "numpy", "torch")}
    sizes = {"fastrnn": 100, "numpy": 10, "torch": 10}
    first_call = {}
    for name, c in contenders.items():
        t0 = time.perf_counter()
        c.block(1)
        first_call[name] = time.perf_counter() - t0
        c.block(sizes[name] // 10)  # warm-up
    per_iter = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, c in contenders.items():
            t0 = time.perf_counter()
            c.block(sizes[name])
            per_iter[name].append((time.perf_counter() - t0) / sizes[name])
    fr = np.array(per_iter["fastrnn"])
    _, _, _, held_out = start()
    base = dict(T=CONFIG["length"], hidden=CONFIG["hidden"], batch=CONFIG["batch"], iterations=CONFIG["iters"])
    out = [dict(base, contender="fastrnn", median_ms_per_iter=float(np.median(fr)) * 1e3,
                min_ms_per_iter=fr.min() * 1e3, max_ms_per_iter=fr.max() * 1e3, rounds=args.rounds,
                iterations_timed=int(fr.size * 100), first_call_s=result.compile_seconds, run_8000_s=result.train_seconds,
                run_8000_measured=True, test_mse=fr_mse, fastrnn_faster=1.0, min_ratio=1.0, max_ratio=1.0)]
    print(f"fastrnn: {np.median(fr) * 1e3:.3f} ms/iteration (median of {args.rounds} rounds of 100)")
    for name in ("numpy", "torch"):
        t = np.array(per_iter[name])
        ratio = t / fr  # round by round
        mse, run_s, measured = float("nan"), float(np.median(t)) * CONFIG["iters"], False
        if args.full:
            c = Contender(name)
            t0 = time.perf_counter()
            c.block(CONFIG["iters"])
            run_s, measured, mse = time.perf_counter() - t0, True, c.test_mse(held_out)
        label = "numpy (benchmarks/numpy_lstm.py)" if name == "numpy" else "torch nn.LSTM (1 thread)"
        out.append(dict(base, contender=label, median_ms_per_iter=float(np.median(t)) * 1e3, min_ms_per_iter=t.min() * 1e3,
                        max_ms_per_iter=t.max() * 1e3, rounds=args.rounds, iterations_timed=int(t.size * 10),
                        first_call_s=first_call[name], run_8000_s=run_s, run_8000_measured=measured, test_mse=mse,
                        fastrnn_faster=float(np.median(ratio)), min_ratio=float(ratio.min()), max_ratio=float(ratio.max())))
        print(f"{label}: {np.median(t) * 1e3:.3f} ms/iteration; fastrnn {np.median(ratio):.1f}x faster (rounds: "
              f"{ratio.min():.1f}x to {ratio.max():.1f}x); 8000 iterations {'measured' if measured else 'estimated'} "
              f"{run_s:.1f} s" + (f", test MSE {mse:.5f}" if measured else ""))
    # the numpy program's vanilla baseline: a tanh RNN of the same size, 5000 iterations (it reports MSE 0.0706)
    rnn = fastrnn.train(**{**CONFIG, "cell": "rnn", "forget_bias": 0.0, "iters": 5000})
    out.append(dict(base, iterations=5000, contender="fastrnn, tanh RNN", median_ms_per_iter=float("nan"),
                    first_call_s=rnn.compile_seconds, run_8000_s=float("nan"), run_8000_measured=False,
                    test_mse=rnn.rows[-1]["test_mse"]))
    print(f"fastrnn tanh RNN, 5000 iterations: {rnn.train_seconds:.1f} s, held-out test MSE {rnn.rows[-1]['test_mse']:.4f} "
          f"(the numpy program reports 0.0706 for its own)")
    from _common import environment

    command = "python benchmarks/bench_long_range.py" + (" --full" if args.full else "") + f" --rounds {args.rounds}"
    write_csv(Path(args.out), out, environment(command))
    print(f"published for the numpy program: {PUBLISHED}; written: {args.out}")


if __name__ == "__main__":
    main()
