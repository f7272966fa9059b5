"""The stream tasks (add, mimic): their data checked against the formulas, reproducibility, the reference lines."""

import json

import numpy as np
import pytest

from fastrnn import InvalidArgument
from fastrnn.tasks import TASKS, make_task
from fastrnn.tasks.add import PUBLISHED, AddTask, reference_lines
from fastrnn.tasks.mimic import MimicTask


def expected_add_targets(x, t1, t2):
    """y(t) = 0.5 + 0.5 x(t - t1) - 0.25 x(t - t2), written step by step, x(t) = 0 for t < 0."""
    y = np.empty(len(x))
    for t in range(len(x)):
        a = x[t - t1] if t - t1 >= 0 else 0.0
        b = x[t - t2] if t - t2 >= 0 else 0.0
        y[t] = 0.5 + 0.5 * a - 0.25 * b
    return y


@pytest.mark.parametrize("t1, t2", [(5, 9), (2, 3), (1, 7)])
def test_add_targets_follow_the_formula_with_no_wrap_around(t1, t2):
    X, Y = AddTask(t1=t1, t2=t2).stream(np.random.default_rng(1), 400, batch=3)
    assert X.shape == (3, 400, 2) and Y.shape == (3, 400, 2)
    for b in range(3):
        x = X[b, :, 0]
        np.testing.assert_array_equal(X[b, :, 1], 1.0 - x)
        np.testing.assert_array_equal(Y[b, :, 0], expected_add_targets(x, t1, t2))
        np.testing.assert_array_equal(Y[b, :, 1], 1.0 - Y[b, :, 0])
        # the first t1 steps read only inputs before the stream: 0.5 whatever the stream's end holds
        np.testing.assert_array_equal(Y[b, :t1, 0], 0.5)


def test_add_stream_start_does_not_read_the_streams_end():
    """np.roll would make step 0 read the last inputs: a stream ending in ones must not change its start."""
    task = AddTask()
    for seed in range(40):
        X, Y = task.stream(np.random.default_rng(seed), 30)
        if X[0, -9:, 0].sum() >= 3:
            np.testing.assert_array_equal(Y[0, :9, 0], 0.5 + 0.5 * np.r_[np.zeros(5), X[0, :4, 0]])
            return
    pytest.fail("no stream ended with ones in 40 seeds")


def test_add_inputs_are_fair_coins_and_targets_take_four_values_equally_often():
    X, Y = AddTask().stream(np.random.default_rng(2), 40000)
    x, y = X[0, :, 0], Y[0, 9:, 0]
    # a fair coin's mean over n = 40000 has standard deviation 0.0025; 4 of them is a 1-in-15000 miss
    assert abs(x.mean() - 0.5) < 0.01
    values, counts = np.unique(y, return_counts=True)
    np.testing.assert_array_equal(values, [0.25, 0.5, 0.75, 1.0])
    assert np.all(np.abs(counts / len(y) - 0.25) < 0.01)  # each share's sd is about 0.0022
    # consecutive inputs are independent: the share of (1, 1) pairs is 1/4
    assert abs(np.mean(x[1:] * x[:-1]) - 0.25) < 0.01


@pytest.mark.parametrize("name", ["add", "mimic"])
def test_streams_do_not_depend_on_how_they_are_cut(name):
    task = make_task(name)
    whole = task.stream(np.random.default_rng(5), 60, batch=2)
    stream = task.streamer(np.random.default_rng(5), batch=2)
    parts = [stream.next(n) for n in (7, 0, 1, 23, 29)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts], axis=1), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts], axis=1), whole[1])


@pytest.mark.parametrize("name", ["add", "mimic"])
def test_streams_are_reproducible_by_seed_and_differ_between_seeds(name):
    task = make_task(name)
    a = task.stream(np.random.default_rng(11), 50)
    b = make_task(name).stream(np.random.default_rng(11), 50)
    c = task.stream(np.random.default_rng(12), 50)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name", ["add", "mimic"])
def test_a_stream_continues_exactly_from_its_state_through_json(name):
    task = make_task(name)
    stream = task.streamer(np.random.default_rng(3), batch=2)
    stream.next(17)
    state = json.loads(json.dumps(stream.state()))
    expected = stream.next(25)
    other = task.streamer(np.random.default_rng(999), batch=2)
    other.restore(state)
    got = other.next(25)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_a_stream_refuses_a_state_of_another_shape():
    state = AddTask().streamer(np.random.default_rng(0), batch=2).state()
    with pytest.raises(InvalidArgument, match="batch"):
        AddTask().streamer(np.random.default_rng(0), batch=3).restore(state)
    with pytest.raises(InvalidArgument, match="t2"):
        AddTask(t2=12).streamer(np.random.default_rng(0), batch=2).restore(state)


def test_add_reference_lines_match_the_published_values():
    lines = reference_lines()
    for key, value in PUBLISHED.items():
        assert abs(lines[key] - value) < 1e-3, (key, lines[key], value)
    assert lines["optimal"] < lines["only_t1"] < lines["nothing_learned"]


def test_add_reference_lines_are_the_losses_of_their_predictors_on_a_stream():
    """The three predictors' mean loss on 40000 generated steps: within 0.01 of the lines (the per-step
    losses' sd is under 0.3, so the means' sd is under 0.0015)."""
    t1, t2 = 5, 9
    X, Y = AddTask(t1, t2).stream(np.random.default_rng(4), 40000)
    x, y = X[0, :, 0], Y[0, :, 0]
    t = np.arange(t2, len(x))
    y = y[t]

    def loss(q):
        return float(np.mean(-y * np.log(q) - (1 - y) * np.log(1 - q)))

    lines = reference_lines()
    with np.errstate(divide="ignore", invalid="ignore"):
        optimal = float(np.mean(-np.where(y > 0, y * np.log(y), 0) - np.where(y < 1, (1 - y) * np.log(1 - y), 0)))
    assert abs(optimal - lines["optimal"]) < 0.01
    assert abs(loss(0.5 + 0.5 * x[t - t1] - 0.125) - lines["only_t1"]) < 0.01
    assert abs(loss(np.full(len(t), 0.625)) - lines["nothing_learned"]) < 0.01


def test_add_refuses_t2_not_above_t1():
    with pytest.raises(InvalidArgument, match="t2 must be larger than t1"):
        AddTask(t1=5, t2=5)


def teacher_outputs(task, X):
    """The teacher written from the module's equations, one stream row and one step at a time."""
    U, W, b, V, c = task.teacher
    out = np.empty((X.shape[0], X.shape[1], V.shape[0]))
    for r in range(X.shape[0]):
        h = np.zeros(W.shape[0])
        for t in range(X.shape[1]):
            h = np.tanh(W.dot(h) + U.dot(X[r, t]) + b)
            z = V.dot(h) + c
            e = np.exp(z - z.max())
            out[r, t] = e / e.sum()
    return out


def test_mimic_targets_are_the_teachers_softmax_outputs_from_a_zero_state():
    task = MimicTask(teacher_hidden=6, teacher_inputs=3, teacher_outputs=4)
    X, Y = task.stream(np.random.default_rng(8), 40, batch=2)
    assert X.shape == (2, 40, 3) and Y.shape == (2, 40, 4)
    assert set(np.unique(X)) <= {0.0, 1.0}
    np.testing.assert_allclose(Y, teacher_outputs(task, X), rtol=1e-12, atol=1e-15)


def test_mimic_teacher_is_drawn_as_vanilla_rtrl_draws_networks():
    task = MimicTask(teacher_hidden=64, teacher_inputs=400, teacher_outputs=300)
    U, W, b, V, c = task.teacher
    np.testing.assert_allclose(W @ W.T, np.eye(64), atol=1e-12)  # orthogonal
    assert not b.any() and not c.any()
    # variances 1/fan_in: 25600 and 19200 draws, the sample variance within 5% (sd under 1%)
    assert abs(U.var() * 400 - 1) < 0.05 and abs(U.mean()) < 0.01
    assert abs(V.var() * 64 - 1) < 0.05


def test_mimic_teacher_is_fixed_by_its_seed_not_by_the_stream():
    a, b, c = MimicTask(teacher_seed=1), MimicTask(teacher_seed=1), MimicTask(teacher_seed=2)
    for wa, wb, wc in zip(a.teacher[:2], b.teacher[:2], c.teacher[:2]):
        np.testing.assert_array_equal(wa, wb)
        assert not np.array_equal(wa, wc)


def test_mimic_reference_lines_bracket_a_learnable_gap():
    lines = MimicTask().reference_lines()
    assert 0 < lines["optimal"] < lines["nothing_learned"] <= np.log(2) + 1e-12


def test_the_stream_tasks_are_registered_apart_from_the_adding_problem():
    assert TASKS["add"] is AddTask and TASKS["mimic"] is MimicTask
    assert TASKS["adding"].description != AddTask.description
    assert AddTask.online and MimicTask.online and not getattr(TASKS["adding"], "online", False)


def test_windows_for_bptt_are_the_stream_cut_in_order_with_one_reset():
    task = AddTask(stream_window=4)
    source = task.source(np.random.default_rng(6), 2, "float64")
    X1, Y1, M, r1 = source.next(3)
    X2, Y2, _, r2 = source.next(2)
    X, Y = task.stream(np.random.default_rng(6), 20, batch=2)
    assert M.shape == (0, 0)
    np.testing.assert_array_equal(r1, [1, 0, 0])
    np.testing.assert_array_equal(r2, [0, 0])
    windows = np.concatenate([X1, X2]).reshape(5, 2, 4, 2)  # iteration, stream, step, input
    for it in range(5):
        for b in range(2):
            np.testing.assert_array_equal(windows[it, b], X[b, 4 * it : 4 * it + 4])
    np.testing.assert_array_equal(np.concatenate([Y1, Y2]).reshape(5, 2, 4, 2)[3, 1], Y[1, 12:16])


def test_a_corrupt_stream_state_is_refused_in_one_line():
    state = AddTask().streamer(np.random.default_rng(0), batch=1).state()
    for broken in ({**state, "rng": {"bit_generator": "PCG64", "state": "x"}}, {**state, "steps": "many"}):
        with pytest.raises(InvalidArgument, match="the saved stream position is corrupt"):
            AddTask().streamer(np.random.default_rng(0), batch=1).restore(broken)
