"""The speed anchor: a public pure-numpy LSTM's adding-problem configuration, in fastrnn, in plain numpy and in PyTorch.

    python benchmarks/bench_long_range.py            # fastrnn's whole run; numpy and torch timed on --sample iterations
    python benchmarks/bench_long_range.py --full     # numpy and torch train all 8000 iterations too (minutes)

The configuration (npow/schmidhuber-problems, adding-problem/adding_problem.py): T = 100,
one LSTM layer of 8 units, a linear read-out, batch 32, 8000 iterations; values U(-1, 1),
markers {0, 1} (one in each half), target X1 + X2 (fastrnn's ``--adding-form signed``:
predicting 0 scores MSE 2/3); Adam at lr 5e-3 halved every 1500 iterations, gradients
clipped to global norm 1, forget-gate bias 1. The three contenders start from the same
weights (fastrnn's draw, seed 0) and train on the same data stream, float64, one thread:

* fastrnn: ``fastrnn.train(task="adding", adding_form="signed", cell="lstm", lr_step=1500,
  lr_gamma=0.5, ...)``, the library's own loop (a kernel call trains ``log_every`` = 500
  iterations; each row also scores a held-out batch of 256 sequences);
* numpy: benchmarks/numpy_lstm.py, the same math written out in numpy, one Python step per
  iteration (its gradients are checked against fastrnn's first, to 1e-10 relative);
* torch: ``nn.LSTM`` + ``nn.Linear`` from ``model.to_torch()``, autograd and ``torch.optim.Adam``
  with ``StepLR(1500, 0.5)``, the clipping written as fastrnn's (scale by 1/norm above 1) and
  ``bias_hh`` frozen at zero so that the one bias fastrnn trains is the one torch trains.

Each takes its batch from ``AddingProblem.sample`` inside the timed iteration (fastrnn draws a
chunk's data at once). Reported: the median seconds of one iteration after warm-up (fastrnn:
the median over its 16 chunks of a chunk's seconds / 500; numpy and torch: each iteration
timed on its own, after 10 untimed ones), the first call's compile (or cache-load) time
apart, the time for 8000 iterations (measured with --full, else median x 8000), and the
test MSE on fastrnn's fixed held-out batch (256 sequences) after the run. Before timing, 20
iterations of each contender must follow fastrnn's losses (numpy to 1e-9, torch to 1e-6
relative): they do the same work.

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
PUBLISHED = "about 39 s on an Apple-silicon laptop core, test MSE 0.0007"


def start():
    """The initial model (fastrnn's draw for CONFIG), the task, the training stream and the held-out batch."""
    model = fastrnn.RNN(2, CONFIG["hidden"], 1, head="linear", cell="lstm", forget_bias=CONFIG["forget_bias"],
                        seed=CONFIG["seed"])
    task = make_task("adding", length=CONFIG["length"], adding_form="signed")
    held_out = task.sample(np.random.default_rng(HELD_OUT_SEED), HELD_OUT)
    return model, task, np.random.default_rng([CONFIG["seed"], 1]), held_out


def lr_at(i):
    return CONFIG["lr"] * CONFIG["lr_gamma"] ** (i // CONFIG["lr_step"])


def numpy_run(n, record_from=None):
    """n iterations of the numpy LSTM; returns (losses, per-iteration seconds, params)."""
    model, task, rng, _ = start()
    p = {k: np.array(v) for k, v in model.params.items()}
    opt = numpy_lstm.Adam(p, CONFIG["lr"], CONFIG["clip"])
    losses, seconds = [], []
    for i in range(n):
        t0 = time.perf_counter()
        X, Y, M = task.sample(rng, CONFIG["batch"])
        opt.lr = lr_at(i)
        loss, grads = numpy_lstm.loss_and_grads(p, X, Y, M)
        opt.step(p, grads)
        seconds.append(time.perf_counter() - t0)
        losses.append(loss)
    return np.array(losses), np.array(seconds), p


def numpy_mse(p, held_out):
    """Test MSE of the numpy model on the held-out batch (the forward pass of numpy_lstm, read at the last step)."""
    X = held_out.X
    model, _, _, _ = start()
    for k, v in p.items():
        model._params[k][...] = v
    yhat, _ = model.forward(X)
    return make_task("adding", length=CONFIG["length"], adding_form="signed").score(yhat, held_out)["test_mse"]


def torch_run(n):
    import torch

    torch.set_num_threads(1)
    model, task, rng, _ = start()
    lstm, head = model.to_torch(batch_first=True)
    lstm.bias_hh_l0.requires_grad_(False)  # zeros: fastrnn's one bias is bias_ih
    params = [q for q in list(lstm.parameters()) + list(head.parameters()) if q.requires_grad]
    opt = torch.optim.Adam(params, lr=CONFIG["lr"], eps=1e-8)
    sched = torch.optim.lr_scheduler.StepLR(opt, CONFIG["lr_step"], CONFIG["lr_gamma"])
    losses, seconds = [], []
    for i in range(n):
        t0 = time.perf_counter()
        X, Y, M = task.sample(rng, CONFIG["batch"])
        x, y = torch.from_numpy(X), torch.from_numpy(Y[:, -1, 0])
        opt.zero_grad()
        out, _ = lstm(x)
        err = head(out[:, -1])[:, 0] - y
        loss = 0.5 * (err * err).sum() / CONFIG["batch"]
        loss.backward()
        with torch.no_grad():
            norm = torch.sqrt(sum((q.grad * q.grad).sum() for q in params))
            if norm > CONFIG["clip"]:
                for q in params:
                    q.grad.mul_(CONFIG["clip"] / norm)
        opt.step()
        sched.step()
        seconds.append(time.perf_counter() - t0)
        losses.append(float(loss.detach()))
    back = fastrnn.RNN.from_torch(lstm, head)
    return np.array(losses), np.array(seconds), back


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=200, help="numpy and torch: timed iterations without --full")
    parser.add_argument("--full", action="store_true", help="numpy and torch train all 8000 iterations")
    parser.add_argument("--out", default=str(RESULTS / "long_range.csv"))
    args = parser.parse_args()
    n_other = CONFIG["iters"] if args.full else args.sample + 10

    grad_err = check_numpy_gradients()
    print(f"numpy LSTM gradients against fastrnn's: max relative error {grad_err:.1e}")

    t0 = time.perf_counter()
    result = fastrnn.train(**CONFIG)
    fr_wall = time.perf_counter() - t0
    rows = result.rows
    chunk = np.diff([0.0] + [r["elapsed_s"] for r in rows]) / CONFIG["log_every"]
    fr_median = float(np.median(chunk))
    fr_mse = rows[-1]["test_mse"]
    _, _, _, held_out = start()

    # the same work: the first 20 iterations' losses, fastrnn's against numpy's and torch's
    check = fastrnn.train(**{**CONFIG, "iters": 20, "log_every": 20})
    ref = check.history["loss"].iloc[0]
    np_losses, _, _ = numpy_run(20)
    t_losses, _, _ = torch_run(20)
    assert abs(np_losses.mean() - ref) <= 1e-9 * ref, (np_losses.mean(), ref)
    assert abs(t_losses.mean() - ref) <= 1e-6 * ref, (t_losses.mean(), ref)
    print(f"mean loss of the first 20 iterations: fastrnn {ref:.12f}, numpy {np_losses.mean():.12f}, "
          f"torch {t_losses.mean():.12f}")

    out = []
    base = dict(T=CONFIG["length"], hidden=CONFIG["hidden"], batch=CONFIG["batch"], iterations=CONFIG["iters"])
    out.append(dict(base, contender="fastrnn", iterations_timed=CONFIG["iters"], median_ms_per_iter=fr_median * 1e3,
                    compile_s=result.compile_seconds, run_s=result.train_seconds, run_s_measured=True,
                    test_mse=fr_mse, speedup_of_fastrnn=1.0))
    print(f"fastrnn: {fr_median * 1e3:.3f} ms/iteration (median of {len(chunk)} chunks), {result.train_seconds:.1f} s for "
          f"8000 (compile or cache load {result.compile_seconds:.2f} s; {fr_wall:.1f} s wall in all), test MSE {fr_mse:.5f}")
    for name, fn in (("numpy", numpy_run), ("torch", torch_run)):
        t0 = time.perf_counter()
        losses, seconds, trained = fn(n_other)
        first = time.perf_counter() - t0
        timed = seconds[10:]
        median = float(np.median(timed))
        if args.full:
            mse = numpy_mse(trained, held_out) if name == "numpy" else make_task(
                "adding", length=CONFIG["length"], adding_form="signed").score(trained.forward(held_out.X)[0], held_out)["test_mse"]
            run_s = float(seconds.sum())
        else:
            mse, run_s = float("nan"), median * CONFIG["iters"]
        label = "numpy (benchmarks/numpy_lstm.py)" if name == "numpy" else "torch nn.LSTM (1 thread)"
        out.append(dict(base, contender=label, iterations_timed=len(timed), median_ms_per_iter=median * 1e3,
                        compile_s=float(seconds[0]), run_s=run_s, run_s_measured=args.full, test_mse=mse,
                        speedup_of_fastrnn=median / fr_median))
        print(f"{label}: {median * 1e3:.3f} ms/iteration (median of {len(timed)}), "
              f"{'measured' if args.full else 'estimated'} {run_s:.1f} s for 8000, fastrnn {median / fr_median:.1f}x faster"
              + (f", test MSE {mse:.5f}" if args.full else f" ({first:.1f} s for {n_other} iterations)"))
    import platform

    command = "python benchmarks/bench_long_range.py" + (" --full" if args.full else f" --sample {args.sample}")
    from _common import environment

    write_csv(Path(args.out), out, environment(command))
    print(f"published for the numpy program: {PUBLISHED}; written: {args.out} ({platform.node()})")


if __name__ == "__main__":
    main()
