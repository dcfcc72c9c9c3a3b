"""Every example in jacc.numpy_api: the Jacobian against central finite differences (and JAX when
installed), structured partials where the function is an index map, and the generated docs page."""

import os

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.numpy_api import CASES, coverage_markdown, traced_structures

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "numpy-coverage.md")


def _blocks(J, argnums):
    """jacobian's result as a list with one block per differentiated argument."""
    return [J] if len(argnums) == 1 else list(J)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_jacobian_matches_finite_differences(c):
    args = c.make(np.random.default_rng(0))
    f = c.fn(np)
    # auto as by default, in a tenth of its second: its searches' orders, not their full length
    jf = jacc.jacobian(f, argnums=c.argnums if len(c.argnums) > 1 else c.argnums[0], time_limit=0.1)
    got = _blocks(jf(*args), c.argnums)
    for k, i in enumerate(c.argnums):
        want = fd_jacobian(f, list(args), i)
        assert got[k].shape == want.shape
        np.testing.assert_allclose(got[k], want, rtol=1e-6, atol=1e-7, err_msg=f"{c.id}, argument {i}")


@pytest.mark.parametrize("c", [c for c in CASES if c.structures is not None],
                         ids=[c.id for c in CASES if c.structures is not None])
def test_structured_partials_stay_structured(c):
    _, kinds = traced_structures(c)
    assert kinds <= c.structures, f"{c.id} records {kinds - c.structures}"


@pytest.mark.slow  # ~90 s: JAX traces each case afresh
def test_jacobian_matches_jax():
    """Every case JAX agrees with by convention (``jax=True``), in one test: one skip without JAX."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    wrong = []
    for c in [c for c in CASES if c.jax]:
        args = c.make(np.random.default_rng(0))
        got = _blocks(jacc.jacobian(c.fn(np), argnums=c.argnums if len(c.argnums) > 1 else c.argnums[0])(*args),
                      c.argnums)
        want = jax.jacobian(c.fn(jnp), argnums=c.argnums)(*[jnp.asarray(a) for a in args])
        for k in range(len(c.argnums)):
            if not np.allclose(got[k], np.asarray(want[k]), rtol=1e-10, atol=1e-12):
                wrong.append(f"{c.id} (argument {c.argnums[k]}): max |jacc - jax| = "
                             f"{np.max(np.abs(got[k] - np.asarray(want[k]))):.3g}")
    assert not wrong, "\n".join(wrong)


def test_coverage_page_is_current():
    with open(DOC, encoding="utf-8") as fh:
        assert fh.read() == coverage_markdown() + "\n", "regenerate with: python -m jacc.numpy_api"


def test_the_counts_quoted_in_the_docs_are_current():
    import re

    docs = os.path.dirname(DOC)
    with open(os.path.join(docs, "api.md"), encoding="utf-8") as fh:
        assert int(re.search(r"records — (\d+) today", fh.read()).group(1)) == len(jacc.supported_functions())
    with open(os.path.join(docs, "execution.md"), encoding="utf-8") as fh:
        text = fh.read()
    quoted = {int(n) for n in re.findall(r"all (\d+) examples of `docs/numpy-coverage.md`|of the (\d+) examples", text)
              for n in n if n}
    assert quoted == {len(CASES)}, quoted


def test_every_case_name_is_recorded_by_the_tracer():
    names = set(jacc.supported_functions())
    for c in CASES:
        short = c.name.rsplit(".", 1)[-1]
        assert (short in names or c.name.removeprefix("numpy.") in names  # ufunc methods: "add.reduce"
                or c.name.startswith(("ndarray.", "scipy.", "numpy.polynomial.", "math.",
                                      "numpy.lib.stride_tricks.as_strided"))), c.name
    # (numpy.polynomial's Python code runs on traced arrays: its functions are not recorded by name;
    # scipy's, math's and as_strided (which NumPy does not dispatch) are replaced while a trace runs)
