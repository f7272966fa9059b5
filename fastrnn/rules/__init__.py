"""The online learning rules: one module each, and the registry that names them.

A rule trains a vanilla model (one layer) online: one update a step on streams
whose hidden state is carried (:func:`fastrnn.online.run`). Each module declares

* ``NAME`` (the registry name) and ``SETTINGS`` (setting -> default);
* ``check_settings(values)``: the settings, checked, with defaults filled in;
* ``settings_array(settings)``: the float64 array its driver reads;
* ``STATE``, ``state_shapes(B, H, I, O, settings)`` and ``init_state(...)``: its
  state arrays (float64), their shapes and their values on a fresh stream;
* ``RANDOM``: whether it draws random numbers (UORO, KF-RTRL);
* ``run``: its compiled driver, composed from the shared pieces in
  :mod:`fastrnn._online` and the cell's forward-mode pieces in :mod:`fastrnn.cells.rnn`.

Adding a rule: write ``fastrnn/rules/<name>.py`` with those names and add one line to
:data:`RULES`.
"""

from ..exceptions import InvalidArgument
from . import bptt, kf_rtrl, rflo, rtrl, snap1, uoro

#: name -> the rule's module. One line per rule, in the order the choices are listed.
RULES = {
    "rtrl": rtrl,
    "uoro": uoro,
    "kf-rtrl": kf_rtrl,
    "snap1": snap1,
    "rflo": rflo,
    "bptt": bptt,
}

#: The registered names.
RULE_NAMES = tuple(RULES)


def module(name):
    """The module of the rule called ``name``; InvalidArgument naming the choices otherwise."""
    mod = RULES.get(name) if isinstance(name, str) else None
    if mod is None:
        choices = ", ".join(repr(n) for n in RULES)
        raise InvalidArgument(f"rule must be one of {choices}, got {name!r}")
    return mod
