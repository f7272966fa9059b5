"""Run the tutorial notebooks top to bottom and store their outputs in them.

    python docs/notebooks/execute.py                 # every notebook in this folder
    python docs/notebooks/execute.py 01-binary-addition.ipynb

Each notebook runs in a fresh Jupyter kernel started in this folder, as
``pytest --nbmake docs/notebooks`` runs it in CI; the line printed for each gives
its wall time. A notebook whose cell raises is left as it was, and the script
exits non-zero. Needs the ``docs`` extra (``pip install -e '.[docs]'``).

A progress bar is stored as a widget (its final state in the notebook's metadata)
with a plain-text copy for pages that do not run the widget's scripts; Jupyter
writes that copy when the bar first shows (0%), so it is replaced here by the text
of the bar's final state.
"""

import html
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent

#: a filled cell of tqdm's text bar
FULL = "\u2588"


def run(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    _final_bar_text(nb)
    nbformat.write(nb, path)
    return seconds


def _final_bar_text(nb):
    """Set each stored tqdm widget's text/plain to the bar's final text (from the widget state)."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            text = view and _bar_text(state, view["model_id"])
            if text:
                output["data"]["text/plain"] = text


def _bar_text(state, model_id):
    """tqdm's line for the widget ``model_id`` (an HBox of a label, a progress bar and the counts), or None."""
    box = state.get(model_id, {})
    children = box.get("state", {}).get("children", [])
    if box.get("model_name") != "HBoxModel" or len(children) != 3:
        return None
    left, bar, right = (state.get(c.removeprefix("IPY_MODEL_"), {}).get("state", {}) for c in children)
    total = bar.get("max") or 0
    filled = min(10, int(10 * bar.get("value", 0) / total)) if total else 0

    def words(part):
        return html.unescape(part.get("value", "")).replace("\u2007", " ")

    return f"{words(left)}|{FULL * filled}{' ' * (10 - filled)}|{words(right)}"


def main(names):
    paths = [HERE / name for name in names] if names else sorted(HERE.glob("*.ipynb"))
    failed = 0
    for path in paths:
        try:
            print(f"{path.name}: {run(path):.1f} s", flush=True)
        except CellExecutionError as exc:
            failed += 1
            print(f"{path.name}: failed, left unchanged\n{exc}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
