"""The lecture's evaluation-trace tables (jacc.tables)."""

import csv
import io
import json

import numpy as np
import pytest

import jacc
from jacc.examples import lecture_f, np_chain
from jacc.tables import Table, adjoint_trace, numbering, primal_trace, tangent_trace

POINT = {"x1": 2.0, "x2": 5.0}


def row(table, lhs):
    """The (formula, value) of the last row named lhs (names compared in NFC)."""
    import unicodedata

    want = unicodedata.normalize("NFC", lhs)
    for l, f, v in reversed(table.rows):
        if unicodedata.normalize("NFC", l) == want:
            return f, v
    raise AssertionError(f"no row {lhs!r} in {[r[0] for r in table.rows]}")


@pytest.fixture
def g():
    return lecture_f()


def test_numbering_matches_the_lecture(g):
    assert numbering(g) == {"x1": "v₋₁", "x2": "v₀", "v1": "v₁", "v2": "v₂", "v3": "v₃", "v4": "v₄", "v5": "v₅"}
    assert numbering(g, ascii=True) == {"x1": "v-1", "x2": "v0", "v1": "v1", "v2": "v2", "v3": "v3",
                                        "v4": "v4", "v5": "v5"}


def test_numbering_three_inputs_and_two_digit_indices():
    f = lambda a, b, c: sum(np.sin(a * b * c + k) for k in range(4))  # noqa: E731
    gr = jacc.trace(f, 0.1, 0.2, 0.3)
    names = numbering(gr)
    assert [names[x] for x in gr.inputs] == ["v₋₂", "v₋₁", "v₀"]
    rest = [names[v] for v in gr.topological_order() if v not in gr.inputs]
    assert rest[:2] == ["v₁", "v₂"] and rest[9] == "v₁₀"
    assert len(set(names.values())) == len(names)


def test_primal_trace(g):
    t = primal_trace(g, POINT)
    assert t.rows[0] == ("v₋₁", "x1", 2.0) and t.rows[1] == ("v₀", "x2", 5.0)
    assert t.rows[2][:2] == ("v₁", "ln v₋₁")
    assert f"{t.rows[2][0]} = {t.rows[2][1]}" == "v₁ = ln v₋₁"
    assert [r[1] for r in t.rows[3:7]] == ["v₋₁ × v₀", "sin v₀", "v₁ + v₂", "v₄ − v₃"]
    assert t.rows[-1][:2] == ("y", "v₅")
    assert t.rows[-1][2] == pytest.approx(11.652, abs=1e-3)
    assert t.rows[2][2] == pytest.approx(np.log(2.0))
    text = t.format()
    assert "v₁  = ln v₋₁" in text and "= 11.652" in text and "= 0.693" in text
    lines = text.splitlines()
    assert lines[0].startswith("Forward Primal Trace")
    assert sum(set(line) == {"─"} for line in lines) == 2  # inputs | body | outputs
    assert lines[3].startswith("─") and lines[-2].startswith("─")


def test_primal_accepts_a_sequence_and_ascii(g):
    t = primal_trace(g, [2, 5], ascii=True)
    assert t.rows[2][:2] == ("v1", "log v-1")
    assert t.rows[6][:2] == ("v5", "v4 - v3")
    assert "-----" in t.format() and "─" not in t.format()


def test_tangent_trace_wrt_x1(g):
    t = tangent_trace(g, POINT, "x1")
    assert row(t, "v̇₋₁") == ("ẋ1", 1.0)
    assert row(t, "v̇₀") == ("ẋ2", 0.0)
    assert row(t, "v̇₁") == ("v̇₋₁ / v₋₁", pytest.approx(0.5))
    assert row(t, "v̇₂") == ("v̇₋₁ × v₀ + v̇₀ × v₋₁", pytest.approx(5.0))
    assert row(t, "v̇₃") == ("v̇₀ × cos v₀", pytest.approx(0.0))
    assert row(t, "v̇₄")[0] == "v̇₁ + v̇₂"
    assert row(t, "v̇₅")[0] == "v̇₄ − v̇₃"
    formula, value = row(t, "ẏ")
    assert formula == "v̇₅" and value == pytest.approx(5.5)


def test_tangent_trace_wrt_x2(g):
    t = tangent_trace(g, POINT, "x2")
    assert row(t, "ẏ")[1] == pytest.approx(2.0 - np.cos(5.0))
    assert row(t, "ẏ")[1] == pytest.approx(1.7163378, abs=1e-7)
    assert t.format().splitlines()[-1].endswith("= 1.716")
    assert tangent_trace(g, POINT, 1).rows == t.rows  # an input index works too


def test_bad_wrt_names_the_inputs(g):
    with pytest.raises(ValueError, match=r"x3.*valid inputs: x1, x2"):
        tangent_trace(g, POINT, "x3")
    with pytest.raises(ValueError, match="x1, x2"):
        tangent_trace(g, POINT, 7)


def test_adjoint_trace(g):
    t = adjoint_trace(g, POINT)
    assert t.rows[0] == ("v̄₅", "ȳ", 1.0)
    assert row(t, "v̄₄") == ("v̄₅ × 1", 1.0)
    assert row(t, "v̄₃") == ("v̄₅ × (−1)", -1.0)
    assert row(t, "v̄₂") == ("v̄₄ × 1", 1.0) and row(t, "v̄₁") == ("v̄₄ × 1", 1.0)
    assert row(t, "v̄₀") == ("v̄₃ × cos v₀ + v̄₂ × v₋₁", pytest.approx(1.7163378, abs=1e-7))
    assert row(t, "v̄₋₁") == ("v̄₂ × v₀ + v̄₁ / v₋₁", pytest.approx(5.5))
    assert t.rows[-2] == ("x̄1", "v̄₋₁", pytest.approx(5.5))
    assert t.rows[-1][:2] == ("x̄2", "v̄₀")
    assert t.rows[-1][2] == pytest.approx(1.7163378, abs=1e-7)
    lhs = [r[0] for r in t.rows]
    assert lhs.index("v̄₄") < lhs.index("v̄₁") < lhs.index("v̄₀") < lhs.index("v̄₋₁")  # reverse order


def test_adjoint_increments_follow_the_slide(g):
    t = adjoint_trace(g, POINT, style="increments", bottom_up=True)
    assert t.rows[0][:2] == ("x̄1", "v̄₋₁") and t.rows[1][:2] == ("x̄2", "v̄₀")
    assert t.rows[2] == ("v̄₋₁", "v̄₋₁ + v̄₁ ∂v₁/∂v₋₁ = v̄₋₁ + v̄₁ / v₋₁", pytest.approx(5.5))
    assert t.rows[3] == ("v̄₀", "v̄₀ + v̄₂ ∂v₂/∂v₀ = v̄₀ + v̄₂ × v₋₁", pytest.approx(1.7163378))
    assert t.rows[4] == ("v̄₋₁", "v̄₂ ∂v₂/∂v₋₁ = v̄₂ × v₀", pytest.approx(5.0))
    assert t.rows[5] == ("v̄₀", "v̄₃ ∂v₃/∂v₀ = v̄₃ × cos v₀", pytest.approx(np.cos(5.0) * -1))
    assert t.rows[-1] == ("v̄₅", "ȳ", 1.0)
    assert [r[0] for r in t.rows[6:10]] == ["v̄₂", "v̄₁", "v̄₃", "v̄₄"]
    with pytest.raises(ValueError, match="style"):
        adjoint_trace(g, POINT, style="fancy")


def test_formats(g):
    t = tangent_trace(g, POINT, "x1")
    data = json.loads(t.format("json"))
    assert [set(d) for d in data] == [{"lhs", "formula", "value"}] * len(t.rows)
    assert data[-1]["value"] == 5.5 and data[2]["formula"] == "v̇₋₁ / v₋₁"
    full = json.loads(adjoint_trace(g, POINT).format("json", digits=None))
    assert full[-1]["value"] == pytest.approx(2.0 - np.cos(5.0), abs=1e-15)
    rows = list(csv.reader(io.StringIO(t.format("csv"))))
    assert rows[0] == ["lhs", "formula", "value"] and rows[-1][2] == "5.5" and len(rows) == len(t.rows) + 1
    with pytest.raises(ValueError, match="format"):
        t.format("xml")


def test_table_alignment_ignores_accents(g):
    lines = tangent_trace(g, POINT, "x1").format().splitlines()[1:]
    import unicodedata

    def col(line, ch="="):
        visible = [c for c in line if not unicodedata.combining(c)]
        return [i for i, c in enumerate(visible) if c == ch]

    body = [line for line in lines if "─" not in line]
    assert len({col(line)[0] for line in body}) == 1
    assert len({col(line)[-1] for line in body}) == 1


def test_digits_and_number_format():
    t = Table("t", [("a", "f", 0.000123), ("b", "g", -2.0), ("c", "h", 1 / 3)])
    out = t.format(digits=3)
    assert "= 0.000123" in out and "= -2" in out and "= 0.333" in out
    assert "= 0.3333333333333333" in t.format(digits=None)


def test_second_scalar_graph_matches_jacobian():
    f = lambda a, b: np.exp(a) * np.cos(b) / b  # noqa: E731
    gr = jacc.trace(f, 0.3, 1.2)
    J = jacc.jacobian(f, argnums=(0, 1))(0.3, 1.2)
    point = [0.3, 1.2]
    for k, name in enumerate(gr.inputs):
        t = tangent_trace(gr, point, name)
        assert t.rows[-1][2] == pytest.approx(float(J[k]), rel=1e-12)
    adj = adjoint_trace(gr, point)
    assert [r[0] for r in adj.rows[-2:]] == ["ā", "b̄"]
    assert [r[2] for r in adj.rows[-2:]] == pytest.approx([float(J[0]), float(J[1])], rel=1e-12)
    prim = primal_trace(gr, point)
    assert prim.rows[-1][2] == pytest.approx(f(0.3, 1.2))
    assert [r[1] for r in prim.rows[2:6]] == ["exp v₋₁", "cos v₀", "v₁ × v₂", "v₃ / v₀"]
    assert row(tangent_trace(gr, point, "b"), "v̇₄")[0] == "v̇₃ / v₀ − v̇₀ × v₃ / v₀²"


def test_constants_and_generic_fallback():
    f = lambda x: np.maximum(2.0 * x - 1.0, 0.1) ** 3.0  # noqa: E731
    gr = jacc.trace(f, 0.8)
    prim = primal_trace(gr, [0.8])
    assert [r[1] for r in prim.rows[1:5]] == ["2 × v₀", "v₁ − 1", "max(v₂, 0.1)", "v₃^3"]
    tan = tangent_trace(gr, [0.8], "x")
    assert row(tan, "v̇₃")[0] == "∂v₃/∂v₂ · v̇₂"  # no template for maximum: the generic form
    assert row(tan, "v̇₄")[0] == "v̇₃ × 3 × v₃^2"
    assert tan.rows[-1][2] == pytest.approx(float(jacc.jacobian(f)(0.8)))
    adj = adjoint_trace(gr, [0.8])
    assert row(adj, "v̄₂")[0] == "v̄₃ ∂v₃/∂v₂"
    assert adj.rows[-1][2] == pytest.approx(float(jacc.jacobian(f)(0.8)))


def test_array_vertices_generalise():
    A = np.arange(6.0).reshape(2, 3) / 5
    x = np.array([1.0, -2.0, 0.5])
    fn = lambda A, x: np.sum(np.tanh(A @ x) * x[:2])  # noqa: E731
    gr = jacc.trace(fn, A, x)
    prim = primal_trace(gr, [A, x])
    assert isinstance(prim.rows[0][2], np.ndarray) and isinstance(prim.rows[-1][2], float)
    assert "v₋₁ = A" in prim.format() and "[[0, 0.2, 0.4], [0.6, 0.8, 1]]" in prim.format()
    assert "v₀[:2]" in [r[1] for r in prim.rows]
    J = jacc.jacobian(fn, argnums=(0, 1))(A, x)
    adj = adjoint_trace(gr, [A, x])  # seed ȳ = 1: the gradient
    np.testing.assert_allclose(adj.rows[-2][2], J[0], rtol=1e-12)
    np.testing.assert_allclose(adj.rows[-1][2], J[1], rtol=1e-12)
    tan = tangent_trace(gr, [A, x], "x")  # seed ẋ = 1: the directional derivative along ones
    assert tan.rows[-1][2] == pytest.approx(J[1].sum())
    seed = np.array([0.0, 1.0, 0.0])
    assert tangent_trace(gr, [A, x], "x", seed=seed).rows[-1][2] == pytest.approx(J[1][1])
    json.loads(adj.format("json"))
    assert "…" in primal_trace(jacc.trace(lambda v: 2 * v, np.arange(20.0)), [np.arange(20.0)]).format()


def test_abstract_graph_is_refused_clearly():
    with pytest.raises(ValueError, match="abstract"):
        primal_trace(np_chain(3, 2), [np.zeros(2)])


def test_output_choice_for_several_outputs():
    gr = jacc.trace(lambda a, b, c: (np.sin(a) * b, a / 2.0 - 1 / a), 0.5, 2.0, 3.0)
    prim = primal_trace(gr, [0.5, 2.0, 3.0])
    assert [r[0] for r in prim.rows[-2:]] == ["y1", "y2"]
    with pytest.raises(ValueError, match="outputs"):
        adjoint_trace(gr, [0.5, 2.0, 3.0])
    adj = adjoint_trace(gr, [0.5, 2.0, 3.0], output=1)
    assert [r[2] for r in adj.rows[-3:]] == pytest.approx([0.5 + 1 / 0.25, 0.0, 0.0])
    with pytest.raises(ValueError, match="valid outputs"):
        adjoint_trace(gr, [0.5, 2.0, 3.0], output="nope")
