"""``np.vectorize`` of traced arrays: the Python function runs on each element's traced scalar
(its branches read that element's value, as the loop NumPy runs), and the results are stacked.

NumPy turns the arguments into plain arrays before calling the function, which a trace cannot
follow; while ``f`` runs on traced arguments ``np.vectorize.__call__`` is replaced (see
:func:`jacc.constructors.swap_method_during_traces`), so a vectorized function made before the
trace works too. The function runs once per element, so this suits the small arrays such code
is written for. ``signature=`` (generalized ufuncs) is refused.

>>> import numpy as np, jacc
>>> step = np.vectorize(lambda t: t * t if t > 0 else -t)
>>> jacc.jacobian(step)(np.array([2.0, -1.0]))
array([[ 4.,  0.],
       [ 0., -1.]])
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..constructors import swap_method_during_traces
from ..trace import Tracer, UnsupportedOperationError, call_site
from . import case
from .numerics import stack_as, type_of


def _traced_call(original: Callable) -> Callable:
    def call(self, *args, **kwargs):
        excluded = self.excluded or set()
        if not any(isinstance(a, Tracer) for k, a in enumerate(args) if k not in excluded) and not any(
                isinstance(v, Tracer) for k, v in kwargs.items() if k not in excluded):
            return original(self, *args, **kwargs)
        if self.signature is not None:
            raise UnsupportedOperationError(
                f"numpy.vectorize with signature={self.signature!r} at {call_site()} is not supported for traced "
                "arrays; write the function on whole arrays, or vectorize without a signature")
        spread = [k for k in range(len(args)) if k not in excluded]
        named = [k for k in kwargs if k not in excluded]
        shape = np.broadcast_shapes(*[np.shape(args[k]) for k in spread], *[np.shape(kwargs[k]) for k in named])
        size = int(np.prod(shape))
        flat = {k: np.reshape(np.broadcast_to(args[k], shape), (size,)) for k in spread}
        flat_kw = {k: np.reshape(np.broadcast_to(kwargs[k], shape), (size,)) for k in named}
        results = []
        for i in range(size):
            a = [flat[k][i] if k in flat else args[k] for k in range(len(args))]
            kw = {k: flat_kw[k][i] if k in flat_kw else v for k, v in kwargs.items()}
            results.append(self.pyfunc(*a, **kw))
        if size == 0:
            raise UnsupportedOperationError(
                f"numpy.vectorize of an empty traced array at {call_site()}: NumPy calls the function once on the "
                "first element to learn the output type; there is none")
        several = isinstance(results[0], tuple)
        columns = [[r[j] for r in results] for j in range(len(results[0]))] if several else [results]
        # each output has NumPy's type: otypes', else its first result's (an int 0 makes ints)
        types = self.otypes or "".join(type_of(c[0]).char for c in columns)
        out = tuple(np.reshape(stack_as(c, np.dtype(t)), shape) for c, t in zip(columns, types))
        return out if several else out[0]
    call.__name__, call.__doc__, call.__wrapped__ = "__call__", original.__doc__, original
    return call


swap_method_during_traces(np.vectorize, "__call__", _traced_call)


def _step(t):
    return t * t if t > 0 else -2.0 * t


case("numpy.vectorize", lambda xp: lambda x: np.vectorize(_step)(x) if xp is np else xp.vectorize(
    lambda t: xp.where(t > 0, t * t, -2.0 * t))(x), lambda r: (r.normal(size=(2, 3)),),
     note="the function runs on each element's traced scalar; branches read that element's value")
case("numpy.vectorize", lambda xp: lambda x, y: np.vectorize(lambda a, b, c: a * b + c, excluded={2})(x, y, 1.5)
     if xp is np else xp.vectorize(lambda a, b: a * b + 1.5)(x, y),
     lambda r: (r.normal(size=(3,)), r.normal(size=(2, 1))), argnums=(0, 1), variant="broadcasting, excluded")
