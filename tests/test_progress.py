"""Progress bars come from tqdm.auto: a widget in Jupyter, a text bar on stderr elsewhere."""

import sys

import numpy as np
import pytest
import tqdm
import tqdm.auto

import fastrnn


class Recorded(tqdm.tqdm):
    """A text bar that remembers every bar made and the keywords it was made with."""

    made = []

    def __init__(self, *args, **kwargs):
        Recorded.made.append((self, dict(kwargs)))
        super().__init__(*args, **{"file": sys.stderr, **kwargs})


#: the same bar, as tqdm.auto gives it inside a Jupyter kernel (a class of tqdm.notebook)
InNotebook = type("tqdm", (Recorded,), {"__module__": "tqdm.notebook"})


@pytest.fixture
def bars(monkeypatch):
    Recorded.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", Recorded)
    return Recorded.made


def test_train_progress_bar_is_tqdm_auto_and_counts_every_iteration(bars):
    result = fastrnn.train(task="binary", hidden=4, iters=40, log_every=10, progress=True)
    assert len(bars) == 1
    bar, kwargs = bars[0]
    assert (kwargs["total"], bar.n, result.iterations) == (40, 40, 40)
    assert kwargs["file"] is sys.stderr and kwargs["leave"] is False  # a terminal's bar goes when done


def test_no_progress_makes_no_bar(bars):
    fastrnn.train(task="binary", hidden=4, iters=20, log_every=10)
    assert bars == []


def test_in_a_notebook_the_bar_stays_and_is_not_sent_to_stderr(monkeypatch, bars):
    monkeypatch.setattr(tqdm.auto, "tqdm", InNotebook)
    fastrnn.train(task="binary", hidden=4, iters=20, log_every=10, progress=True)
    (bar, kwargs), = bars
    assert type(bar) is InNotebook
    assert kwargs["leave"] is True and "file" not in kwargs


def test_fit_progress_bar_is_tqdm_auto(bars):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 5, 2)), np.eye(3)[rng.integers(0, 3, (8, 5))]
    fastrnn.fit(fastrnn.RNN(2, 4, 3), X, Y, epochs=3, batch=4, progress=True)
    (bar, kwargs), = bars
    assert (kwargs["total"], bar.n) == (6, 6)  # 3 epochs of 2 batches


def test_sweep_progress_bar_is_tqdm_auto_and_counts_runs(tmp_path, bars):
    fastrnn.sweep(task="binary", seeds=(0, 1), out=tmp_path / "s", workers=1, progress=True, iters=20, log_every=10,
                  hidden=4)
    (bar, kwargs), = bars
    assert (kwargs["total"], kwargs["unit"], bar.n) == (2, "run", 2)
