"""Every command that the README and the docs show is run, and its output keeps the shape shown.

The pages' ```console blocks (``$ command`` lines, each followed by its output) and their
```python blocks (a ```text block right after one is what it prints) are run in order in
a fresh folder per page, by the same code that writes them (docs/generate.py). Each
output must have the lines shown, numbers aside (``generate.shape``): a renamed column,
a changed message, a removed option or a command that fails turns the test red. Where
the shown command takes minutes, SMOKE runs a smaller one. The ```bash blocks are
instructions (installs, the suite itself, benchmarks): each of their commands is either
run at a smoke size (SMOKE_BASH) or named in docs/generate.py's NOT_RUN with its reason.
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

#: (pattern in a shown command, what the test runs instead): only where the shown size takes long.
SMOKE = [
    (r"--seeds 0-99\b", "--seeds 0-3"),  # 100 runs of 20000 iterations
    (r"--seeds 0-9\b", "--seeds 0-1"),  # 60 runs
    (r"^fastrnn train --task digits --save d\.npz$", "fastrnn train --task digits --save d.npz --iters 200"),  # 2000 at batch 32
    (r"^(fastrnn train --task (?:adding|copy|order)(?:(?! --iters).)*)$", r"\1 --iters 100"),  # 2000 at batch 32, T up to 100
    (r"--iters 8000\b", "--iters 200"),
    (r"^(FASTRNN_THREADS=1 fastrnn train --task digits) --iters 5000$", r"\1 --iters 100"),
    (r"--seeds 0,1 --set length=50,100", "--seeds 0 --set length=50 --set iters=100"),
    (r"--iters 200000\b", "--iters 20000"),
    (r"^(fastrnn train --task add --rule .*)--iters (?:30000|2000)$", r"\1--iters 100"),  # online rules: one update a step
    (r"--task add --seeds 0-4 (--set rule=\S+)", r"--task add --seeds 0 \1 --set iters=100 --set test_steps=100"),
]

#: What a smaller run changes in the shown output's words (pattern in a shown command,
#: pattern in its shown output, what it becomes): a short digits run does not reach 1.0.
SMOKE_SHOWN = [
    (r"^fastrnn train --task digits --save d\.npz$", r"\(first 1\.0 at iteration \d+\)", "(never reached 1.0)"),
    (r"^FASTRNN_THREADS=1 fastrnn train --task digits --iters 5000$", r"\(first 1\.0 at iteration \d+\)", "(never reached 1.0)"),
]

#: Benchmark commands of the ```bash blocks, and what the test runs instead: the same script
#: rendering its tables from the results files it ships with (--from-csv), or measuring a
#: few iterations. They run on a copy of benchmarks/, so the repository's files stay as they are.
SMOKE_BASH = {
    "python benchmarks/run.py --quick": "python benchmarks/run.py --from-csv --no-readme",
    "python benchmarks/bench_kernels.py": "python benchmarks/bench_kernels.py --from-csv --no-readme",
    "python benchmarks/bench_fit.py": "python benchmarks/bench_fit.py --from-csv --no-readme",
    "python benchmarks/bench_sweep.py": "python benchmarks/bench_sweep.py --from-csv --no-readme",
    "OPENBLAS_NUM_THREADS=1 python benchmarks/bench_text.py": "python benchmarks/bench_text.py --from-csv --no-readme",
    "OPENBLAS_NUM_THREADS=1 python benchmarks/study_recall.py":
        "python benchmarks/study_recall.py --lags 5,10 --seeds 0 --iters 100 --forget-biases 0,3 --out study/recall",
}

#: Benchmark commands that no test runs, with the reason (beside docs/generate.py's NOT_RUN).
NOT_RUN_BENCH = {
    "python benchmarks/bench_gated.py --quick": "needs PyTorch and JAX and measures for minutes; tests/test_benchmark_baselines.py "
                                                "checks its contenders",
    "python benchmarks/bench_envelope.py": "measures for about half a minute beside a busy process it starts; "
                                           "tests/test_bench_envelope.py runs it at smoke size",
    "python benchmarks/bench_lean_size.py": "tests/test_bench_envelope.py runs it at smoke size",
    "python benchmarks/bench_cells_size.py": "tests/test_bench_envelope.py runs it at smoke size",
}


def smoke(command):
    for pattern, replacement in SMOKE:
        command = re.sub(pattern, replacement, command)
    return command


def _runnable(path):
    """A page with a transcript or code to run, or a benchmark command that the test runs."""
    found = generate.blocks(path.read_text())
    return any(b["lang"] in ("console", "python") or (b["lang"] == "bash" and any(_bash(c) for c in generate.bash_commands(b)))
               for b in found)


def _bash(command):
    if command in SMOKE_BASH:
        return SMOKE_BASH[command]
    if re.match(r"(\w+=\S+ )*fastrnn ", command) and not command.startswith(tuple(generate.NOT_RUN)):
        return smoke(command)  # a command shown without its output: run (at a smoke size), its exit status checked
    if command in NOT_RUN_BENCH or command.startswith(tuple(generate.NOT_RUN)):
        return None
    raise AssertionError(f"`{command}` is shown in a bash block but neither run (SMOKE_BASH) nor listed in NOT_RUN with a reason")


def _smoke_shown(command, shown):
    for pattern, out_pattern, replacement in SMOKE_SHOWN:
        if re.search(pattern, command):
            shown = [re.sub(out_pattern, replacement, ln) for ln in shown]
    return shown


PAGES = [p for p in generate.pages() if _runnable(p)]


def _check_output(where, command, shown, status, output):
    failed = status != 0
    if shown and shown[0].startswith("Error:"):
        assert failed, f"{where}: `{command}` was shown failing but exited 0:\n" + "\n".join(output)
    else:
        assert not failed, f"{where}: `{command}` exited {status}:\n" + "\n".join(output)
    if generate.is_free_text(command):
        assert output and output[0].split()[:1] == shown[0].split()[:1], f"{where}: `{command}` printed {output[:2]}"
        return
    want, got = generate.shape(shown), generate.shape(output)
    assert got == want, (f"{where}: the output of `{command}` no longer has the shape shown; regenerate with "
                         f"`python docs/generate.py` if the change is meant.\nshown:\n" + "\n".join(shown)
                         + "\nnow:\n" + "\n".join(output))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_shown_on_the_page_runs_and_keeps_its_output_shape(page):
    ran = 0
    for block, results in generate.run_page(page, substitute=smoke, bash=_bash):
        where = f"{page.relative_to(ROOT)}:{block['start'] + 1}"
        if block["lang"] == "console":
            for command, shown, status, output in results:
                _check_output(where, smoke(command), _smoke_shown(command, shown), status, output)
                ran += 1
        elif block["lang"] == "python":
            shown, printed = results
            if shown is not None:
                assert generate.shape(printed) == generate.shape(shown), (
                    f"{where}: the code prints\n" + "\n".join(printed) + "\nbut the page shows\n" + "\n".join(shown))
            ran += 1
        else:
            for command, status, output in results:
                assert status == 0, f"{where}: `{_bash(command)}` (for `{command}`) exited {status}:\n" + "\n".join(output)
                assert output, f"{where}: `{_bash(command)}` printed nothing"
                ran += 1
    assert ran, f"{page.name}: no block ran"


def test_the_shape_of_an_output_ignores_numbers_and_spacing_but_not_words():
    shown = ["binary: accuracy 1.000 (first 1.0 at iteration 2991) after 20000 iterations; training 0.079 s",
             "  task  runs   final_accuracy_mean"]
    assert generate.shape(shown) == generate.shape(
        ["binary: accuracy 0.875 (first 1.0 at iteration 17) after 300 iterations; training 12.5 s",
         "task runs final_accuracy_mean"])
    assert generate.shape(shown) != generate.shape(
        ["binary: accuracy 0.875 (never reached 1.0) after 300 iterations; training 12.5 s", "task runs final_accuracy_mean"])
    assert generate.shape(shown) != generate.shape(shown[:1])
    assert generate.shape(["loss 1e-05, nan"]) == generate.shape(["loss 3.5E+02, 7"])
    assert generate.shape(["best 0.03 (adding-length50-initorthogonal-seed1)"]) == generate.shape(["best 0.2 (adding-initNone-seed0)"])


def test_a_console_block_is_read_as_commands_and_their_outputs():
    text = "intro\n\n  ```console\n  $ fastrnn eval m.npz\n  exact match: 1.0\n  $ fastrnn predict m.npz 1 2\n  ```\n"
    (block,) = generate.blocks(text)
    assert block["lang"] == "console" and block["indent"] == "  "
    assert generate.commands(block) == [("fastrnn eval m.npz", ["exact match: 1.0"]), ("fastrnn predict m.npz 1 2", [])]


def test_every_page_with_a_transcript_is_run_and_every_bash_command_is_accounted_for():
    shown = [c for p in generate.pages() for b in generate.blocks(p.read_text()) if b["lang"] == "bash"
             for c in generate.bash_commands(b)]
    assert shown, "the pages show no bash commands"
    for command in shown:
        _bash(command)  # raises for a command neither run nor listed with a reason
    assert {p.name for p in PAGES} >= {"README.md", "getting-started.md", "data.md", "text.md", "gradients.md", "sweeps.md"}
    assert not [c for c in SMOKE_BASH if c not in shown], "SMOKE_BASH names a command no page shows"


def test_the_readme_headline_and_the_recall_table_are_the_results_files_rendered():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- headline:start -->\n", 1)[1].split("<!-- headline:end -->", 1)[0]
    assert block == generate.headline_table(), "README's headline table differs from benchmarks/results: python docs/generate.py --tables"
    gradients = (ROOT / "docs" / "gradients.md").read_text()
    block = gradients.split("<!-- recall-table:start -->\n", 1)[1].split("<!-- recall-table:end -->", 1)[0]
    assert block == generate.recall_table(), "the recall table differs from docs/recall-sweep.csv: python docs/generate.py --tables"
