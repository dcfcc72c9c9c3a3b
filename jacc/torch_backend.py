"""The ``torch`` backend: a lowered program's NumPy calls mapped onto PyTorch, run eagerly.

:func:`jacc.program.emit` prints a program's statements against a namespace; for ``torch`` every
NumPy function becomes its PyTorch equivalent through the tables below — same name, a renamed one
(``power`` → ``pow``), or a small adapter where the signatures differ (``axis`` → ``dim``,
``transpose`` → ``permute``, the three writes of the structured algebra as out-of-place index
puts). Constants become tensors once, when the program is built; NumPy inputs cross as tensors
without a copy on the CPU, and results come back as NumPy arrays. The program runs on CUDA when
``torch.cuda.is_available()``, else on the CPU, in float64 like the rest of jacc. A call with no
equivalent here raises :class:`~jacc.program.BackendError`, and ``jacobian`` then runs that plan
on the executor; a mapping that gives other values than NumPy at the lowering point is caught by
the same check as the JAX backend's.

PyTorch is optional: ``pip install torch`` (the ``[bench]`` extra pins the CPU build used in the
benchmarks).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

import numpy as np

from .program import ON_HOST, BackendError

_shared_once: list[bool] = [False]  # a read-only array went to PyTorch (see _as_tensor)


def namespace():
    """``torch``, or one clear error naming what to install."""
    try:
        import torch
    except ImportError:
        raise BackendError("backend 'torch' needs PyTorch: pip install torch") from None
    return torch


def _as_tensor(a, **kwargs):
    """``torch.as_tensor(a)``, sharing a NumPy array's memory. Traced values and graph constants
    are read-only arrays, which PyTorch warns about once per process (writing to the tensor would
    be undefined); the programs never write their inputs, so that first time is silenced, by a
    filter local to the call: the user's own warning filters stay as they are, and later calls pay
    nothing (PyTorch does not warn again)."""
    torch = namespace()
    if _shared_once[0] or not isinstance(a, np.ndarray) or a.flags.writeable:
        return torch.as_tensor(a, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        t = torch.as_tensor(a, **kwargs)
    _shared_once[0] = True
    return t


def device() -> str:
    torch = namespace()
    return "cuda" if torch.cuda.is_available() else "cpu"


#: NumPy names whose PyTorch function has another name but the same meaning
_RENAMED = {"equal": "eq", "power": "pow", "rint": "round", "invert": "bitwise_not", "concatenate": "cat",
            "absolute": "abs", "fabs": "abs", "arctan2": "atan2", "moveaxis": "movedim", "conjugate": "conj"}
#: scipy.special names whose ``torch.special`` function has another name
_SPECIAL_RENAMED = {"psi": "digamma", "_zeta": "zeta"}
#: NumPy reductions and scans whose ``axis``/``keepdims`` are PyTorch's ``dim``/``keepdim``
_AXIS_KWARGS = {"axis": "dim", "keepdims": "keepdim"}


def _torch_dtype(dt: Any):
    torch = namespace()
    return {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32,
            np.dtype(np.int64): torch.int64, np.dtype(np.bool_): torch.bool}[np.dtype(dt)]


def _transpose(x, axes=None):
    return x.permute(*(reversed(range(x.ndim)) if axes is None else axes))


def _shape(shape) -> tuple:
    """A NumPy shape argument (an int, list or tuple) as PyTorch's tuple."""
    return tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)


def _expand_dims(x, axis):
    axes = sorted(a % (x.ndim + len(axis)) for a in axis) if isinstance(axis, (tuple, list)) else [axis]
    for a in axes:
        x = x.unsqueeze(a)
    return x


def _take(x, indices, axis=None):
    torch = namespace()
    idx = indices if isinstance(indices, torch.Tensor) else _as_tensor(np.asarray(indices), device=x.device)
    if axis is None:
        return x.reshape(-1)[idx]
    return x[(slice(None),) * (axis % x.ndim) + (idx,)]


def _cumulative(name: str) -> Callable:
    def scan(x, axis=None, dtype=None):
        fn = getattr(namespace(), name)
        return fn(x.reshape(-1), dim=0) if axis is None else fn(x, dim=axis)
    return scan


def _put_rows(v, n, rows, add=False):
    torch = namespace()
    full = torch.zeros((n,) + tuple(v.shape[1:]), dtype=v.dtype, device=v.device)
    return full.index_put((rows,), v, accumulate=bool(add))


def _put_last(v, n, pos):
    full = namespace().zeros(tuple(v.shape) + (n,), dtype=v.dtype, device=v.device)
    full[..., pos] = v  # a fresh array: writing into it changes nothing the caller holds
    return full


def _put_diagonal(src, shape, dtype, p, q):
    torch = namespace()
    src = src if isinstance(src, torch.Tensor) else _as_tensor(np.asarray(src))
    mask_shape = [1] * len(shape)
    mask_shape[p], mask_shape[q] = shape[p], shape[q]
    mask = torch.eye(shape[p], dtype=torch.bool, device=src.device).reshape(mask_shape)
    # a select, not a product with the identity: 0·NaN off the diagonal would be NaN
    picked = torch.where(mask, src.unsqueeze(q), torch.zeros((), dtype=src.dtype, device=src.device))
    return torch.broadcast_to(picked, tuple(shape)).to(_torch_dtype(dtype)).clone()


def _same_floats(args: tuple, torch) -> tuple:
    """``args`` with their floating tensors in the widest of their types, as NumPy promotes a
    float32 array beside a float64 one (PyTorch's products and solvers refuse the mix)."""
    kinds = {a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()}
    if len(kinds) < 2:
        return args
    wide = max(kinds, key=lambda d: torch.finfo(d).bits)
    return tuple(a.to(wide) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def _float_dtype(args, torch):
    """The dtype NumPy 2 gives Python floats beside these arguments (NEP 50: a Python number takes
    the array's type): the first floating tensor's, else float64."""
    return next((a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), torch.float64)


def _true_divide(a, b):
    """NumPy's ``a / b``: integers and booleans divide as float64 (PyTorch's default float type,
    float32, would round a count's reciprocal: the ½ of a tie came back as 0.50000000…)."""
    torch = namespace()
    if not any(type(x) is float or (isinstance(x, torch.Tensor) and x.is_floating_point()) for x in (a, b)):
        a = a.to(torch.float64) if isinstance(a, torch.Tensor) else float(a)
    return _divide()(a, b)


@functools.cache
def _divide() -> Callable:
    """``torch.true_divide`` taking NumPy's arguments, made once (a program divides at every call)."""
    return _with_numpy_arguments(namespace().true_divide)


def _zeta(s, q):
    """``torch.special.zeta``, past :data:`jacc.program.ZETA_FAR` its asymptotic series (PyTorch's
    gives NaN at q = inf and 0 past q ≈ 1e160, where ψ′(q) = ζ(2, q) is 1/q)."""
    from .program import ZETA_FAR, zeta_far

    torch = namespace()
    q = torch.as_tensor(q)
    s = torch.as_tensor(s, dtype=q.dtype, device=q.device)
    return torch.where(q > ZETA_FAR, zeta_far(s, q), torch.special.zeta(s, q))


#: NumPy functions (by name) and jacc's own helpers that need more than a new name
_ADAPTED: dict[str, Callable] = {
    "zeta": _zeta, "_zeta": _zeta,  # (scipy.special.zeta(s, q) calls the ufunc _zeta)
    "transpose": _transpose, "expand_dims": _expand_dims, "take": _take,
    "ascontiguousarray": lambda x: x.contiguous(),
    "reshape": lambda x, shape: x.reshape(_shape(shape)),
    "broadcast_to": lambda x, shape: namespace().broadcast_to(x, _shape(shape)),
    "cumsum": _cumulative("cumsum"), "cumprod": _cumulative("cumprod"),
    "put_rows": _put_rows, "put_last": _put_last, "put_diagonal": _put_diagonal,
    "divide": _true_divide, "true_divide": _true_divide,
    # torch.sign(nan) is 0, NumPy's NaN: abs' derivative at NaN came back 0 on this backend only
    "sign": lambda x: namespace().where(namespace().isnan(x), x, namespace().sign(x)),
    "array": lambda x: x.clone(),  # (a gather's copy of its view: jacc.ops' getitem)
    # torch.max/min reduce one dim and return (values, indices): amax/amin take NumPy's axes
    "max": lambda x, axis=None, keepdims=False: _extreme("amax", x, axis, keepdims),
    "min": lambda x, axis=None, keepdims=False: _extreme("amin", x, axis, keepdims),
}


def _extreme(name: str, x, axis, keepdims: bool):
    dims = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    return getattr(namespace(), name)(x, dim=dims, keepdim=keepdims)


def einsum(subscripts: str, *operands):
    """``torch.einsum`` that also takes the program's numeric constants (NumPy scalars become
    Python numbers when the program is built), in the tensors' floating type."""
    torch = namespace()
    dt = _float_dtype(operands, torch)
    return torch.einsum(subscripts, *_same_floats(tuple(o if isinstance(o, torch.Tensor) else _as_tensor(o, dtype=dt)
                                                        for o in operands), torch))


#: Tensor methods for the NumPy methods a program calls
METHODS: dict[str, Callable] = {
    "reshape": lambda x, *shape: x.reshape(*(tuple(s) if isinstance(s, list) else s for s in shape)),
    "copy": lambda x: x.clone(),
    "transpose": lambda x, *axes: _transpose(x, axes[0] if len(axes) == 1 else (axes or None)),
    "astype": lambda x, dt, **_: x.to(_torch_dtype(dt)),
}


def _with_numpy_arguments(fn: Callable) -> Callable:
    """``fn`` taking NumPy's ``axis=``/``keepdims=`` keywords and Python floats where PyTorch
    wants tensors (``hypot(x, 1.0)``, ``copysign(1.0, x)``: NumPy's ufuncs take either)."""
    torch = namespace()
    Tensor = torch.Tensor

    def call(*args, **kwargs):
        if any(type(a) is float for a in args):
            dev = next((a.device for a in args if isinstance(a, Tensor)), None)
            dt = _float_dtype(args, torch)
            args = tuple(torch.tensor(a, dtype=dt, device=dev) if type(a) is float else a for a in args)
        return fn(*_same_floats(args, torch), **{_AXIS_KWARGS.get(k, k): v for k, v in kwargs.items()})
    return call


def getitem(x, index):
    """``x[index]``; a slice with a negative step (PyTorch has none) becomes the same positions
    picked with ``index_select``, where only slices stand between it and its end of the index
    (so its axis number is known)."""
    torch = namespace()
    entries = index if isinstance(index, tuple) else (index,)
    picks = []
    for k, e in enumerate(entries):
        if isinstance(e, slice) and e.step is not None and e.step < 0:
            if all(isinstance(b, slice) for b in entries[:k]):
                axis = k
            elif all(isinstance(b, slice) for b in entries[k + 1:]):
                axis = x.ndim - (len(entries) - k)
            else:
                raise BackendError("backend 'torch' has no negative-step slice between integer or array indices")
            picks.append((axis, torch.as_tensor(np.arange(x.shape[axis])[e].copy(), device=x.device)))
            entries = entries[:k] + (slice(None),) + entries[k + 1:]
    for k, positions in picks:
        x = x.index_select(k, positions)
    return x[entries if isinstance(index, tuple) else entries[0]]


def _on_host(fn: Callable) -> Callable:
    torch = namespace()

    def call(a, **kwargs):
        out = fn(a.detach().cpu().numpy(), **kwargs)
        if isinstance(out, tuple):
            return tuple(torch.as_tensor(o, device=a.device) for o in out)
        return torch.as_tensor(out, device=a.device)
    return call


def _in_arguments_dtype(fn: Callable) -> Callable:
    """``fn`` run with PyTorch's default dtype set to its first floating tensor argument's: a
    helper's Python numbers (``torch.where(c, 1.0, 0.0)``, ``1.0 − ranks``) then make float64
    tensors as NumPy's do, not float32 ones that a later product refuses to mix (or rounds)."""
    torch = namespace()

    def call(*args, **kwargs):
        want = _float_dtype(args, torch)
        before = torch.get_default_dtype()
        if want == before or want not in (torch.float32, torch.float64):
            return fn(*args, **kwargs)
        torch.set_default_dtype(want)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_default_dtype(before)
    return call


def function(fn: Callable) -> Callable:
    """The PyTorch callable for a NumPy (or SciPy, or jacc helper) function in a program."""
    torch = namespace()
    portable = getattr(fn, "portable", None)  # a helper written for any array namespace
    if portable is not None:
        return _in_arguments_dtype(functools.partial(portable, xp=torch))
    name = getattr(fn, "__name__", None) or ""
    mod = getattr(fn, "__module__", "") or ""
    if fn in ON_HOST:  # NumPy's own factors, as the trace's (see jacc.program.ON_HOST)
        return _on_host(fn)
    found = _ADAPTED.get(name)
    if found is None and "linalg" in mod:
        found = getattr(torch.linalg, name, None)
        if found is not None:
            found = _with_numpy_arguments(found)
    elif found is None and "scipy" in mod:
        found = getattr(torch.special, _SPECIAL_RENAMED.get(name, name), None)
    elif found is None:
        found = getattr(torch, _RENAMED.get(name, name), None)
        if found is None:
            found = getattr(torch.special, _SPECIAL_RENAMED.get(name, name), None)
        if found is not None:
            found = _with_numpy_arguments(found)
    if found is None:
        raise BackendError(f"backend 'torch' has no equivalent of {mod}.{name}")
    return found


def method(name: str) -> Callable:
    """The PyTorch form of the array method ``name``, called as ``method(name)(x, *args)``."""
    if name not in METHODS:
        raise BackendError(f"backend 'torch' has no equivalent of the array method .{name}()")
    return METHODS[name]


def copy(x):
    """A fresh tensor: the caller owns every block a program returns."""
    return x.clone()


def _tensor(a: np.ndarray, dev: str):
    """``a`` as a tensor on ``dev``, without a copy where PyTorch allows (none has negative strides)."""
    return _as_tensor(a if a.flags.c_contiguous else np.ascontiguousarray(a), device=dev)


def constants(env: dict) -> dict:
    """The program's namespace with its NumPy constants as tensors on :func:`device`."""
    dev = device()
    return {k: _tensor(v, dev) if isinstance(v, np.ndarray) else v.item() if isinstance(v, np.generic) else v
            for k, v in env.items()}


def wrap(program: Callable) -> Callable:
    """``program`` taking and returning NumPy values, run on tensors on :func:`device`."""
    torch = namespace()
    Tensor, asarray, dev = torch.Tensor, np.asarray, device()
    singular = getattr(getattr(torch, "linalg", None), "LinAlgError", ())  # (torch ≥ 2.0)

    def fn(V):
        try:
            out = program([_tensor(asarray(v), dev) for v in V])
        except singular as e:  # as NumPy's (a singular matrix): what the other routes raise
            raise np.linalg.LinAlgError(str(e).splitlines()[0]) from e
        return tuple(b.detach().cpu().numpy() if isinstance(b, Tensor) else asarray(b) for b in out)
    return fn
