"""The Examples of the public API's docstrings run, and print what they say they print.

Every function and class of the API reference (docs/api.md) has an ``Examples`` section
with doctest lines; this file runs them all (in a fresh folder, since some write files),
so an example that no longer works fails the suite.
"""

import doctest
import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The modules whose docstrings hold examples.
MODULES = ["fastrnn.model", "fastrnn.training", "fastrnn.fitting", "fastrnn.sweeps", "fastrnn.gradcheck", "fastrnn.analysis",
           "fastrnn.optim", "fastrnn.text", "fastrnn.metrics", "fastrnn.tasks", "fastrnn.tasks.binary", "fastrnn.tasks.adding",
           "fastrnn.tasks.copy_memory", "fastrnn.tasks.recall"]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _api_objects():
    """``(module, qualified name)`` of every ``::: module.name`` of docs/api.md that is a function or class."""
    found = []
    for target in re.findall(r"^::: ([\w.]+)$", (ROOT / "docs" / "api.md").read_text(), flags=re.M):
        module, _, name = target.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue  # a whole module (fastrnn.exceptions)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            found.append((target, obj))
    return found


def _tests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in MODULES:
        module = importlib.import_module(name)
        tests += [t for t in finder.find(module, name) if t.examples and t.name.startswith(name)]
    return sorted(tests, key=lambda t: t.name)


TESTS = _tests()


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_the_docstring_example_runs_as_shown(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test.globs.update(np=np)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    output = []
    runner.run(test, out=output.append)
    assert runner.failures == 0, "".join(output)


def test_every_function_and_class_of_the_api_reference_has_an_example():
    objects = _api_objects()
    assert len(objects) >= 15
    missing = [target for target, obj in objects if ">>>" not in (inspect.getdoc(obj) or "")]
    assert not missing, f"no Examples in the docstrings of {missing}"
