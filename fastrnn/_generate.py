"""Compiled dispatch over the codes of a registry, generated from it.

A registry (:mod:`fastrnn.optimizers`, :mod:`fastrnn.activations`) lists modules,
each with a ``CODE``; a kernel that serves any of them needs one branch per code
around its loop (a branch outside the loop costs nothing; inside it, it would keep
the loop from vectorising). :func:`by_code` writes that ``if code == K: ... elif
...`` chain from the registry, one branch per module, each running the same body
written once, and ends it with ``raise``: an unknown code is an error, never
another algorithm's numbers.

:func:`specialise` compiles one function with chosen constants bound as its globals (the
lean kernel and the general driver for a run's optimizer, head and activation).

The source is compiled under the file name of the module that asks for it (a real
file, so that numba's on-disk cache, :mod:`fastrnn._cache`, keys it as it keys that
module's own kernels: by the file and by every kernel source). The generated text
is kept as the dispatcher's ``source`` attribute (``print(fastrnn.optim.apply_update.source)``).
"""

import re
import textwrap
import types

from numba import njit

from .config import JIT


def by_code(name, args, code, cases, namespace, error, doc="", jit=JIT):
    """An ``@njit`` function ``name(code, *args)`` with one branch per case.

    Parameters
    ----------
    name : str
        The function's name (unique in the module that asks: the cache keys on it).
    args : str
        The parameters after the code, as written in a ``def``.
    code : str
        The name of the code parameter (first).
    cases : sequence of (int, str, dict)
        Each registered code, the body of its branch (Python source, any
        indentation) and the names that body reads (bound in the function's globals).
    namespace : dict
        The asking module's ``globals()`` (its ``__name__`` and ``__file__`` name the
        function's module and file); the names the bodies share.
    error : str
        The message of the ``ValueError`` an unknown code raises.
    """
    lines = [f"def {name}({code}, {args}):"]
    if doc:
        lines.append(f"    {doc!r}")
    g = dict(namespace)
    for i, (value, body, names) in enumerate(cases):
        lines.append(f"    {'if' if i == 0 else 'elif'} {code} == {int(value)}:")
        lines += ["        " + line for line in textwrap.dedent(body).strip("\n").splitlines()]
        g.update(names)
    lines.append("    else:" if cases else "    if True:")
    lines.append(f"        raise ValueError({error!r})")
    source = "\n".join(lines) + "\n"
    exec(compile(source, namespace["__file__"], "exec"), g)
    fn = g[name]
    fn.__module__ = namespace["__name__"]
    dispatcher = njit(**jit)(fn)
    dispatcher.source = source
    return dispatcher


def substitute(body, names):
    """``body`` with each whole-word ``KEY`` of ``names`` replaced by its value (a name)."""
    for key, value in names.items():
        body = re.sub(rf"\b{re.escape(key)}\b", value, body)
    return body


def specialise(fn, name, constants, jit=JIT):
    """``fn`` compiled with ``constants`` (name -> value) bound as its globals, under ``name``.

    numba reads a global as a compile-time constant, so the kernel compiles only the
    branches those values take (an optimizer's own update, one head's code). numba's
    on-disk cache keys a function on its name, not on its globals: each set of
    constants needs a name of its own (``train_chunk_lean_adam_softmax``).
    """
    from ._cache import key_dispatchers

    f = types.FunctionType(fn.__code__, dict(fn.__globals__, **constants), name)
    f.__qualname__ = name
    f.__doc__ = fn.__doc__
    kernel = njit(**jit)(f)
    key_dispatchers({name: kernel})
    return kernel
