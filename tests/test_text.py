"""The text task's groundwork: reading, the data walk, metrics, sampling, and
min-char-rnn's training against tests/reference_text.py."""

import json
import math

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import text
from fastrnn.exceptions import InvalidArgument

import reference_text as ref
from conftest import run_cli

#: fastrnn against the min-char-rnn reference over 400 iterations at lr 0.01
RTOL_MINCHAR = 1e-9
#: evaluate() against the reference's summed window loss (one forward, summation order differs)
RTOL_EVAL = 1e-10


def ref_to_fastrnn(p):
    """The reference's min-char-rnn names -> fastrnn's parameter names."""
    return dict(U0=p["Wxh"], W0=p["Whh"], b0=p["bh"], V=p["Why"], c=p["by"])


def char_model(p, **kw):
    H, V = p["Wxh"].shape
    model = fastrnn.RNN(V, H, V, activation="tanh", head="softmax", **kw)
    for k, v in ref_to_fastrnn(p).items():
        model.params[k][...] = v
    return model


@pytest.fixture
def write(tmp_path):
    def _write(content, name="t.txt"):
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path
    return _write


# ---------------------------------------------------------------------- reading


def test_read_text_vocab_ids_and_split(write):
    content = "the cat sat on the mat; das Mädchen aß\n" * 3
    path = write(content)
    t = text.read_text(path, seq_length=5, val_fraction=0.25)
    assert t.vocab == "".join(sorted(set(content)))
    assert text.decode(t.vocab, t.ids) == content  # multi-byte characters are one character each
    n_val = int(0.25 * len(content))
    assert len(t.val_ids) == n_val and len(t.train_ids) == len(content) - n_val
    assert text.decode(t.vocab, t.val_ids) == content[len(content) - n_val:]  # the last F of the file
    assert len(text.read_text(path, seq_length=5).val_ids) == 0


@pytest.mark.parametrize("case, content, needle", [
    ("empty", b"", "is empty"),
    ("not utf-8", "abc d\u00e9f ".encode("utf-8") * 5 + b"caf\xe9 au lait" * 3, "byte 0xe9 at offset 48"),
    ("too short", "x" * 26, "has 26 characters; seq_length 25 needs at least 27"),
])
def test_read_text_refuses_bad_files(write, case, content, needle):
    path = write(content)
    with pytest.raises(InvalidArgument) as err:
        text.read_text(path, seq_length=25)
    msg = str(err.value)
    assert str(path) in msg and needle in msg and "\n" not in msg


def test_read_text_accepts_the_shortest_file(write):
    t = text.read_text(write("ab" * 13 + "c"), seq_length=25)  # L + 2 = 27 characters
    assert len(t) == 27


def test_read_text_refuses_a_missing_file_and_a_folder(tmp_path):
    with pytest.raises(InvalidArgument, match="does not exist") as err:
        text.read_text(tmp_path / "nope.txt")
    assert "nope.txt" in str(err.value)
    with pytest.raises(InvalidArgument, match="is a folder") as err:
        text.read_text(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_read_text_refuses_streams_too_short_for_the_batch(write):
    path = write("abcdefghij" * 10)  # 100 characters: 25 a stream at batch 4
    text.read_text(path, seq_length=10, batch=4)
    with pytest.raises(InvalidArgument, match="per stream with batch 5"):
        text.read_text(path, seq_length=20, batch=5)
    with pytest.raises(InvalidArgument, match="val-fraction"):
        text.read_text(path, seq_length=10, batch=4, val_fraction=0.6)  # 40 left: 10 a stream


def test_the_example_text_ships_and_reads():
    t = text.read_text(text.example_path())
    assert 3000 < len(t) < 20000
    assert "\n" in t.vocab and " " in t.vocab


def test_init_normal():
    model = text.init_normal(fastrnn.RNN(30, 100, 30, layers=2), std=0.01, seed=3)
    for name in model.param_names:
        v = model.params[name]
        if v.ndim == 1:
            assert np.all(v == 0), name
        else:
            assert abs(v.std() - 0.01) < 0.001 and abs(v.mean()) < 0.001, name
    again = text.init_normal(fastrnn.RNN(30, 100, 30, layers=2, seed=9), std=0.01, seed=3)
    assert np.array_equal(again.theta, model.theta)  # from the seed alone


# ---------------------------------------------------------------------- the walk


def expected_windows(data, L, iters):
    """min-char-rnn's pointer rule, written out once more: (start, reset) per iteration."""
    out, p = [], 0
    for n in range(iters):
        reset = n == 0 or p + L + 1 >= len(data)
        if reset:
            p = 0
        out.append((p, reset))
        p += L
    return out


def test_walk_batch1_pointers_and_wraparound():
    V, L = 7, 4
    ids = np.random.default_rng(0).integers(0, V, 30)
    src = text.TextSource(ids, V, seq_length=L)
    X, Y, M, resets = src.next(20)
    assert X.shape == (20, L, V) and Y.shape == (20, L, V) and M.shape == (0, 0)
    assert resets.dtype == np.int64
    starts = expected_windows(ids, L, 20)
    # 30 characters, L 4: windows at 0, 4, ..., 24, then 28 + 5 >= 30 wraps
    assert [p for p, _ in starts[:8]] == [0, 4, 8, 12, 16, 20, 24, 0]
    assert resets.tolist() == [int(r) for _, r in starts]
    for it, (p, _) in enumerate(starts):
        assert np.array_equal(X[it].argmax(1), ids[p:p + L])
        assert np.array_equal(Y[it].argmax(1), ids[p + 1:p + L + 1])
    assert np.all(X.sum(2) == 1) and np.all(Y.sum(2) == 1)


def test_walk_b_streams_layout():
    V, L, B = 5, 3, 3
    ids = np.random.default_rng(1).integers(0, V, 47)  # parts of 15, the last 2 characters dropped
    src = text.TextSource(ids, V, seq_length=L, batch=B)
    n = 12
    X, Y, M, resets = src.next(n)
    assert X.shape == (n * B, L, V)
    part = 15
    starts = expected_windows(ids[:part], L, n)
    assert resets.tolist() == [int(r) for _, r in starts]
    for it, (p, _) in enumerate(starts):
        for b in range(B):
            stream = ids[b * part:(b + 1) * part]
            assert np.array_equal(X[it * B + b].argmax(1), stream[p:p + L])
            assert np.array_equal(Y[it * B + b].argmax(1), stream[p + 1:p + L + 1])


def test_walk_in_chunks_equals_one_call():
    ids = np.random.default_rng(2).integers(0, 6, 100)
    one = text.TextSource(ids, 6, seq_length=7, batch=2)
    many = text.TextSource(ids, 6, seq_length=7, batch=2)
    whole = one.next(30)
    parts = [many.next(k) for k in (1, 0, 12, 17)]
    for i in (0, 1, 3):
        assert np.array_equal(whole[i], np.concatenate([p[i] for p in parts]))


def test_state_restore_continues_exactly():
    ids = np.random.default_rng(3).integers(0, 9, 200)
    src = text.TextSource(ids, 9, seq_length=10, batch=2, dtype="float32")
    src.next(13)
    saved = json.loads(json.dumps(src.state()))  # through JSON, as a resume file would hold it
    rest = src.next(25)
    again = text.TextSource(ids, 9, seq_length=10, batch=2, dtype="float32")
    again.restore(saved)
    assert again.state() == saved
    for a, b in zip(rest, again.next(25)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert rest[0].dtype == np.float32


def test_restore_refuses_another_walk():
    ids = np.arange(100) % 5
    state = text.TextSource(ids, 5, seq_length=10).state()
    with pytest.raises(InvalidArgument, match="seq_length was 10, now 8"):
        text.TextSource(ids, 5, seq_length=8).restore(state)
    with pytest.raises(InvalidArgument, match="batch was 1, now 2"):
        text.TextSource(ids, 5, seq_length=10, batch=2).restore(state)
    with pytest.raises(InvalidArgument, match=r"the text changed since the run was saved \(its checksum was"):
        text.TextSource(ids[::-1].copy(), 5, seq_length=10).restore(state)


def test_source_refuses_ids_outside_the_vocabulary_and_short_streams():
    with pytest.raises(InvalidArgument, match=r"\[0, 3\)"):
        text.TextSource(np.array([0, 1, 3] * 10), 3, seq_length=4)
    with pytest.raises(InvalidArgument, match="per stream"):
        text.TextSource(np.zeros(20, dtype=int), 3, seq_length=4, batch=4)


# ---------------------------------------------------------------------- metrics


def test_metrics_values():
    V, L, B = 10, 5, 2
    m = text.TextMetrics(V, L)
    assert m.smooth_loss == pytest.approx(math.log(V) * L, rel=1e-15)
    losses = np.array([11.0, 9.0, 7.0])
    errors = np.array([5, 4, 3, 2, 1, 0])  # n * B windows of L characters
    row = m.update(losses, errors)
    s = math.log(V) * L
    for loss in losses:
        s = 0.999 * s + 0.001 * loss
    assert row["smooth_loss"] == pytest.approx(s, rel=1e-15)
    assert row["loss_per_char"] == pytest.approx(9.0 / L, rel=1e-15)
    assert row["bpc"] == pytest.approx(9.0 / (L * math.log(2)), rel=1e-15)
    assert row["char_accuracy"] == pytest.approx(1 - 15 / (6 * L), rel=1e-15)
    assert set(row) == set(text.COLUMNS)


def test_metrics_chunking_and_restore_do_not_change_the_smoothed_loss():
    losses = np.random.default_rng(4).uniform(20, 60, 50)
    whole = text.TextMetrics(30, 25)
    whole.update(losses, np.zeros(50))
    split = text.TextMetrics(30, 25)
    split.update(losses[:17], np.zeros(17))
    resumed = text.TextMetrics(30, 25)
    resumed.restore(json.loads(json.dumps(split.state())))
    resumed.update(losses[17:], np.zeros(33))
    assert resumed.smooth_loss == whole.smooth_loss


def test_evaluate_matches_the_reference_loss():
    rng = np.random.default_rng(5)
    V, H = 6, 8
    p = ref.init_weights(V, H, rng, std=0.5)
    ids = rng.integers(0, V, 40)
    loss, _, _ = ref.loss_fun(p, list(ids[:-1]), list(ids[1:]), np.zeros(H))
    got = text.evaluate(char_model(p), ids, chunk=7)  # the state carried across chunks
    assert got["n_chars"] == 39
    assert got["bpc"] == pytest.approx(loss / (39 * math.log(2)), rel=RTOL_EVAL)
    assert got["loss_per_char"] == pytest.approx(loss / 39, rel=RTOL_EVAL)


# ---------------------------------------------------------------------- sampling


VOCAB = "abcdefg"


def random_model(seed=0, layers=1, activation="tanh", scale=1.0):
    model = fastrnn.RNN(len(VOCAB), 12, len(VOCAB), layers=layers, activation=activation, seed=seed, init_scale=scale)
    model.params["c"][...] = np.random.default_rng(seed).normal(0, 1, len(VOCAB))
    return model


def test_sample_is_reproducible_with_a_seed():
    model = random_model()
    a = text.sample(model, VOCAB, 200, temperature=1.0, prime="abc", seed=7)
    assert len(a) == 200 and set(a) <= set(VOCAB)
    assert text.sample(model, VOCAB, 200, temperature=1.0, prime="abc", seed=7) == a
    assert text.sample(model, VOCAB, 200, temperature=1.0, prime="abc", seed=8) != a


@pytest.mark.parametrize("layers, activation", [(1, "tanh"), (2, "tanh"), (3, "sigmoid"), (2, "relu")])
def test_temperature_zero_is_the_argmax_path(layers, activation):
    """Each character of a T = 0 sample is the arg max of fastrnn's own forward pass
    over the prime and the characters drawn so far."""
    model = random_model(seed=layers, layers=layers, activation=activation)
    prime = "gabe"
    got = text.sample(model, VOCAB, 15, temperature=0, prime=prime, seed=123)
    assert text.sample(model, VOCAB, 15, temperature=0, prime=prime, seed=999) == got  # no randomness
    seq = prime
    for _ in range(15):
        yhat, _ = model.forward(text.one_hot(text.encode(VOCAB, seq), len(VOCAB))[None])
        seq += VOCAB[int(yhat[0, -1].argmax())]
    assert seq[len(prime):] == got


def test_sample_without_prime_starts_from_the_initial_state():
    model = random_model(seed=3)
    h0 = np.random.default_rng(0).uniform(-1, 1, (1, model.n_hidden))
    first = text.sample(model, VOCAB, 1, temperature=0, h0=h0)
    z = model.params["V"] @ h0[-1] + model.params["c"]
    assert first == VOCAB[int(z.argmax())]
    # with h0 and a prime, the path continues fastrnn's forward from that state
    got = text.sample(model, VOCAB, 5, temperature=0, prime="ab", h0=h0)
    seq = "ab"
    for _ in range(5):
        yhat, _ = model.forward(text.one_hot(text.encode(VOCAB, seq), len(VOCAB))[None], h0=h0[:, None])
        seq += VOCAB[int(yhat[0, -1].argmax())]
    assert seq[2:] == got


def test_sample_draws_from_softmax_over_temperature():
    """The first character after the prime, over many seeds, follows softmax(z / T)."""
    model = random_model(seed=4)
    yhat, _ = model.forward(text.one_hot(text.encode(VOCAB, "fed"), len(VOCAB))[None])
    z = np.log(yhat[0, -1])  # logits up to a constant
    n = 3000
    for T in (0.5, 1.0):
        draws = [text.sample(model, VOCAB, 1, temperature=T, prime="fed", seed=s) for s in range(n)]
        freq = np.array([draws.count(ch) for ch in VOCAB]) / n
        p = text.next_char_distribution(z, T)
        assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-3)


def test_temperature_direction():
    model = random_model(seed=5, scale=0.05)  # small weights: the output is mostly c, whatever the state

    def concentration(T):
        s = text.sample(model, VOCAB, 3000, temperature=T, seed=1)
        freq = np.array([s.count(ch) for ch in VOCAB]) / len(s)
        entropy = -sum(f * math.log(f) for f in freq if f > 0)
        return freq.max(), entropy

    cold, hot = concentration(0.1), concentration(2.0)
    assert cold[0] > hot[0] + 0.2  # the most common character is much more common when cold
    assert cold[1] < hot[1] - 0.5  # and the spread (entropy, nats) much smaller


def test_sample_reads_the_vocabulary_from_the_model_metadata(tmp_path):
    model = random_model()
    model.metadata[text.VOCAB_KEY] = VOCAB
    model = fastrnn.RNN.load(model.save(tmp_path / "m.npz"))  # the vocabulary survives a save
    assert text.sample(model, length=30, seed=2) == text.sample(model, VOCAB, 30, seed=2)
    model.metadata.clear()
    with pytest.raises(InvalidArgument, match="no vocabulary"):
        text.sample(model, length=3)


def test_sample_refuses_unknown_prime_characters():
    with pytest.raises(InvalidArgument) as err:
        text.sample(random_model(), VOCAB, 5, prime="bad dogs!")
    msg = str(err.value)
    assert "prime" in msg and "' ', '!', 'o', 's'" in msg and "'d'" not in msg


def test_sample_refuses_a_vocabulary_that_does_not_fit():
    with pytest.raises(InvalidArgument, match="vocabulary of 5 characters"):
        text.sample(random_model(), "abcde", 5)
    with pytest.raises(InvalidArgument, match="temperature must be at least 0"):
        text.sample(random_model(), VOCAB, 5, temperature=-1)


# ---------------------------------------------------------------------- min-char-rnn


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("batch", [1, 4])
def test_training_equals_min_char_rnn(batch, tmp_path):
    """400 iterations of min-char-rnn (lr 0.01, H 100, L 25, clip 5) on the example
    text through fastrnn's training path (``train(task="text", init_from=...)``, the
    chunk kernel with carried state): the loss of every iteration and the final
    weights agree with the reference.

    The walk wraps around within the 400 iterations (at batch 1 after 178 windows,
    at batch 4 every 44), so resets and the carried state are both exercised; rows
    of 7 iterations put chunk boundaries inside and across the wraps.
    """
    t = text.read_text(text.example_path())
    H, L, iters, lr = 100, 25, 400, 0.01
    p0 = ref.init_weights(t.n_vocab, H, np.random.default_rng(11))
    ref_losses, ref_p = ref.train(list(t.ids), p0, L, iters, lr, batch=batch, clip=5.0)

    start = char_model(p0).save(tmp_path / "init.npz")
    per_iteration = fastrnn.train(task="text", text=text.example_path(), iters=iters, batch=batch, lr=lr,
                                  init_from=start, log_every=1)
    assert per_iteration.settings["optimizer"] == "adagrad" and per_iteration.settings["clip_value"] == 5.0
    losses = per_iteration.history["loss"].to_numpy()
    np.testing.assert_allclose(losses, ref_losses, rtol=RTOL_MINCHAR, atol=0)
    chunked = fastrnn.train(task="text", text=text.example_path(), iters=iters, batch=batch, lr=lr, init_from=start,
                            log_every=7)
    assert np.array_equal(chunked.model.theta, per_iteration.model.theta)  # how the run is cut does not matter
    for model in (per_iteration.model, chunked.model):
        for k, v in ref_to_fastrnn(ref_p).items():
            np.testing.assert_allclose(model.params[k], v, rtol=RTOL_MINCHAR, atol=1e-14, err_msg=k)
    assert ref_losses[-1] < ref_losses[0] - 5  # it learned something, so the comparison is not of noise


def test_the_module_example_runs():
    import doctest

    assert doctest.testmod(text).failed == 0


# ---------------------------------------------------------------------- the text task


def one_line(code, err, expected, *fragments):
    assert code == expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_text_task_defaults_are_min_char_rnns():
    result = fastrnn.train(task="text", iters=4, log_every=2)
    s = result.settings
    assert (s["hidden"], s["activation"], s["seq_length"], s["optimizer"], s["lr"], s["clip_value"], s["batch"]) == \
        (100, "tanh", 25, "adagrad", 0.1, 5.0, 1)
    assert s["clip"] is None and s["init_scale"] == 0.01 and s["text"] == text.example_path()
    # the initial weights: init_normal's draw from the seed (N(0, 0.01^2), biases 0)
    t = text.read_text(text.example_path())
    fresh = text.init_normal(fastrnn.RNN(t.n_vocab, 100, t.n_vocab), std=0.01, seed=0)
    start = fastrnn.train(task="text", iters=1, log_every=1, lr=1e-300)
    assert np.allclose(start.model.theta, fresh.theta, rtol=0, atol=1e-290)
    assert result.model.metadata == {"task": "text", "text": text.example_path(), "seq_length": 25, "val_fraction": 0.0,
                                     "vocab": t.vocab}
    assert list(result.history.columns[-4:]) == text.COLUMNS


def test_text_rows_and_val_bpc(tmp_path):
    result = fastrnn.train(task="text", iters=30, log_every=10, hidden=20, val_fraction=0.2, seq_length=12, batch=3,
                           csv=tmp_path / "r.csv", save=tmp_path / "m.npz")
    frame = pd.read_csv(tmp_path / "r.csv")
    assert list(frame.columns[-5:]) == text.COLUMNS + ["val_bpc"]
    last = frame.iloc[-1]
    assert last["bpc"] == pytest.approx(last["loss"] / (12 * math.log(2)), rel=1e-12)
    assert last["loss_per_char"] == pytest.approx(last["loss"] / 12, rel=1e-12)
    t = text.read_text(text.example_path(), seq_length=12, val_fraction=0.2)
    assert last["val_bpc"] == pytest.approx(text.evaluate(fastrnn.RNN.load(tmp_path / "m.npz"), t.val_ids)["bpc"], rel=1e-12)
    # the smoothed loss over 30 iterations, min-char-rnn's recurrence from -ln(1/V) L
    s = math.log(t.n_vocab) * 12
    tracker = text.TextMetrics(t.n_vocab, 12)
    assert tracker.smooth_loss == s
    assert 0 < last["char_accuracy"] < 1 and last["smooth_loss"] < s


@pytest.mark.parametrize("content, needle", [
    (b"", "is empty"),
    (b"caf\xe9 au lait, caf\xe9 noir, caf\xe9 cr\xe8me", "is not UTF-8"),
    ("x" * 26, "needs at least 27"),
])
def test_cli_refuses_bad_text_files(write, capsys, content, needle):
    path = write(content)
    code, _, err = run_cli(capsys, "train", "--task", "text", "--text", path, "--no-csv", "-q")
    one_line(code, err, 2, str(path), needle)


def test_cli_refuses_a_folder_and_a_missing_text(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--task", "text", "--text", tmp_path, "--no-csv")
    one_line(code, err, 2, "is a folder")
    code, _, err = run_cli(capsys, "train", "--task", "text", "--text", tmp_path / "gone.txt", "--no-csv")
    one_line(code, err, 2, "gone.txt", "does not exist")
    code, _, err = run_cli(capsys, "train", "--task", "binary", "--text", tmp_path / "gone.txt", "--no-csv")
    one_line(code, err, 2, "text, seq_length and val_fraction belong to the text task")


def test_a_non_finite_loss_stops_the_text_run_with_advice(tmp_path, capsys):
    with pytest.raises(fastrnn.NumericalError, match="iteration 2; training stopped there .*smaller --lr") as info:
        fastrnn.train(task="text", iters=50, log_every=1, lr=1e307, csv=tmp_path / "r.csv")
    assert info.value.result.iterations == 1 and len(pd.read_csv(tmp_path / "r.csv")) == 1
    code, _, err = run_cli(capsys, "train", "--task", "text", "--iters", "20", "--lr", "1e307", "--no-csv", "-q")
    one_line(code, err, 1, "NaN or infinite at iteration 2")


@pytest.fixture(scope="module")
def char_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "m.npz"
    fastrnn.train(task="text", iters=200, hidden=32, log_every=100, save=path)
    return path


def test_cli_sample(char_model_file, capsys):
    model = fastrnn.RNN.load(char_model_file)
    code, out, err = run_cli(capsys, "sample", char_model_file, "--length", "80", "--temperature", "0.7", "--prime",
                             "The ", "--seed", "3")
    assert code == 0, err
    assert out == "The " + text.sample(model, length=80, temperature=0.7, prime="The ", seed=3) + "\n"
    _, again, _ = run_cli(capsys, "sample", char_model_file, "--length", "80", "--temperature", "0.7", "--prime", "The ",
                          "--seed", "3")
    assert again == out
    code, out, _ = run_cli(capsys, "sample", char_model_file, "--length", "40", "--temperature", "0")
    assert code == 0 and out == text.sample(model, length=40, temperature=0) + "\n"


def test_cli_sample_refusals(char_model_file, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", char_model_file, "--prime", "Zebra€")
    one_line(code, err, 2, "prime", "'€'")
    plain = fastrnn.RNN(3, 4, 3).save(tmp_path / "plain.npz")
    code, _, err = run_cli(capsys, "sample", plain)
    one_line(code, err, 2, "no vocabulary")
    code, _, err = run_cli(capsys, "sample", char_model_file, "--temperature", "-1")
    one_line(code, err, 2, "--temperature")


def test_sample_help_says_which_way_the_temperature_goes(capsys):
    code, out, _ = run_cli(capsys, "sample", "--help")
    flat = " ".join(out.split())
    assert code == 0 and "below 1 more conservative" in flat and "above 1 more varied" in flat
    assert "0 always takes the most likely character" in flat


def test_plot_draws_a_text_runs_bits_per_character(tmp_path, capsys, monkeypatch):
    from fastrnn import plots

    fastrnn.train(task="text", iters=40, hidden=16, log_every=10, val_fraction=0.1, csv=tmp_path / "r.csv")
    drawn = []
    real = plots.plot_runs

    def spy(runs, out):
        drawn.extend(frame for _, frame in runs)
        return real(runs, out)

    monkeypatch.setattr(plots, "plot_runs", spy)
    code, out, err = run_cli(capsys, "plot", tmp_path / "r.csv", "--out", tmp_path / "bpc.png")
    assert code == 0, err
    assert (tmp_path / "bpc.png").stat().st_size > 1000 and "bpc" in drawn[0] and "val_bpc" in drawn[0]
    import matplotlib.pyplot as plt

    try:  # the panels of a text run
        axes = []
        monkeypatch.setattr(plots, "_save", lambda f, o: axes.extend(f.axes))
        real([("r", drawn[0])], tmp_path / "x.png")
        assert [ax.get_title() for ax in axes] == ["bits per character (val dashed)", "smoothed loss (min-char-rnn)",
                                                    "next-character accuracy"]
        assert len(axes[0].lines) == 2  # training and held-out bpc
    finally:
        plt.close("all")
