"""What a run survives: numba's on-disk cache (stale or damaged).

Subprocesses run the package under test (PYTHONPATH); the cache cases run a copy of it
in tmp_path, so that editing or damaging it touches nothing else.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastrnn

PACKAGE = Path(fastrnn.__file__).parent
ROOT = PACKAGE.parent
H, L = 100, 25


def env(**extra):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(extra)
    return e


# ---------------------------------------------------------------- numba's cache


def _kernel_modules():
    """Modules of the package that define kernels, and every package module they import (parsed)."""
    files = {p.relative_to(PACKAGE).as_posix(): p for p in PACKAGE.rglob("*.py")}
    defines = {name for name, p in files.items() if re.search(r"@njit|njit\(\*\*|@intrinsic", p.read_text())}

    def imports(name):
        tree = ast.parse(files[name].read_text())
        here = Path(name).parent
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = here
                for _ in range(node.level - 1):
                    base = base.parent
                parts = [*base.parts, *(node.module.split(".") if node.module else [])]
                targets = [parts] if node.module else [parts + [a.name] for a in node.names]
                for t in targets:
                    for cand in ("/".join(t) + ".py", "/".join(t + ["__init__"]) + ".py"):
                        if cand in files and cand != "__init__.py":
                            found.add(cand)
        return found

    closure, todo = set(), list(defines)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        todo += imports(name)
    return defines, closure - {"_cache.py"}


def test_the_cache_key_covers_every_kernel_module_and_what_they_import():
    from fastrnn import _cache

    defines, closure = _kernel_modules()
    assert {"_charrnn.py", "_small.py", "_mathfn.py", "cells/rnn.py"} <= defines
    assert set(_cache.KERNEL_SOURCES) == closure


def test_every_kernel_has_the_keyed_cache():
    import importlib

    from numba.core.dispatcher import Dispatcher

    from fastrnn import _cache

    defines, _ = _kernel_modules()
    cls = _cache.keyed_cache_class()
    seen = 0
    for name in defines:
        module = importlib.import_module("fastrnn." + name[:-3].replace("/", ".").removesuffix(".__init__"))
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__.startswith("fastrnn."):
                assert isinstance(obj._cache, cls), f"{module.__name__}.{obj.py_func.__name__}"
                seen += 1
    assert seen > 50


PROBE = """
import sys, numpy as np
from fastrnn.cells import rnn
xu = np.linspace(-1.0, 1.0, 5); hw = np.zeros(5); hs = np.zeros(5)
rnn.forward_step(0, 5, xu, 0, hw, hs, 0)
stats = rnn.forward_step.stats
print(repr(hs.tolist()), sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


@pytest.fixture
def copy(tmp_path):
    """A copy of the package (without its caches) in tmp_path, and a runner of PROBE in it."""
    dest = tmp_path / "pkg" / "fastrnn"
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__"))

    def probe(**extra):
        e = dict(os.environ, PYTHONPATH=str(tmp_path / "pkg"), **extra)
        done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=e, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        values, hits, misses = done.stdout.rsplit(" ", 2)
        return eval(values), int(hits), int(misses), done.stderr

    return dest, probe


def test_an_edited_callee_in_another_module_is_compiled_again_never_served_stale(copy):
    """cells.rnn.forward_step inlines _mathfn.tanh. Edit tanh only: the next process compiles
    forward_step again and computes the new tanh (numba's own check, on rnn.py alone, would
    load the old machine code)."""
    dest, probe = copy
    first, hits, misses = probe()[:3]
    assert np.allclose(first, np.tanh(np.linspace(-1.0, 1.0, 5)), rtol=1e-14) and (hits, misses) == (0, 1)
    assert probe()[1:3] == (1, 0)  # a second process loads it
    source = dest / "_mathfn.py"
    code = source.read_text()
    old = "    t = expm1(-2.0 * abs(x))\n    v = -t / (2.0 + t)\n    return -v if x < 0 else v\n"
    assert old in code
    source.write_text(code.replace(old, "    return 0.25 + 0.0 * x\n"))
    edited, hits, misses = probe()[:3]
    assert edited == [0.25] * 5 and (hits, misses) == (0, 1)


def test_a_new_version_compiles_again(copy):
    dest, probe = copy
    probe()
    init = dest / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.', 1))
    assert probe()[1:3] == (0, 1)
    assert probe()[1:3] == (1, 0)


def _damage(files, how):
    for path in files:
        data = path.read_bytes()
        if how == "truncated":
            path.write_bytes(data[: 20 if path.suffix == ".nbi" else 100])
        else:
            path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8)))


@pytest.mark.parametrize("which, how", [("index", "truncated"), ("data", "truncated"), ("both", "garbage"),
                                        ("index", "empty")])
@pytest.mark.parametrize("plain", ["0", "1"])
def test_a_damaged_cache_file_costs_a_recompile_and_one_line(copy, which, how, plain):
    """The cache files of forward_step truncated (index to 20 bytes, data to 100), or filled
    with garbage, or emptied: the next process prints one line, deletes them, compiles and
    computes the right numbers; the one after loads the fresh cache silently. The same with
    fastrnn's start-up shortcuts off (FASTRNN_PLAIN_NUMBA=1)."""
    dest, probe = copy
    good = probe(FASTRNN_PLAIN_NUMBA=plain)[0]
    cache = dest / "cells" / "__pycache__"
    index = list(cache.glob("rnn.forward_step-*.nbi"))
    data = list(cache.glob("rnn.forward_step-*.nbc"))
    assert len(index) == 1 and len(data) == 1
    targets = {"index": index, "data": data, "both": index + data}[which]
    if how == "empty":
        for path in targets:
            path.write_bytes(b"")
    else:
        _damage(targets, how)
    values, hits, misses, err = probe(FASTRNN_PLAIN_NUMBA=plain)
    assert values == good and misses == 1
    if how == "garbage" and err == "":
        pass  # random bytes that read as another numba version's index: numba itself compiles again
    else:
        assert err.count("\n") == 1 and "damaged numba cache file" in err and str(cache) in err
    values, hits, misses, err = probe(FASTRNN_PLAIN_NUMBA=plain)
    assert values == good and (hits, misses) == (1, 0) and err == ""
