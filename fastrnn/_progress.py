"""Progress bars: ``tqdm.auto``'s, a widget in Jupyter and a line of text on a terminal.

In a Jupyter kernel (with ipywidgets installed) ``tqdm.auto`` draws an HTML progress
widget; anywhere else it is tqdm's text bar, here on stderr. A text bar disappears
when it closes (the command prints its own summary line after it); a notebook's bar
stays, showing the run it measured, since a notebook keeps its cells' outputs.
"""

import sys


def in_notebook(cls):
    """Whether a tqdm class is the notebook (widget) bar."""
    return any(c.__module__ == "tqdm.notebook" for c in cls.__mro__)


def bar(total, initial=0, unit="it", desc=None):
    """A started ``tqdm.auto.tqdm`` bar of ``total`` steps, ``initial`` of them already done."""
    from tqdm.auto import tqdm

    if in_notebook(tqdm):
        return tqdm(total=total, initial=initial, unit=unit, desc=desc, leave=True)
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)
