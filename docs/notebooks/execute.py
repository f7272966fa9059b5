"""Run the tutorial notebooks top to bottom and store their outputs in them.

    python docs/notebooks/execute.py                 # every notebook in this folder
    python docs/notebooks/execute.py 01-binary-addition.ipynb

Each notebook runs in a fresh Jupyter kernel started in this folder, as
``pytest --nbmake docs/notebooks`` runs it in CI; the line printed for each gives
its wall time. A notebook whose cell raises is left as it was, and the script
exits non-zero. Needs the ``docs`` extra (``pip install -e '.[docs]'``).
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def run(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return seconds


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
