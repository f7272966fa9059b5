"""What an optimizer module declares about each of its settings."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Hyper:
    """One setting of an optimizer (a float of the ``hyper`` array its update reads).

    Attributes
    ----------
    name : str
        The keyword (``fastrnn.Optimizer(..., name=v)``; the training setting when
        ``option``). Two optimizers naming the same setting must agree on everything
        here (the registry checks it at import).
    default : float
    help : str
        One sentence for ``--help`` and the docs.
    minimum : float or None
        Allowed values are at least this.
    below : float or None
        Allowed values are strictly below this.
    positive : bool
        Allowed values are strictly above zero.
    option : bool
        Also a training setting (``fastrnn.train``, ``fit``, ``fastrnn train --name``,
        ``fastrnn sweep --set name=...``); the others are keywords of
        :class:`fastrnn.Optimizer` only.
    """

    name: str
    default: float
    help: str
    minimum: object = None
    below: object = None
    positive: bool = False
    option: bool = False
