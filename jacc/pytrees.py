"""Nested arguments and results: dicts, tuples and lists of arrays (JAX calls them pytrees).

A model's parameters are often a dict (``{"W": W, "b": b}``) or a tuple of arrays, and a function
may return several arrays in a dict or nested tuple. :func:`jacc.jacobian` and :func:`jacc.trace`
take such arguments apart into their leaves, each an input of the graph named after its path
(``params.W``, ``layers[0]``), and give the Jacobian back in the same nesting.

What counts as nesting: a dict and a namedtuple always; a tuple or list when it holds an array, a
dict or another nested container. A list or tuple of plain numbers (``[1.0, 2.0]``, ``[[1, 2], [3, 4]]``) stays
one array argument, as NumPy reads it.

>>> tree = {"W": np.ones((2, 2)), "b": (np.zeros(2), 3.0)}
>>> leaves, spec = flatten(tree)
>>> len(leaves), spec.paths("p")
(3, ['p.W', 'p.b[0]', 'p.b[1]'])
>>> unflatten(spec, ["w", "b0", "b1"])
{'W': 'w', 'b': ('b0', 'b1')}
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

_SEQUENCES = (tuple, list)


def _holds_arrays(x: Any) -> bool:
    """Whether ``x`` is an array or a container: something NumPy would not read as part of a
    surrounding array of numbers."""
    if type(x) is np.ndarray:
        return True
    from .trace import Tracer  # (trace imports this module)

    if isinstance(x, (np.ndarray, Tracer, dict)):
        return True
    jax = sys.modules.get("jax")  # (a jax.Array, as an ndarray: a tuple of them was stacked into one array)
    return (jax is not None and isinstance(x, jax.Array)) or (isinstance(x, _SEQUENCES) and is_node(x))


def is_node(x: Any) -> bool:
    """A container to take apart: a dict, a namedtuple, or a tuple/list holding an array or a
    container."""
    if type(x) is np.ndarray:  # (the common leaf, answered first: calls with data flatten per call)
        return False
    if isinstance(x, dict) or (isinstance(x, tuple) and hasattr(type(x), "_fields")):
        return True
    return isinstance(x, _SEQUENCES) and any(_holds_arrays(c) for c in x)


@dataclass(frozen=True)
class TreeSpec:
    """The nesting of a container: its kind, keys (dict) and each child's spec (``None``: a leaf)."""

    kind: type
    keys: tuple
    children: tuple

    @property
    def size(self) -> int:
        """The number of leaves."""
        return sum(1 if c is None else c.size for c in self.children)

    def paths(self, name: str) -> list[str]:
        """Each leaf's vertex name: ``name`` followed by ``.key`` (a dict key) or ``[i]`` (a
        position or other key); characters a vertex name cannot hold become ``_``, and a name
        that repeats an earlier one gets ``-2``, ``-3``, …"""
        out: list[str] = []
        for path in self._paths(name):
            unique, k = path, 1
            while unique in out:
                k += 1
                unique = f"{path}-{k}"
            out.append(unique)
        return out

    def _paths(self, name: str) -> list[str]:
        out: list[str] = []
        for key, child in zip(self.keys, self.children):
            if issubclass(self.kind, dict) and isinstance(key, str):
                here = f"{name}.{_clean(key)}"
            else:
                here = f"{name}[{key if isinstance(key, int) else _clean(str(key))}]"
            out += [here] if child is None else child._paths(here)
        return out


def _clean(key: str) -> str:
    from .graph import NAME_PUNCT

    key = unicodedata.normalize("NFC", key)
    return "".join(c if c in NAME_PUNCT or unicodedata.category(c)[0] in "LMN" else "_" for c in key) or "_"


def flatten(x: Any, node=is_node) -> tuple[list, TreeSpec | None]:
    """``(leaves, spec)`` in depth-first order, dict entries in their insertion order; a leaf
    itself gives ``([x], None)``. ``node`` says which objects to take apart (default
    :func:`is_node`)."""
    if not node(x):
        return [x], None
    leaves: list = []
    items = list(x.items()) if isinstance(x, dict) else list(enumerate(x))
    specs = []
    for _, c in items:
        sub, spec = flatten(c, node)
        leaves += sub
        specs.append(spec)
    kind = type(x)
    return leaves, TreeSpec(kind, tuple(k for k, _ in items), tuple(specs))


def unflatten(spec: TreeSpec | None, leaves: list) -> Any:
    """The inverse of :func:`flatten`: ``leaves`` put back in ``spec``'s nesting."""
    if spec is None:
        return leaves[0]
    it = iter(leaves)
    return _build(spec, it)


def _build(spec: TreeSpec, it) -> Any:
    parts = [next(it) if c is None else _build(c, it) for c in spec.children]
    if issubclass(spec.kind, dict):
        return _rebuild_mapping(spec.kind, spec.keys, parts)
    if hasattr(spec.kind, "_fields"):  # a namedtuple
        return spec.kind(*parts)
    return spec.kind(parts)


def _rebuild_mapping(kind: type, keys: tuple, parts: list) -> Any:
    try:
        return kind(zip(keys, parts))
    except TypeError:  # a mapping type that cannot be built from pairs: a plain dict
        return dict(zip(keys, parts))


def leaf_key(x: Any) -> Any:
    """A leaf's shape, with a 0-d array told from a number: ``x += 1`` changes a 0-d array in place
    (an alias sees it) where it rebinds a number, so ``f`` may record another graph for each."""
    if isinstance(x, np.ndarray):
        return x.shape if x.ndim else ZERO_D
    return () if type(x) is float else np.shape(x)


#: :func:`leaf_key` of a 0-d array
ZERO_D = "0-d array"


def signature(x: Any) -> Any:
    """A hashable key for a call's argument: its spec and leaf keys (:func:`leaf_key`) when it is
    nested, else its leaf key (so a cache keyed on shapes tells nestings apart)."""
    if not is_node(x):
        return leaf_key(x)
    leaves, spec = flatten(x)
    return spec, tuple(leaf_key(leaf) for leaf in leaves)
