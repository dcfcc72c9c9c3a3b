"""What the machine gives NumPy: the CPU, its vector extensions and the BLAS kernels in use.

Large Jacobians are matrix products, so the BLAS kernels decide their speed. OpenBLAS (NumPy's
and SciPy's wheels) picks its kernels once, when it loads: from the CPU's vendor, family and model,
or from the environment variable ``OPENBLAS_CORETYPE``. A CPU it does not recognise gets a
generic choice, and a variable set for reproducibility or by habit can hold a new CPU to old
kernels: the machine of the 1 Dec 2026 benchmarks (AVX-512) had ``OPENBLAS_CORETYPE=Haswell`` in
its environment, and NumPy's matrix products ran at 61 GFLOP/s where XLA's ran at 95; with
``SkylakeX`` kernels they ran at 93 (docs/execution.md, "Machine settings"). OpenBLAS reads the
variable only when it loads, so jacc cannot change it for a running process; :func:`blas_advice`
says when another setting would help.

>>> isinstance(cpu_model(), str)
True
"""

from __future__ import annotations

import os
import platform

#: OpenBLAS kernel sets (lower-case core names) that use AVX-512, and those that use AVX2 + FMA
_AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})
_AVX2_CORES = frozenset({"haswell", "zen", "excavator"}) | _AVX512_CORES
#: CPU flags (``/proc/cpuinfo``) each kernel set needs: OpenBLAS's own checks for SkylakeX, Haswell
_NEEDS = {"SkylakeX": {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}, "Haswell": {"avx2", "fma"}}


def _cpuinfo(key: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip().lower() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (``avx2``, ``avx512f``, …); empty elsewhere."""
    return frozenset((_cpuinfo("flags") or "").split())


def blas_kernels() -> list[dict]:
    """The BLAS libraries loaded in this process with the kernels each chose, as
    ``{"library", "version", "kernels", "path"}``; empty without ``threadpoolctl`` (an extra)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": i.get("internal_api"), "version": i.get("version"),
             "kernels": i.get("architecture"), "path": i.get("filepath")}
            for i in threadpool_info() if i.get("user_api") == "blas"]


def better_coretype(kernels: str, flags: frozenset[str]) -> str | None:
    """The OpenBLAS core type a CPU with ``flags`` supports that is wider than ``kernels``.

    >>> better_coretype("Haswell", frozenset({"avx2", "fma", "avx512f", "avx512cd", "avx512bw",
    ...                                        "avx512dq", "avx512vl"}))
    'SkylakeX'
    >>> better_coretype("SkylakeX", frozenset({"avx512f"})) is None
    True
    """
    k = kernels.lower()
    if k not in _AVX512_CORES and _NEEDS["SkylakeX"] <= flags:
        return "SkylakeX"
    if k not in _AVX2_CORES and _NEEDS["Haswell"] <= flags:
        return "Haswell"
    return None


def blas_advice() -> str | None:
    """One line on how to get faster matrix products when OpenBLAS runs kernels narrower than the
    CPU supports (because it does not recognise the CPU, or ``OPENBLAS_CORETYPE`` says so); else None."""
    flags, env = cpu_flags(), os.environ.get("OPENBLAS_CORETYPE")
    for b in blas_kernels():
        if b["library"] != "openblas" or not b["kernels"]:
            continue
        better = better_coretype(b["kernels"], flags)
        if better is None:
            continue
        if env:
            why = f"OPENBLAS_CORETYPE={env} in the environment holds it there"
            fix = f"unset OPENBLAS_CORETYPE, or set it to {better}, before Python starts"
        else:
            why = f"it does not recognise the CPU model {cpu_model()!r}"
            fix = f"start Python with OPENBLAS_CORETYPE={better}"
        return (f"OpenBLAS runs its {b['kernels']} kernels on a CPU that supports {better}'s ({why}): {fix} "
                "for faster matrix products (docs/execution.md, 'Machine settings')")
    return None


def blas_summary() -> str:
    """The BLAS libraries and their kernels in one phrase, e.g. ``openblas 0.3.31 Haswell``."""
    libs = blas_kernels()
    if not libs:
        return "unknown (pip install threadpoolctl)"
    seen = []
    for b in libs:
        s = f"{b['library']} {b['version']} {b['kernels']}"
        if s not in seen:
            seen.append(s)
    env = os.environ.get("OPENBLAS_CORETYPE")
    return "; ".join(seen) + (f" (OPENBLAS_CORETYPE={env})" if env else "")
