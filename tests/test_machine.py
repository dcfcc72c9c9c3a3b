"""jacc.machine: which BLAS kernels run, and the advice when the CPU supports wider ones."""

import numpy as np
import pytest

from jacc import bench, machine

AVX512 = frozenset({"avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
AVX2 = frozenset({"avx", "avx2", "fma"})


@pytest.mark.parametrize("kernels, flags, want", [
    ("Haswell", AVX512, "SkylakeX"),       # an AVX-512 CPU OpenBLAS did not recognise (this VM)
    ("Zen", AVX512, "SkylakeX"),
    ("Sandybridge", AVX512, "SkylakeX"),
    ("Sandybridge", AVX2, "Haswell"),
    ("Prescott", AVX2, "Haswell"),
    ("SkylakeX", AVX512, None),            # already the widest
    ("Cooperlake", AVX512, None),
    ("Haswell", AVX2, None),               # no AVX-512: Haswell's kernels are right
    ("Zen", AVX2, None),
    ("Haswell", AVX512 - {"avx512vl"}, None),  # SkylakeX kernels need every one of the five
    ("Sandybridge", frozenset({"avx"}), None),
])
def test_better_coretype(kernels, flags, want):
    assert machine.better_coretype(kernels, flags) == want


def _fake(monkeypatch, kernels, flags, library="openblas"):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.setattr(machine, "blas_kernels", lambda: [
        {"library": library, "version": "0.3.31", "kernels": kernels, "path": "/x/libopenblas.so"}])
    monkeypatch.setattr(machine, "cpu_flags", lambda: flags)


def test_advice_names_the_variable_and_the_kernels(monkeypatch):
    _fake(monkeypatch, "Haswell", AVX512)
    advice = machine.blas_advice()
    assert "start Python with OPENBLAS_CORETYPE=SkylakeX" in advice and "Haswell kernels" in advice


def test_advice_when_the_environment_holds_openblas_to_narrower_kernels(monkeypatch):
    _fake(monkeypatch, "Haswell", AVX512)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # as on the machine of the 1 Dec 2026 benchmarks
    advice = machine.blas_advice()
    assert "OPENBLAS_CORETYPE=Haswell in the environment" in advice
    assert "unset OPENBLAS_CORETYPE, or set it to SkylakeX" in advice


def test_no_advice_when_the_kernels_fit(monkeypatch):
    _fake(monkeypatch, "SkylakeX", AVX512)
    assert machine.blas_advice() is None
    monkeypatch.setenv("OPENBLAS_CORETYPE", "SkylakeX")
    assert machine.blas_advice() is None
    _fake(monkeypatch, "Haswell", AVX2)
    assert machine.blas_advice() is None
    _fake(monkeypatch, "Haswell", AVX512, library="mkl")  # MKL dispatches on features itself
    assert machine.blas_advice() is None


def test_summary_and_flags_on_this_machine(monkeypatch):
    pytest.importorskip("threadpoolctl")
    np.ones(2) @ np.ones(2)  # numpy's BLAS is loaded
    libs = machine.blas_kernels()
    if not libs:
        pytest.skip("threadpoolctl sees no BLAS library in this NumPy build")
    assert all(set(b) == {"library", "version", "kernels", "path"} for b in libs)
    assert libs[0]["library"] in machine.blas_summary()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert machine.blas_summary().endswith("(OPENBLAS_CORETYPE=Haswell)")
    assert all(isinstance(f, str) for f in machine.cpu_flags())


def test_bench_records_the_blas_and_notes_the_advice(monkeypatch):
    _fake(monkeypatch, "Haswell", AVX512)
    res = bench.run(["lecture_f"], ["forward"], size="small", budget=1.0)
    assert res.meta["blas"].startswith("openblas 0.3.31 Haswell")
    assert "BLAS openblas 0.3.31 Haswell" in res.format("table").splitlines()[0]
    assert any(n.startswith("machine: ") and "OPENBLAS_CORETYPE=SkylakeX" in n for n in res.notes())


def test_cli_bench_prints_the_advice_first(monkeypatch, capsys):
    from jacc import cli

    _fake(monkeypatch, "Haswell", AVX512)
    assert cli.main(["bench", "--problems", "lecture_f", "--strategies", "forward", "--budget", "1"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("note: OpenBLAS runs its Haswell kernels") and "OPENBLAS_CORETYPE=SkylakeX" in err
