"""Watch the batch-1 text kernel's speed drift with the machine, one line every few seconds.

Usage:
    python benchmarks/watch_text.py [--seconds 90] [--iters 2000]

The two-thread kernel (fastrnn/_charrnn.py) needs both cores; on a shared machine its
speed follows what the host does to them. Each sample times, back to back in this
process:

* a round trip between two threads through one cache line (one writes a counter, the
  other answers on a second line; median of 200,000 round trips): what every hand-over
  between the kernel's two threads costs;
* ``--iters`` iterations of the kernel on two threads and on one, from the same weights
  on the text that ships with fastrnn (H = 100, L = 25, Adagrad).

A summary at the end gives each column's range and median. This is how the README's
"round trip of 63, about 145 or 500-600 ns" and "88-162 us on two threads, 139-157 on
one" were measured (90 s, 2026-11-30). It prints only; nothing is written.
"""

import argparse
import sys
import threading
import time

import numpy as np
from _common import ROOT

sys.path.insert(0, str(ROOT))

from numba import njit  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn import _charrnn, text  # noqa: E402
from fastrnn._charrnn import _load_acquire, _store_release  # noqa: E402

H, L = 100, 25


@njit(nogil=True)
def _ping_pong(sync, me, n):
    """``me`` 0 writes sync[0] and waits for the answer in sync[8]; ``me`` 1 answers."""
    for i in range(n):
        if me == 0:
            _store_release(sync, 0, i + 1)
            while _load_acquire(sync, 8) < i + 1:
                pass
        else:
            while _load_acquire(sync, 0) < i + 1:
                pass
            _store_release(sync, 8, i + 1)


def round_trip_ns(n=200_000):
    sync = np.zeros(16, np.int64)
    other = threading.Thread(target=_ping_pong, args=(sync, 1, n))
    other.start()
    t0 = time.perf_counter()
    _ping_pong(sync, 0, n)
    seconds = time.perf_counter() - t0
    other.join()
    return seconds / n * 1e9


class Kernel:
    """Iterations of the text kernel from fixed weights, timed."""

    def __init__(self, iters):
        t = text.read_text(text.example_path())
        self.V = t.n_vocab
        self.theta0 = fastrnn.RNN(self.V, H, self.V, activation="tanh", head="softmax", seed=3).theta.copy()
        inputs, targets, resets = text.TextSource(t.ids, self.V, seq_length=L).next_ids(iters)
        self.data = (np.ascontiguousarray(inputs), np.ascontiguousarray(targets), np.ascontiguousarray(resets))
        self.iters = iters

    def us_per_iteration(self, threads):
        theta, state, hstate = self.theta0.copy(), np.zeros(self.theta0.size), np.zeros(H)
        n = self.iters
        losses, norms, errors = np.empty(n), np.empty(n), np.empty(n, np.int64)
        t0 = time.perf_counter()
        done = _charrnn.train_chunk(theta, state, self.V, H, self.V, *self.data, hstate, 0.1, 1e-8, -1.0, 5.0, losses,
                                    norms, errors, threads)
        seconds = time.perf_counter() - t0
        assert done == n
        return seconds / n * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="how long to watch")
    parser.add_argument("--iters", type=int, default=2000, help="kernel iterations per sample")
    args = parser.parse_args(argv)
    kernel = Kernel(args.iters)
    round_trip_ns(1000)
    kernel.us_per_iteration(2)  # compile (or load) first
    rows = []
    t0 = time.time()
    while time.time() - t0 < args.seconds:
        row = (round_trip_ns(), kernel.us_per_iteration(2), kernel.us_per_iteration(1))
        rows.append(row)
        print(f"{time.time() - t0:5.0f} s  round trip {row[0]:4.0f} ns   two threads {row[1]:6.1f} us an iteration"
              f"   one thread {row[2]:6.1f} us", flush=True)
        time.sleep(2)
    a = np.array(rows)
    for k, name in enumerate(("round trip, ns", "two threads, us an iteration", "one thread, us an iteration")):
        print(f"{name}: {a[:, k].min():.0f}-{a[:, k].max():.0f}, median {np.median(a[:, k]):.0f} ({len(a)} samples)")


if __name__ == "__main__":
    main()
