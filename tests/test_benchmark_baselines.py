"""The benchmarks' baselines compute what fastrnn computes, or their times would mean nothing."""

import sys
from pathlib import Path

import numpy as np
import pytest

import reference as ref
from conftest import make_data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import numpy_batched  # noqa: E402
import numba_loop  # noqa: E402
import numpy_loop  # noqa: E402
from _common import fastrnn_after, fastrnn_after_sgd  # noqa: E402


@pytest.mark.parametrize("activation,head", [("sigmoid", "sigmoid"), ("tanh", "softmax"), ("relu", "sigmoid")])
def test_numpy_baselines_follow_fastrnns_sgd_trajectory(rng, activation, head):
    I, O = (2, 1) if head == "sigmoid" else (3, 4)
    X, Y, _ = make_data(rng, 40, 6, I, O, head)
    p0 = ref.init_params(I, 7, O, 1, rng)
    want = fastrnn_after_sgd(p0, X, Y, activation, head, 40, 0.1)
    trainers = [numpy_loop.Trainer(p0, activation, head, 0.1), numpy_batched.Trainer(p0, activation, head, 0.1)]
    if (activation, head) == ("sigmoid", "sigmoid"):
        trainers.append(numba_loop.Trainer(p0, activation, head, 0.1))
    try:
        import torch_rnn

        trainers.append(torch_rnn.CellLoop(p0, activation, head, 0.1))
    except ImportError:
        pass
    for trainer in trainers:
        trainer.train(X, Y, 40)
        for k in want:
            np.testing.assert_allclose(trainer.params()[k], want[k], rtol=1e-10, atol=1e-13, err_msg=f"{trainer.name} {k}")


@pytest.mark.parametrize("head", ["softmax", "sigmoid", "linear"])
def test_numpy_batched_gradients_match_the_twin(rng, head):
    X, Y, mask = make_data(rng, 5, 7, 3, 4, head, masked=True)
    p = ref.init_params(3, 6, 4, 1, rng)
    for activation in ("tanh", "sigmoid", "relu"):
        loss, grads = numpy_batched.loss_and_grads(p, X, Y, mask, activation, head)
        ref_loss, ref_grads = ref.loss_and_grads(p, X, Y, mask, activation, head)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for k in ref_grads:
            np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-10, atol=1e-13)


def test_numba_loop_follows_fastrnn_on_the_headline_shape(rng):
    """The headline's single-purpose loop at its own shape (T=8, I=2, H=16, O=1), errors included."""
    X = rng.integers(0, 2, (60, 8, 2)).astype(float)
    Y = rng.integers(0, 2, (60, 8, 1)).astype(float)
    p0 = ref.init_params(2, 16, 1, 1, rng, scale=1.0)
    want = fastrnn_after_sgd(p0, X, Y, "sigmoid", "sigmoid", 60, 0.1)
    loop, plain = numba_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1), numpy_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1)
    np.testing.assert_array_equal(loop.train(X, Y, 60), plain.train(X, Y, 60))
    for k in want:
        np.testing.assert_allclose(loop.params()[k], want[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_numba_loop_is_compiled_with_numpys_error_model_and_updates_in_place(rng):
    """numba's default (Python) error model checks every division for zero; the loop opts out, as
    a numba user tuning it would, and its SGD step writes into the weights it holds."""
    assert numba_loop._train.targetoptions.get("error_model") == "numpy"
    p0 = ref.init_params(2, 16, 1, 1, np.random.default_rng(5), scale=1.0)
    trainer = numba_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1)
    held = [trainer.UT, trainer.WT, trainer.b, trainer.VT, trainer.c]
    before = [a.copy() for a in held]
    X = rng.integers(0, 2, (5, 8, 2)).astype(float)
    Y = rng.integers(0, 2, (5, 8, 1)).astype(float)
    trainer.train(X, Y, 5)
    for a, b, name in zip(held, before, ("UT", "WT", "b", "VT", "c")):
        assert getattr(trainer, name) is a, name  # the same arrays, changed in place
        assert not np.array_equal(a, b), name
    fresh = ref.init_params(2, 16, 1, 1, np.random.default_rng(5), scale=1.0)
    for k, v in fresh.items():  # and never the caller's weights (V.T of a one-output head is a view of V)
        np.testing.assert_array_equal(p0[k], v, err_msg=k)


def test_numba_loop_refuses_other_units(rng):
    p0 = ref.init_params(2, 4, 1, 1, rng)
    with pytest.raises(ValueError, match="sigmoid"):
        numba_loop.Trainer(p0, "tanh", "sigmoid", 0.1)


@pytest.mark.parametrize("activation,head", [("sigmoid", "sigmoid"), ("tanh", "softmax")])
def test_jax_loop_on_compact_data_follows_fastrnns_sgd_trajectory(rng, activation, head):
    """The JAX contender (int8 data, one-hot inside the jit, donated buffers), where JAX is installed."""
    pytest.importorskip("jax")
    import jax_rnn

    I, O = (2, 1) if head == "sigmoid" else (6, 3)
    X = rng.integers(0, 2, (30, 5, I)).astype(float)
    Y = rng.integers(0, 2, (30, 5, 1)).astype(float) if head == "sigmoid" else np.eye(O)[rng.integers(0, O, (30, 5))]
    p0 = ref.init_params(I, 7, O, 1, rng)
    want = fastrnn_after_sgd(p0, X, Y, activation, head, 30, 0.1)
    trainer = jax_rnn.JitLoop(p0, activation, head, 0.1)
    trainer.train(X[:10], Y[:10], 10)  # two calls: the state carries over
    trainer.train(X[10:], Y[10:], 20)
    for k in want:
        np.testing.assert_allclose(trainer.params()[k], want[k], rtol=1e-10, atol=1e-13, err_msg=k)
    with pytest.raises(ValueError, match="0/1"):
        jax_rnn.compact(X + 0.5, Y, head)


@pytest.mark.parametrize("activation,head", [("sigmoid", "sigmoid"), ("tanh", "softmax")])
def test_jax_step_on_staged_data_follows_fastrnns_sgd_trajectory(rng, activation, head):
    """The jitted step takes each batch from the data staged on the device, by the iteration number."""
    pytest.importorskip("jax")
    import jax_rnn

    I, O = (2, 1) if head == "sigmoid" else (6, 3)
    X = rng.integers(0, 2, (30, 5, I)).astype(float)
    Y = rng.integers(0, 2, (30, 5, 1)).astype(float) if head == "sigmoid" else np.eye(O)[rng.integers(0, O, (30, 5))]
    p0 = ref.init_params(I, 7, O, 1, rng)
    want = fastrnn_after_sgd(p0, X, Y, activation, head, 30, 0.1)
    trainer = jax_rnn.StepJit(p0, activation, head, 0.1)
    errors = np.concatenate([trainer.train(X[:12], Y[:12], 12), trainer.train(X[12:], Y[12:], 18)])
    assert errors.shape == (30,)
    for k in want:
        np.testing.assert_allclose(trainer.params()[k], want[k], rtol=1e-10, atol=1e-13, err_msg=k)
    with pytest.raises(ValueError, match="need 10 sequences"):
        jax_rnn.StepJit(p0, activation, head, 0.1, batch=2).train(X[:9], Y[:9], 5)


def test_jax_sgd_carries_no_optimizer_state_and_adam_carries_its_moments(rng):
    pytest.importorskip("jax")
    import jax_rnn

    p0 = ref.init_params(2, 4, 1, 1, rng)
    for cls in (jax_rnn.StepJit, jax_rnn.JitLoop):
        assert cls(p0, "tanh", "sigmoid", 0.1).state == ()
        m, v = cls(p0, "tanh", "sigmoid", 0.01, optimizer="adam").state
        assert set(m) == set(v) == set(jax_rnn.KEYS)
    with pytest.raises(ValueError, match="sgd and adam only"):
        jax_rnn.StepJit(p0, "tanh", "sigmoid", 0.1, optimizer="momentum").train(np.zeros((1, 3, 2)), np.zeros((1, 3, 1)), 1)


@pytest.mark.parametrize("name", ["StepJit", "JitLoop"])
def test_jax_adam_with_clipping_at_batch_4_follows_fastrnn(rng, name):
    """The digits workload's settings (Adam, global-norm clipping, a batch) on a small shape."""
    pytest.importorskip("jax")
    import jax_rnn

    I, O, B, n = 5, 4, 4, 12
    X = np.eye(I)[rng.integers(0, I, (n * B, 6))]
    Y = np.eye(O)[rng.integers(0, O, (n * B, 6))]
    p0 = ref.init_params(I, 8, O, 1, rng, scale=1.0)
    want = fastrnn_after(p0, X, Y, "tanh", "softmax", n, 0.05, optimizer="adam", clip=0.5, batch=B)
    sgd = fastrnn_after(p0, X, Y, "tanh", "softmax", n, 0.05, batch=B)
    assert not np.allclose(want["W0"], sgd["W0"], rtol=1e-6)  # Adam and clipping make a difference here
    trainer = getattr(jax_rnn, name)(p0, "tanh", "softmax", 0.05, optimizer="adam", clip=0.5, batch=B)
    trainer.train(X[: 5 * B], Y[: 5 * B], 5)
    trainer.train(X[5 * B :], Y[5 * B :], n - 5)
    for k in want:
        np.testing.assert_allclose(trainer.params()[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_results_tables_render_from_the_files_alone(tmp_path):
    """--from-csv: the environment line, the scaling notes and the targets come from the results rows."""
    import run

    env = dict(date="2026-11-30T10:00:00+00:00", command="python benchmarks/run.py --quick", platform="Linux-x", cpu="Test CPU",
               cores=2, python="3.11", numpy="2.4", numba="0.68", torch="not installed", jax="0.10", numba_threads=2,
               torch_threads="not loaded", blas="openblas 0.3 (2 threads)")
    spread = dict(min_s=0.0, max_s=1.0)
    rows = {
        "headline": [dict(contender="fastrnn (library call, default kernel choice)", kernel="small-sgd", iterations=20000,
                          iterations_timed=20000, final_accuracy=1.0, threads=1, checked="validated trajectory", median_s=0.05,
                          train_s=0.03, x_fastrnn=1.0, **spread),
                     dict(contender="fastrnn (library call, FASTRNN_KERNEL=general)", kernel="general", iterations=20000,
                          iterations_timed=20000, final_accuracy=1.0, threads=1, checked="validated trajectory", median_s=0.09,
                          train_s=0.08, x_fastrnn=1.8, **spread),
                     dict(contender="numba single-purpose loop", iterations=20000, iterations_timed=20000, final_accuracy=1.0, threads=1,
                          median_s=0.08, train_s=0.08, x_fastrnn=1.6, **spread),
                     dict(contender="numpy per-sample loop, 1 BLAS thread", iterations=20000, iterations_timed=2000,
                          final_accuracy=float("nan"), threads=1, median_s=6.0, train_s=6.0, x_fastrnn=120.0, **spread),
                     dict(contender="numpy per-sample loop, 2 BLAS threads", iterations=20000, iterations_timed=2000,
                          final_accuracy=float("nan"), threads=2, median_s=7.0, train_s=7.0, x_fastrnn=140.0, **spread)],
        "digits": [dict(contender="fastrnn", target=0.99, batch=32, reached_at=1100, per_iteration_ms=0.5, median_s=0.6,
                        x_fastrnn=1.0, x_fastrnn_per_iteration=1.0, **spread)],
        "throughput": [dict(contender=c, blas_threads=b, B=1, T=32, H=16, median_us=us, min_us=us, max_us=us,
                            sequences_per_s=1e6 / us, gflops=1.0, x_fastrnn=us / 10.0)
                       for c, b, us in (("fastrnn", "", 10.0), ("numpy batched, 1 BLAS thread", 1, 100.0),
                                        ("numpy batched, 2 BLAS threads", 2, 400.0))],
        "loss_and_grads": [dict(shape=s, B=1, T=8, I=2, H=16, O=1, contender=c, median_us=us, min_us=us, max_us=us, gflops=1.0,
                                fastrnn_speedup=1.0)
                           for s, c, us in (("binary", "fastrnn", 5.0), ("binary", "numpy_batched_1t", 75.0),
                                            ("binary", "numpy_batched_2t", 150.0), ("digits", "fastrnn", 400.0),
                                            ("digits", "numpy_batched_1t", 1000.0), ("digits", "numpy_batched_2t", 800.0))],
        "startup": [dict(start="cold (empty numba cache)", repeats=1, median_s=4.0, compile_or_load_s=3.0, **spread),
                    dict(start="warm (cached)", repeats=5, median_s=0.7, compile_or_load_s=0.02, train_s=0.05, **spread)],
        "sweep": [dict(seeds=32, iters=20000, workers=2, wall_s=1.6, scaled_to=1000, scaled_s=50.0, reached_1=32, checked_seeds="0 16 31")],
        "floor": [dict(flops_per_iteration=14722, seconds_per_iteration=1.5e-6, achieved_gflops=9.8, peak_gflops_same_shapes=10.0,
                       achieved_over_peak=0.98)],
    }
    results = {}
    for name, r in rows.items():
        results[name] = run.read_csv(run.write_csv(tmp_path / f"{name}.csv", r, env))
    text = run.markdown(results)
    assert "Measured 2026-11-30 with `python benchmarks/run.py --quick` on Test CPU (2 cores, Linux-x)" in text
    assert "openblas 0.3 (2 threads)" in text
    assert ("'numpy per-sample loop, 1 BLAS thread' and 'numpy per-sample loop, 2 BLAS threads' ran 2000 iterations, "
            "and their seconds are multiplied by 20000/2000 = 10") in text
    # the default kernel and the general one, each named with the kernel its run recorded
    assert "| fastrnn (library call, default kernel choice) | small-sgd | 0.05 [0-1] | 1 |" in text
    assert "| fastrnn (library call, FASTRNN_KERNEL=general) | general | 0.09 [0-1] | 1.8 |" in text
    assert "checked before its time counted" in text
    # the start-up table: the warm run's load and its training seconds, apart from its wall time
    assert "| of which load | of which training |" in text and "| 0.02 | 0.05 |" in text
    # numpy contenders at both BLAS thread counts, in the grid and in loss_and_grads
    assert "numpy batched, 1 BLAS thread | numpy batched, 2 BLAS threads |" in text
    assert "| binary | 1 | 8 | 2 | 16 | 1 | 75 us | 150 us | 5 us | 15x | 30x |" in text
    intro = run.intro(results)
    assert "a later run of `fastrnn train --task binary --iters 20000` took 0.7 s in all." in intro
    assert "`fastrnn.train(task=\"binary\", iters=20000)` trains in 0.03 s (`train_seconds`, median)" in intro
    assert "1000 seeds would take 1.6 x 1000/32 = 50 s" in text
    assert "**Floor**: one headline iteration does 14722 flops in 1.5 us, 9.80 GFLOP/s" in text
    assert "targets" not in text and "missed" not in text  # measured rows only: no verdicts of a past round


#: The blocks that the benchmark and study scripts write between marks, and the page that holds each.
GENERATED_BLOCKS = {"bench": "performance.md", "kernels": "performance.md", "fit": "performance.md", "gated": "performance.md",
                    "text-bench": "performance.md", "sweep": "performance.md", "defaults-binary": "tasks.md",
                    "defaults-digits": "tasks.md"}


def test_every_generated_block_has_its_marks_on_exactly_one_page():
    root = Path(__file__).resolve().parent.parent
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    for mark, page in GENERATED_BLOCKS.items():
        holding = [p.name for p in pages if f"<!-- {mark}:start -->" in p.read_text() and f"<!-- {mark}:end -->" in p.read_text()]
        assert holding == [page], (mark, holding)


def test_a_block_goes_between_its_marks_on_whichever_page_holds_them(tmp_path, monkeypatch):
    import _common

    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# x\n<!-- a:start -->\nold\n<!-- a:end -->\ntail\n")
    (tmp_path / "docs" / "page.md").write_text("text\n<!-- b:start -->\n<!-- b:end -->\n")
    monkeypatch.setattr(_common, "ROOT", tmp_path)
    assert _common.update_readme("new a\n", "a") and _common.update_readme("new b\n", "b")
    assert not _common.update_readme("nowhere\n", "c")
    assert (tmp_path / "README.md").read_text() == "# x\n<!-- a:start -->\nnew a\n<!-- a:end -->\ntail\n"
    assert (tmp_path / "docs" / "page.md").read_text() == "text\n<!-- b:start -->\nnew b\n<!-- b:end -->\n"


def test_generated_blocks_go_to_every_page_with_the_marks(tmp_path, monkeypatch):
    """README.md and any docs page holding a block's marks get the same block; pages without them are left alone."""
    import _common

    (tmp_path / "docs" / "deep").mkdir(parents=True)
    marks = "intro\n<!-- bench:start -->\nold\n<!-- bench:end -->\nend\n"
    (tmp_path / "README.md").write_text(marks)
    (tmp_path / "docs" / "performance.md").write_text(marks)
    (tmp_path / "docs" / "deep" / "page.md").write_text(marks)
    (tmp_path / "docs" / "other.md").write_text("no marks here\n")
    monkeypatch.setattr(_common, "ROOT", tmp_path)
    block = "a table\n![plot](benchmarks/results/throughput.png)\n"
    written = _common.update_readme(block, "bench")
    assert written == ["README.md", "docs/deep/page.md", "docs/performance.md"]
    assert (tmp_path / "README.md").read_text() == "intro\n<!-- bench:start -->\n" + block + "<!-- bench:end -->\nend\n"
    for page in ("performance.md", "deep/page.md"):
        assert (tmp_path / "docs" / page).read_text() == (tmp_path / "README.md").read_text()
    assert (tmp_path / "docs" / "other.md").read_text() == "no marks here\n"
    assert _common.update_readme(block, "nowhere") == []


@pytest.mark.parametrize("batch", [1, 4])
def test_batched_numpy_text_contender_follows_min_char_rnns_loop(batch):
    """All streams at once (one (B, H) product a step) against the per-stream loop of tests/reference_text.py."""
    import numpy_text_batched
    import reference_text

    from fastrnn import text

    t = text.read_text(text.example_path())
    ids = np.asarray(t.ids)[:600]  # windows wrap within each stream: the state resets are exercised
    p0 = reference_text.init_weights(t.n_vocab, 16, np.random.default_rng(3), std=0.1)
    want_losses, want = reference_text.train(list(ids), p0, 25, 40, 0.01, batch=batch, clip=5.0)
    trainer = numpy_text_batched.Trainer(ids, p0, 25, batch, 0.01)
    losses = np.concatenate([trainer.train(15), trainer.train(25)])
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    for k in want:
        np.testing.assert_allclose(trainer.params()[k], want[k], rtol=1e-9, atol=1e-13, err_msg=k)
    assert (600 // batch) // 25 < 40  # more iterations than windows per stream: at least one reset


def test_text_table_lists_every_contender_with_its_blas_threads():
    import bench_text

    env = dict(date="2026-12-01T10:00:00+00:00", command="python benchmarks/bench_text.py --iters 300", cpu="Test CPU", cores=2,
               numpy="2.4", numba="0.68", blas="openblas 0.3 (2 threads)", thread_env="none set", repeats=5)
    rows = [dict(measure="iterations per second, batch 1, 2 threads", contender="min-char-rnn's numpy loop", fastrnn=9000.0,
                 contender_speed=700.0, speedup=12.5, **env),
            dict(measure="characters per second, batch 32", contender="numpy batched, one (32, H) product a step, 1 BLAS thread",
                 fastrnn=5e5, contender_speed=2e5, speedup=2.5, **env),
            dict(measure="characters per second, batch 32", contender="numpy batched, one (32, H) product a step, 2 BLAS threads",
                 fastrnn=5e5, contender_speed=1e5, speedup=5.0, **env),
            dict(measure="characters per second, batch 32", contender="min-char-rnn's numpy loop over the 32 streams",
                 fastrnn=5e5, contender_speed=2e4, speedup=25.0, **env),
            dict(measure="first run, empty numba cache: compile s (whole run s in the contender_speed column)", contender="", fastrnn=3.0,
                 contender_speed=4.0, speedup="", **env)]
    text = bench_text.markdown(rows, env["command"])
    assert "Measured 2026-12-01 with `python benchmarks/bench_text.py --iters 300` on Test CPU, 2 cores" in text
    assert "BLAS: openblas 0.3 (2 threads)" in text and "timed by the wall clock" in text and "medians" in text
    assert "| characters per second, batch 32 | numpy batched, one (32, H) product a step, 1 BLAS thread | 500,000 | 200,000 | 2.5x |" in text
    assert "| characters per second, batch 32 | numpy batched, one (32, H) product a step, 2 BLAS threads | 500,000 | 100,000 | 5.0x |" in text
    assert "over the 32 streams | 500,000 | 20,000 | 25.0x |" in text


def test_sweep_table_shows_workers_cpus_and_each_runs_time_beside_alone(tmp_path):
    import bench_sweep

    env = dict(date="2026-12-01T10:00:00+00:00", command="python benchmarks/bench_sweep.py --runs 4", platform="Linux-x", cpu="Test CPU",
               cores=2, python="3.11", numpy="2.4", numba="0.68", torch="not installed", jax="0.10", numba_threads=2,
               torch_threads="not loaded", blas="openblas 0.3 (2 threads)")
    rows = [dict(config=label, cpus=cpus, workers=workers, runs=4, iters=200, repeats=3, wall_s=wall, runs_per_s=4 / wall,
                 train_s_median=per_run, alone_train_s_median=0.1, reached_1=4, same_as_train=True)
            for label, cpus, workers, wall, per_run in (("pool, os.cpu_count() workers, pinned to 1 CPU", 1, 2, 3.0, 0.2),
                                                         ("pool, default workers, pinned to 1 CPU", 1, 1, 0.5, 0.1))]
    text = bench_sweep.markdown(bench_sweep.read_csv(bench_sweep.write_csv(tmp_path / "s.csv", rows, env)))
    assert "Measured 2026-12-01 with `python benchmarks/bench_sweep.py --runs 4` on Test CPU" in text
    assert "every configuration 3 times in turn, medians" in text
    assert "| configuration | CPUs allowed | workers | runs | wall s | runs/s | train_seconds a run | alone | reached 1.0 |" in text
    assert "| pool, os.cpu_count() workers, pinned to 1 CPU | 1 | 2 | 4 | 3.0 |" in text
    assert "| pool, default workers, pinned to 1 CPU | 1 | 1 | 4 | 0.5 |" in text
    assert [c[2] for c in bench_sweep.CONFIGS][-2:] == [1, 1]  # both pinned rows are measured on one CPU
    assert "workers" not in bench_sweep.CONFIGS[-1][1]  # the last row lets the sweep choose


def test_a_timed_headline_run_counts_only_on_the_validated_trajectory():
    """run.check_run: the weights of the numba loop trained from the same start on the same data, and the reference rows."""
    import types

    import run

    import fastrnn

    task = fastrnn.BinaryAddition(8)
    X, Y = run.stream(task, 0, 300, 1)
    p0 = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid", seed=0, init_scale=1.0).params
    loop = numba_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1)
    loop.train(X, Y, 300)
    validated = loop.params()
    reference = {}

    def trained(seed, accuracy=1.0):  # 300 iterations do not learn the task: its weights and rows are what is checked here
        r = fastrnn.train(task="binary", iters=300, seed=seed, log_every=50)
        return types.SimpleNamespace(model=r.model, history=r.history.copy(), iterations=r.iterations, final_accuracy=accuracy)

    first = trained(0)
    run.check_run(first, validated, reference, "first")
    assert reference["rows"].shape == (6, 3)
    again = trained(0)
    run.check_run(again, validated, reference, "again")
    other = trained(1)  # other data and weights
    with pytest.raises(AssertionError, match="validated trajectory"):
        run.check_run(other, validated, reference, "other seed")
    shifted = trained(0)
    shifted.history.loc[2, "loss"] *= 1.001  # same weights, a row that differs
    with pytest.raises(AssertionError, match="reference run"):
        run.check_run(shifted, validated, reference, "shifted")
    unlearned = trained(0, accuracy=0.5)
    with pytest.raises(AssertionError, match="did not learn"):
        run.check_run(unlearned, validated, reference, "unlearned")
