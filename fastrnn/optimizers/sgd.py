"""Plain stochastic gradient descent: theta -= lr g."""

from numba import njit

from ..config import JIT

NAME = "sgd"
CODE = 0
#: Rows of the (2, P) optimizer state the update uses.
STATE = 0
#: The settings the update reads after ``lr``, in its argument order.
SETTINGS = ()


@njit(**JIT)
def update(theta, grad, state, step, lr):
    """theta -= lr g."""
    for i in range(theta.shape[0]):
        theta[i] -= lr * grad[i]


@njit(**JIT)
def update_and_clear(theta, grad, lr):
    """theta -= lr g, then g = 0, in one pass (an online driver's step: the same numbers as
    :func:`update` followed by clearing the gradient buffer)."""
    for i in range(theta.shape[0]):
        theta[i] -= lr * grad[i]
        grad[i] = 0.0


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
