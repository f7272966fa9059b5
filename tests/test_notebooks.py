"""The tutorial notebooks (docs/notebooks) are stored with their outputs, as the docs render them.

Running them is CI's notebook step (``pytest --nbmake docs/notebooks``); these checks only
read the files, so that a notebook saved without its outputs, with an error in them, or
with a path of the machine that ran it is caught by the suite.
"""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "docs" / "notebooks").glob("*.ipynb"))


def test_the_six_tutorials_are_there():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01-", "02-", "03-", "04-", "05-", "06-"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_stored_run_top_to_bottom_with_no_error(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a tutorial has code"
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "run once, in order, from a fresh kernel"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "a tutorial shows its plots inline"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_holds_no_path_of_the_machine_that_ran_it(path):
    text = path.read_text(encoding="utf-8")
    for fragment in ("/work/", "/tmp/", "/home/", "site-packages"):
        assert fragment not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_stored_progress_bar_is_a_widget_whose_text_copy_shows_the_finished_run(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    views = [o["data"] for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for data in views:
        assert data["application/vnd.jupyter.widget-view+json"]["model_id"] in state  # the widget renders from the file
        text = "".join(data["text/plain"])
        assert "100%|" in text and "0%|" not in text.replace("100%|", "")
