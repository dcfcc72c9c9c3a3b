"""The structured-Jacobian algebra.

A partial Jacobian ∂v/∂u is a tensor with axes ``shape(v) + shape(u)``. A :class:`Jac` stores
only what the structure does not imply:

* every output axis ``j`` carries the label ``j``; an input axis ``k`` either shares the label of
  the output axis it is *diagonal* with (``pair[k] = j``), or has its own label ``m + k``
  (``m`` = number of output axes);
* ``vlabels`` lists the labels the value array varies along; every other axis is *replicated*
  (the value is constant along it). ``vlabels is None`` means there is no value array at all:
  the map is a pure 0/1 structure (identity, broadcast, sum); ``neg=True`` makes it the same
  structure times exactly −1 (∂(−x)/∂x, ∂(a − b)/∂b), so products with it cost no
  multiplication, as the literature counts (the sign moves onto the result).

Identity, scaled identity, diagonal, dense, ``I ⊗ xᵀ``, ``I_B ⊗ W``, broadcast and sum maps are all
instances. A lazy gather (a selection or reshape: each output element reads one input element) may
carry values on its output side, ``diag(w) · S``, and an embedding the same on its input side,
``Sᵀ · diag(w)``: that is what a gather of a diagonal partial is (``w * x[idx]``), kept at one value per
element instead of a dense one-hot block. A product is an einsum over the two value arrays in which
diagonal pairs identify indices; it costs the product of the sizes of the distinct labels that
carry values. Every function here works on *symbolic* Jacobians (value shapes known, ``values is
None``) and on numeric ones through the same code, so planned and executed costs agree by
construction.

>>> import numpy as np
>>> d = diagonal((3,), np.array([1., 2., 3.]))
>>> a = dense((2,), (3,), np.ones((2, 3)))
>>> c, mults = product(a, d)
>>> mults, c.describe()
(6, 'dense 2×3')
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterable, Sequence

import numpy as np

from .lazy import asarray, recordable

Shape = tuple[int, ...]

# Pricing works on structures alone. A pure 0/1 map (identity, reshape, selection) has no values
# in either world, so when pricing we must say so: otherwise unpairing it would build an
# identity/one-hot array (a reshape of 5000×5000 would build a 10¹⁴-entry eye just to be priced).
_PRICING: ContextVar[bool] = ContextVar("jacc_pricing", default=False)


@contextmanager
def pricing():
    """Within this block every product/sum is symbolic: 0/1 maps are never materialised."""
    token = _PRICING.set(True)
    try:
        yield
    finally:
        _PRICING.reset(token)


def _valueless(j: "Jac") -> bool:
    """True when ``j``'s result must carry no values: it is symbolic, or we are pricing."""
    return j.symbolic or _PRICING.get()


class StructureError(ValueError):
    """Two Jacobians whose shapes do not fit together."""


class Jac:
    """A structured partial Jacobian (see the module docstring).

    ``reshape=True`` marks the pure reshape map from ``in_shape`` to ``out_shape`` (same size),
    which products apply lazily to the neighbouring Jacobian instead of materialising it.
    """

    __slots__ = ("out_shape", "in_shape", "pair", "vlabels", "_values", "reshape", "select", "embed", "_size",
                 "factors", "_fvals", "neg", "terms")

    def __init__(
        self,
        out_shape: Sequence[int],
        in_shape: Sequence[int],
        pair: Sequence[int] | None = None,
        vlabels: Sequence[int] | None = None,
        values: np.ndarray | None = None,
        reshape: bool = False,
        select: tuple | None = None,
        embed: tuple | None = None,
        *,
        factors: Sequence[Sequence[int]] | None = None,
        fvalues: Sequence[np.ndarray] | None = None,
        neg: bool = False,
        terms: Sequence["Jac"] | None = None,
    ):
        self.out_shape: Shape = tuple(int(s) for s in out_shape)
        self.in_shape: Shape = tuple(int(s) for s in in_shape)
        self.pair: tuple[int, ...] = (
            (-1,) * len(self.in_shape) if pair is None else tuple(int(p) for p in pair)
        )
        self.vlabels: tuple[int, ...] | None = None if vlabels is None else tuple(vlabels)
        self._values = values
        # A factored value: the product of small arrays over label subsets (−A⁻¹[i,j]·x[l]);
        # materialised only when an operation other than a product needs the array.
        self.factors: tuple[tuple[int, ...], ...] | None = (
            None if factors is None else tuple(tuple(int(lab) for lab in f) for f in factors))
        self._fvals = None if fvalues is None else tuple(fvalues)
        self.reshape = reshape
        self.select = select  # a basic index: the lazy map x ↦ x[index] (see ``selection``)
        self.embed = embed  # the transpose of a selection: x placed at y[index] (see ``embedding``)
        self._size: int | None = None  # value_size, computed once: pricing asks for it per step
        self.neg = bool(neg)
        # A sum of lazy maps (a stencil: d₁·S₁ + d₂·S₂ + …), kept as its terms (see ``add``).
        self.terms: tuple[Jac, ...] | None = None if terms is None else tuple(terms)
        if self.terms is not None and (vlabels is not None or pair is not None or _lazy(self) or neg
                                       or any(t.out_shape != self.out_shape or t.in_shape != self.in_shape
                                              or not _term(t) for t in self.terms)):
            raise StructureError("terms are lazy maps or diagonals of the sum's shape, and the sum has no "
                                 "other form")
        if self.neg and (self.vlabels is not None or reshape or select is not None or embed is not None):
            raise StructureError("neg marks a 0/1 map without values or lazy form (an exact −1 structure)")
        if len(self.pair) != len(self.in_shape):
            raise StructureError("pair must have one entry per input axis")
        m = len(self.out_shape)
        seen = [p for p in self.pair if p >= 0]
        if len(set(seen)) != len(seen) or any(p >= m for p in seen):
            raise StructureError(f"invalid diagonal pairing {self.pair} for {m} output axes")
        for k, p in enumerate(self.pair):
            if p >= 0 and self.out_shape[p] != self.in_shape[k]:
                raise StructureError(
                    f"diagonal pair of sizes {self.out_shape[p]} and {self.in_shape[k]}"
                )
        if self.vlabels is not None and (reshape or select is not None or embed is not None):
            side = set(range(m)) if embed is None else {self.in_label(k) for k in range(len(self.in_shape))}
            if embed is not None and select is not None or not set(self.vlabels) <= side:
                raise StructureError(f"a lazy map's values {self.vlabels} must lie on its "
                                     f"{'input' if embed is not None else 'output'} side")
        if values is not None:
            if self.vlabels is None:
                raise StructureError("values given without value labels")
            want = self.value_shape
            if tuple(values.shape) != want:
                raise StructureError(f"values have shape {values.shape}, structure needs {want}")
        if self.factors is not None:
            if values is not None or self.vlabels is None:
                raise StructureError("a factored Jacobian takes fvalues, not values, and needs value labels")
            if set().union(*map(set, self.factors)) != set(self.vlabels) or any(
                    len(set(f)) != len(f) for f in self.factors):
                raise StructureError(f"factor labels {self.factors} must cover the value labels {self.vlabels}")
            if self._fvals is not None:
                if len(self._fvals) != len(self.factors):
                    raise StructureError("one value array per factor")
                for f, v in zip(self.factors, self._fvals):
                    if tuple(v.shape) != tuple(self.size_of(lab) for lab in f):
                        raise StructureError(f"factor over labels {f} has shape {v.shape}")
        elif fvalues is not None:
            raise StructureError("fvalues given without factors")

    @classmethod
    def _raw(cls, out_shape: Shape, in_shape: Shape, pair: tuple, vlabels: tuple | None, values, reshape: bool,
             select, embed) -> "Jac":
        """A Jacobian from parts already checked (tuples of ints, shapes that fit): the lazy-map
        rules below rebuild maps per product, and pricing runs them by the ten thousand."""
        j = object.__new__(cls)
        j.out_shape, j.in_shape, j.pair, j.vlabels, j._values = out_shape, in_shape, pair, vlabels, values
        j.reshape, j.select, j.embed = reshape, select, embed
        j.factors = j._fvals = j.terms = j._size = None
        j.neg = False
        return j

    # -- labels ---------------------------------------------------------------------------------
    @property
    def m(self) -> int:
        return len(self.out_shape)

    def in_label(self, k: int) -> int:
        p = self.pair[k]
        return p if p >= 0 else self.m + k

    @property
    def labels(self) -> list[int]:
        """All labels: output axes then unpaired input axes."""
        return list(range(self.m)) + [self.m + k for k, p in enumerate(self.pair) if p < 0]

    def size_of(self, label: int) -> int:
        m = self.m
        return self.out_shape[label] if label < m else self.in_shape[label - m]

    @property
    def values(self):
        """The value array over ``vlabels`` (a factored value is multiplied out on first use)."""
        if self._values is None and self._fvals is not None:
            self._values = _multiply_out(self)
        return self._values

    @property
    def value_shape(self) -> Shape:
        return tuple(self.size_of(lab) for lab in (self.vlabels or ()))

    @property
    def value_size(self) -> int:
        """Number of stored values (0 for a pure structure)."""
        if self._size is None:
            if self.terms is not None:
                self._size = sum(t.value_size for t in self.terms)
            elif self.factors is not None:  # what is stored: the factors
                self._size = sum(math.prod(self.size_of(lab) for lab in f) for f in self.factors)
            else:
                self._size = 0 if self.vlabels is None else math.prod(self.value_shape)
        return self._size

    @property
    def nbytes(self) -> int:
        return 8 * self.value_size

    @property
    def symbolic(self) -> bool:
        if self.terms is not None:
            return any(t.symbolic for t in self.terms)
        return self.vlabels is not None and self._values is None and self._fvals is None

    @property
    def unit(self) -> bool:
        return self.vlabels is None and self.terms is None

    @property
    def dense_size(self) -> int:
        return math.prod(self.out_shape) * math.prod(self.in_shape)

    def strip(self) -> "Jac":
        """The same structure without values."""
        if self.terms is not None:
            return Jac(self.out_shape, self.in_shape, terms=[t.strip() if not t.unit else t for t in self.terms])
        return Jac(self.out_shape, self.in_shape, self.pair, self.vlabels, None, self.reshape, self.select,
                   self.embed, factors=self.factors, neg=self.neg)

    def plain(self) -> "Jac":
        """An exact −1 structure as an ordinary one holding the value −1 (what every operation
        but a product sees); any other Jacobian unchanged."""
        if not self.neg:
            return self
        return Jac(self.out_shape, self.in_shape, self.pair, (), np.asarray(-1.0))

    def solid(self) -> "Jac":
        """This Jacobian with one value array (symbolic: the same structure unfactored)."""
        if self.factors is None:
            return self
        return Jac(self.out_shape, self.in_shape, self.pair, self.vlabels, self.values)

    def __repr__(self) -> str:
        return f"Jac({self.describe()}, out={self.out_shape}, in={self.in_shape})"

    # -- description ----------------------------------------------------------------------------
    def describe(self) -> str:
        """A short human label, e.g. ``identity 5``, ``diag 100``, ``dense 3×4``, ``−identity 5``."""
        if self.neg:
            return "−" + Jac(self.out_shape, self.in_shape, self.pair).describe()
        if self.terms is not None:
            return " + ".join(t.describe() for t in self.terms)
        if self.factors is not None:
            shapes = ", ".join(_fmt(tuple(self.size_of(lab) for lab in f)) for f in self.factors)
            return f"{Jac(self.out_shape, self.in_shape, self.pair, self.vlabels).describe()} as factors {shapes}"
        if _valued(self):
            bare = _bare(self).describe()
            return f"{bare} scaled" if not self.vlabels else f"{bare} with values {_fmt(self.value_shape)}"
        if self.reshape:
            return f"reshape {_fmt(self.in_shape)}→{_fmt(self.out_shape)}"
        if self.select is not None:
            return f"select {_fmt(self.in_shape)}→{_fmt(self.out_shape)}"
        if self.embed is not None:
            return f"embed {_fmt(self.in_shape)}→{_fmt(self.out_shape)}"
        npair = sum(p >= 0 for p in self.pair)
        nin, m = len(self.in_shape), self.m
        full_square = npair == nin == m
        vl = set(self.vlabels or ())
        if not self.out_shape and not self.in_shape:
            return "1" if self.unit else "scalar"
        if full_square:
            if self.unit:
                return f"identity {math.prod(self.out_shape)}"
            if not vl:
                return f"scaled identity {math.prod(self.out_shape)}"
            if vl == set(range(m)):
                return f"diag {math.prod(self.out_shape)}"
        if npair == 0:
            if self.value_size == self.dense_size and len(vl) == m + nin:
                return f"dense {math.prod(self.out_shape)}×{math.prod(self.in_shape)}"
            if self.unit and (not self.in_shape or not self.out_shape):
                return "sum" if self.in_shape else "broadcast"
        # Kronecker form: (identity or diagonal on the paired axes) ⊗ dense block ⊗ ones
        paired = [p for p in self.pair if p >= 0]
        diag_size = math.prod(self.out_shape[p] for p in paired)
        parts = []
        if paired:
            parts.append(f"{'diag' if any(p in vl for p in paired) else 'I'}{diag_size}")
        free_out = [j for j in range(m) if j not in paired]
        free_in = [k for k in range(nin) if self.pair[k] < 0]
        a = math.prod(self.out_shape[j] for j in free_out if j in vl)
        b = math.prod(self.in_shape[k] for k in free_in if m + k in vl)
        if a * b > 1:
            parts.append(f"dense {a}×{b}")
        ones_out = math.prod(self.out_shape[j] for j in free_out if j not in vl)
        ones_in = math.prod(self.in_shape[k] for k in free_in if m + k not in vl)
        if ones_out * ones_in > 1:
            parts.append(f"{'ones' if self.unit else 'const'} {ones_out}×{ones_in}")
        if not parts:  # every axis has size 1: one number (the 1×1 identity when unit)
            parts.append("identity 1" if self.unit else "scalar")
        return " ⊗ ".join(parts)

    # -- conversion -----------------------------------------------------------------------------
    def to_dense(self) -> np.ndarray:
        """The full tensor with axes ``out_shape + in_shape`` (needs values; may be a view)."""
        if self.dense_size == 0:  # (unpairing first would build the paired axes' square: n² for none)
            return np.zeros(self.out_shape + self.in_shape)
        if self.neg:
            return self.plain().to_dense()
        if self.terms is not None and _scattered(self):
            return _dense_sum(self)
        if _valued(self) or self.terms is not None:
            return as_labelled(self).to_dense()
        if self.reshape:
            n = math.prod(self.in_shape)
            return np.eye(n).reshape(self.out_shape + self.in_shape)
        if self.select is not None or self.embed is not None:
            return as_labelled(self).to_dense()
        j = unpair(self, [k for k, p in enumerate(self.pair) if p >= 0])[0]
        if j.symbolic:
            raise StructureError("cannot materialise a symbolic Jacobian")
        full = list(range(j.m + len(j.in_shape)))
        vals = _align(j, full)
        shape = j.out_shape + j.in_shape
        if vals.shape == shape:  # already complete: no copy (may share memory with the values)
            return vals
        return np.broadcast_to(vals, shape).copy()


def _multiply_out(j: "Jac") -> np.ndarray:
    """A factored Jacobian's value array over its ``vlabels``."""
    t = _compact(j.vlabels)
    ops: list = []
    for f, v in zip(j.factors, j._fvals):
        ops += [v, [t[lab] for lab in f]]
    return np.einsum(*ops, [t[lab] for lab in j.vlabels])


def _fmt(shape: Shape) -> str:
    return "×".join(map(str, shape)) or "()"


# -- constructors -------------------------------------------------------------------------------


def identity(shape: Sequence[int]) -> Jac:
    """The identity map on ``shape``."""
    shape = tuple(shape)
    return Jac(shape, shape, tuple(range(len(shape))))


def diagonal(shape: Sequence[int], values: np.ndarray | None = None) -> Jac:
    """An elementwise (diagonal) map with one value per element of ``shape``."""
    shape = tuple(shape)
    return Jac(shape, shape, tuple(range(len(shape))), tuple(range(len(shape))), values)


def scaled_identity(shape: Sequence[int], c: float) -> Jac:
    shape = tuple(shape)
    return Jac(shape, shape, tuple(range(len(shape))), (), np.asarray(float(c)))


def dense(out_shape: Sequence[int], in_shape: Sequence[int], values: np.ndarray | None = None) -> Jac:
    """A dense map; ``values`` has shape ``out_shape + in_shape``."""
    out_shape, in_shape = tuple(out_shape), tuple(in_shape)
    labels = tuple(range(len(out_shape) + len(in_shape)))
    if values is not None:
        values = np.asarray(values).reshape(out_shape + in_shape)
    return Jac(out_shape, in_shape, None, labels, values)


def reshape_map(out_shape: Sequence[int], in_shape: Sequence[int]) -> Jac:
    """∂reshape(x)/∂x: pairs where only size-1 axes differ, else a lazy reshape map."""
    out_shape, in_shape = tuple(out_shape), tuple(in_shape)
    if math.prod(out_shape) != math.prod(in_shape):
        raise StructureError(f"cannot reshape {in_shape} to {out_shape}")
    o = [j for j, s in enumerate(out_shape) if s != 1]
    i = [k for k, s in enumerate(in_shape) if s != 1]
    if [out_shape[j] for j in o] == [in_shape[k] for k in i]:
        pair = [-1] * len(in_shape)
        for j, k in zip(o, i):
            pair[k] = j
        return Jac(out_shape, in_shape, pair)
    p = _prefix(out_shape, in_shape)
    return Jac(out_shape, in_shape, tuple(range(p)) + (-1,) * (len(in_shape) - p), reshape=True)


def _prefix(a: Shape, b: Shape) -> int:
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    # keep at least one axis on each side to reshape unless shapes are equal
    if p == len(a) or p == len(b):
        p = min(p, len(a) - 1, len(b) - 1) if a != b else p
    return max(p, 0)


# -- values helpers -----------------------------------------------------------------------------


def _align(j: Jac, labels: Sequence[int]) -> np.ndarray:
    """j's values transposed to ``labels`` order, size-1 where j is replicated (broadcastable)."""
    vl = j.vlabels or ()
    vals = np.asarray(1.0) if j.vlabels is None else j.values
    present = [lab for lab in labels if lab in vl]
    perm = [vl.index(lab) for lab in present]
    if perm != list(range(len(vl))):
        vals = np.transpose(vals, perm)
    return vals.reshape([j.size_of(lab) if lab in vl else 1 for lab in labels])


def _einsum(ops: list, out: list) -> np.ndarray:
    arrays = ops[0::2]
    if all(np.ndim(x) == 0 for x in arrays):
        r = arrays[0]
        for x in arrays[1:]:
            r = r * x
        return asarray(r)
    return np.einsum(*ops, out, optimize=len(arrays) > 1)


def _compact(labels: Iterable) -> dict:
    """einsum wants small non-negative ints: map arbitrary hashable labels onto 0..51."""
    table: dict = {}
    for lab in labels:
        if lab not in table:
            table[lab] = len(table)
    if len(table) > 52:
        raise StructureError(
            "a Jacobian block here needs more than 52 distinct axes (its output's and input's together, at "
            "most 26 each for an elementwise block), more than the 52 NumPy's einsum can label; reshape arrays "
            "of many length-1 axes to fewer axes (x.reshape(-1), np.squeeze), or ask for sparse=True")
    return table


def unpair(j: Jac, ks: Iterable[int]) -> tuple[Jac, int]:
    """Materialise the diagonal pairs of input axes ``ks`` (values gain an identity factor)."""
    j = j.plain()
    ks = [k for k in ks if j.pair[k] >= 0]
    if j.terms is not None:
        j = as_labelled(j)
        ks = [k for k in ks if j.pair[k] >= 0]
    if not ks:
        return j, 0
    if j.reshape or j.select is not None or j.embed is not None:
        j = as_labelled(j)
    m = j.m
    pair = list(j.pair)
    vl = list(j.vlabels or ())
    vals = j.values if j.vlabels is not None else np.asarray(1.0)
    symbolic = _valueless(j)
    for k in ks:
        p = pair[k]
        pair[k] = -1
        new = [lab for lab in vl]
        if p not in new:
            new.append(p)
        new.append(m + k)
        if not symbolic:
            vals = _on_diagonal(vals, vl, new, p, m + k, j)
        vl = new
    return Jac(j.out_shape, j.in_shape, pair, vl, None if symbolic else vals), 0


def _on_diagonal(vals: np.ndarray, vl: list, new: list, p: int, q: int, j: Jac) -> np.ndarray:
    """Values over labels ``new`` that equal ``vals`` where labels p and q agree and are exactly 0
    elsewhere: written onto the diagonal, not multiplied by an identity (0·NaN would be NaN)."""
    dtype = vals.dtype if vals.dtype.kind == "f" else np.dtype(float)
    t = _compact(new)
    keep = [x for x in new if x != q]
    src = np.einsum(vals, [t[x] for x in vl], [t[x] for x in keep if x in vl]) if vl else vals
    src = np.reshape(src, [j.size_of(x) if x in vl else 1 for x in keep])
    return put_diagonal(src, tuple(j.size_of(lab) for lab in new), dtype, new.index(p), new.index(q))


@recordable
def put_diagonal(src, shape: Shape, dtype, p: int, q: int) -> np.ndarray:
    """Zeros of ``shape`` with ``src`` (broadcast over ``shape`` less axis ``q``) written where
    axes ``p`` and ``q`` have equal indices."""
    out = np.zeros(shape, dtype=dtype)
    t = list(range(len(shape)))
    sub = [p if x == q else x for x in t]
    keep = [x for x in t if x != q]
    np.einsum(out, sub, keep)[...] = src  # the diagonal as a writeable view
    return out


@recordable
def put_rows(v, n: int, rows, add: bool = False) -> np.ndarray:
    """Zeros with ``n`` rows and ``v``'s other axes, ``v`` written (``add``: summed) at ``rows``."""
    full = np.zeros((n,) + v.shape[1:], dtype=v.dtype)
    if add:
        np.add.at(full, rows, v)
    else:
        full[rows] = v
    return full


@recordable
def put_last(v, n: int, pos: int) -> np.ndarray:
    """Zeros with ``v``'s axes and a new last axis of size ``n``; ``v`` written at ``pos`` on it."""
    full = np.zeros(v.shape + (n,), dtype=v.dtype)
    full[..., pos] = v
    return full


def with_labels(j: Jac, need: Iterable[int]) -> Jac:
    """Make the value array vary along ``need`` too (broadcast copy; no multiplications)."""
    vl = list(j.vlabels or ())
    extra = [lab for lab in need if lab not in vl]
    if not extra and j.vlabels is not None:
        return j
    new = vl + extra
    if _valueless(j):
        return Jac(j.out_shape, j.in_shape, j.pair, new)
    vals = np.broadcast_to(_align(j, new), [j.size_of(lab) for lab in new]).copy()
    return Jac(j.out_shape, j.in_shape, j.pair, new, vals)


def _reshape_side(j: Jac, new_shape: Shape, side: str) -> Jac:
    """``j`` with its output (``side='out'``) or input axes reinterpreted as ``new_shape``."""
    old = j.out_shape if side == "out" else j.in_shape
    p = _prefix(old, new_shape) if old != new_shape else len(old)
    if old == new_shape:
        return j
    m = j.m
    if side == "out":
        moving_labels = list(range(p, m))
        j = unpair(j, [k for k, q in enumerate(j.pair) if q >= p])[0]
    else:
        j = unpair(j, range(p, len(old)))[0]
        moving_labels = [m + k for k in range(p, len(old))]
    j = with_labels(j, moving_labels)
    vl = list(j.vlabels)
    keep = [lab for lab in vl if lab not in moving_labels]
    perm = [vl.index(lab) for lab in keep] + [vl.index(lab) for lab in moving_labels]
    if side == "out":
        nm = len(new_shape)
        out_shape, in_shape = new_shape, j.in_shape
        pair = j.pair
        mp = {lab: (lab if lab < m else lab - m + nm) for lab in keep}
        new_moving = list(range(p, nm))
    else:
        out_shape, in_shape = j.out_shape, new_shape
        pair = j.pair[:p] + (-1,) * (len(new_shape) - p)
        mp = {lab: lab for lab in keep}
        new_moving = [m + k for k in range(p, len(new_shape))]
    kept_shape = [j.size_of(lab) for lab in keep]
    moved_shape = list(new_shape[p:])
    vals = j.values
    if vals is not None:
        vals = np.transpose(vals, perm).reshape(kept_shape + moved_shape)
    vl_new = [mp[lab] for lab in keep] + new_moving
    return Jac(out_shape, in_shape, pair, vl_new, vals)


# -- product and sum ----------------------------------------------------------------------------


def product(a: Jac, b: Jac) -> tuple[Jac, int]:
    """``a · b`` (a: w ← v, b: v ← u) and its multiplication count.

    >>> import numpy as np
    >>> x = dense((1,), (4,), np.ones((1, 4)))
    >>> product(x, identity((4,)))[1]
    0
    """
    if a.in_shape != b.out_shape:
        raise StructureError(f"cannot multiply {a.out_shape}←{a.in_shape} by {b.out_shape}←{b.in_shape}")
    if a.neg or b.neg:
        return _signed_product(a, b)
    if is_identity(a):  # I·b = b exactly: never let an identity unpair a lazy map into a dense one
        return b, 0
    if is_identity(b):
        return a, 0
    if a.terms is not None or b.terms is not None:  # distributes over the terms
        parts, mults = [], 0
        for ta in _terms_of(a):
            for tb in _terms_of(b):
                c, k = product(ta, tb)
                parts.append(c)
                mults += k
        if len(parts) > 1 and all(map(_summand, parts)):  # merged once, not pair by pair
            c = _kept_sum([t for c in parts for t in _terms_of(c)])
            if c is not None:
                return c, mults
        total = _summed_in_one_pass(parts)
        if total is None:
            total = parts[0]
            for c in parts[1:]:
                total = add(total, c)
        return total, mults
    # _lazy(a) or _lazy(b), written out: this runs on every product, pricing included
    if a.reshape or b.reshape or a.select is not None or b.select is not None or a.embed is not None \
            or b.embed is not None:
        c = _through_lazy(a, b)
        if c is not None:
            return c
        c = _through_broadcast(a, b)
        if c is not None:
            return c
    if _plain_dense(a) and _plain_dense(b) and a.values is None and b.values is None:  # (never multiply out)
        # symbolic dense·dense, the bulk of pricing long chains: the general rule below gives
        # exactly this structure and count (tests/test_budgets.py checks), ~10× slower
        return dense(a.out_shape, b.in_shape), math.prod(a.out_shape) * math.prod(a.in_shape) * math.prod(b.in_shape)
    c = _compose_basic(a, b)
    if c is None:
        c = _compose_maps(a, b)
    if c is not None:
        return c, 0
    if a.embed is not None and (b.reshape or b.select is not None or b.embed is not None):
        a = as_labelled(a)
    if b.embed is not None and (a.reshape or a.select is not None):
        b = as_labelled(b)
    if a.embed is not None:  # a·b = (bᵀ·aᵀ)ᵀ with aᵀ a selection
        return transpose(_scatter(transpose(b), _as_selection(a))), 0
    if b.embed is not None:
        return transpose(_gather(_as_selection(b), transpose(a))), 0
    if a.select is not None and (b.reshape or b.select is not None):
        a = as_labelled(a)
    if b.select is not None and a.reshape:
        b = as_labelled(b)
    if a.select is not None:
        return _gather(a, b), 0
    if b.select is not None:
        return _scatter(a, b), 0
    if a.reshape and b.reshape:
        return reshape_map(a.out_shape, b.in_shape), 0
    if a.reshape:
        return _reshape_side(b, a.out_shape, "out"), 0
    if b.reshape:
        return _reshape_side(a, b.in_shape, "in"), 0
    keep_factors = (a.unit and b.factors is not None) or (b.unit and a.factors is not None)
    if (a.unit or b.unit) and not keep_factors:  # a structural partner: relabel one value array
        a, b = a.solid(), b.solid()
    m, nv = a.m, len(a.in_shape)
    v_to_cin = {j: k for k, j in enumerate(b.pair) if j >= 0}
    vkey: list = []
    for j in range(nv):
        if a.pair[j] >= 0:
            vkey.append(a.pair[j])
        elif j in v_to_cin:
            vkey.append(m + v_to_cin[j])
        else:
            vkey.append(("sum", j))
    akeys = [lab if lab < m else vkey[lab - m] for lab in (a.vlabels or ())]
    bkeys = [vkey[lab] if lab < nv else m + lab - nv for lab in (b.vlabels or ())]
    pair = []
    for j in b.pair:
        key = vkey[j] if j >= 0 else None
        pair.append(key if isinstance(key, int) and key < m else -1)
    carried = set(akeys) | set(bkeys)
    factor = 1
    for j in range(nv):
        if isinstance(vkey[j], tuple) and vkey[j] not in carried:
            factor *= a.in_shape[j]
    out_labels = sorted(k for k in carried if not isinstance(k, tuple))
    sizes = {}
    for key in carried:
        if isinstance(key, tuple):
            sizes[key] = a.in_shape[key[1]]
        elif key < m:
            sizes[key] = a.out_shape[key]
        else:
            sizes[key] = b.in_shape[key - m]
    symbolic = _valueless(a) or b.symbolic
    if a.unit and b.unit:
        if factor == 1:
            return Jac(a.out_shape, b.in_shape, pair), 0
        vals = np.asarray(float(factor))
        return Jac(a.out_shape, b.in_shape, pair, (), vals), 0
    if keep_factors:  # relabel and sum the factors themselves: never their n⁴ product
        f, keys = (b, bkeys) if a.unit else (a, akeys)
        return _relabelled_factors(f, keys, out_labels, sizes, factor, symbolic, (a.out_shape, b.in_shape, pair))
    mults = 0
    path = None
    if not (a.unit or b.unit):
        if a.factors is None and b.factors is None:
            mults = math.prod(sizes.values())
        else:  # contract the factors in the cheapest order, unless multiplying them out is cheaper
            terms = _terms(a, akeys) + _terms(b, bkeys)
            mults, path = contraction_path([frozenset(k) for k, _ in terms], frozenset(out_labels), sizes)
            if math.prod(sizes.values()) <= mults:  # (tiny or degenerate factors)
                a, b, mults, path = a.solid(), b.solid(), math.prod(sizes.values()), None
    if factor != 1:
        mults += math.prod(sizes[k] for k in out_labels)
    vals = None
    if not symbolic:
        t = _compact(list(carried))
        ops: list = []
        if path is not None:
            for keys, v in _terms(a, akeys) + _terms(b, bkeys):
                ops += [v, [t[k] for k in keys]]
            vals = np.einsum(*ops, [t[k] for k in out_labels], optimize=["einsum_path", *path])
        else:
            for j, keys in ((a, akeys), (b, bkeys)):
                if not j.unit:
                    ops += [j.values, [t[k] for k in keys]]
            vals = _einsum(ops, [t[k] for k in out_labels])
        if factor != 1:
            vals = vals * factor
    return Jac(a.out_shape, b.in_shape, pair, out_labels, vals), mults


def _relabelled_factors(f: Jac, keys: list, out: list, sizes: dict, scale: int, symbolic: bool,
                        frame: tuple) -> tuple[Jac, int]:
    """The product of a structural map (no values: a sum, a broadcast, paired axes) with the
    factored ``f``, whose labels the product renames to ``keys``: it stays factored. A summed
    label held by one factor is summed inside it; factors that share a summed label are
    contracted together in the cheapest order (:func:`contraction_path`). Combining a Jacobian's
    own factors is multiplying it out, which the cost model does not count (the multiplied-out
    route, summing the full array, would count 0 too); ``scale`` (a summed axis neither side
    varies along) multiplies the smallest factor and is counted. ∑ᵢⱼ −A⁻¹[i, k]·A⁻¹[l, j] thus
    takes two row sums and never builds the N⁴ array."""
    wanted = set(out)
    terms = [(list(k), v) for k, v in _terms(f, keys)]
    groups: list[list] = []
    for t in terms:  # union of the terms that share a summed key
        joined = [g for g in groups if any(k not in wanted and k in ks for ks, _ in g for k in t[0])]
        groups = [g for g in groups if g not in joined] + [sum(joined, []) + [t]]
    mults = 0
    factors: list[tuple] = []
    fvals: list = []
    for g in groups:
        kept = [k for k in out if any(k in ks for ks, _ in g)]
        count = {}
        for ks, _ in g:
            for k in ks:
                count[k] = count.get(k, 0) + 1
        # a summed key in one term only is summed inside it first: no multiplication
        reduced = [([k for k in ks if k in wanted or count[k] > 1], ks, v) for ks, v in g]
        path = None
        if len(reduced) > 1:
            path = contraction_path([frozenset(r) for r, _, _ in reduced], frozenset(kept), sizes)[1]
        value = None
        if not symbolic:
            t = _compact(list(sizes))
            parts = [np.einsum(v, [t[k] for k in ks], [t[k] for k in r]) if r != ks else v for r, ks, v in reduced]
            ops: list = []
            for (r, _, _), v in zip(reduced, parts):
                ops += [v, [t[k] for k in r]]
            opt = {"optimize": ["einsum_path", *path]} if path else {}
            value = (parts[0] if len(parts) == 1 and reduced[0][0] == kept
                     else np.einsum(*ops, [t[k] for k in kept], **opt))
        factors.append(tuple(kept))
        fvals.append(value)
    if scale != 1:  # on the smallest factor
        i = min(range(len(factors)), key=lambda i: math.prod(sizes[k] for k in factors[i]))
        mults += math.prod(sizes[k] for k in factors[i])
        fvals[i] = None if symbolic else fvals[i] * float(scale)
    scalars = [i for i, fk in enumerate(factors) if not fk]
    if scalars and len(scalars) < len(factors):  # a factor summed to a number joins another one
        i = next(i for i, fk in enumerate(factors) if fk)
        for s_ in scalars:
            fvals[i] = None if symbolic else fvals[i] * fvals[s_]
        factors = [fk for k, fk in enumerate(factors) if k not in scalars]
        fvals = [v for k, v in enumerate(fvals) if k not in scalars]
    out_shape, in_shape, pair = frame
    if len(factors) == 1 or not any(factors):  # one array (every factor a number: their product)
        value = None
        if not symbolic:
            value = fvals[0]
            for v in fvals[1:]:
                value = value * v
            t = _compact(list(sizes))
            value = np.einsum(value, [t[k] for k in factors[0]], [t[k] for k in out])
        return Jac(out_shape, in_shape, pair, out, None if symbolic else asarray(value)), mults
    return Jac(out_shape, in_shape, pair, out, factors=factors, fvalues=None if symbolic else fvals), mults


def _signed_product(a: Jac, b: Jac) -> tuple[Jac, int]:
    """A product with an exact −1 structure costs what the unsigned product costs: the sign moves
    onto the result (negating values is no multiplication). A lazy 0/1 result cannot carry a
    sign: it carries −1 as its value instead."""
    c, mults = product(_unsigned(a), _unsigned(b))
    if a.neg == b.neg:
        return c, mults
    if c.unit:
        if c.reshape or c.select is not None or c.embed is not None:
            return _negated_term(c), mults  # the map carrying −1 (x − x[0]: −S, S reading x[0])
        return Jac(c.out_shape, c.in_shape, c.pair, neg=not c.neg), mults
    return negate(c), mults


def _unsigned(j: Jac) -> Jac:
    return Jac(j.out_shape, j.in_shape, j.pair) if j.neg else j


def negate(j: Jac) -> Jac:
    """``−j`` without multiplications (values negated; a 0/1 map becomes an exact −1 one)."""
    if j.terms is not None:
        return Jac(j.out_shape, j.in_shape, terms=[_negated_term(t) for t in j.terms])
    if j.unit:
        if j.reshape or j.select is not None or j.embed is not None:
            raise StructureError("cannot negate a lazy 0/1 map; use plain() values")
        return Jac(j.out_shape, j.in_shape, j.pair, neg=not j.neg)
    if j.factors is not None:
        fv = None if j._fvals is None else (np.negative(j._fvals[0]),) + j._fvals[1:]
        return Jac(j.out_shape, j.in_shape, j.pair, j.vlabels, factors=j.factors, fvalues=fv)
    vals = None if j.values is None else np.negative(j.values)
    return Jac(j.out_shape, j.in_shape, j.pair, j.vlabels, vals, j.reshape, j.select, j.embed)


def _terms(j: Jac, keys: list) -> list[tuple[list, np.ndarray | None]]:
    """(keys, values) per factor of ``j`` (one term when it is not factored); ``keys`` are the
    product's keys of ``j.vlabels``."""
    if j.factors is None:
        return [(list(keys), j.values)]
    key = dict(zip(j.vlabels, keys))
    vals = j._fvals if j._fvals is not None else (None,) * len(j.factors)
    return [([key[lab] for lab in f], v) for f, v in zip(j.factors, vals)]


def contraction_path(terms: list[frozenset], out: frozenset, size: dict) -> tuple[int, list[tuple[int, int]]]:
    """The cheapest pairwise order to contract ``terms`` (label sets) into ``out``, by exhaustive
    search (products have at most a handful of factors): (multiplications, path as NumPy's
    ``einsum_path`` pairs). Contracting two terms costs the product of the sizes of all their
    labels; a label is summed in the contraction after which no other term and not ``out`` has it.

    >>> contraction_path([frozenset("i"), frozenset("ij"), frozenset("l")], frozenset("jl"),
    ...                  {"i": 100, "j": 100, "l": 100})
    (20000, [(0, 1), (0, 1)])
    """
    best: dict = {}

    def search(state: tuple) -> tuple[int, list]:
        if len(state) == 1:
            return 0, []
        if state in best:
            return best[state]
        found = None
        for i in range(len(state)):
            for j in range(i + 1, len(state)):
                rest = state[:i] + state[i + 1:j] + state[j + 1:]
                union = state[i] | state[j]
                keep = frozenset(lab for lab in union if lab in out or any(lab in r for r in rest))
                cost = math.prod(size[lab] for lab in union)
                sub, steps = search(rest + (keep,))
                if found is None or cost + sub < found[0]:
                    found = (cost + sub, [(i, j)] + steps)
        best[state] = found
        return found

    return search(tuple(terms))


def _plain_dense(j: Jac) -> bool:
    """A dense map with every axis its own label and no lazy form."""
    return (j.vlabels is not None and not j.reshape and j.select is None and j.embed is None and j.factors is None
            and all(p < 0 for p in j.pair) and j.vlabels == tuple(range(len(j.out_shape) + len(j.in_shape))))


def is_identity(j: Jac) -> bool:
    """True for the plain identity map (unit values, every axis paired with itself)."""
    return (j.vlabels is None and not j.neg and not j.reshape and j.select is None and j.embed is None
            and j.terms is None and j.out_shape == j.in_shape and j.pair == tuple(range(len(j.in_shape))))


def add(a: Jac, b: Jac) -> Jac:
    """``a + b``: keeps a diagonal pair only where both terms have it; no multiplications."""
    if a.out_shape != b.out_shape or a.in_shape != b.in_shape:
        raise StructureError("cannot add Jacobians of different shapes")
    a, b = a.plain(), b.plain()
    if _same_map(a, b):  # d·S + e·S = (d + e)·S
        (da, bare), (db, _) = _split(a), _split(b)
        return _place(bare, add(da, db))
    if (_lazy(a) or a.terms is not None or _lazy(b) or b.terms is not None) and _summand(a) and _summand(b):
        c = _kept_sum(_terms_of(a) + _terms_of(b))
        if c is not None:
            return c
    for x, y in ((a, b), (b, a)):  # a complete block plus gathers: their values written into a copy
        if _complete(x) and _scattered(y) and not _PRICING.get():
            return _block(a, _dense_sum(y, start=_align(x, list(range(len(x.vlabels))))))
    a, b = as_labelled(a), as_labelled(b)
    diff = [k for k in range(len(a.pair)) if a.pair[k] != b.pair[k]]
    a, b = unpair(a, diff)[0], unpair(b, diff)[0]
    labels = sorted(set(a.vlabels or ()) | set(b.vlabels or ()))
    if _valueless(a) or b.symbolic:
        return Jac(a.out_shape, a.in_shape, a.pair, labels)
    vals = _align(a, labels) + _align(b, labels)
    vals = np.broadcast_to(vals, [a.size_of(lab) for lab in labels]).copy()
    return Jac(a.out_shape, a.in_shape, a.pair, labels, vals)


def as_labelled(j: Jac) -> Jac:
    """Turn a lazy reshape, selection or embedding into the equivalent labelled Jacobian."""
    if j.terms is not None:
        if not _PRICING.get() and _scattered(j):  # one pass where the block is complete anyway
            with pricing():
                shape = as_labelled(j)
            if _every_label(shape):
                return _block(j, _dense_sum(j))
        total = as_labelled(j.terms[0])
        for t in j.terms[1:]:
            total = add(total, as_labelled(t))
        return total
    if _valued(j):
        return _valued_labelled(j)
    if j.select is not None:
        return _selection_labelled(j)
    if j.embed is not None:
        return transpose(_selection_labelled(_as_selection(j)))
    if not j.reshape:
        return j
    base = identity(j.in_shape)
    return _reshape_side(base, j.out_shape, "out")


# -- selections: x ↦ x[index] for a basic index, applied lazily ---------------------------------
# ``index`` has one item per input axis (plus ["new"] items): ["int", i], ["slice", a, b, c] or
# ["new"]. A product with a selection gathers (or scatters) the neighbour's values: 0 mults.


def _walk(index, in_shape: Shape) -> list[tuple]:
    """(kind, input axis, output axis, positions) per item; positions is a range or an int."""
    out, k, j = [], 0, 0
    for item in index:
        if item[0] == "new":
            out.append(("new", None, j, None))
            j += 1
            continue
        n = in_shape[k]
        if item[0] == "int":
            out.append(("int", k, None, item[1] % n))
        else:
            rng = range(*slice(item[1], item[2], item[3]).indices(n))
            out.append(("full" if rng == range(n) else "slice", k, j, rng))
            j += 1
        k += 1
    return out


def selection(out_shape: Sequence[int], in_shape: Sequence[int], index: Sequence) -> Jac:
    """∂x[index]/∂x for a basic index covering every axis of x; whole-axis slices stay diagonal."""
    out_shape, in_shape = tuple(out_shape), tuple(in_shape)
    items = _walk(index, in_shape)
    pair = [-1] * len(in_shape)
    for kind, k, j, _ in items:
        if kind == "full":
            pair[k] = j
    if all(kind in ("full", "new") for kind, *_ in items):
        return Jac(out_shape, in_shape, pair)
    return Jac(out_shape, in_shape, pair, select=tuple(tuple(i) for i in index))


def _then(first: Sequence, then: Sequence, shape: Shape) -> list | None:
    """The basic index of ``x[first][then]`` for ``x`` of ``shape`` (``None`` when it is none:
    an empty slice of a new axis)."""
    out: list = []
    rest = list(then)
    for kind, _, _, pos in _walk(first, shape):
        if kind == "int":
            out.append(["int", pos])
            continue
        while rest[0][0] == "new":  # `then`'s new axes before the one for this axis
            out.append(["new"])
            rest.pop(0)
        item = rest.pop(0)
        if kind == "new":  # a size-1 axis: `then` drops it, keeps it, or empties it
            if item[0] != "int":
                if len(range(*slice(*item[1:]).indices(1))) != 1:
                    return None
                out.append(["new"])
        elif item[0] == "int":
            out.append(["int", pos[item[1]]])
        else:
            sub = pos[slice(*item[1:])]  # valid positions, but an empty range's bounds may be < 0
            out.append(["slice", sub.start, sub.stop if sub.stop >= 0 else None, sub.step] if sub
                       else ["slice", 0, 0, 1])
    return out + [["new"]] * len(rest)


def _compose_basic(a: Jac, b: Jac) -> Jac | None:
    """``a · b`` when both are basic selections, or both basic embeddings: one lazy map again
    (``x[1:][::2]``, ``flip(flip(x))``, a pad along two axes), never a 0/1 array."""
    def basic(index) -> bool:
        return index is not None and not isinstance(index, Take)

    if basic(a.select) and basic(b.select):  # w = u[b][a]
        index = _then(b.select, a.select, b.in_shape)
        return None if index is None else selection(a.out_shape, b.in_shape, index)
    if basic(a.embed) and basic(b.embed):  # u sits at w[a][b]
        index = _then(a.embed, b.embed, a.out_shape)
        return None if index is None else embedding(a.out_shape, b.in_shape, index)
    return None


def _selection_labelled(s: Jac) -> Jac:
    """The selection as 0/1 values (one factor per selected axis)."""
    if isinstance(s.select, Take):
        return _take_labelled(s)
    m = len(s.out_shape)
    factors: list = []
    for kind, k, j, pos in _walk(s.select, s.in_shape):
        n = s.in_shape[k] if k is not None else 0
        if kind == "int":
            factors.append(([m + k], (lambda n=n, pos=pos: np.eye(n)[pos])))
        elif kind == "slice":
            def sel(n=n, rng=pos):
                v = np.zeros((len(rng), n))
                v[np.arange(len(rng)), list(rng)] = 1.0
                return v
            factors.append(([j, m + k], sel))
    vl = [lab for labs, _ in factors for lab in labs]
    if _PRICING.get():  # the one-hot factors are data, not structure: never build them to price
        return Jac(s.out_shape, s.in_shape, s.pair, vl)
    ops: list = []
    for labs, f in factors:
        ops += [f(), labs]
    return Jac(s.out_shape, s.in_shape, s.pair, vl, np.einsum(*ops, vl) if ops else np.asarray(1.0))


def _gather(s: Jac, b: Jac) -> Jac:
    """``s · b``: b's output axes indexed by the selection (no multiplications)."""
    if isinstance(s.select, Take):
        return _take_gather(s, b)
    items = _walk(s.select, s.in_shape)
    ints = {k: pos for kind, k, _, pos in items if kind == "int"}
    sliced = {k for kind, k, _, _ in items if kind == "slice"}
    b = unpair(b, [kk for kk, p in enumerate(b.pair) if p in sliced])[0]
    if any(p in ints for p in b.pair) and (b.terms is not None or _lazy(b)):
        b = as_labelled(b)
    # an output axis picked by an int whose input axis is paired with it: that input axis becomes a
    # one-hot value label (one entry per value), never the n×n diagonal of an unpair, which the int
    # then reads one row of (V[0, 0] of eigenvectors built a 120⁴ array to take 120² of it)
    onehot = [(mb_k, ints[p]) for mb_k, p in enumerate(b.pair) if p in ints]
    mb, mc = b.m, len(s.out_shape)
    where = {k: (kind, j, pos) for kind, k, j, pos in items if k is not None}
    pair = [where[p][1] if p >= 0 and p not in ints else -1 for p in b.pair]
    vl, vals = [], b.values
    for lab in list(b.vlabels or ()):
        if lab >= mb:
            vl.append(mc + lab - mb)
            continue
        kind, j, pos = where[lab]
        if vals is not None and kind != "full":
            ax = len(vl)
            vals = np.take(vals, pos if kind == "int" else np.array(pos, dtype=int), axis=ax)
        if kind != "int":
            vl.append(j)
    if onehot:
        if b.vlabels is None and not _valueless(b):
            vals = np.asarray(1.0)
        for k, pos in onehot:
            if vals is not None:
                vals = put_last(vals, b.in_shape[k], pos)
            vl.append(mc + k)
        return Jac(s.out_shape, b.in_shape, pair, vl, vals)
    return Jac(s.out_shape, b.in_shape, pair, None if b.vlabels is None else vl, vals)


def _scatter(a: Jac, s: Jac) -> Jac:
    """``a · s``: a's input axes placed back into the selected positions (no multiplications)."""
    if isinstance(s.select, Take):
        return _take_scatter(a, s)
    items = _walk(s.select, s.in_shape)
    m = a.m
    vpos = {j: (kind, k, pos) for kind, k, j, pos in items if j is not None}
    moved = [j for j, (kind, _, _) in vpos.items() if kind in ("slice", "new")]
    a = unpair(a, [j for j in moved if a.pair[j] >= 0])[0]
    a = with_labels(a, [m + j for j in moved if vpos[j][0] == "slice"])
    pair = [-1] * len(s.in_shape)
    for j, (kind, k, _) in vpos.items():
        if kind == "full":
            pair[k] = a.pair[j]
    symbolic = _valueless(a)
    vals = None if symbolic else (a.values if a.vlabels is not None else np.asarray(1.0))
    vl: list = []
    for lab in list(a.vlabels or ()):
        if lab < m:
            vl.append(lab)
            continue
        kind, k, pos = vpos[lab - m]
        if kind == "new":  # a size-1 axis with no counterpart: drop it
            if vals is not None:
                vals = np.take(vals, 0, axis=len(vl))
            continue
        if kind == "slice" and vals is not None:
            ax = len(vl)
            full = put_rows(np.moveaxis(vals, ax, 0), s.in_shape[k], np.array(pos, dtype=int))
            vals = np.moveaxis(full, 0, ax)
        vl.append(m + k)
    for kind, k, _, pos in items:
        if kind == "int":
            if vals is not None:
                vals = put_last(vals, s.in_shape[k], pos)
            vl.append(m + k)
    if a.vlabels is None and not vl:
        return Jac(a.out_shape, s.in_shape, pair)
    return Jac(a.out_shape, s.in_shape, pair, vl, vals)


def transpose(j: Jac) -> Jac:
    """The adjoint map (axes ``in_shape + out_shape``); lazy maps stay lazy where they can."""
    if j.terms is not None:
        return Jac(j.in_shape, j.out_shape, terms=[transpose(t) for t in j.terms])
    if _valued(j):  # (d·S)ᵀ = Sᵀ·d: the same values on the other side
        d, bare = _split(j)
        c = transpose(bare)  # d sits on its middle, except for a reshape: there it is carried over
        return product(c, d)[0] if bare.reshape else _place(c, d)
    if j.select is not None:
        return Jac(j.in_shape, j.out_shape, _swap_pairs(j), embed=j.select)
    if j.embed is not None:
        return _as_selection(j)
    if j.reshape:
        return reshape_map(j.in_shape, j.out_shape)
    m, n = j.m, len(j.in_shape)
    pair = _swap_pairs(j)
    paired_in = {p: k for k, p in enumerate(j.pair) if p >= 0}  # J out axis -> J in axis

    def label(lab: int) -> int:
        if lab < m:
            return paired_in[lab] if lab in paired_in else n + lab
        return lab - m

    vl = None if j.vlabels is None else [label(lab) for lab in j.vlabels]
    if j.factors is not None:  # the factors relabelled, not multiplied out
        return Jac(j.in_shape, j.out_shape, pair, vl, factors=[[label(lab) for lab in f] for f in j.factors],
                   fvalues=j._fvals)
    return Jac(j.in_shape, j.out_shape, pair, vl, j.values, neg=j.neg)


def _swap_pairs(j: Jac) -> list[int]:
    pair = [-1] * j.m
    for k, p in enumerate(j.pair):
        if p >= 0:
            pair[p] = k
    return pair


def _as_selection(e: Jac) -> Jac:
    """The selection whose transpose the embedding ``e`` is."""
    return Jac(e.in_shape, e.out_shape, _swap_pairs(e), select=e.embed)


def embedding(out_shape: Sequence[int], in_shape: Sequence[int], index: Sequence) -> Jac:
    """∂y/∂x where x sits at ``y[index]`` (``stack``, ``concatenate``): the transpose of a selection."""
    return transpose(selection(in_shape, out_shape, index))


# -- advanced (integer-array / mask) selections: a flat gather, applied lazily ------------------
# x[idx] with index arrays is a gather: output axes ``out_axes`` read input axes ``in_axes`` at
# flat positions; the other axes pass through as diagonal pairs. Products gather rows (forward)
# or scatter-add columns (reverse: a repeated index sums its cotangents), never multiplying.
# Position −1 is a hole: that output reads nothing (a zero row). Holes come from composing a
# gather with a placement — a slice of a padded array, slices joined — which stays one gather.


class Take:
    """The gathered part of an advanced selection: output axes ``out_axes`` (their element ``i``
    in C order) read input axes ``in_axes`` at flat position ``flat[i]``. ``flat`` (int array,
    shape = the sizes of ``out_axes``; −1: a hole, see above) is ``None`` where only the structure
    is needed."""

    __slots__ = ("out_axes", "in_axes", "flat", "_unique", "_holes", "key", "distinct")

    def __init__(self, out_axes: Sequence[int], in_axes: Sequence[int], flat: np.ndarray | None = None,
                 key: object = None, distinct: bool = False):
        self.out_axes, self.in_axes = tuple(out_axes), tuple(in_axes)
        self.flat = None if flat is None else np.asarray(flat, dtype=np.intp)
        self._unique: bool | None = True if distinct else None
        self._holes: bool | None = None
        # Equal keys promise equal positions, in pricing (no ``flat``) as in execution, so two
        # gathers by the same index can be summed as one (see ``add``); None: only itself.
        self.key = key
        # Promised by whoever built it, in pricing as in execution: no position is read twice and
        # none is a hole, so its transpose places each element once (``x[1:-1] = v``'s scatter)
        # and composes with gathers into one gather (see :func:`_placement`).
        self.distinct = distinct

    @property
    def unique(self) -> bool:
        """No input position is read twice (a plain assignment scatters then)."""
        if self._unique is None:
            f = self.flat.ravel()
            f = f[f >= 0]
            self._unique = bool(np.unique(f).size == f.size)
        return self._unique

    @property
    def holes(self) -> bool:
        if self._holes is None:
            self._holes = bool(self.flat.size) and int(self.flat.min()) < 0
        return self._holes


def _reading(j: "Jac") -> np.ndarray | None:
    """The flat positions of the outputs of the bare gather ``j`` that read something, or ``None``
    when all do (no holes: nothing to filter)."""
    t = j.select
    if not (isinstance(t, Take) and t.flat is not None and t.holes):
        return None
    return np.flatnonzero(np.reshape(_apply_lazy(j, np.ones(j.in_shape, dtype=np.int8)), (-1,)))


def _take_last(v, t: Take):
    """``v``'s last axis read at ``t``'s positions (flattened); a hole reads 0."""
    flat = t.flat.ravel()
    if not t.holes:
        return np.take(v, flat, axis=-1)
    return np.where(flat >= 0, np.take(v, np.maximum(flat, 0), axis=-1), 0)


def take_selection(out_shape: Sequence[int], in_shape: Sequence[int], pair: Sequence[int],
                   flat: np.ndarray | None, key: object = None, distinct: bool = False) -> Jac:
    """∂x[index]/∂x for an advanced index: input axis ``k`` with ``pair[k] = j`` passes through to
    output axis ``j``; the rest is the gather ``flat`` (see :class:`Take`, also for ``key`` and
    ``distinct``)."""
    out_shape, in_shape = tuple(out_shape), tuple(in_shape)
    used = {p for p in pair if p >= 0}
    t = Take([j for j in range(len(out_shape)) if j not in used], [k for k, p in enumerate(pair) if p < 0], flat,
             key, distinct)
    if t.flat is not None and t.flat.shape != tuple(out_shape[j] for j in t.out_axes):
        raise StructureError(f"gather positions of shape {t.flat.shape} do not fit output {out_shape}")
    return Jac(out_shape, in_shape, pair, select=t)


def _take_sizes(j: Jac, t: Take) -> tuple[list[int], list[int]]:
    return [j.out_shape[a] for a in t.out_axes], [j.in_shape[k] for k in t.in_axes]


def _to_end(vals: np.ndarray, vl: list, moving: list, sizes: list[int]) -> tuple[np.ndarray, list]:
    """``vals`` (labels ``vl``) with the ``moving`` labels last and flattened into one axis."""
    rest = [lab for lab in vl if lab not in moving]
    perm = [vl.index(lab) for lab in rest] + [vl.index(lab) for lab in moving]
    v = np.transpose(vals, perm)
    return v.reshape(v.shape[:len(rest)] + (math.prod(sizes),)), rest


def _sub_index(flat: np.ndarray, sizes: Sequence[int], at: Sequence[int]) -> tuple[np.ndarray, int]:
    """For positions ``flat`` in an array of shape ``sizes``: their flat index over the axes
    ``at`` alone, and how many such indices there are."""
    coords = np.unravel_index(flat, sizes)
    kept = [sizes[i] for i in at]
    return np.ravel_multi_index([coords[i] for i in at], kept), math.prod(kept)


def _take_gather(s: Jac, b: Jac) -> Jac:
    """``s · b`` for an advanced selection ``s``: b's values read at the gathered positions."""
    t: Take = s.select
    mb, mc = b.m, s.m
    # b's input axes paired with gathered axes (rows of X @ W picked by an index) become value
    # labels of the result, one entry per gathered row; unpairing them first would store an n² block
    cols = [kk for k in t.in_axes for kk, p in enumerate(b.pair) if p == k]
    b = with_labels(b, t.in_axes)
    gout, gin = _take_sizes(s, t)
    through = {k: j for k, j in enumerate(s.pair) if j >= 0}  # b's output axis -> s's output axis
    vl = list(b.vlabels)
    rest = [lab for lab in vl if lab not in t.in_axes]
    vals = None
    if b.values is not None and t.flat is not None:  # (no positions: pricing, a constant's value aside)
        v, _ = _to_end(b.values, vl, list(t.in_axes), gin)
        vals = _take_last(v, t)
        if cols:  # each gathered row's values at the column of the position it reads
            at = [i for i, k in enumerate(t.in_axes) if k in b.pair]
            flat = t.flat.ravel()
            col, n_cols = _sub_index(np.maximum(flat, 0), gin, at)  # (a hole's values are zeros)
            full = put_rows(np.moveaxis(vals, -1, 0), flat.size * n_cols, np.arange(flat.size) * n_cols + col)
            vals = np.moveaxis(full.reshape((flat.size, n_cols) + full.shape[1:]), (0, 1), (-2, -1))
        vals = vals.reshape(v.shape[:-1] + tuple(gout) + tuple(b.in_shape[kk] for kk in cols))
    new_vl = ([through[lab] if lab < mb else mc + lab - mb for lab in rest] + list(t.out_axes)
              + [mc + kk for kk in cols])
    pair = [through[p] if p >= 0 and p not in t.in_axes else -1 for p in b.pair]
    return Jac(s.out_shape, b.in_shape, pair, new_vl, vals)


def _take_scatter(a: Jac, s: Jac) -> Jac:
    """``a · s`` for an advanced selection ``s``: a's columns added back at the gathered
    positions (a position read twice receives the sum, as reverse mode needs)."""
    t: Take = s.select
    m = a.m
    # a's output axes paired with gathered axes (im2col: x[windows] @ w, batched over the windows)
    # become value labels of the result; unpairing them first would store a count² block
    rows = [a.pair[j] for j in t.out_axes if a.pair[j] >= 0]
    moving = [a.pair[j] if a.pair[j] >= 0 else m + j for j in t.out_axes]
    a = with_labels(a, moving)
    gout, gin = _take_sizes(s, t)
    back = {j: k for k, j in enumerate(s.pair) if j >= 0}  # s's output axis -> s's input axis
    vl = list(a.vlabels)
    rest = [lab for lab in vl if lab not in moving]
    vals = None
    if a.values is not None and t.flat is not None:  # (as in _take_gather)
        v, _ = _to_end(a.values, vl, moving, gout)
        v, flat = np.moveaxis(v, -1, 0), t.flat.ravel()
        n_in, unique = math.prod(gin), t.unique and not rows
        if rows:  # each gathered position adds to (its row, the column it reads)
            at = [k for k, j in enumerate(t.out_axes) if a.pair[j] >= 0]
            row, n_rows = _sub_index(np.arange(flat.size), gout, at)
            flat = np.where(flat >= 0, row * n_in + flat, -1)
            n_in *= n_rows
        if t.holes:  # a hole's column goes nowhere
            kept = np.flatnonzero(flat >= 0)
            v, flat = v[kept], flat[kept]
        full = put_rows(v, n_in, flat, add=not unique)
        vals = np.moveaxis(full, 0, -1).reshape(v.shape[1:] + tuple(a.out_shape[o] for o in rows) + tuple(gin))
    new_vl = [lab if lab < m else m + back[lab - m] for lab in rest] + rows + [m + k for k in t.in_axes]
    pair = [a.pair[j] if j >= 0 else -1 for j in s.pair]
    return Jac(a.out_shape, s.in_shape, pair, new_vl, vals)


def _take_labelled(s: Jac) -> Jac:
    """The advanced selection as 0/1 values over its gathered axes."""
    t: Take = s.select
    m = s.m
    vl = list(t.out_axes) + [m + k for k in t.in_axes]
    if _PRICING.get() or t.flat is None:
        return Jac(s.out_shape, s.in_shape, s.pair, vl)
    gout, gin = _take_sizes(s, t)
    v = np.zeros((math.prod(gout), math.prod(gin)))
    flat = t.flat.ravel()
    read = np.flatnonzero(flat >= 0)
    v[read, flat[read]] = 1.0
    return Jac(s.out_shape, s.in_shape, s.pair, vl, v.reshape(tuple(gout) + tuple(gin)))


def _broadcasts(j: Jac) -> bool:
    """A 0/1 map in which every output element reads one input element without a lazy index: its
    input axes pass through or have size 1 (a broadcast, transpose or squeeze)."""
    if j.vlabels is not None or j.reshape or j.select is not None or j.embed is not None or j.terms is not None \
            or j.neg or j.factors is not None:
        return False
    return all(p >= 0 or n == 1 for p, n in zip(j.pair, j.in_shape))


def _moves_axes(j: Jac) -> bool:
    """A 0/1 map that only permutes axes and adds or drops size-1 ones (transpose, squeeze)."""
    return _broadcasts(j) and all(n == 1 for t, n in enumerate(j.out_shape) if t not in j.pair)


def _apply_lazy(j: Jac, x: np.ndarray) -> np.ndarray:
    """The lazy selection, reshape or axis move ``j`` applied to an array ``x`` of its input shape."""
    if j.reshape:
        return x.reshape(j.out_shape)
    if j.select is None:  # moves axes: the paired ones in output order, the size-1 rest dropped,
        # then broadcast along the output axes no input axis passes to
        moved = sorted((k for k, p in enumerate(j.pair) if p >= 0), key=lambda k: j.pair[k])
        rest = [k for k in range(x.ndim) if j.pair[k] < 0]
        kept = tuple(n if t in j.pair else 1 for t, n in enumerate(j.out_shape))
        y = np.transpose(x, moved + rest).reshape(kept)
        return y if kept == j.out_shape else np.broadcast_to(y, j.out_shape)
    if not isinstance(j.select, Take):
        from .ops import index_to_numpy  # a basic index covering every axis

        return x[index_to_numpy(list(j.select))]
    t: Take = j.select
    through = sorted((k for k, p in enumerate(j.pair) if p >= 0), key=lambda k: j.pair[k])
    y = np.transpose(x, through + list(t.in_axes))
    y = y.reshape(y.shape[:len(through)] + (math.prod(y.shape[len(through):]),))  # (no -1: a size may be 0)
    y = _take_last(y, t).reshape(y.shape[:len(through)] + t.flat.shape)
    return np.transpose(y, np.argsort([j.pair[k] for k in through] + list(t.out_axes)))


def _basic_embedding(j: Jac) -> bool:
    return j.embed is not None and not isinstance(j.embed, Take)


def _placement(j: Jac) -> bool:
    """An embedding by a gather's positions that are distinct by construction (see ``Take``):
    each input element lands on its own output element, as in a basic embedding."""
    return isinstance(j.embed, Take) and j.embed.distinct


def _places(j: Jac) -> bool:
    """An embedding that puts each input element at one output element of its own."""
    return _basic_embedding(j) or _placement(j)


def _destinations(e: Jac) -> np.ndarray:
    """For an embedding that places, the flat output position of each input element (an array
    of the input's shape): what its transpose, a selection, reads there."""
    return _apply_lazy(_as_selection(e), np.arange(math.prod(e.out_shape)).reshape(e.out_shape))


def _map_through(j: Jac, x: np.ndarray) -> np.ndarray:
    """The bare lazy map ``j`` applied to ``x``: a gather reads, an embedding that places (see
    :func:`_places`) writes ``x`` at its positions, zeros elsewhere."""
    if j.embed is None:
        return _apply_lazy(j, x)
    y = np.zeros(j.out_shape, dtype=x.dtype)
    if isinstance(j.embed, Take):
        np.reshape(y, (-1,))[np.reshape(_destinations(j), (-1,))] = np.reshape(np.broadcast_to(x, j.in_shape), (-1,))
        return y
    from .ops import index_to_numpy

    y[index_to_numpy(list(j.embed))] = x
    return y


def _compose_maps(a: Jac, b: Jac) -> Jac | None:
    """``a · b`` as one gather when both are bare maps in which each element meets at most one
    other — selections, reshapes, axis moves, embeddings that place (:func:`_places`) — and one of them is an advanced
    selection or an embedding (``x.reshape(-1)[idx]``, ``pad(x)[1:]``, slices joined), not both
    embeddings; ``None`` otherwise. Where the result reads nothing it has a hole. Axes passed
    through by both stay pairs; the rest is found by sending the gathered input axes'
    coordinates through both maps (and ones, for the holes)."""
    if a.embed is not None and b.embed is not None or _valued(a) or _valued(b):
        return None
    if not any(isinstance(j.select, Take) or _places(j) for j in (a, b)) \
            and not any(_broadcasts(x) and not _moves_axes(x) and _lazy(y) for x, y in ((a, b), (b, a))):
        return None  # (a broadcast read through a lazy index is a gather: x - x[0] reads x[0] n times)
    if not all(_gathers(j) or _broadcasts(j) or _places(j) for j in (a, b)):
        return None
    if (a.embed is not None or b.embed is not None) and 0 in a.out_shape + a.in_shape + b.in_shape:
        return None  # (an empty map: nothing to gather, and NumPy cannot index an empty axis)
    pair = [a.pair[p] if p >= 0 else -1 for p in b.pair]
    key = _map_key(a), _map_key(b)
    key = None if None in key else key
    if _PRICING.get() or any(isinstance(j.select, Take) and j.select.flat is None for j in (a, b)):
        return take_selection(a.out_shape, b.in_shape, pair, None, key)
    gathered = [k for k, p in enumerate(pair) if p < 0]
    fixed = tuple(0 if j in pair else slice(None) for j in range(a.m))

    def through(x: np.ndarray) -> np.ndarray:
        return _map_through(a, _map_through(b, np.broadcast_to(x, b.in_shape)))[fixed]

    coords = []
    for k in gathered:
        n = b.in_shape[k]
        coords.append(through(np.arange(n).reshape([n if t == k else 1 for t in range(len(b.in_shape))])))
    flat = (np.ravel_multi_index(coords, [b.in_shape[k] for k in gathered]) if gathered
            else np.zeros([a.out_shape[j] for j in range(a.m) if j not in pair], dtype=np.intp))
    if a.embed is not None or b.embed is not None or any(isinstance(j.select, Take) and j.select.holes
                                                         for j in (a, b)):
        flat = np.array(flat, dtype=np.intp)  # (a 0-d gather: a NumPy scalar until here)
        flat[through(np.ones((), dtype=np.int8)) == 0] = -1
    return take_selection(a.out_shape, b.in_shape, pair, flat, key)


def _embed_gather(e: Jac, g: Jac) -> Jac | None:
    """``e · g`` for a bare embedding ``e`` that places (:func:`_places`) and a gather ``g``: one gather with holes,
    carrying g's values placed where e puts them (no multiplications); ``None`` where
    :func:`_compose_maps` declines."""
    d, bare = _split(g)
    m = _compose_maps(e, bare)
    if m is None:
        return None
    if not _valued(g) or not d.vlabels:
        return _place(m, d) if _valued(g) else m
    vals = None
    if not _valueless(d):
        n = math.prod(e.out_shape)
        vals = np.reshape(put_rows(np.reshape(_full(d), (-1,)), n, np.reshape(_destinations(e), (-1,))), e.out_shape)
    return _place(m, diagonal(m.out_shape, vals))


# -- values on lazy maps: a gather of a diagonal stays one value per element --------------------
# d·S (S a selection or reshape, d diagonal on S's output) is stored as S carrying d's values, and
# Sᵀ·d (an embedding with d on its input) likewise: the form ∂(w * x[idx])/∂x and its transpose
# take. A diagonal commutes through such a map (S·d = d'·S with d' = d read through S), so products
# with diagonals stay in this form and cost no multiplications; any other partner meets the bare
# map and the diagonal one after the other, by associativity. The one product of two such maps
# whose middle would re-form them, an embedding times a gather, is built directly as the sum of
# its nonzeros (a sparse matrix made dense), never through a one-hot block.


_ONE = np.asarray(1.0)  # the value of a bare map's unit diagonal (never written to)


def _gathers(j: Jac) -> bool:
    """A lazy map in which every output element reads one input element (selection, reshape)."""
    return (j.select is not None or j.reshape) and j.embed is None


def _lazy(j: Jac) -> bool:
    return j.reshape or j.select is not None or j.embed is not None


def _valued(j: Jac) -> bool:
    """A lazy map that carries values (see the section comment)."""
    return j.vlabels is not None and _lazy(j)


def _diag_like(j: Jac) -> bool:
    """A square map with every axis paired with itself and values (diagonal, scaled identity)."""
    return (j.vlabels is not None and not _lazy(j) and j.factors is None and not j.neg
            and j.out_shape == j.in_shape and j.pair == tuple(range(j.m)))


def _bare(j: Jac) -> Jac:
    """The lazy map without its values."""
    return Jac._raw(j.out_shape, j.in_shape, j.pair, None, None, j.reshape, j.select, j.embed)


def _middle(j: Jac) -> Shape:
    """The side of a lazy map where each element meets one element of the other side."""
    return j.in_shape if j.embed is not None else j.out_shape


def _split(j: Jac) -> tuple[Jac, Jac]:
    """(d, bare map) with ``j = d·bare`` for a gather, ``j = bare·d`` for an embedding (d = 1
    for a map without values)."""
    shape = _middle(j)
    if j.vlabels is None:
        return Jac._raw(shape, shape, tuple(range(len(shape))), (), _ONE, False, None, None), j
    if j.embed is None:
        labels = j.vlabels
    else:
        axis = {j.in_label(k): k for k in range(len(j.in_shape))}
        labels = tuple(axis[lab] for lab in j.vlabels)
    return Jac._raw(shape, shape, tuple(range(len(shape))), labels, j._values, False, None, None), _bare(j)


def _place(lazy: Jac, d: Jac) -> Jac:
    """The bare lazy map carrying the diagonal ``d`` on its middle side (see :func:`_split`)."""
    labels = d.vlabels if lazy.embed is None else tuple(lazy.in_label(k) for k in d.vlabels)
    return Jac._raw(lazy.out_shape, lazy.in_shape, lazy.pair, labels, d.values, lazy.reshape, lazy.select,
                    lazy.embed)


def _full(d: Jac):
    """A diagonal's values over every element of its shape."""
    n = len(d.out_shape)
    return np.broadcast_to(_align(d, range(n)), d.out_shape)


def _carry(g: Jac, d: Jac) -> Jac:
    """``d'`` with ``g·d = d'·g`` for a bare gather ``g`` and a diagonal ``d`` on its input:
    each output reads its input's value (no multiplications)."""
    shape = g.out_shape
    if not d.vlabels:  # a scalar passes through unchanged
        return Jac(shape, shape, tuple(range(len(shape))), (), d.values)
    vals = None if _valueless(d) else asarray(_apply_lazy(g, _full(d)))
    return diagonal(shape, vals)


def _valued_labelled(j: Jac) -> Jac:
    """A valued lazy map as a labelled Jacobian: its values written where the bare map has its
    ones, zeros elsewhere (a write, not a multiplication: a NaN stays where it is)."""
    base = as_labelled(_bare(j))
    if base.pair != j.pair:
        raise StructureError(f"labelled form of {j.describe()} changed its pairing")
    labels = sorted(set(base.vlabels or ()) | set(j.vlabels))
    if _valueless(base) or j.symbolic:
        return Jac(j.out_shape, j.in_shape, j.pair, labels)
    ones = _align(base, labels) != 0
    vals = np.where(ones, _align(j, labels), 0.0)
    vals = np.broadcast_to(vals, [j.size_of(lab) for lab in labels]).copy()
    return Jac(j.out_shape, j.in_shape, j.pair, labels, vals)


def _scatter_gather(e: Jac, g: Jac) -> tuple[Jac, int] | None:
    """``e·g`` for an embedding ``e`` and a gather ``g`` without diagonal pairs: every middle
    element m contributes w[m] at (where e puts m, what g reads for m), summed where two meet.
    Costs one multiplication per middle element when both carry values. ``None`` where pairs
    would be lost (the result would be larger than the structured one)."""
    if any(p >= 0 for p in e.pair + g.pair):
        return None
    weights = [j for j in (e, g) if _valued(j)]
    mults = math.prod(g.out_shape) if len(weights) == 2 else 0
    n_out, n_in = math.prod(e.out_shape), math.prod(g.in_shape)
    if _valueless(g) or _valueless(e):
        return dense(e.out_shape, g.in_shape), mults
    sel, bare = _as_selection(_bare(e)), _bare(g)
    rows = _apply_lazy(sel, np.arange(n_out).reshape(e.out_shape))
    cols = _apply_lazy(bare, np.arange(n_in).reshape(g.in_shape))
    parts = [_full(_split(j)[0]) for j in weights]
    w = parts[0] * parts[1] if len(parts) == 2 else parts[0] if parts else np.ones(g.out_shape)
    flat = (np.asarray(rows, dtype=np.intp) * n_in + cols).reshape(-1)
    w = np.reshape(w, (-1,))
    reads = [r for r in (_reading(sel), _reading(bare)) if r is not None]
    if reads:  # a hole of either map: that middle element contributes nothing
        kept = reads[0] if len(reads) == 1 else np.intersect1d(*reads)
        w, flat = w[kept], flat[kept]
    vals = np.reshape(put_rows(w, n_out * n_in, flat, add=True), e.out_shape + g.in_shape)
    return Jac(e.out_shape, g.in_shape, None, range(len(e.out_shape) + len(g.in_shape)), vals), mults


def _output_scaled(j: Jac) -> tuple[Jac, Jac] | None:
    """``(d, B)`` with ``j = d·B`` for a broadcast ``B`` (see :func:`_broadcasts`) carrying values
    that vary along output axes only (∂(a / b)/∂b for a scalar b: a column), else None."""
    if j.vlabels is None or _lazy(j) or j.terms is not None or j.neg or j.factors is not None \
            or any(lab >= j.m for lab in j.vlabels):
        return None
    bare = Jac(j.out_shape, j.in_shape, j.pair)
    if not _broadcasts(bare):
        return None
    n = len(j.out_shape)
    return Jac(j.out_shape, j.out_shape, tuple(range(n)), j.vlabels, j.values), bare


def _through_broadcast(a: Jac, b: Jac) -> tuple[Jac, int] | None:
    """``a·b`` for a broadcast with output values ``a = d·B`` and a bare lazy map ``b``: ``d·(B·b)``,
    a gather carrying d (``sin(x) / x[0]``: the column −sin(x)/x[0]² read at x[0], no one-hot
    block); for a bare gather ``a`` and ``b = d·B``: ``d'·(a·B)`` with d read through a (the
    partial of ``np.outer(x, c).ravel()``, I ⊗ c reshaped); None otherwise."""
    if _lazy(b) and not _valued(b) and (found := _output_scaled(a)) is not None:
        d, bare = found
        c = _compose_maps(bare, b)  # d lies on c's output already
    elif _gathers(a) and not _valued(a) and (found := _output_scaled(b)) is not None:
        d, bare = found
        c = _compose_maps(a, bare)
        if c is not None:
            d = _carry(a, d)  # d read through a, onto c's output
    else:
        return None
    return None if c is None else (_place(c, d), 0)


def _map_key(j: Jac) -> object:
    """A hashable that equals another map's exactly when both are the same 0/1 map (values
    aside), or None where that is not known (a gather without a key)."""
    frame = (j.out_shape, j.in_shape, j.pair)
    if not _lazy(j):  # a diagonal term
        return ("diagonal",) + frame
    if j.reshape:
        return ("reshape",) + frame
    index, kind = (j.select, "select") if j.select is not None else (j.embed, "embed")
    if index is None:
        return ("move",) + frame if _broadcasts(j) else None
    if isinstance(index, Take):
        return None if index.key is None else (kind, index.out_axes, index.in_axes, index.key) + frame
    return (kind, index) + frame


def _same_map(a: Jac, b: Jac) -> bool:
    if not (_lazy(a) and _lazy(b)) or a.pair != b.pair or a.reshape != b.reshape \
            or (a.select is None) != (b.select is None):
        return False
    if a.select is b.select and a.embed is b.embed and a.reshape == b.reshape and a.pair == b.pair:
        return True
    key = _map_key(a)
    return key is not None and key == _map_key(b)


def _through_lazy(a: Jac, b: Jac) -> tuple[Jac, int] | None:
    """``a·b`` where a lazy map meets a diagonal or carries values; ``None`` otherwise."""
    if a.embed is not None and _gathers(b) and not (_places(a) and _valued(a)):
        c = _embed_gather(a, b) if _places(a) else None  # (a valued a: its values go onto b first)
        if c is not None:
            return c, 0
        c = _scatter_gather(a, b)
        if c is None and (_valued(a) or _valued(b)):  # the embedding as a block, then as below
            return product(as_labelled(a), b)
        return c
    if _valued(a):
        d, bare = _split(a)
        if _gathers(bare):  # a·b = d·(S·b)
            c, m1 = product(bare, b)
            c, m2 = product(d, c)
        else:  # a·b = Sᵀ·(d·b)
            c, m1 = product(d, b)
            c, m2 = product(bare, c)
        return c, m1 + m2
    if _valued(b):
        d, bare = _split(b)
        if _gathers(bare):  # a·b = (a·d)·S
            c, m1 = product(a, d)
            c, m2 = product(c, bare)
        else:  # a·b = (a·Sᵀ)·d
            c, m1 = product(a, bare)
            c, m2 = product(c, d)
        return c, m1 + m2
    if _diag_like(a) and _gathers(b):  # d·S: S carries d
        return _place(b, a), 0
    if a.embed is not None and _diag_like(b):  # Sᵀ·d: the embedding carries d
        return _place(a, b), 0
    if _gathers(a) and _diag_like(b):  # S·d = d'·S
        return _place(a, _carry(a, b)), 0
    if _diag_like(a) and b.embed is not None:  # d·Sᵀ = Sᵀ·d', d' = d read through S
        return _place(b, _carry(_as_selection(b), a)), 0
    return None



# -- sums of lazy maps: stencils ----------------------------------------------------------------
# u[2:] − 2·u[1:-1] + u[:-2] has the partial S₁ − 2·S₂ + S₃: a sum of (valued) lazy maps, one
# nonzero per row each. Kept as its terms, it stores a few numbers per row instead of a dense
# n × n block; a product distributes over the terms, and terms that turn out to be the same map
# (shifts composed into the same window) merge by adding their values. A sum that would store no
# fewer values than its labelled block (short axes, pairs) is stored as that block instead. A
# diagonal joins such a sum as the identity map carrying its values (np.roll(u, 1) − 2·u: S − 2·I).

MAX_TERMS = 16  # more and the sum is stored as one labelled block


_LABELLED_SIZES: dict = {}


def _labelled_size(j: Jac) -> int:
    """How many values ``j`` would store as one labelled block (found without building it;
    remembered per structure, as pricing asks again and again)."""
    keys = tuple((_map_key(t), t.vlabels) for t in j.terms)
    if keys in _LABELLED_SIZES:
        return _LABELLED_SIZES[keys]
    token = _PRICING.set(True)
    try:
        size = as_labelled(j).value_size
    finally:
        _PRICING.reset(token)
    if all(k is not None for k, _ in keys) and len(_LABELLED_SIZES) < 100_000:
        _LABELLED_SIZES[keys] = size
    return size


def _terms_of(j: Jac) -> list[Jac]:
    return list(j.terms) if j.terms is not None else [j]


def _sum_of(terms: list[Jac]) -> Jac | None:
    """The sum of lazy maps, equal maps merged; ``None`` past ``MAX_TERMS`` terms."""
    merged: list[Jac] = []
    slot: dict = {}  # a map's key (see _map_key; diagonals share one) -> its place in merged
    for t in terms:
        key = _map_key(t) if _lazy(t) else "diagonals"  # (two diagonals add as blocks)
        i = slot.get(key) if key is not None else next((n for n, m in enumerate(merged) if _same_map(m, t)), None)
        if i is not None:
            merged[i] = add(merged[i], t)
        else:
            if key is not None:
                slot[key] = len(merged)
            merged.append(t)
    if len(merged) > MAX_TERMS:
        return None
    if len(merged) == 1:
        return merged[0]
    return Jac(merged[0].out_shape, merged[0].in_shape, terms=merged)


def _term(j: Jac) -> bool:
    """A Jacobian a sum of lazy maps may hold as a term: a lazy map, or a diagonal (the identity
    map carrying values: ``sin(x) + 3·x[::-1]`` has the partial diag(cos x) + 3·S)."""
    return _lazy(j) or _diag_like(j) or is_identity(j)


def _summand(j: Jac) -> bool:
    return j.terms is not None or _term(j)


def _dense_sum(j: Jac, start: np.ndarray | None = None, terms: list[Jac] | None = None) -> np.ndarray:
    """A sum of gathers and diagonals as its dense array, each term's values written at the entries
    it reads (added where terms meet): the result and a few numbers per row, no block per term.
    ``start``: a dense array (axes ``out_shape + in_shape``) the terms are added to; ``terms``:
    the terms, where not ``j``'s own (``j`` then gives only the shapes)."""
    out, n_in = j.out_shape, math.prod(j.in_shape)
    r = np.arange(math.prod(out)).reshape(out)
    where, values = [], []
    for t in _terms_of(j) if terms is None else terms:
        d, bare = _split(t)
        cols = _apply_lazy(bare, np.arange(n_in).reshape(j.in_shape)) if _lazy(bare) else r  # (a diagonal: r, r)
        at, v = np.reshape(r * n_in + cols, (-1,)), np.reshape(np.broadcast_to(_full(d), out), (-1,))
        read = _reading(bare)
        if read is not None:  # a hole reads nothing
            at, v = at[read], v[read]
        where.append(at)
        values.append(v)
    size = math.prod(out) * n_in
    flat = None if start is None else np.reshape(start, (-1,))
    for group, add in _disjoint(where, size):  # a plain write per group: no sums of repeated positions
        placed = put_rows(np.concatenate([values[k] for k in group]), size,
                          np.concatenate([where[k] for k in group]), add=add)
        flat = placed if flat is None else flat + placed
    return np.reshape(flat, out + j.in_shape)


#: at most this many groups of terms whose positions do not meet (:func:`_disjoint`)
DISJOINT_GROUPS = 8


def _disjoint(where: list[np.ndarray], size: int) -> list[tuple[list[int], bool]]:
    """Terms (by index into ``where``, their flat positions in an array of ``size`` entries) in
    groups whose positions do not meet, first fit, each with ``False``: written, not summed. Past
    :data:`DISJOINT_GROUPS` groups (or 2²⁴ entries) the rest form one group summed in place
    (``np.add.at``). A program adds each group into the sum so far where it lands (see
    ``jacc.program._rows_added_in_place``); one scatter-add of every term wrote nothing in place."""
    if len(where) == 1 or size > 1 << 24:
        return [(list(range(len(where))), len(where) > 1)]
    groups: list[list[int]] = []
    masks: list[np.ndarray] = []
    rest: list[int] = []
    for k, at in enumerate(where):
        for g, m in zip(groups, masks):
            if not m[at].any():
                g.append(k)
                m[at] = True
                break
        else:
            if len(groups) == DISJOINT_GROUPS:
                rest.append(k)
                continue
            m = np.zeros(size, dtype=bool)
            m[at] = True
            groups.append([k])
            masks.append(m)
    return [(g, False) for g in groups] + ([(rest, True)] if rest else [])


def _summed_in_one_pass(parts: list[Jac]) -> Jac | None:
    """The sum of ``parts`` — gathers and diagonals (:func:`_scattered`) and complete blocks — as
    the complete block that adding them pair by pair gives, with every gather's values written in
    one pass (:func:`_dense_sum`) onto the sum of the blocks; ``None`` where the pairwise sum has
    another structure, or when pricing. Pair by pair, each term was a pass of its own: a product
    through ``np.cumprod``'s prefix network over 1,000 numbers added 478 terms, four statements
    each, per call."""
    if _PRICING.get() or len(parts) < 3:
        return None
    lazy = [c for c in parts if _scattered(c)]
    blocks = [c for c in parts if _complete(c)]
    if not lazy or len(lazy) + len(blocks) != len(parts):
        return None
    with pricing():
        shape = parts[0].strip()
        for c in parts[1:]:
            shape = add(shape, c.strip())
    if not _every_label(shape) or shape.vlabels != tuple(sorted(shape.vlabels)):
        return None
    start = None
    for c in blocks:
        v = _align(c, list(range(len(c.vlabels))))
        start = v if start is None else start + v
    return _block(parts[0], _dense_sum(parts[0], start, [t for c in lazy for t in _terms_of(c)]))


def _kept_sum(terms: list[Jac]) -> Jac | None:
    """The sum of ``terms`` (lazy maps and diagonals) when it stays smaller than its labelled
    block, else ``None`` (the caller adds them as blocks)."""
    c = _sum_of(terms)
    return c if c is not None and (c.terms is None or c.value_size < _labelled_size(c)) else None


def _scattered(j: Jac) -> bool:
    """A sum (or term) that :func:`_dense_sum` writes: gathers and diagonals with values."""
    return _summand(j) and not j.symbolic and all(_gathers(t) or not _lazy(t) for t in _terms_of(j))


def _block(j: Jac, values) -> Jac:
    """The complete labelled block of ``j``'s shape holding ``values`` (axes out + in; recordable)."""
    return Jac(j.out_shape, j.in_shape, None, tuple(range(j.m + len(j.in_shape))), values)


def _every_label(j: Jac) -> bool:
    """No pairs, and a value per label: the structure of a block that stores every entry."""
    return all(p < 0 for p in j.pair) and j.vlabels is not None and len(j.vlabels) == j.m + len(j.in_shape)


def _complete(j: Jac) -> bool:
    """A labelled block with values that stores every entry."""
    return not _lazy(j) and j.terms is None and j.values is not None and _every_label(j)


def _negated_term(t: Jac) -> Jac:
    if t.vlabels is not None:
        return negate(t)
    d, bare = _split(t)
    return _place(bare, Jac(d.out_shape, d.in_shape, d.pair, (), np.asarray(-1.0)))


def term_values(j: Jac) -> list:
    """Per term of a sum of lazy maps, its values over its middle side (1 for a bare map)."""
    return [_full(_split(t)[0]) for t in _terms_of(j)]


def with_term_values(j: Jac, values: Sequence) -> Jac:
    """The stripped sum ``j`` carrying ``values`` (as :func:`term_values` gives them)."""
    out = []
    for t, v in zip(_terms_of(j), values):
        bare = _bare(t)
        shape = _middle(bare)
        out.append(_place(bare, diagonal(shape, np.reshape(v, shape))))
    return out[0] if j.terms is None else Jac(j.out_shape, j.in_shape, terms=out)
