"""The optimizer registry: one module per optimizer, one line each in :data:`MODULES`.

An optimizer's module (``fastrnn/optimizers/<name>.py``) declares

* ``NAME`` (what users write) and ``CODE`` (the integer the kernels branch on);
* ``STATE``: the rows of the (2, P) state array its update keeps (velocity, moments);
* ``SETTINGS``: its hyperparameters (:class:`~fastrnn.optimizers._base.Hyper`: name,
  default, bounds, help; ``option=True`` also makes it a training setting);
* ``update(theta, grad, state, step, lr, <its SETTINGS in order>)``: the compiled
  step over the flat parameter vector, in place.

Everything else is derived here: the name -> code table, the layout and defaults of the
``hyper`` array every kernel passes along (:data:`HYPER`), the training settings
(:data:`OPTIONS`) and, in :mod:`fastrnn.optim`, the compiled dispatch over the codes,
which raises on an unknown code. docs/extending.md walks through adding one.
"""

from . import adagrad, adam, adamw, momentum, rmsprop, sgd

#: The registered optimizers, in the order their names are listed to users.
MODULES = (
    sgd,
    momentum,
    adam,
    adagrad,
    rmsprop,
    adamw,
)


def _registry(modules):
    codes, names, hyper = {}, {}, {}
    for m in modules:
        if m.CODE in codes:
            raise ImportError(f"optimizers {codes[m.CODE].NAME!r} and {m.NAME!r} share the code {m.CODE}")
        if m.NAME in names:
            raise ImportError(f"two optimizers are called {m.NAME!r}")
        if not 0 <= m.STATE <= 2:
            raise ImportError(f"optimizer {m.NAME!r} declares STATE = {m.STATE}; the state array has 2 rows")
        codes[m.CODE] = m
        names[m.NAME] = m
        for h in m.SETTINGS:
            if h.name in hyper and hyper[h.name] != h:
                raise ImportError(f"optimizers declare the setting {h.name!r} differently: {hyper[h.name]} and {h} "
                                  f"({m.NAME}); one name, one meaning")
            hyper.setdefault(h.name, h)
    return names, hyper


_BY_NAME, HYPER = _registry(MODULES)
#: name -> code.
OPTIMIZERS = {name: m.CODE for name, m in _BY_NAME.items()}
#: Every hyperparameter, in the order of the ``hyper`` array, with its declaration.
HYPER_NAMES = tuple(HYPER)
#: name -> position in the ``hyper`` array.
HYPER_INDEX = {name: i for i, name in enumerate(HYPER_NAMES)}
#: name -> default.
HYPER_DEFAULTS = {name: h.default for name, h in HYPER.items()}
#: The hyperparameters that are also training settings (``momentum``, ``weight_decay``, ...).
OPTIONS = tuple(h for h in HYPER.values() if h.option)


def module(name):
    """The module of the optimizer called ``name``."""
    return _BY_NAME[name]


def users(setting):
    """The names of the optimizers that read the hyperparameter ``setting``."""
    return tuple(m.NAME for m in MODULES if any(h.name == setting for h in m.SETTINGS))
