"""Scalar plans as machine code: :mod:`jacc.compile`'s float code built by the system C compiler.

The float code of a scalar plan (primal values, local partials and the plan's eliminations, one
statement each) is straight-line arithmetic, which Python runs at tens of nanoseconds an
operation. The same statements written as one C function and built with ``cc`` run at about a
nanosecond each, as CasADi's generated code does. This is ``backend="c"`` of
:func:`~jacc.jacobian` and :meth:`Plan.compile <jacc.Plan.compile>`: it needs a C compiler (``cc``,
or the one named by the ``CC`` environment variable) and nothing else; built libraries are kept
in ``$JACC_CACHE`` (default ``~/.cache/jacc``) under the hash of their source, so a plan is built
once per machine.

The translation is exact, not approximate: every formula is parsed (:mod:`ast`) and written with
the same IEEE operations in the same order — no ``-ffast-math``, no contraction into fused
multiply-adds — so results equal the float code's bit for bit wherever the C library's functions
equal Python's :mod:`math` (``exp``, ``log``, ``sin`` … are the same libm calls). Where Python
raises (``log(-1)``, division by zero), C returns NumPy's NaN or ±inf directly. A formula with
a function that has no C twin here (SciPy's special functions) makes the whole plan refuse with
:class:`~jacc.compile.CompileError`, and the caller keeps the float code.

>>> from jacc import examples, plan
>>> f = plan(examples.lecture_f(), "reverse").compile("c")  # doctest: +SKIP
>>> {k: round(v, 3) for k, v in f(2.0, 5.0).items()}  # doctest: +SKIP
{('v5', 'x1'): 5.5, ('v5', 'x2'): 1.716}
>>> print(f.source.split("void jacobian")[1])  # doctest: +SKIP
(const double *restrict in, double *restrict out, double *restrict w)
{
    const double _v2 = in[1];
    const double _v4 = _F_v4(_v2);
    const double _v0 = in[0];
    ...
    out[0] = _s3_8;
    out[1] = _s2_7;
}

(The examples are not run as doctests: a machine without a C compiler would fail them;
``tests/test_ccode.py`` runs them where there is one. Windows is not supported: there
:func:`compiler` finds none.)
"""

from __future__ import annotations

import _ctypes
import ast
import contextlib
import ctypes
import hashlib
import math
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import locks
from .compile import _NAME, CompileError, _live, flat_constants

#: MATH_NAMES entries whose C twin is a libm function of the same semantics
LIBM = {"exp": "exp", "expm1": "expm1", "log": "log", "log1p": "log1p", "sin": "sin", "cos": "cos",
        "tan": "tan", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh", "arctan": "atan", "arcsin": "asin",
        "arccos": "acos", "sqrt": "sqrt", "abs": "fabs", "power": "pow", "exp2": "exp2", "log2": "log2",
        "log10": "log10", "cbrt": "cbrt", "hypot": "hypot", "arcsinh": "asinh", "arccosh": "acosh",
        "arctanh": "atanh", "arctan2": "atan2", "fmod": "fmod", "copysign": "copysign", "erf": "erf",
        "erfc": "erfc", "floor": "floor", "ceil": "ceil", "trunc": "trunc", "rint": "rint"}

#: jacc.compile's own float helpers, written out in C step for step (see that module's twins)
HELPERS = {
    "sign": "double h_sign(double x) { return x != x ? x : (double)((x > 0) - (x < 0)); }",
    "maximum": "double h_maximum(double a, double b) { return (a != a || b != b) ? a + b : (a >= b ? a : b); }",
    "minimum": "double h_minimum(double a, double b) { return (a != a || b != b) ? a + b : (a <= b ? a : b); }",
    "fmax": "double h_fmax(double a, double b) { return a != a ? b : b != b ? a : (a >= b ? a : b); }",
    "fmin": "double h_fmin(double a, double b) { return a != a ? b : b != b ? a : (a <= b ? a : b); }",
    "tie": "double h_tie(double a, double b) { return (double)(a > b) + 0.5 * (double)(a == b); }",
    "ftie": "double h_ftie(double a, double b) "
            "{ return (double)(a > b) + 0.5 * (double)(a == b) + (double)(b != b) * (double)(a == a); }",
    "powgrad": "double h_powgrad(double a, double b) { return b == 0 ? 0.0 : b * pow(a, b - 1.0); }",
    "nonzero": "double h_nonzero(double a) { return a == 0 ? 1.0 : a; }",
    "sinc": "double h_sinc(double x) { return x == 0 ? 1.0 : sin(JACC_PI * x) / (JACC_PI * x); }",
    "sincgrad": "double h_sincgrad(double x, double y) { double t = JACC_PI * x; if (fabs(t) < 0.1) "
                "{ double t2 = t * t; return JACC_PI * t * (-1.0 / 3.0 + t2 * (1.0 / 30.0 + t2 * "
                "(-1.0 / 840.0 + t2 / 45360.0))); } return (cos(t) - y) / x; }",
    "logaddexp": "double h_logaddexp(double a, double b) { if (a == b) return a + 0.6931471805599453; "
                 "double d = a - b; return d > 0 ? a + log1p(exp(-d)) : d <= 0 ? b + log1p(exp(d)) : d; }",
    "logaddexp2": "double h_logaddexp2(double a, double b) { if (a == b) return a + 1.0; double d = a - b; "
                  "return d > 0 ? a + 1.4426950408889634 * log1p(pow(2.0, -d)) "
                  ": d <= 0 ? b + 1.4426950408889634 * log1p(pow(2.0, d)) : d; }",
    "heaviside": "double h_heaviside(double a, double b) { return a != a ? a : a < 0 ? 0.0 : a > 0 ? 1.0 : b; }",
    "where": "double h_where(double m, double a, double b) { return m != 0 ? a : b; }",
    "xlogy": "double h_xlogy(double a, double b) { return (a == 0 && b == b) ? 0.0 : a * log(b); }",
    "xlog1py": "double h_xlog1py(double a, double b) { return (a == 0 && b == b) ? 0.0 : a * log1p(b); }",
    "log_expit": "double h_log_expit(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }",
    "entr": "double h_entr(double x) { return x > 0 ? -x * log(x) : x == 0 ? 0.0 : x != x ? x : -INFINITY; }",
    "logratio": "double h_logratio(double a, double b) { double r = a / b; if (r > 0.5 && r < 2.0) "
                "return log1p((a - b) / b); return (r > 2.2250738585072014e-308 && r < INFINITY) ? log(r) "
                ": log(a) - log(b); }",
    "rel_entr": "double h_rel_entr(double a, double b) { if (a != a || b != b) return NAN; "
                "if (a > 0 && b > 0) return a * h_logratio(a, b); return (a == 0 && b >= 0) ? 0.0 : INFINITY; }",
    "ndtr": "double h_ndtr(double x) { double t = x * 0.7071067811865476; if (fabs(t) < 0.7071067811865476) "
            "return 0.5 + 0.5 * erf(t); double y = 0.5 * erfc(fabs(t)); return t > 0 ? 1.0 - y : y; }",
}

PRELUDE = ("#include <math.h>\n#define JACC_PI 3.141592653589793\n"
           + "".join(f"static inline {h}\n" for h in HELPERS.values()))

_COMPARE = {ast.Lt: "<", ast.Gt: ">", ast.LtE: "<=", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def c_name(name: str) -> str:
    """A Python name of the float code as a C identifier that cannot meet libm's (``y0``, ``j1``)."""
    return "_" + name


def literal(value: float) -> str:
    """A double literal with the exact value (``repr`` round-trips; C reads it the same)."""
    value = float(value)
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    text = repr(value)
    return text if any(c in text for c in ".e") else text + ".0"


def expression(text: str, functions: dict[str, str]) -> str:
    """The Python float expression ``text`` in C; ``functions`` maps the names it may call to C
    functions. Raises :class:`CompileError` on anything else (``%``, ``and``, attributes …).

    >>> expression("x * (1.0 - y * y)", {})
    '(_x * (1.0 - (_y * _y)))'
    >>> expression("a ** 2 if a > 0 else 0", {})
    '((((double)(_a > 0.0))) != 0 ? pow(_a, 2.0) : 0.0)'
    """
    return _c(ast.parse(text.strip(), mode="eval").body, functions)


def _c(node: ast.AST, functions: dict[str, str]) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):  # bools too
        return literal(node.value)
    if isinstance(node, ast.Name):
        return c_name(node.id)
    if isinstance(node, ast.BinOp):
        a, b = _c(node.left, functions), _c(node.right, functions)
        if type(node.op) in _ARITH:
            return f"({a} {_ARITH[type(node.op)]} {b})"
        if isinstance(node.op, ast.Pow):
            return f"pow({a}, {b})"
    elif isinstance(node, ast.UnaryOp):
        a = _c(node.operand, functions)
        if isinstance(node.op, ast.USub):
            return f"(-{a})"
        if isinstance(node.op, ast.UAdd):
            return a
        if isinstance(node.op, ast.Not):
            return f"((double)!({a}))"
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        a, b = _c(node.left, functions), _c(node.comparators[0], functions)
        return f"((double)({a} {_COMPARE[type(node.ops[0])]} {b}))"
    elif isinstance(node, ast.IfExp):  # a double is true where it is not 0 (NaN is true), as in Python
        return (f"(({_c(node.test, functions)}) != 0 ? {_c(node.body, functions)} "
                f": {_c(node.orelse, functions)})")
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
          and node.func.id in functions):
        return f"{functions[node.func.id]}({', '.join(_c(a, functions) for a in node.args)})"
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        raise CompileError(f"C: no C twin of {node.func.id!r}; the float code runs instead")
    raise CompileError(f"C: cannot write {ast.unparse(node)!r}; the float code runs instead")


def source(jacobian: Callable, keep: Sequence[int], name: str = "jacobian") -> tuple[str, int]:
    """C source of ``void name(const double *in, double *out, double *w)`` and the number of
    doubles its workspace ``w`` needs: ``jacobian`` is :func:`~jacc.compile.compile_plan`'s
    function; the code writes ``out[i]`` for each flat entry ``i`` in ``keep``
    (:func:`~jacc.compile.flat`'s order) and computes only what they need.

    Long code is cut into functions of :data:`CHUNK` statements that pass the values they share
    through ``w``: a compiler allocates registers over a whole function, and on 10⁵ statements
    with long-lived values that alone took gcc minutes."""
    params, lines, _, env, _ = jacobian.flat_parts
    exprs = [jacobian.flat_exprs[i] for i in keep]
    lines = _live(lines, exprs)
    functions = {**LIBM, **{k: f"h_{k}" for k in HELPERS}}
    out = [PRELUDE]
    for key, value in env.items():  # formulas as static functions, non-finite constants as globals
        if hasattr(value, "spec"):
            expr, names = value.spec
            args = ", ".join(f"double {c_name(a.strip())}" for a in names.split(",") if a.strip())
            out.append(f"static inline double {c_name(key)}({args}) "
                       f"{{ return {expression(expr, functions)}; }}")
        elif isinstance(value, float):
            out.append(f"static const double {c_name(key)} = {literal(value)};")
    functions.update({k: c_name(k) for k, v in env.items() if hasattr(v, "spec")})
    inputs = {p.strip(): i for i, p in enumerate(params.split(",")) if p.strip()}
    # (the name assigned, or the output entry's index; C expression; variables read)
    stmts: list[tuple[str | int, str, list[str]]] = []
    defined: dict[str, int] = {}  # name -> statement index
    for line in lines:
        target, expr = line.split(" = ", 1)
        if target in defined:
            raise CompileError(f"C: {target} is assigned twice; the float code runs instead")
        stmts.append((target, expression(expr, functions), _reads(expr, defined, inputs)))
        defined[target] = len(stmts) - 1
    stmts += [(i, expression(e, functions), _reads(e, defined, inputs)) for i, e in zip(keep, exprs)]
    chunks = [stmts[k:k + CHUNK] for k in range(0, len(stmts), CHUNK)] or [[]]
    home = {n: defined[n] // CHUNK for n in defined}
    slots: dict[str, int] = {}  # values read by a later chunk than their own: their place in w
    for c, chunk in enumerate(chunks):
        for _, _, reads in chunk:
            for n in reads:
                if n in home and home[n] != c and n not in slots:
                    slots[n] = len(slots)
    parts = []
    for c, chunk in enumerate(chunks):
        body, loaded = [], set()
        for target, cexpr, reads in chunk:
            for n in reads:
                if n not in loaded and (n in inputs or home[n] != c):
                    source_ = f"in[{inputs[n]}]" if n in inputs else f"w[{slots[n]}]"
                    body.append(f"    const double {c_name(n)} = {source_};")
                    loaded.add(n)
            if isinstance(target, str):
                body.append(f"    const double {c_name(target)} = {cexpr};")
                loaded.add(target)
                if target in slots:
                    body.append(f"    w[{slots[target]}] = {c_name(target)};")
            else:
                body.append(f"    out[{target}] = {cexpr};")
        fname = name if len(chunks) == 1 else f"{name}_{c}"
        attr = "" if len(chunks) == 1 else "static __attribute__((noinline)) "
        parts.append(f"{attr}void {fname}(const double *restrict in, double *restrict out, double *restrict w)"
                     "\n{\n" + "\n".join(body) + "\n}\n")
    if len(chunks) > 1:
        calls = "".join(f"    {name}_{c}(in, out, w);\n" for c in range(len(chunks)))
        parts.append(f"void {name}(const double *restrict in, double *restrict out, double *restrict w)"
                     f"\n{{\n{calls}}}\n")
    return "\n".join(out + parts), len(slots)


def _reads(expr: str, defined: dict, inputs: dict) -> list[str]:
    """The variables a Python expression reads (function names are neither)."""
    return list(dict.fromkeys(n for n in _NAME.findall(expr) if n in defined or n in inputs))


# -- building -----------------------------------------------------------------------------------

#: statements per C function (see :func:`source`)
CHUNK = 2000
#: the longest scalar code that is built (beyond, the float code or the array program runs)
MAX_LINES = 150_000
#: the longest that ``"auto"`` builds on its own, except for a graph of short vectors
#: (:func:`jacc.unroll.short`), whose code up to :data:`MAX_LINES` it builds quickly past this
#: length (``-O0``: gcc took 2.3 s for an RK4 Lorenz system over 150 steps, 73,000 statements,
#: where ``-O1`` took 9.3 s; the code then ran 95 µs a call against 60 µs, and 2 ms as floats)
AUTO_LINES = 5_000
#: the longest code ``"auto"`` builds at ``-O2``; longer, it builds at ``-O0``. Straight-line code
#: gains little from optimising and gcc's time grows fast with it: ``sin(x) * x.sum()`` over 57
#: numbers, 3,800 statements, built in 3.3 s at ``-O2`` (a first call of 3.4 s, found by a hunt)
#: and 0.17 s at ``-O0``, and then ran 8.8 µs a call against 11.0 µs (floats: 22 µs)
AUTO_O2_LINES = 300
#: under ``backend="auto"`` with ``retrace=False``, float code measured this slow (seconds per
#: call) is also built as C, which is kept where it takes under ``MARGIN`` times as long (C's call
#: costs ~1 µs more than a few float lines, a tie is noise, and floats need no build)
WORTH = 5e-6
MARGIN = 0.8
#: seconds a line of built code takes, at least (the scalar route's early estimate, see
#: :func:`jacc.unroll.unroll`)
SECONDS_PER_LINE = 1e-9
#: seconds gcc takes per line of a quick (``-O0``) build, about (5,700 lines: 0.39 s)
BUILD_SECONDS_PER_LINE = 7e-5
#: the longest C source (statements) built at ``-O2``; longer straight-line code builds at ``-O1``,
#: which gcc finishes sooner and which runs as fast on code without loops, and beyond
#: :data:`O1_LINES` (or asked for a quick build) at ``-O0``: ``backend="c"`` of ``tanh(x) * x.sum()``
#: over 100 numbers, 11,100 lines, took gcc 10.7 s at ``-O2``, 4.1 s at ``-O1``, 0.42 s at ``-O0``
#: (found by a hunt; 20,000 and 40,000 lines before)
O2_LINES = 2_000
O1_LINES = 5_000
#: seconds a build may take before the float code runs instead
BUILD_TIMEOUT = 300
_lock = locks.lock()
#: source hash -> library, within this process, while something holds it (a function of it holds
#: its library): one no longer held is unloaded (``dlclose``), so a process that makes a closure
#: per call does not keep every library it loaded
_loaded: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def compiler() -> str | None:
    """The C compiler ``backend="c"`` uses (``$CC``, else ``cc``; ``$CC`` may carry arguments, as
    ``ccache gcc``), or None where there is none (and on Windows, whose compilers build libraries
    differently)."""
    if os.name == "nt":
        return None
    words = shlex.split(os.environ.get("CC") or "cc")
    found = shutil.which(words[0]) if words else None
    return None if found is None else shlex.join([found, *words[1:]])


def auto_c() -> bool:
    """Whether ``backend="auto"`` may build C (see :data:`WORTH`): a compiler is
    found and ``$JACC_NO_C`` is not set."""
    return not os.environ.get("JACC_NO_C") and compiler() is not None


def require() -> str:
    """The C compiler, or one clear :class:`~jacc.program.BackendError` naming the fix."""
    from .program import BackendError

    cc = compiler()
    if cc is None:
        raise BackendError("backend 'c' needs a C compiler: install gcc or clang, or name one in $CC")
    return cc


def cache_dir() -> Path:
    return Path(os.environ.get("JACC_CACHE") or Path.home() / ".cache" / "jacc") / "c"


def build(src: str, name: str = "jacobian", quick: bool = False) -> Callable:
    """The function ``name`` of the C source ``src``, built once per machine (a library per source
    hash in :func:`cache_dir`, or a temporary one where that is not writable); ``quick``: at
    ``-O0`` (see :func:`_level`)."""
    fn = getattr(library(src, quick), name)
    fn.restype, fn.argtypes = None, [ctypes.c_void_p] * 3
    return fn


def library(src: str, quick: bool = False, extra: Sequence[str] = ()) -> ctypes.CDLL:
    """The library built from the C source ``src`` (see :func:`build`), with ``extra`` arguments
    for the compiler after the source (libraries to link, options)."""
    cc = require()
    level = _level(src, quick)
    digest = hashlib.sha256("\0".join((cc, level, *extra, src)).encode()).hexdigest()[:32]
    with _lock:
        lib = _loaded.get(digest)
        if lib is None:
            path = _library(cc, src, digest, level, extra)
            try:
                lib = _load(path)
            except OSError:  # pruned by another process meanwhile, or unloadable: once more
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
                try:
                    lib = _load(_library(cc, src, digest, level, extra))
                except OSError as e:
                    raise CompileError(f"C: the built library does not load ({e}); the float code runs") from None
            _loaded[digest] = lib
    return lib


def _load(path: Path) -> ctypes.CDLL:
    """The library at ``path``, unloaded once nothing holds it (ctypes never unloads one)."""
    lib = ctypes.CDLL(str(path))
    close = getattr(_ctypes, "dlclose", None)  # (POSIX)
    if close is not None:
        weakref.finalize(lib, close, lib._handle)
    return lib


def _level(src: str, quick: bool) -> str:
    lines = src.count("\n")
    return "-O0" if quick or lines > O1_LINES else "-O2" if lines <= O2_LINES else "-O1"


#: built libraries a cache folder keeps: past this, a build removes the least recently used down
#: to :data:`CACHE_KEEP` of it (a process making a new closure per call built a library per
#: distinct constant: 3,700 files, 60 MB, in a day of tests)
CACHE_LIBRARIES = 2_000
CACHE_KEEP = 0.75


def _library(cc: str, src: str, digest: str, level: str, extra: Sequence[str] = ()) -> Path:
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / f"jacc-c-{os.getuid()}"):  # (not Windows)
        if folder.parent == Path(tempfile.gettempdir()) and not _private_folder(folder):
            continue
        path = folder / f"{digest}.so"
        if os.path.lexists(path):
            if _sealed(path, digest):
                with contextlib.suppress(OSError):
                    os.utime(path)  # (used now: what pruning keeps)
                return path
            try:  # cut short, or another library under this name: built again
                path.unlink()
            except OSError:  # (a read-only cache, a folder in its place: the next folder)
                continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            built = _compile(cc, src, path, level, digest, extra)
        except OSError:
            continue
        _prune(folder)
        return built
    raise CompileError("C: no writable folder for the built library (set $JACC_CACHE)")


#: the end of every library jacc builds: a SHA-256 of the source digest and the library's bytes
#: before it, then this mark (the dynamic loader reads no further than the ELF file's own end)
_SEAL = b"jacc-so1"


def _seal(digest: str, body: bytes) -> bytes:
    return hashlib.sha256(digest.encode() + body).digest() + _SEAL


def _sealed(path: Path, digest: str) -> bool:
    """Whether ``path`` holds the library built for ``digest``, whole: loading a library cut short
    killed the process (SIGBUS, where its segments run past the file's end), and a library copied
    over another's name ran another function (both found by a hunt)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    n = len(_seal(digest, b""))
    return len(data) > n and data[-n:] == _seal(digest, data[:-n])


def _private_folder(folder: Path) -> bool:
    """A folder in the shared temporary folder that this user owns and no one else may write into
    (made so here): a library another user could plant there would run as this one."""
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _prune(folder: Path, limit: int | None = None) -> int:
    """Remove the least recently used libraries of ``folder`` where it holds more than ``limit``
    (:data:`CACHE_LIBRARIES`); how many went. A process that loaded one keeps it (Linux unlinks
    a mapped file lazily); one that needs it again builds it again. A build's temporary files
    older than two build timeouts (left by a process killed meanwhile) go too."""
    limit = CACHE_LIBRARIES if limit is None else limit
    stale = time.time() - 2 * BUILD_TIMEOUT
    with contextlib.suppress(OSError):
        for p in folder.glob(f"{_PART}*"):
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < stale:
                    p.unlink()
    try:
        libs = [p for p in folder.glob("*.so") if not p.name.startswith(_PART)]
        if len(libs) <= limit:
            return 0
        aged = sorted((p.stat().st_mtime, p) for p in libs)
    except OSError:
        return 0
    gone = 0
    for _, p in aged[:len(aged) - int(limit * CACHE_KEEP)]:
        with contextlib.suppress(OSError):
            p.unlink()
            gone += 1
    return gone


#: how a build's temporary files start (a source and its library before it is sealed and moved)
_PART = "part-"


def _compile(cc: str, src: str, path: Path, level: str, digest: str, extra: Sequence[str] = ()) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=_PART, suffix=".c", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(src)
    part = Path(tmp).with_suffix(".so")
    try:
        try:
            done = subprocess.run([*shlex.split(cc), level, "-shared", "-fPIC", "-fno-math-errno", "-ffp-contract=off",
                                   "-o", str(part), tmp, *extra, "-lm"], capture_output=True, text=True,
                                  timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise CompileError(f"C: {Path(cc).name} took more than {BUILD_TIMEOUT} s") from None
        if done.returncode != 0:
            first = next((ln for ln in done.stderr.splitlines() if "error" in ln), done.stderr.strip()[:300])
            raise CompileError(f"C: {Path(cc).name} failed: {first}")
        seal = _seal(digest, part.read_bytes())
        with open(part, "ab") as fh:
            fh.write(seal)
        os.replace(part, path)  # atomic: another process building the same source is harmless
    finally:
        for p in (Path(tmp), part):
            p.unlink(missing_ok=True)
    return path


def code_lines(jacobian: Callable, consts: list | None = None) -> int:
    """The lines of C that :class:`Native` builds for compiled scalar code: its statements and one
    per entry returned (the constant ones, ``consts`` where known, are written once)."""
    consts = flat_constants(jacobian) if consts is None else consts
    return len(jacobian.flat_parts[1]) + sum(c is None for c in consts)


class Native:
    """A scalar plan's Jacobian as built C code: ``native(floats)`` is the flat Jacobian
    (:func:`~jacc.compile.flat`'s order) at the graph's inputs ``floats``, a fresh array.

    Entries the code makes constants (structural zeros and ±1) are written once into the output
    buffer; the C function writes only the others. The buffers are the object's own, so a call
    holds a lock (two threads may share a ``jacobian``). ``quick``: code longer than
    :data:`AUTO_O2_LINES` is built at ``-O0`` (``"auto"``'s own builds). Code longer than ``max_lines``
    statements is refused with :class:`~jacc.compile.CompileError` before anything is built."""

    def __init__(self, jacobian: Callable, n_in: int, max_lines: int = MAX_LINES, quick: bool = False):
        consts = flat_constants(jacobian)
        lines = code_lines(jacobian, consts)
        if lines > max_lines:
            raise CompileError(f"C: {lines} lines of scalar code, more than the C compiler builds quickly "
                               f"({max_lines}); the float code runs instead")
        varying = [i for i, c in enumerate(consts) if c is None]
        src, slots = source(jacobian, varying)
        self.fn, self.source = build(src, quick=quick and lines > AUTO_O2_LINES), src
        self.x, self.w = np.zeros(max(n_in, 1)), np.zeros(max(slots, 1))
        self.xs = (ctypes.c_double * len(self.x)).from_buffer(self.x)  # (assigning a list: 25 % faster)
        self.y = np.array([0.0 if c is None else c for c in consts], dtype=np.float64)
        self.n_in, self.x_at, self.y_at, self.w_at = n_in, self.x.ctypes.data, self.y.ctypes.data, self.w.ctypes.data
        self.lock = locks.lock()

    def __call__(self, floats: Sequence[float]) -> np.ndarray:
        with self.lock:
            self.xs[:self.n_in] = floats
            self.fn(self.x_at, self.y_at, self.w_at)
            return self.y.copy()

    def from_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`__call__` with the inputs as arrays, copied straight into the input buffer (200
        numbers: 0.3 µs, where making and assigning a list of them takes 6 µs)."""
        with self.lock:
            if len(arrays) == 1:
                self.x[:self.n_in] = arrays[0].reshape(-1)
            else:
                at = 0
                for a in arrays:
                    self.x[at:at + a.size] = a.reshape(-1)
                    at += a.size
            self.fn(self.x_at, self.y_at, self.w_at)
            return self.y.copy()


def compile_native(plan, max_lines: int = MAX_LINES, quick: bool = False) -> Callable[..., dict]:
    """:meth:`Plan.compile("c") <jacc.Plan.compile>`: the scalar plan's function as built C code,
    ``{(output, input): float}`` like :func:`~jacc.compile.compile_plan`'s (``.source`` is the C
    source, ``.mults`` the multiplications it performs)."""
    from .compile import compile_plan, float_args

    jac = compile_plan(plan)
    native = Native(jac, len(plan.graph.inputs), max_lines, quick)
    keys, inputs = jac.flat_keys, plan.graph.inputs

    def jacobian(*args: float) -> dict:
        return dict(zip(keys, native(float_args(inputs, args)).tolist()))

    jacobian.source, jacobian.mults, jacobian.native = native.source, jac.mults, native
    # compile_plan's interface (jacc.api runs either): the same without fallback, and the flat
    # entries (jacc.compile.flat) — here the array itself
    jacobian.raw, jacobian.flat_keys, jacobian.flat_fn = jacobian, keys, lambda *xs: native(xs)
    return jacobian
