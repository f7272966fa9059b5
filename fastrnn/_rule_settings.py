"""The ``rule`` setting and the online rules' own settings, as training settings.

``rule`` chooses how a task run learns:

``bptt`` (the default)
    Backpropagation through time as fastrnn has always trained: whole sequences, or,
    for a stream task (add, mimic), windows of ``stream_window`` steps with the hidden
    state carried (BPTT(K, K)). Given ``k1`` and/or ``k2`` it is instead Williams &
    Peng's BPTT(k1, k2) run online on the stream by :func:`fastrnn.online.run`.
an online rule (``rtrl``, ``uoro``, ``kf-rtrl``, ``snap1``, ``rflo``: :data:`fastrnn.rules.RULES`)
    One update a step on the task's streams (:func:`fastrnn.online.run`); ``iters``
    counts steps, ``batch`` is the number of independent streams.

The rules' own settings (their modules' ``SETTINGS``: bptt's ``k1``, ``k2``; uoro's and
kf-rtrl's ``eps``; rflo's ``alpha``, ``feedback``, ``feedback_scale``) become training
settings under their own names, so that ``fastrnn train --rule bptt --k1 1 --k2 10`` and
``fastrnn sweep --set rule=uoro,kf-rtrl`` know them; each applies to the rules that
declare it and is refused with any other.
"""

from .exceptions import InvalidArgument

#: What each known rule setting does, for ``--help`` (a rule's setting missing here gets a plain line).
HELP = {
    "k1": "rule bptt: update every k1 steps with the losses of the last k1 steps (Williams & Peng's BPTT(k1, k2), "
          "online on the stream).",
    "k2": "rule bptt: backpropagate those losses through the last k2 >= k1 stored steps.",
    "eps": "rules uoro, kf-rtrl: the small constant that keeps the scale factors' norms finite.",
    "alpha": "rule rflo: the eligibility trace's rate (1: no leak, fastrnn's cell).",
    "feedback": "rule rflo: the error's way back: random (a fixed random matrix drawn from the seed) or symmetric (V^T).",
    "feedback_scale": "rule rflo: the scale of the random feedback matrix.",
}

#: Bounds of the known rule settings, checked while the CLI parses them (each rule checks its own values too);
#: an integer setting not named here must be at least 1, a number is any finite number.
BOUNDS = {"k1": dict(minimum=1), "k2": dict(minimum=1), "eps": dict(minimum=0.0), "alpha": dict(positive=True),
          "feedback_scale": dict(positive=True)}

#: The rule that trains as fastrnn always has when none of its settings is given.
DEFAULT_RULE = "bptt"


def _registry():
    """The rules registry, or {} where this fastrnn has none."""
    try:
        from .rules import RULES
    except ImportError:
        return {}
    return RULES


def rule_names():
    """The choices of ``rule``: bptt first, then the registry's."""
    return tuple(dict.fromkeys((DEFAULT_RULE,) + tuple(_registry())))


def owners():
    """setting name -> the rules that declare it (in registry order)."""
    out = {}
    for name, mod in _registry().items():
        for key in getattr(mod, "SETTINGS", {}):
            out.setdefault(key, []).append(name)
    return out


def _kind(default):
    if isinstance(default, bool):
        return "flag"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return "choice"


def settings():
    """The Settings of ``rule`` and of every rule's own settings (default None: the rule's own default)."""
    from .settings import Setting

    out = [Setting("rule", "choice", "How to learn: bptt (backpropagation through time on whole sequences, or on "
                   "windows of a stream task's streams; with --k1/--k2 BPTT(k1, k2) online), or an online rule that "
                   "updates every step of a stream task (add, mimic): rtrl, uoro, kf-rtrl, snap1, rflo (the vanilla "
                   "cell, one layer; --iters counts steps, --batch streams).", DEFAULT_RULE, choices=rule_names)]
    registry = _registry()
    for key, rules in owners().items():
        defaults = [registry[r].SETTINGS[key] for r in rules]
        kind = _kind(defaults[0])
        choices = ()
        if kind == "choice":  # a rule that names its choices (rflo's FEEDBACK) lists them
            table = getattr(registry[rules[0]], key.upper(), None)
            choices = tuple(table) if table else (defaults[0],)
        shown = ", ".join(f"{r} {d}" for r, d in zip(rules, defaults))
        help_text = HELP.get(key, f"rule {', '.join(rules)}: its setting {key}.")
        bounds = BOUNDS.get(key, dict(minimum=1) if kind == "int" else {})  # the whole-number ones count steps
        out.append(Setting(key, kind, f"{help_text} The rule's default: {shown}.", None, choices=choices,
                           off="the rule's default", **bounds))
    return tuple(out)


def is_online(s):
    """Whether the resolved settings ``s`` train with :func:`fastrnn.online.run` (not today's BPTT kernels)."""
    rule = s.get("rule", DEFAULT_RULE)
    return rule != DEFAULT_RULE or any(s.get(key) is not None for key in _rule_keys(DEFAULT_RULE))


def rule_settings(s):
    """The rule's own settings held in the resolved settings ``s`` (for :func:`fastrnn.online.run`)."""
    return {key: s[key] for key in _rule_keys(s.get("rule", DEFAULT_RULE)) if s.get(key) is not None}


def _rule_keys(rule):
    mod = _registry().get(rule)
    return tuple(getattr(mod, "SETTINGS", {})) if mod is not None else ()


def resolve(task_obj, s, given):
    """Check ``rule`` and the rule settings in ``given`` against the task and the settings ``s`` resolved so
    far; write ``rule`` (and, for an online run, the rule's settings with its defaults) into ``s``.

    Refused, each in one line naming the setting, the value and what to do: a rule setting the chosen rule
    does not take; an online rule on a task that is not a stream; with an online rule, ``bptt_truncate``,
    a gated cell, stacked layers, float32, or ``stream_window`` (the windows of today's BPTT).
    """
    from .settings import get

    rule = given.get("rule")
    rule = DEFAULT_RULE if rule is None else get("rule").check(rule)
    s["rule"] = rule
    table = owners()
    s.update(dict.fromkeys(table))  # every rule setting is recorded; None where the run's rule does not take it
    mine = _rule_keys(rule)
    values = {}
    for key in table:
        value = given.get(key)
        if value is None:
            continue
        if key not in mine:
            takes = f"takes {', '.join(mine)}" if mine else "takes no settings of its own"
            raise InvalidArgument(f"{key}={value!r} applies to rule {' or '.join(repr(r) for r in table[key])}; rule "
                                  f"{rule!r} {takes}: leave {key} out, or choose rule={table[key][0]!r}")
        values[key] = value
    if rule == DEFAULT_RULE and not values:
        return s  # today's BPTT
    if not getattr(task_obj, "online", False):
        streams = ", ".join(_stream_tasks()) or "a stream task"
        what = f"rule={rule!r}" if rule != DEFAULT_RULE else f"rule={rule!r} with {', '.join(values)}"
        raise InvalidArgument(f"{what} learns online on a stream, but the {task_obj.name} task draws independent "
                              f"sequences: use a stream task ({streams}), fastrnn.fit on your own arrays, or rule='bptt' "
                              f"without k1/k2")
    refused = [("bptt_truncate", s.get("bptt_truncate") is not None,
                "the rule does its own truncation (rule='bptt' with k1 and k2 is truncated BPTT)", "leave bptt_truncate out"),
               ("cell", s.get("cell") != "rnn", "the online rules are written for the vanilla cell", "use cell='rnn'"),
               ("layers", s.get("layers") != 1, "the online rules train one layer", "use layers=1"),
               ("dtype", s.get("dtype") != "float64", "the online rules run in float64", "use dtype='float64'"),
               ("stream_window", given.get("stream_window") not in (None, _default("stream_window")),
                "windows are how rule='bptt' without k1/k2 trains a stream; an online rule steps through it",
                "leave stream_window out (rule='bptt' with k1=k2=K is windows of K steps)")]
    for name, bad, why, fix in refused:
        if bad:
            value = s.get(name) if name != "stream_window" else given.get(name)
            raise InvalidArgument(f"{name}={value!r} cannot be combined with rule={rule!r}: {why}; {fix}")
    from .online import check_rule_settings

    _, checked = check_rule_settings(rule, values)
    s.update(checked)
    return s


def _default(name):
    from .settings import get

    return get(name).default


def _stream_tasks():
    from .tasks import TASKS

    return [name for name, cls in TASKS.items() if getattr(cls, "online", False)]
