"""Regenerate every transcript, output and generated table of the README and the docs pages.

    python docs/generate.py                      # every page, at the sizes shown
    python docs/generate.py docs/data.md         # one page (README.md, docs/NAME.md)
    python docs/generate.py --tables             # only the tables rendered from results files

What a page shows is run, never typed:

* a ```` ```console ```` block holds commands (lines starting with ``$ ``), each followed by
  its output; every command is run by bash in a fresh folder that belongs to the page
  (so a later block can use a file that an earlier one wrote), with ``fastrnn`` and
  ``python`` meaning this checkout, and its output (stdout and stderr together) replaces
  the one shown;
* a ```` ```py ```` block is a listing (a module's source, say): shown, never run;
* a ```` ```python ```` block is run in one namespace per page, in the same folder; when a
  ```` ```text ```` block follows it, that block is replaced by what the code printed;
* what the commands write under ``docs/`` in that folder (figures, CSV) is copied into
  the repository's ``docs/``;
* the README's headline table is rendered from ``benchmarks/results/*.csv`` between its
  ``<!-- headline:start -->`` and ``<!-- headline:end -->`` marks, and the recall study's
  table from ``docs/recall-sweep.csv`` between ``<!-- recall-table:... -->`` marks.

``tests/test_transcripts.py`` runs the same blocks (at the smaller sizes of its
``SMOKE`` table where the shown command takes minutes) and checks that each output
keeps the shape shown here: the same lines, numbers aside (:func:`shape`).
"""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z]*)[ \t]*$")
RUN_NAME = re.compile(r"[\w.+=-]+-seed\d+")  # a sweep's run name: which run is best depends on the numbers
#: A run's default file name (runs/TASK-DATE-TIME.csv, "-1" added when two runs start in one second).
RUN_FILE = re.compile(r"\bruns/([a-z]+)-\d{8}-\d{6}(?:-\d+)?\b")
NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|\b(?:nan|inf)\b")

#: Commands whose output is free text (sampled characters): the shape check only asks
#: that they succeed and print something starting as the shown output does.
FREE_TEXT = ("fastrnn sample",)

#: Commands in ```bash blocks that are instructions rather than transcripts, and that no
#: test runs, with the reason; tests/test_transcripts.py fails on a bash command missing
#: here or in its SMOKE_BASH table.
NOT_RUN = {
    "pip install": "installs the package: what CI itself does first",
    "python -m pytest": "the test suite: what CI itself runs",
    "mkdocs build": "the documentation site: CI builds it with --strict after the suite",
    "python docs/generate.py": "this script: the test runs every block it runs",
    "python docs/notebooks/execute.py": "runs the tutorial notebooks; CI runs them with pytest --nbmake in a step of its own",
    "fastrnn train --resume m.ckpt.npz": "continues a run killed mid-way; tests/test_survival.py kills runs and resumes them",
}


def pages():
    """The README and every page of the docs."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# ----------------------------------------------------------------------------- parsing


def blocks(text):
    """Fenced blocks of a page: dicts with lang, indent, start/end line numbers (the fences) and lines."""
    lines = text.split("\n")
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m["lang"]:
            indent = m["indent"]
            j = i + 1
            while j < len(lines) and lines[j].rstrip() != indent + "```":
                j += 1
            body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[i + 1 : j]]
            found.append(dict(lang=m["lang"], indent=indent, start=i, end=j, lines=body))
            i = j + 1
        else:
            i += 1
    return found


def with_outputs(text):
    """The page's runnable blocks in order; a python block followed by a text block gets it as ``output``."""
    found = blocks(text)
    lines = text.split("\n")
    out = []
    for k, b in enumerate(found):
        if b["lang"] == "python":
            nxt = found[k + 1] if k + 1 < len(found) else None
            if nxt is not None and nxt["lang"] == "text" and all(not ln.strip() for ln in lines[b["end"] + 1 : nxt["start"]]):
                b["output"] = nxt
        if b["lang"] in ("console", "python", "bash"):
            out.append(b)
    return out


def commands(block):
    """``[(command, shown output lines), ...]`` of a console block."""
    result = []
    for ln in block["lines"]:
        if ln.startswith("$ "):
            result.append([ln[2:], []])
        elif result:
            result[-1][1].append(ln)
    return [(c, out) for c, out in result]


def bash_commands(block):
    """The commands of a bash block, comments and blank lines left out."""
    return [ln.split("  #")[0].strip() for ln in block["lines"] if ln.strip() and not ln.lstrip().startswith("#")]


def shape(lines):
    """Output lines with every number replaced by ``#``, a sweep's run names by ``RUN``, a run's
    default file name by ``runs/TASK-DATE`` and runs of spaces by one: what may not change."""
    return [re.sub(r"\s+", " ", NUMBER.sub("#", RUN_NAME.sub("RUN", RUN_FILE.sub(r"runs/\1-DATE", ln)))).strip()
            for ln in lines if ln.strip()]


def is_free_text(command):
    return command.startswith(FREE_TEXT)


# ----------------------------------------------------------------------------- running


@contextlib.contextmanager
def sandbox():
    """A fresh folder to run a page in: ``fastrnn`` and ``python`` are this checkout's, and the
    benchmark scripts are a copy (they write their results beside themselves)."""
    with tempfile.TemporaryDirectory(prefix="fastrnn-docs-") as tmp:
        tmp = Path(tmp)
        bin_dir = tmp / ".bin"
        bin_dir.mkdir()
        for name, body in (("fastrnn", f'exec "{sys.executable}" -m fastrnn "$@"\n'), ("python", f'exec "{sys.executable}" "$@"\n')):
            (bin_dir / name).write_text("#!/usr/bin/env bash\n" + body)
            (bin_dir / name).chmod(0o755)
        work = tmp / "work"
        (work / "docs").mkdir(parents=True)
        shutil.copytree(ROOT / "benchmarks", work / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
        (work / "tests").mkdir()
        for twin in (ROOT / "tests").glob("reference*.py"):  # the plain-numpy twins the benchmark scripts check against
            shutil.copyfile(twin, work / "tests" / twin.name)
        env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                   PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        env.pop("COLUMNS", None)
        yield work, env


def run_command(command, work, env, timeout=600):
    """Run one shown command with bash in ``work``; (exit status, output lines)."""
    proc = subprocess.run(["bash", "-c", command], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    text = proc.stdout.replace(str(work.resolve()) + os.sep, "").replace(str(work) + os.sep, "")  # paths as the reader types them
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    return proc.returncode, [ln.rstrip() for ln in lines]


def run_python(code, work, namespace):
    """Run one python block in ``work`` (the page's namespace); the lines it printed."""
    buf = io.StringIO()
    old = os.getcwd()
    os.chdir(work)
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "<docs>", "exec"), namespace)
    finally:
        os.chdir(old)
    text = buf.getvalue().rstrip("\n")
    return [ln.rstrip() for ln in text.split("\n")] if text else []


def run_page(path, substitute=lambda command: command, bash=None, keep_files=False):
    """Run every block of a page in order; yields (block, results) as each finishes.

    ``results`` is ``[(command, shown, status, output), ...]`` for a console block (the
    command as shown, before ``substitute``), ``(shown, output)`` for a python block, and
    ``[(command, status, output), ...]`` for a bash block when ``bash`` maps its command
    to the one to run (None: bash blocks are not run). With ``keep_files``, what the
    commands wrote under ``docs/`` is copied into the repository's docs/ at the end.
    """
    text = Path(path).read_text()
    namespace = {"__name__": "__docs__"}
    with sandbox() as (work, env):
        for b in with_outputs(text):
            if b["lang"] == "console":
                results = []
                for command, shown in commands(b):
                    status, output = run_command(substitute(command), work, env)
                    results.append((command, shown, status, output))
                yield b, results
            elif b["lang"] == "python":
                shown = b["output"]["lines"] if "output" in b else None
                yield b, (shown, run_python(substitute("\n".join(b["lines"])), work, namespace))
            elif bash is not None:
                results = []
                for command in bash_commands(b):
                    run = bash(command)
                    if run is not None:
                        results.append((command, *run_command(run, work, env)))
                yield b, results
        if keep_files:
            copy_back(work / "docs")


def copy_back(folder):
    """What the page's commands wrote under docs/ (figures, CSV, JSON) goes into the repository's docs/."""
    for f in sorted(Path(folder).iterdir()):
        if f.is_file():
            shutil.copyfile(f, ROOT / "docs" / f.name)


def regenerate(path):
    """Run a page at its shown sizes and write every output back into it."""
    path = Path(path)
    edits = []
    for b, results in run_page(path, keep_files=True):
        if b["lang"] == "console":
            body = []
            for command, _, status, output in results:
                if status != 0 and not (output and output[0].startswith("Error:")):
                    raise SystemExit(f"{path.name}: `{command}` failed with status {status}:\n" + "\n".join(output))
                body += ["$ " + command] + output
            edits.append((b["start"] + 1, b["end"], [b["indent"] + ln if ln else ln for ln in body]))
        elif b["lang"] == "python" and "output" in b:
            out = b["output"]
            edits.append((out["start"] + 1, out["end"], [out["indent"] + ln if ln else ln for ln in results[1]]))
        print(f"{path.relative_to(ROOT)}: block at line {b['start'] + 1} ran", flush=True)
    lines = path.read_text().split("\n")
    for start, end, body in sorted(edits, reverse=True):
        lines[start:end] = body
    path.write_text("\n".join(lines))


# ----------------------------------------------------------------------------- generated tables


def replace_between(path, mark, block):
    """Put ``block`` between the page's ``<!-- mark:start -->`` and ``<!-- mark:end -->``; whether it had them."""
    text = Path(path).read_text()
    start, end = f"<!-- {mark}:start -->", f"<!-- {mark}:end -->"
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    Path(path).write_text(head + start + "\n" + block + end + tail)
    return True


def headline_table(results_dir=ROOT / "benchmarks" / "results"):
    """The README's table: binary addition's contenders and the command's start-up, from the results files."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import describe, read_csv

    def fmt(x):
        return f"{x:.3g}"

    head = read_csv(Path(results_dir) / "headline.csv")
    base = head[0]
    lines = [f"| contender | seconds for {base['iterations']} iterations | x fastrnn |", "|---|---:|---:|"]
    for r in head:
        lines.append(f"| {r['contender']} | {fmt(r['median_s'])} | {fmt(r['x_fastrnn'])} |")
    notes = []
    lib = next((r for r in head if str(r["contender"]).startswith("fastrnn (library call")), None)  # the default kernel's row
    if lib is not None and lib.get("train_s") == lib.get("train_s"):
        notes.append(f"of fastrnn's library call, training itself took {fmt(lib['train_s'])} s")
    startup = Path(results_dir) / "startup.csv"
    if startup.exists():
        cold = [r for r in read_csv(startup) if str(r["start"]).startswith("cold")]
        if cold:
            notes.append(f"the first command on a machine, with numba's cache empty, took {fmt(cold[0]['median_s'])} s (compiling)")
    scaled = [r["contender"] for r in head if r["iterations_timed"] < r["iterations"]]
    if scaled:
        notes.append(f"{len(scaled)} slower contenders ran fewer iterations, and their times are scaled up")
    lines += ["", describe(base) + " Medians of repeated runs" + ("; " + "; ".join(notes) if notes else "") + "."]
    return "\n".join(lines) + "\n"


def recall_table(csv_path=ROOT / "docs" / "recall-sweep.csv"):
    """Final accuracy of every seed, by cell and lag, from the recall study's CSV."""
    import pandas as pd

    df = pd.read_csv(csv_path)
    lags = sorted(df["lag"].unique())
    lines = ["| lag | " + " | ".join(map(str, lags)) + " |", "|---" * (len(lags) + 1) + "|"]
    for (cell, fb), g in df.groupby(["cell", "forget_bias"], sort=False):
        label = cell if cell != "lstm" else f"lstm, forget bias {fb:g}"
        cells = [" / ".join(f"{v:.2g}" for v in g[g["lag"] == lag].sort_values("seed")["final_accuracy"]) for lag in lags]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    order = {"rnn": 0, "gru": 1}
    body = sorted(lines[2:], key=lambda ln: (order.get(ln.split(" | ")[0][2:], 2), ln))
    return "\n".join(lines[:2] + body) + "\n"


def tables():
    done = []
    if replace_between(ROOT / "README.md", "headline", headline_table()):
        done.append("README.md headline")
    if replace_between(ROOT / "docs" / "gradients.md", "recall-table", recall_table()):
        done.append("docs/gradients.md recall-table")
    return done


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    for name in tables():
        print(f"rendered {name}")
    if "--tables" in args:
        return
    chosen = [ROOT / a for a in args if not a.startswith("--")] or pages()
    for path in chosen:
        if any(b["lang"] in ("console", "python") for b in blocks(path.read_text())):
            regenerate(path)


if __name__ == "__main__":
    main()
