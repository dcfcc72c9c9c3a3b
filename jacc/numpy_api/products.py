"""Products: dot, matmul, einsum and the products built on them.

Every product is recorded as ``matmul`` or as ``einsum`` with one or two operands, so its partials
are ``I ⊗ dense`` factors holding the other operand, never Kronecker arrays built by hand.
``np.einsum`` is normalised before recording: ``...`` and implicit outputs are spelled out, a
label repeated within one operand (a diagonal, ``"ii->i"``) becomes a free transpose, reshape
and strided slice, size-1 axes that broadcast are reshaped away, and three or more operands are
contracted pairwise (NumPy's greedy path, or the path given by ``optimize=``).
"""

from __future__ import annotations

import math
import string
from collections import Counter

import numpy as np

from ..trace import (
    TraceError,
    Tracer,
    _check_dtype,
    _int,
    _refuse,
    _tape_of,
    _unsupported,
    call_site,
    implements,
    implements_ufunc,
    implements_ufunc_method,
)
from . import FREE, case

_LETTERS = string.ascii_letters


def _traced(x) -> bool:
    return isinstance(x, Tracer)


def _shape(x) -> tuple:
    return tuple(x.shape) if _traced(x) else np.shape(x)


def _fail(what: str, msg: str) -> TraceError:
    return TraceError(f"{what} at {call_site()}: {msg}")


# -- einsum normalisation -------------------------------------------------------------------------


def _parse(spec: str, shapes: list, what: str) -> tuple[list[list[str]], list[str]]:
    """Labels per operand and output labels, with ``...`` and an implicit output spelled out."""
    spec = spec.replace(" ", "")
    if any(c not in _LETTERS + ".,->" for c in spec):
        raise _fail(what, f"subscripts {spec!r} may hold only letters, ',', '...' and '->'")
    ins, arrow, out = spec.partition("->")
    subs = ins.split(",")
    if len(subs) != len(shapes):
        raise _fail(what, f"subscripts {spec!r} name {len(subs)} operand(s) but {len(shapes)} were given")
    free = [c for c in _LETTERS if c not in spec]
    parts, nell = [], 0
    for t, (s, shp) in enumerate(zip(subs, shapes)):
        head, dots, tail = s.partition("...")
        n = len(shp) - len(head) - len(tail)
        if "." in head + tail or (not dots and n != 0) or n < 0:
            raise _fail(what, f"operand {t} has {len(shp)} axes but subscripts {s!r}")
        parts.append((head, n, tail))
        nell = max(nell, n)
    ell = free[:nell]
    labels = [list(h) + ell[nell - n:] + list(t) for h, n, t in parts]
    if arrow:
        head, dots, tail = out.partition("...")
        if not dots and nell:
            raise _fail(what, f"the output {out!r} needs '...' for the broadcast axes of the operands")
        outl = list(head) + (ell if dots else []) + list(tail)
    else:
        counts = Counter(c for ls in labels for c in ls if c not in ell)
        outl = ell + sorted(c for c, k in counts.items() if k == 1)
    known = {c for ls in labels for c in ls}
    if len(set(outl)) != len(outl) or not set(outl) <= known:
        raise _fail(what, f"output subscripts {out!r} repeat a label or name one that no operand has")
    return labels, outl


def _diagonals(x, labels: list[str], what: str):
    """``x`` with each label that repeats within it reduced to the diagonal, by free index maps:
    the repeated axes moved together, merged by a reshape and read with a strided slice."""
    while True:
        rep = next((c for c in labels if labels.count(c) > 1), None)
        if rep is None:
            return x, labels
        pos = [k for k, c in enumerate(labels) if c == rep]
        rest = [k for k in range(len(labels)) if k not in pos]
        shape = _shape(x)
        n = shape[pos[0]]
        if any(shape[k] != n for k in pos):
            raise _fail(what, f"label {rep!r} repeats on axes of sizes {[shape[k] for k in pos]}")
        if pos + rest != list(range(len(labels))):
            x = np.transpose(x, pos + rest)
        x = np.reshape(x, (n ** len(pos),) + tuple(shape[k] for k in rest))
        x = x[::sum(n ** i for i in range(len(pos)))]  # the flat positions i·(1 + n + n² …)
        labels = [rep] + [labels[k] for k in rest]


def _unbroadcast(ops: list, labels: list[list[str]], what: str) -> None:
    """Size-1 axes that broadcast against another size (0 too) are reshaped away (in place)."""
    size: dict = {}
    for x, ls in zip(ops, labels):
        for c, n in zip(ls, _shape(x)):
            if n != 1:
                if size.setdefault(c, n) != n:
                    raise _fail(what, f"label {c!r} has sizes {size[c]} and {n}")
    for t, (x, ls) in enumerate(zip(ops, labels)):
        shape = _shape(x)
        drop = [k for k, c in enumerate(ls) if shape[k] == 1 and size.get(c, 1) != 1]
        if drop:
            ops[t] = np.reshape(x, tuple(n for k, n in enumerate(shape) if k not in drop))
            labels[t] = [c for k, c in enumerate(ls) if k not in drop]


def _spec(ins: list[list[str]], out: list[str]) -> str:
    return ",".join("".join(s) for s in ins) + "->" + "".join(out)


def _record(ops: list, labels: list[list[str]], out: list[str]):
    """One einsum of one or two operands (constants fold; an identity map records nothing)."""
    if len(ops) == 1 and labels[0] == out:
        return ops[0]
    spec = _spec(labels, out)
    if not any(_traced(x) for x in ops):
        return np.einsum(spec, *ops)
    return _tape_of(*ops).record("einsum", list(ops), {"spec": spec})


def _path(labels: list[list[str]], out: list[str], shapes: list, optimize) -> list[tuple]:
    """The pairwise contraction order: ``optimize``'s explicit path, else NumPy's greedy one."""
    how = optimize if isinstance(optimize, (list, tuple)) or optimize == "optimal" else "greedy"
    dummies = [np.broadcast_to(np.empty(()), s) for s in shapes]  # shapes only, no memory
    path, _ = np.einsum_path(_spec(labels, out), *dummies, optimize=how)
    return [tuple(p) for p in path[1:]]


def _path_cost(labels: list[list[str]], out: list[str], sizes: dict, path: list[tuple], consts) -> int:
    """Multiplications per call of contracting ``labels`` (operands' labels) along ``path`` (NumPy's
    ``einsum_path`` steps: the operands taken out, their result appended): a step of constants
    (the operands at ``consts``, and their results) is done once, at the trace."""
    labels, cost = [(list(ls), t in consts) for t, ls in enumerate(labels)], 0
    for step in path:
        taken = [labels.pop(t) for t in sorted(step, reverse=True)]
        union = set().union(*[ls for ls, _ in taken])
        constant = all(c for _, c in taken)
        cost += 0 if constant else math.prod(sizes[c] for c in union)
        wanted = set(out).union(*[ls for ls, _ in labels])
        labels.append(([c for c in union if c in wanted], constant))
    return cost


def einsum(spec: str, *operands, optimize=False, what: str = "numpy.einsum"):
    """``np.einsum(spec, *operands)`` recorded as einsums of at most two operands."""
    ops = list(operands)
    labels, out = _parse(spec, [_shape(x) for x in ops], what)
    for t in range(len(ops)):
        ops[t], labels[t] = _diagonals(ops[t], labels[t], what)
    _unbroadcast(ops, labels, what)
    consts = [t for t, x in enumerate(ops) if not _traced(x)]
    if len(consts) > 1 and len(ops) > 2 and not isinstance(optimize, (list, tuple)):
        # fold the constants into one first (they need no partials), unless that makes the traced
        # contractions dearer: u·A·Aᵀ·A·u folded u⊗u and then took A·Aᵀ, n³ where the vectors' path is n²
        rest = [ls for t, ls in enumerate(labels) if t not in consts]
        wanted = set(out).union(*rest)
        keep = list(dict.fromkeys(c for t in consts for c in labels[t] if c in wanted))
        sizes = {c: n for ls, x in zip(labels, ops) for c, n in zip(ls, _shape(x))}
        whole = _path_cost(labels, out, sizes, _path(labels, out, [_shape(x) for x in ops], optimize), set(consts))
        alone, after = [labels[t] for t in consts], rest + [keep]
        fold = _path_cost(after, out, sizes, _path(after, out, [[sizes[c] for c in ls] for ls in after], optimize),
                          {len(after) - 1})
        if fold <= whole:
            folded = np.einsum(_spec(alone, keep), *[ops[t] for t in consts])
            ops = [x for t, x in enumerate(ops) if t not in consts] + [folded]
            labels = after
    if len(ops) > 2:
        for step in _path(labels, out, [_shape(x) for x in ops], optimize):
            # a step of k > 2 operands (an outer product: "i,j,k->ijk") goes pairwise, left to right
            group = sorted(step)
            ops = [x for t, x in enumerate(ops) if t not in group] + [ops[t] for t in group]
            labels = [ls for t, ls in enumerate(labels) if t not in group] + [labels[t] for t in group]
            for _ in range(len(group) - 1):
                i = len(ops) - len(group)
                rest = labels[:i] + labels[i + 2:]
                wanted = set(out).union(*rest)
                keep = [c for c in dict.fromkeys(labels[i] + labels[i + 1]) if c in wanted]
                r = _record([ops[i], ops[i + 1]], [labels[i], labels[i + 1]], out if not rest else keep)
                ops, labels = ops[:i] + [r] + ops[i + 2:], labels[:i] + [out if not rest else keep] + labels[i + 2:]
                group = group[1:]
    return _record(ops, labels, out)


def _sublists(operands: tuple) -> tuple[str, list]:
    """NumPy's sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as a subscripts string."""
    def text(sub) -> str:
        try:
            return "".join("..." if s is Ellipsis else _LETTERS[_int(s, "an einsum sublist label")] for s in sub)
        except IndexError:
            raise _fail("numpy.einsum", f"sublist labels must be 0 … {len(_LETTERS) - 1}") from None

    ops, subs = list(operands[0::2]), [text(s) for s in operands[1::2]]
    out = "->" + text(ops.pop()) if len(ops) > len(subs) else ""
    return ",".join(subs) + out, ops


@implements(np.einsum)
def _einsum(*operands, out=None, optimize=False, dtype=None, order="K", casting="safe"):
    # optimize= only orders the pairwise contractions; the plan orders the Jacobian's products
    _refuse("numpy.einsum", out=out, order=None if order == "K" else order,
            casting=None if casting == "safe" else casting)
    if not operands:
        raise _fail("numpy.einsum", "no operands")
    _check_dtype("numpy.einsum", operands, dtype)
    spec, ops = (operands[0], list(operands[1:])) if isinstance(operands[0], str) else _sublists(operands)
    return einsum(spec, *ops, optimize=optimize)


# -- products built on einsum ---------------------------------------------------------------------


def _labels(n: int, start: int = 0) -> str:
    return _LETTERS[start:start + n]


def _flat(x):
    return x if len(_shape(x)) == 1 else np.ravel(x)


def _to_last(x, axis: int):
    n = len(_shape(x))
    return x if n and axis % n == n - 1 else np.moveaxis(x, axis, -1)


@implements(np.outer, *([np.linalg.outer] if hasattr(np.linalg, "outer") else []))
def _outer(a, b, out=None):
    _refuse("numpy.outer", out=out)
    return einsum("i,j->ij", _flat(a), _flat(b), what="numpy.outer")


@implements(np.inner)
def _inner(a, b):
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return np.multiply(a, b)
    la, lb = _labels(na - 1), _labels(nb - 1, na - 1)
    return einsum(f"{la}z,{lb}z->{la}{lb}", a, b, what="numpy.inner")


@implements(np.vdot)
def _vdot(a, b):
    return einsum("i,i->", _flat(a), _flat(b), what="numpy.vdot")


def _vecdot(a, b, what="numpy.vecdot"):
    return einsum("...i,...i->...", a, b, what=what)


if hasattr(np, "vecdot"):  # NumPy ≥ 2: vecdot, matvec and vecmat are ufuncs
    implements_ufunc("vecdot")(lambda tape, a, b: _vecdot(a, b))

    @implements_ufunc_method("vecdot", "__call__")  # (with keywords: the gufunc's axis= and keepdims=)
    def _vecdot_on_axis(a, b, *, axis=-1, keepdims=False, dtype=None):
        _check_dtype("numpy.vecdot", [a, b], dtype)
        r = _vecdot(np.moveaxis(a, _int(axis, "axis"), -1), np.moveaxis(b, _int(axis, "axis"), -1))
        return np.expand_dims(r, axis) if keepdims else r
if hasattr(np, "matvec"):
    implements_ufunc("matvec")(lambda tape, a, b: einsum("...ij,...j->...i", a, b, what="numpy.matvec"))
    implements_ufunc("vecmat")(lambda tape, a, b: einsum("...i,...ij->...j", a, b, what="numpy.vecmat"))
if hasattr(np.linalg, "vecdot"):
    implements(np.linalg.vecdot)(lambda x1, x2, /, *, axis=-1: _vecdot(np.moveaxis(x1, axis, -1),
                                                                        np.moveaxis(x2, axis, -1),
                                                                        "numpy.linalg.vecdot"))


def _axes_list(v, what: str) -> list[int]:
    return [_int(k, what) for k in (v if isinstance(v, (list, tuple)) else [v])]


@implements(np.tensordot, *([np.linalg.tensordot] if hasattr(np.linalg, "tensordot") else []))
def _tensordot(a, b, axes=2):
    na, nb = len(_shape(a)), len(_shape(b))
    if isinstance(axes, (list, tuple)) and len(axes) == 2:
        xa, xb = _axes_list(axes[0], "tensordot axes"), _axes_list(axes[1], "tensordot axes")
    else:
        n = _int(axes, "tensordot axes")
        xa, xb = list(range(na - n, na)), list(range(n))
    if len(xa) != len(xb):
        raise _fail("numpy.tensordot", f"axes {axes!r} pair {len(xa)} axes of a with {len(xb)} of b")
    la, lb = list(_labels(na)), list(_labels(nb, na))
    for i, j in zip(xa, xb):
        if not (-na <= i < na and -nb <= j < nb):
            raise _fail("numpy.tensordot", f"axes {axes!r} are out of range for shapes {_shape(a)} and {_shape(b)}")
        lb[j % nb] = la[i % na]
    out = [c for k, c in enumerate(la) if k not in {i % na for i in xa}]
    out += [c for k, c in enumerate(lb) if k not in {j % nb for j in xb}]
    return einsum(_spec([la, lb], out), a, b, what="numpy.tensordot")


@implements(np.kron)
def _kron(a, b):
    nd = max(len(_shape(a)), len(_shape(b)))
    if nd == 0:
        return np.multiply(a, b)
    a, b = (x if len(_shape(x)) == nd else np.reshape(x, (1,) * (nd - len(_shape(x))) + _shape(x)) for x in (a, b))
    la, lb = _labels(nd), _labels(nd, nd)
    r = einsum(f"{la},{lb}->{''.join(x + y for x, y in zip(la, lb))}", a, b, what="numpy.kron")
    return np.reshape(r, tuple(p * q for p, q in zip(_shape(a), _shape(b))))


_LEVI_CIVITA = np.zeros((3, 3, 3))
for _i, _j, _k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
    _LEVI_CIVITA[_i, _j, _k], _LEVI_CIVITA[_j, _i, _k] = 1.0, -1.0


def _cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """a × b of 3-vectors: ε_ijk a_i b_j, a contracted with the constant ε first."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _to_last(a, _int(axisa, "axisa")), _to_last(b, _int(axisb, "axisb"))
    for name, x in (("a", a), ("b", b)):
        if _shape(x)[-1] != 3:
            raise _unsupported(f"numpy.cross of {name} with {_shape(x)[-1]}-vectors (only 3-vectors)")
    c = einsum("...i,...j,ijk->...k", a, b, _LEVI_CIVITA, optimize=["einsum_path", (0, 2), (0, 1)],
               what="numpy.cross")
    n, k = len(_shape(c)), _int(axisc, "axisc")
    return np.moveaxis(c, -1, k) if n > 1 and k % n != n - 1 else c


implements(np.cross)(_cross)
if hasattr(np.linalg, "cross"):
    implements(np.linalg.cross)(lambda x1, x2, /, *, axis=-1: _cross(x1, x2, axis=axis))


@implements(np.linalg.multi_dot)
def _multi_dot(arrays, *, out=None):
    _refuse("numpy.linalg.multi_dot", out=out)
    arrays = list(arrays)
    if len(arrays) < 2:
        raise _fail("numpy.linalg.multi_dot", "needs at least two arrays")
    n = len(arrays)
    for k, a in enumerate(arrays):  # NumPy's rule: 2-d, or 1-d at either end
        d = len(_shape(a))
        if d != 2 and not (d == 1 and k in (0, n - 1)):
            raise np.linalg.LinAlgError(f"{d}-dimensional array given. Array must be two-dimensional "
                                        f"(numpy.linalg.multi_dot operand {k}, at {call_site()})")
    labels = [[_LETTERS[t], _LETTERS[t + 1]] for t in range(n)]
    if len(_shape(arrays[0])) == 1:
        labels[0] = labels[0][1:]
    if len(_shape(arrays[-1])) == 1:
        labels[-1] = labels[-1][:1]
    out = labels[0][:-1] + labels[-1][1:]
    return einsum(_spec(labels, out), *arrays, optimize="optimal" if n <= 6 else "greedy",
                  what="numpy.linalg.multi_dot")


@implements(np.linalg.matrix_power)
def _matrix_power(a, n):
    """aⁿ by repeated squaring (matmuls); a⁰ is the constant identity; n < 0 inverts first."""
    n = _int(n, "numpy.linalg.matrix_power exponent n")
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise _fail("numpy.linalg.matrix_power", f"needs square matrices, got shape {shape}")
    if n == 0:
        return np.broadcast_to(np.eye(shape[-1]), shape).copy()
    if n < 0:
        a, n = np.linalg.inv(a), -n
    result = None
    while n:
        if n & 1:
            result = a if result is None else np.matmul(result, a)
        n >>= 1
        if n:
            a = np.matmul(a, a)
    return result


if hasattr(np.linalg, "matmul"):
    implements(np.linalg.matmul)(lambda x1, x2, /: np.matmul(x1, x2))


@implements(np.dot, method="dot")
def _dot(a, b, out=None):
    _refuse("numpy.dot", out=out)
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return np.multiply(a, b)
    if na <= 2 and nb <= 2:
        return _tape_of(a, b).record("matmul", [a, b])
    la = _labels(na - 1)
    lb = _labels(nb, na - 1)
    lb_in = lb[:-2] + "z" + lb[-1] if nb >= 2 else "z"
    return einsum(f"{la}z,{lb_in}->{la}{lb_in.replace('z', '')}", a, b, what="numpy.dot")


# -- examples -------------------------------------------------------------------------------------


def _x(r, shape):
    return r.normal(size=shape)


def _ab(sa, sb):
    return lambda r: (_x(r, sa), _x(r, sb))


AB = (0, 1)
case("numpy.matmul", lambda xp: xp.matmul, _ab((3, 4), (4, 2)), argnums=AB)
case("numpy.matmul", lambda xp: xp.matmul, _ab((2, 3, 4), (4,)), argnums=AB, variant="batched @ vector")
case("numpy.matmul", lambda xp: lambda a, b: a @ b, _ab((2, 1, 3, 4), (5, 4, 2)), argnums=AB,
     variant="broadcast batches")
case("numpy.linalg.matmul", lambda xp: xp.linalg.matmul, _ab((2, 3, 4), (4, 2)), argnums=AB)
case("numpy.dot", lambda xp: xp.dot, _ab((3, 4), (4,)), argnums=AB)
case("numpy.dot", lambda xp: xp.dot, _ab((2, 3, 4), (5, 4, 2)), argnums=AB, variant="N-D")
case("numpy.dot", lambda xp: lambda a, b: a.dot(b), _ab((2, 3, 4), (4,)), argnums=AB, variant="method, N-D · vector")
case("numpy.dot", lambda xp: xp.dot, _ab((), (3,)), argnums=AB, variant="scalar")

_ES = [  # (variant, spec, operand shapes)
    ("matrix product", "ij,jk->ik", [(3, 4), (4, 2)]),
    ("trace ii->", "ii->", [(4, 4)]),
    ("diagonal ii->i", "ii->i", [(4, 4)]),
    ("iij->j", "iij->j", [(3, 3, 2)]),
    ("iji->ij", "iji->ij", [(3, 2, 3)]),
    ("ellipsis batch", "...ij,...jk->...ik", [(2, 3, 4), (2, 4, 2)]),
    ("ellipsis broadcast", "...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("implicit output", "ij,jk", [(3, 4), (4, 2)]),
    ("implicit transpose", "ba", [(3, 4)]),
    ("three operands", "ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),
    ("four operands, diagonal", "ab,bc,cd,dd->a", [(2, 3), (3, 4), (4, 3), (3, 3)]),
    ("outer", "i,j->ij", [(3,), (4,)]),
    ("batched elementwise", "bi,bi->b", [(3, 4), (3, 4)]),
    ("repeated across, summed", "ij,ij->", [(3, 4), (3, 4)]),
    ("size-1 broadcast", "ij,ij->ij", [(1, 4), (3, 4)]),
]
for _v, _s, _shapes in _ES:
    case("numpy.einsum", lambda xp, s=_s: lambda *ops: xp.einsum(s, *ops),
         lambda r, sh=_shapes: tuple(_x(r, s) for s in sh), argnums=tuple(range(len(_shapes))), variant=_v)
case("numpy.einsum", lambda xp: lambda a: xp.einsum("ii->i", a), lambda r: (_x(r, (5, 5)),), structures=FREE,
     variant="diagonal is a free index map")
case("numpy.einsum", lambda xp: lambda a, b, c: xp.einsum("ij,jk,kl->il", a, b, c, optimize="optimal"),
     lambda r: (_x(r, (2, 6)), _x(r, (6, 6)), _x(r, (6, 3))), argnums=(0, 1, 2), variant="optimize='optimal'",
     structures={"I ⊗ dense"})
case("numpy.einsum", lambda xp: lambda a, b: xp.einsum(a, [0, 1], b, [1, 2], [0, 2]), _ab((3, 4), (4, 2)),
     argnums=AB, variant="sublist form")
case("numpy.outer", lambda xp: xp.outer, _ab((3,), (4,)), argnums=AB)
case("numpy.outer", lambda xp: xp.outer, _ab((2, 2), (3,)), argnums=AB, variant="flattens")
case("numpy.multiply.outer", lambda xp: xp.multiply.outer, _ab((2, 2), (3,)), argnums=AB,
     note="any binary ufunc's outer: a broadcast of the ufunc")
case("numpy.subtract.outer", lambda xp: xp.subtract.outer, _ab((3,), (2, 2)), argnums=AB)
case("numpy.maximum.outer", lambda xp: xp.maximum.outer, lambda r: (np.array([0.1, 0.9, 2.0]), np.array([0.5, 1.5])),
     argnums=AB)
case("numpy.inner", lambda xp: xp.inner, _ab((2, 4), (3, 4)), argnums=AB)
case("numpy.inner", lambda xp: xp.inner, _ab((4,), (4,)), argnums=AB, variant="vectors")
case("numpy.vdot", lambda xp: xp.vdot, _ab((2, 3), (6,)), argnums=AB)
case("numpy.kron", lambda xp: xp.kron, _ab((2, 3), (3, 2)), argnums=AB, structures={"I ⊗ dense", "reshape"})
case("numpy.kron", lambda xp: xp.kron, _ab((3,), (2, 2)), argnums=AB, variant="different ndim")
case("numpy.tensordot", lambda xp: xp.tensordot, _ab((2, 3, 4), (3, 4, 5)), argnums=AB)
case("numpy.tensordot", lambda xp: lambda a, b: xp.tensordot(a, b, axes=1), _ab((2, 3), (3, 4)), argnums=AB,
     variant="axes=1")
case("numpy.tensordot", lambda xp: lambda a, b: xp.tensordot(a, b, axes=([0, -1], [2, 0])),
     _ab((2, 3, 4), (4, 5, 2)), argnums=AB, variant="axis pairs")
case("numpy.cross", lambda xp: xp.cross, _ab((3,), (3,)), argnums=AB)
case("numpy.cross", lambda xp: xp.cross, _ab((4, 3), (3,)), argnums=AB, variant="broadcast")
case("numpy.cross", lambda xp: lambda a, b: xp.cross(a, b, axisa=0, axisb=1, axisc=0), _ab((3, 2), (2, 3)),
     argnums=AB, variant="axisa/axisb/axisc")
case("numpy.cross", lambda xp: lambda a, b: xp.cross(a, b, axis=0), _ab((3, 2), (3, 2)), argnums=AB,
     variant="axis=")
case("numpy.linalg.multi_dot", lambda xp: lambda a, b, c: xp.linalg.multi_dot([a, b, c]),
     lambda r: (_x(r, (4,)), _x(r, (4, 3)), _x(r, (3, 5))), argnums=(0, 1, 2))
case("numpy.linalg.multi_dot", lambda xp: lambda a, b, c, d: xp.linalg.multi_dot([a, b, c, d]),
     lambda r: (_x(r, (2, 5)), _x(r, (5, 3)), _x(r, (3, 4)), _x(r, (4,))), argnums=(0, 1, 2, 3), variant="four")
for _n in (3, 0, 1, 2, 5):
    case("numpy.linalg.matrix_power", lambda xp, n=_n: lambda a: xp.linalg.matrix_power(a, n),
         lambda r: (_x(r, (3, 3)),), variant=f"n={_n}")
case("numpy.linalg.matrix_power", lambda xp: lambda a: xp.linalg.matrix_power(a, 3), lambda r: (_x(r, (2, 3, 3)),),
     variant="stack of matrices")
case("numpy.linalg.matrix_power", lambda xp: lambda a: xp.linalg.matrix_power(a, -2),
     lambda r: (_x(r, (3, 3)) + 3 * np.eye(3),), variant="n=-2 (via inv)")
if hasattr(np, "vecdot"):
    case("numpy.vecdot", lambda xp: xp.vecdot, _ab((2, 4), (3, 1, 4)), argnums=AB)
if hasattr(np, "matvec"):
    case("numpy.matvec", lambda xp: xp.matvec, _ab((2, 3, 4), (4,)), argnums=AB)
    case("numpy.vecmat", lambda xp: xp.vecmat, _ab((3,), (2, 3, 4)), argnums=AB)
