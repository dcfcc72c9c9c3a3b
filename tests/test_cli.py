"""The jacc command: every subcommand, its errors, and every command shown in the docs."""

import doctest
import glob
import json
import math
import os
import re
import shlex
import shutil
import struct

import numpy as np
import pytest

import jacc
from jacc import cli, examples

ROOT = os.path.join(os.path.dirname(__file__), "..")
GRAPHS = os.path.join(ROOT, "graphs")
HAS_DOT = shutil.which("dot") is not None


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    shutil.copytree(GRAPHS, tmp_path / "graphs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_reproduces_the_lecture(capsys):
    code, out, _ = run(capsys, "compare", "--N", "10", "--P", "3", "--format", "json")
    assert code == 0
    rows = {r["strategy"]: r for r in json.loads(out)["rows"]}
    assert rows["forward"]["mults"] == 30300 and rows["forward"]["formula"] == "N⁴P + N²P"
    assert rows["reverse"]["mults"] == 10300 and rows["reverse"]["formula"] == "N⁴ + N²P"
    assert rows["forward"]["bracketing"] == "∂L/∂K·(∂K/∂D·∂D/∂θ)"
    assert rows["reverse"]["bracketing"] == "(∂L/∂K·∂K/∂D)·∂D/∂θ"
    assert min(rows.values(), key=lambda r: r["mults"])["mults"] == rows["optimal"]["mults"] == 10300
    code, out, _ = run(capsys, "compare", "--N", "10", "--P", "3", "--structure", "elementwise", "--format", "json")
    rows = {r["strategy"]: r for r in json.loads(out)["rows"]}
    assert rows["forward"]["mults"] == 600 and rows["reverse"]["mults"] == 400


def test_compare_kronecker_structure_prices_factors(capsys):
    """∂K/∂D = M ⊗ M kept as its two factors: reverse costs 2N³ + N²P (the lecture's dense N⁴ + N²P),
    forward 2N³P + N²P — checked against a brute force over the contraction orders of each product."""
    code, out, _ = run(capsys, "compare", "--N", "10", "--P", "3", "--structure", "kronecker", "--run",
                       "--matrix-free", "--format", "json")
    rows = {r["strategy"]: r for r in json.loads(out)["rows"]}
    assert code == 0
    assert rows["reverse"]["mults"] == 2 * 10**3 + 100 * 3 and rows["reverse"]["formula"] == "2N³ + N²P"
    assert rows["forward"]["mults"] == 2 * 10**3 * 3 + 100 * 3 and rows["forward"]["formula"] == "2N³P + N²P"
    assert rows["optimal"]["mults"] == rows["reverse"]["mults"]
    assert all(r["max_rel_diff"] < 1e-8 for r in rows.values() if r["order"] is not None)  # --run executed them
    assert rows["mf-adjoint"]["run_mults"] is None  # matrix-free rows are priced, not run
    # brute force: each product's cost over every pairwise order of its terms, for small N, P
    import itertools
    for N, P in [(2, 5), (3, 1), (4, 3)]:
        def cheapest(terms, out):
            best = None
            for perm in itertools.permutations(range(len(terms))):
                acc, cost = set(terms[perm[0]]), 0
                for k in perm[1:]:
                    union = acc | set(terms[k])
                    cost += math.prod({"i": N, "j": N, "a": N, "b": N, "p": P}[c] for c in union)
                    rest = [set(terms[m]) for m in perm[perm.index(k) + 1:]]
                    acc = {c for c in union if c in out or any(c in r for r in rest)}
                best = cost if best is None else min(best, cost)
            return best
        rev = cheapest(["ij", "ia", "jb"], "ab") + N * N * P
        fwd = cheapest(["ia", "jb", "abp"], "ijp") + N * N * P
        g = examples.np_chain(N, P, "kronecker")
        assert jacc.plan(g, "reverse").mults == rev and jacc.plan(g, "forward").mults == fwd


def test_compare_run_agrees_across_orderings(capsys):
    code, out, _ = run(capsys, "compare", "--N", "6", "--P", "2", "--run", "--format", "json",
                       "--strategies", "forward,reverse,markowitz,optimal")
    rows = json.loads(out)["rows"]
    assert all(r["max_rel_diff"] < 1e-8 and r["seconds"] > 0 for r in rows)
    code, out, _ = run(capsys, "compare", "--run")
    assert "seconds" in out and "max_rel_diff" in out


def test_compare_table_and_csv(capsys):
    code, out, _ = run(capsys, "compare")
    assert "N⁴P + N²P" in out and "30,300" in out
    code, out, _ = run(capsys, "compare", "--format", "csv")
    assert out.splitlines()[0].startswith("strategy,bracketing,mults")


def test_compare_matrix_free_rows(capsys):
    code, out, _ = run(capsys, "compare", "--N", "10", "--P", "3", "--matrix-free", "--format", "json")
    rows = {r["strategy"]: r for r in json.loads(out)["rows"]}
    assert code == 0 and rows["reverse"]["mults"] == 10300  # the accumulated rows are unchanged
    # one product costs the factor's nonzeros: N², N⁴, N²P; a tangent sweep per column, an adjoint per row
    assert rows["mf-tangent"]["mults"] == 3 * (100 + 10**4 + 300) and rows["mf-tangent"]["formula"] == "N⁴P + N²P² + N²P"
    assert rows["mf-adjoint"]["mults"] == 100 + 10**4 + 300 and rows["mf-adjoint"]["formula"] == "N⁴ + N²P + N²"
    assert rows["mf-optimal"]["mults"] == 10400 and rows["mf-optimal"]["optimal"] is True
    assert rows["mf-optimal"]["bracketing"] == "adjoint[∂L/∂K·∂K/∂D·∂D/∂θ]"
    code, out, _ = run(capsys, "compare", "--N", "10", "--P", "3", "--matrix-free", "--structure", "elementwise",
                       "--format", "csv")
    mf = {line.split(",")[0]: line.split(",")[2] for line in out.splitlines()[1:]}
    assert (mf["mf-tangent"], mf["mf-adjoint"], mf["mf-optimal"]) == ("1500", "500", "500")
    code, out, _ = run(capsys, "compare", "--matrix-free")
    assert "mf-optimal" in out and "N⁴ + N²P + N²" in out and out.rstrip().splitlines()[-1].startswith("mf-*")


def test_plan_single_all_and_json(capsys, workdir):
    code, out, _ = run(capsys, "plan", "graphs/three_layer.json", "--strategy", "optimal")
    assert code == 0 and "This plan's cost" in out and "proven optimal: yes" in out
    code, out, _ = run(capsys, "plan", "graphs/three_layer.json", "--strategy", "all", "--format", "csv",
                       "--time-limit", "0.3")
    lines = out.splitlines()
    assert lines[0].startswith("strategy,mults,flops,peak_bytes,plan_seconds")
    assert len(lines) == 1 + len(cli.STRATEGIES)
    code, out, _ = run(capsys, "plan", "graphs/np_chain.json", "--strategy", "chain", "--format", "json",
                       "-o", "plan.json")
    d = json.loads(open("plan.json").read())
    assert d["mults"] == 10300 and d["info"]["bracketing"]


def test_trace_reproduces_lecture_tables(capsys, workdir):
    code, out, _ = run(capsys, "trace", "graphs/lecture_f.json", "--at", "x1=2,x2=5")
    assert code == 0
    assert re.search(r"y\s+= v₅\s+= 11\.652", out)
    assert re.search(r"ẏ\s+= v̇₅\s+= 5\.5", out)
    assert re.search(r"x̄1\s+= v̄₋₁\s+= 5\.5", out) and re.search(r"x̄2\s+= v̄₀\s+= 1\.716", out)
    code, out, _ = run(capsys, "trace", "graphs/lecture_f.json", "--at", "x1=2,x2=5", "--mode", "forward",
                       "--wrt", "x2", "--format", "json")
    rows = json.loads(out)[0]
    assert rows[-1]["value"] == pytest.approx(1.7163378, abs=1e-3)


@pytest.mark.parametrize("backend", ["numpy", "scalar"])
def test_run_compiled_backends_agree_with_the_executor(capsys, workdir, backend):
    graph, at = ("graphs/single_layer.json", "A=[[1,2,3,4],[1,0,0,1],[2,2,2,2]],x=[1,2,3,4],b=[0,0,0.5]")
    if backend == "scalar":
        graph, at = "graphs/lecture_f.json", "x1=2,x2=5"
    run(capsys, "run", graph, "--at", at, "-o", "ref.npz")
    code, _, _ = run(capsys, "run", graph, "--at", at, "-o", "got.npz", "--backend", backend)
    ref, got = np.load("ref.npz"), np.load("got.npz")
    assert code == 0 and sorted(ref) == sorted(got)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12)
    code, _, err = run(capsys, "run", "graphs/single_layer.json", "--at",
                       "A=[[1,2,3,4],[1,0,0,1],[2,2,2,2]],x=[1,2,3,4],b=[0,0,0]", "--backend", "scalar")
    assert code == 2 and "scalars" in err


@pytest.mark.parametrize("elimination", ["edge", "face"])
def test_run_runs_edge_and_face_plans_as_the_vertex_ones(capsys, workdir, elimination):
    # it asked the plan for a memory peak that edge and face plans do not price (AttributeError), and
    # planned for time, which they do not support: --elimination could never run
    graph, at = "graphs/single_layer.json", "A=[[1,2,3,4],[1,0,0,1],[2,2,2,2]],x=[1,2,3,4],b=[0,0,0.5]"
    run(capsys, "run", graph, "--at", at, "-o", "ref.npz")
    code, _, err = run(capsys, "run", graph, "--at", at, "-o", "got.npz", "--elimination", elimination)
    ref, got = np.load("ref.npz"), np.load("got.npz")
    assert code == 0 and sorted(ref) == sorted(got), err
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12)
    code, _, err = run(capsys, "run", graph, "--at", at, "--elimination", elimination, "--backend", "numpy")
    assert code == 2 and "executor" in err


def test_edge_and_face_plans_warn_when_run_where_their_trace_would_differ():
    from jacc.plan import ValueDependenceWarning

    g = jacc.trace(lambda x: x * np.sum(x > 0), np.array([0.7, -0.3, 1.2]))  # (the count is read at the traced point)
    for elimination in ("vertex", "edge", "face"):
        p = jacc.plan(g, "reverse", elimination=elimination)
        with pytest.warns(ValueDependenceWarning):
            p.execute(np.array([-0.7, 0.3, -1.2]))


def test_run_prints_and_saves(capsys, workdir):
    code, out, _ = run(capsys, "run", "graphs/lecture_f.json", "--at", "x1=2,x2=5", "--strategy", "reverse")
    assert "5.5" in out and "1.716" in out
    code, _, err = run(capsys, "run", "graphs/lecture_f.json", "--at", "x1=2,x2=5", "-o", "J.npz")
    z = np.load("J.npz")
    assert z["dv5_dx1"] == pytest.approx(5.5)
    A = np.arange(12.0).reshape(3, 4) / 10
    np.save("A.npy", A)
    code, _, _ = run(capsys, "run", "graphs/single_layer.json", "--at", "A=@A.npy,x=[1,2,3,4],b=[0,0,0]",
                     "--format", "json")
    assert code == 0


def test_run_writes_standard_json_small_entries_and_refuses_colliding_npz_keys(capsys, workdir):
    g = jacc.Graph("collide")
    for x in ("x_dy", "y"):
        g.add_input(x, (2,))
    g.add_node("o", "mul", ["x_dy", jacc.Const(np.array([2.0, 2.0]))])
    g.add_node("o_dx", "div", [jacc.Const(np.array([1e-7, 1.0])), "y"])
    g.set_outputs(["o", "o_dx"])
    g.save("g.json")
    code, _, err = run(capsys, "run", "g.json", "--at", "x_dy=[1,2],y=[0,4]", "-o", "J.npz")
    assert code == 2 and "∂o/∂x_dy and ∂o_dx/∂y would both be stored as 'do_dx_dy'" in err
    assert not os.path.exists("J.npz")  # (one block lost in the file before)
    code, out, _ = run(capsys, "run", "g.json", "--at", "x_dy=[1,2],y=[0,4]", "--format", "json")

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    data = json.loads(out, parse_constant=refuse)
    assert data["outputs"]["o_dx"] == ["inf", 0.25] and data["jacobian"]["do_dx/dy"][0] == ["-inf", 0.0]
    code, out, _ = run(capsys, "run", "g.json", "--at", "x_dy=[1,2],y=[1,4]", "--of", "o_dx")
    assert "-1.00e-07" in out  # (printed as -0. next to the -0.0625 before)


def test_run_plans_for_time_and_plan_counts_mults(capsys, workdir):
    """`jacc run` executes its plan, so like jacobian it does not hold the n⁴ Jacobian of XᵀX to
    save multiplications; `jacc plan` keeps the literature's count."""
    n = 12
    X = np.random.default_rng(0).normal(size=(n, n))
    jacc.trace(lambda X: np.einsum("ii->", X.T @ X), X).save("g.json")
    np.save("X.npy", X)
    code, out, _ = run(capsys, "run", "g.json", "--at", "X=@X.npy", "--format", "json")
    got = json.loads(out)
    assert code == 0 and got["mults"] == n**3
    np.testing.assert_allclose(np.array(next(iter(got["jacobian"].values()))), 2 * X, rtol=1e-12)
    code, out, _ = run(capsys, "plan", "g.json", "--format", "json")
    assert json.loads(out)["mults"] == 0
    code, out, _ = run(capsys, "run", "g.json", "--at", "X=@X.npy", "--format", "json", "--objective", "mults")
    assert json.loads(out)["mults"] == 0


def test_render_outputs(capsys, workdir):
    code, _, err = run(capsys, "render", "graphs/lecture_f.json", "-o", "f.dot", "--strategy", "reverse")
    assert code == 0 and "step 1" in open("f.dot").read()
    if not HAS_DOT:
        pytest.skip("Graphviz 'dot' not installed: SVG/PNG rendering not checked")
    run(capsys, "render", "graphs/three_layer.json", "-o", "n.svg", "--strategy", "markowitz", "--steps", "st")
    import xml.etree.ElementTree as ET
    ET.parse("n.svg")
    assert len(os.listdir("st")) == 12
    run(capsys, "render", "graphs/np_chain.json", "-o", "tree.png", "--strategy", "chain", "--tree")
    data = open("tree.png", "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert w > 100 and h > 100


@pytest.mark.parametrize("argv,match", [
    (["plan", "missing.json"], "missing.json: cannot read"),
    (["compare", "--N", "0"], "must be positive"),
    (["compare", "--strategies", "fast"], "unknown strategy 'fast'"),
    (["nope"], "^jacc: error: argument command: invalid choice"),  # (once "jacc: error: jacc: …")
    ([], "^jacc: error: the following arguments are required: command"),
    (["trace", "graphs/lecture_f.json", "--at", "x1=2"], "missing \\['x2'\\]"),
    (["trace", "graphs/lecture_f.json", "--at", "2,5"], "name=value"),
    (["run", "graphs/lecture_f.json", "--at", "x1=2,x2=5", "-o", "J.txt"], "npy or .npz"),
    (["render", "graphs/lecture_f.json", "-o", "f.gif"], "gif"),
    (["render", "graphs/lecture_f.json", "-o", "f.svg", "--steps", "d"], "--steps needs --strategy"),
    (["render", "graphs/three_layer.json", "-o", "t.svg", "--strategy", "reverse", "--tree"], "not a chain"),
    (["plan", "graphs/three_layer.json", "--strategy", "optimal", "--time-limit", "-1"], "time_limit"),
    (["plan", "graphs/three_layer.json", "--objective", "speed"], "--objective"),
    (["plan", "graphs/three_layer.json", "--strategy", "forward", "--memory-limit", "10"], "memory limit"),
])
def test_bad_usage_is_one_line_and_exit_2(capsys, workdir, argv, match):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("jacc: error:")
    assert re.search(match, err)


def test_bad_graph_file_is_one_line(capsys, workdir):
    open("bad.json", "w").write('{"format": "jacc-graph", "version": 1, "inputs": [], "nodes": '
                                '[{"name": "y", "op": "sinn", "args": []}], "outputs": ["y"]}')
    code, _, err = run(capsys, "plan", "bad.json")
    assert code == 2 and err.startswith("jacc: error: bad.json: node 'y': op: unknown op 'sinn'; known ops: abs,")


def test_failed_write_leaves_no_partial_file(capsys, workdir):
    code, _, err = run(capsys, "run", "graphs/single_layer.json", "--at", "A=[[1]],x=[1,2,3,4],b=[0,0,0]",
                       "-o", "J.npz")
    assert code == 2 and not os.path.exists("J.npz")
    assert not [f for f in os.listdir(".") if f.endswith(".tmp")]


@pytest.mark.parametrize("cmd", ["compare", "plan", "render", "trace", "run", "bench"])
def test_help_has_examples(capsys, cmd):
    code, out, _ = run(capsys, cmd, "--help")
    assert code == 0 and "examples:" in out and f"jacc {cmd}" in out


def test_top_level_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and all(c in out for c in ("compare", "plan", "render", "trace", "run", "bench"))


# -- the docs -------------------------------------------------------------------------------------

DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + [os.path.join(ROOT, "README.md")]


def _doc_commands():
    cmds = []
    for path in DOCS:
        for line in open(path, encoding="utf-8"):
            if line.startswith("$ jacc "):
                cmds.append((os.path.basename(path), line[2:].strip()))
    return cmds


def _shrink(argv):
    """Keep doc commands fast: full-size benchmarks run on one small problem."""
    if argv[:1] == ["bench"]:
        argv = [a for a in argv if a not in ("--baselines",)]
        argv = ["small" if a == "full" else a for a in argv]
        if "--planning" not in argv and "--problems" not in argv:
            argv += ["--problems", "lion"]
        argv += ["--budget", "1"] if "--planning" not in argv else []
    return argv


@pytest.mark.parametrize("doc,command", _doc_commands() or [("none", "")])
def test_every_command_in_the_docs_runs(capsys, workdir, doc, command):
    if not command:
        pytest.skip("no documented commands found")
    argv = _shrink(shlex.split(command)[1:])
    if any(a.endswith((".svg", ".png", ".pdf")) for a in argv) and not HAS_DOT:
        pytest.skip("Graphviz 'dot' not installed")
    argv = [a for a in argv if a not in ("|", "head")]
    code, out, err = run(capsys, *argv)
    assert code == 0, f"{doc}: `{command}` failed: {err}"


@pytest.mark.parametrize("path", [p for p in DOCS if ">>>" in open(p, encoding="utf-8").read()])
def test_python_examples_in_docs(path, workdir):
    text = open(path, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    src = "\n".join(b for b in blocks if ">>>" in b)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(src, {}, os.path.basename(path), path, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"{runner.failures} failing example(s) in {path}"


# -- issue 12, item 17: the --at grammar -------------------------------------------------------

def _scalarized(workdir):
    """A graph traced with scalarize=True: its inputs are x[0], x[1], x[2]."""
    from jacc import trace

    g = trace(lambda x: np.sin(x[0]) * x[1] - x[2] ** 2, np.array([1.0, 2.0, 3.0]), scalarize=True)
    g.save("s.json")
    return g


def _unicode_graph():
    from jacc import trace

    g = trace(lambda θ, b_c: np.tanh(θ) * b_c, np.array([1.0, 2.0]), np.array([3.0, 1.0]))
    g.save("u.json")
    return g


def test_at_names_with_brackets_from_scalarize(capsys, workdir):
    g = _scalarized(workdir)
    assert g.inputs == ["x[0]", "x[1]", "x[2]"]
    code, out, err = run(capsys, "run", "s.json", "--at", "x[0]=1,x[1]=2,x[2]=-3", "--format", "json")
    assert code == 0, err
    jac = json.loads(out)["jacobian"]
    assert jac["dv4/dx[0]"] == pytest.approx(np.cos(1.0) * 2) and jac["dv4/dx[1]"] == pytest.approx(np.sin(1.0))
    assert jac["dv4/dx[2]"] == pytest.approx(6.0)


def test_at_unicode_names_and_render(capsys, workdir):
    _unicode_graph()
    code, out, err = run(capsys, "run", "u.json", "--at", "θ=[1,2],b_c=[3,1]", "--format", "json")
    assert code == 0, err
    jac = json.loads(out)["jacobian"]
    np.testing.assert_allclose(jac["dv2/dθ"], np.diag([3.0, 1.0] * (1 - np.tanh([1.0, 2.0]) ** 2)))
    np.testing.assert_allclose(jac["dv2/db_c"], np.diag(np.tanh([1.0, 2.0])))
    code, out, _ = run(capsys, "trace", "u.json", "--at", "b_c=[3,1],θ=[1,2]", "--mode", "forward", "--wrt", "θ")
    assert code == 0 and "θ̇" in out and "ḃ_c" in out
    code, _, err = run(capsys, "render", "u.json", "-o", "u.dot", "--strategy", "reverse")
    text = open("u.dot", encoding="utf-8").read()
    assert code == 0 and "θ" in text and "b_c" in text


@pytest.mark.parametrize("at,x", [
    ("x1=2,x2=5", (2.0, 5.0)),
    (" x2 = 5 , x1=2 ", (2.0, 5.0)),
    ("x1=-1.5e0,x2=[5]", None),  # [5] has shape (1,): refused below
    ("x1=inf,x2=-inf", (np.inf, -np.inf)),
    ("x1=nan,x2=0", (np.nan, 0.0)),
])
def test_at_numbers(capsys, workdir, at, x):
    code, out, err = run(capsys, "run", "graphs/lecture_f.json", "--at", at, "--strategy", "forward")
    if x is None:
        assert code == 2 and err == "jacc: error: --at x2: shape (1,), the graph expects ()\n"
        return
    assert code == 0, err
    with np.errstate(all="ignore"):
        want = [1 / x[0] + x[1], x[0] - np.cos(x[1])]
    got = [float(v) for v in re.findall(r"\) =\n(\S+)", out)]
    np.testing.assert_array_equal(got, want)


def test_at_files_npy_npz_and_paths_with_commas(capsys, workdir):
    A = np.arange(12.0).reshape(3, 4) / 10
    os.mkdir("d,1")
    np.save("d,1/A.npy", A)
    np.savez("one.npz", anything=A)
    np.savez("named.npz", A=A, other=np.zeros(2))
    want = None
    for spec in ("A=@d,1/A.npy", "A=@one.npz", "A=@named.npz"):
        code, out, err = run(capsys, "run", "graphs/single_layer.json", "--at", f"{spec},x=[1,2,3,4],b=[0,0,inf]",
                             "--format", "json", "--wrt", "A")
        assert code == 0, (spec, err)
        got = np.array(json.loads(out)["jacobian"]["dv3/dA"])
        want = got if want is None else want
        np.testing.assert_array_equal(got, want)
    # b = inf saturates tanh: ∂v3/∂A is zero in rows 0 and 1 only where tanh' underflows; check a finite row
    assert got.shape == (3, 3, 4)


@pytest.mark.parametrize("at,message", [
    ("x1=2,x1=5", "--at: input 'x1' is given twice; give each input once"),
    ("x1=2,y=3", "--at: 'y' is not an input of 'lecture_f'; its inputs are x1, x2"),
    ("x1=2", "--at must give every input of 'lecture_f' (x1, x2); missing ['x2']"),
    ("2,5", "--at must look like name=value,name=value (e.g. x1=2,x2=5), got '2,5'"),
    ("x1=2,x2=[5", "--at x2: the list has no closing ']'"),
    ("x1=[2]x,x2=5", "--at x1: unexpected 'x,x2=5' after the list; separate pairs with ','"),
    ("x1=true,x2=5", "--at x1='true': not a number or a JSON list of numbers (e.g. 2, -1.5, inf, [1, 2] or "
                     "[[1, 0], [0, 1]])"),
    ("x1=1" + "0" * 5000 + ",x2=5", "--at x1='1000000000000000000000000000000000000000': not a number"),
    ("x1=@,x2=5", "--at x1=@: name a .npy or .npz file after '@'"),
    ("x1=@missing.npy,x2=5", "--at x1: cannot read missing.npy: No such file or directory; give a .npy or .npz file"),
    ("x1=@two.npz,x2=5", "--at x1: two.npz holds arrays ['a', 'b']; store one array, or one named 'x1'"),
    ("x1=@text.npy,x2=5", "--at x1: text.npy holds <U3 values; jacc needs real numbers"),
    ("x1=@junk.npy,x2=5", "--at x1: cannot read junk.npy: "),
    ("x1=@vals.json,x2=5", "--at x1: cannot read vals.json: its contents are not in NumPy's .npy or .npz format; "
                           "give a .npy or .npz file"),  # (not NumPy's advice to unpickle it)
])
def test_at_errors_are_one_line(capsys, workdir, at, message):
    np.savez("two.npz", a=np.zeros(()), b=np.zeros(()))
    np.save("text.npy", np.array("abc"))
    open("junk.npy", "w").write("not numpy")
    open("vals.json", "w").write("[1, 2]")
    code, _, err = run(capsys, "run", "graphs/lecture_f.json", "--at", at)
    assert code == 2 and err.startswith(f"jacc: error: {message}") and err.count("\n") == 1


# -- item 18: running out of memory is one line, exit 2 --------------------------------------------

def test_memory_error_is_one_line(capsys, workdir):
    with open("big.json", "w") as fh:
        json.dump({"format": "jacc-graph", "version": 1, "name": "big", "inputs": [{"name": "x", "shape": []}],
                   "nodes": [{"name": "B", "op": "broadcast_to", "args": ["x"], "params": {"shape": [10 ** 6, 10 ** 6]}},
                             {"name": "y", "op": "sum", "args": ["B"]}],
                   "outputs": ["y"]}, fh)
    code, out, err = run(capsys, "plan", "big.json", "--strategy", "reverse")  # planning needs no values
    assert code == 0 and "This plan's cost" in out
    code, _, err = run(capsys, "run", "big.json", "--at", "x=1", "--strategy", "reverse")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("jacc: error: jacc run needs more memory than is available: Unable to allocate 7.28 TiB "
                          "for an array with shape (1000000, 1000000) and data type float64; use smaller shapes")


def test_memory_error_anywhere_in_a_command(capsys, workdir, monkeypatch):
    def boom(*a, **k):
        raise MemoryError()
    monkeypatch.setattr(cli, "load", boom)
    code, _, err = run(capsys, "plan", "graphs/lecture_f.json")
    assert code == 2 and err == ("jacc: error: jacc plan needs more memory than is available: an allocation failed; "
                                 "use smaller shapes or a machine with more memory ('jacc plan' prices a graph "
                                 "without evaluating it)\n")


# -- item 19: writes keep the mode of an existing file and go through symbolic links -----------------

def test_write_atomic_keeps_mode_and_follows_links(tmp_path):
    from jacc.fileio import write_atomic

    f = tmp_path / "f.txt"
    f.write_text("old")
    os.chmod(f, 0o600)
    write_atomic(f, "new")
    assert f.read_text() == "new" and (os.stat(f).st_mode & 0o777) == 0o600
    os.chmod(f, 0o640)
    write_atomic(f, b"bytes")
    assert (os.stat(f).st_mode & 0o777) == 0o640
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "t.json"
    target.write_text("x")
    os.chmod(target, 0o600)
    link = tmp_path / "link.json"
    os.symlink(os.path.join("real", "t.json"), link)
    write_atomic(link, "through")
    assert os.path.islink(link) and target.read_text() == "through" and (os.stat(target).st_mode & 0o777) == 0o600
    dangling = tmp_path / "dangling.json"
    os.symlink(os.path.join("real", "new.json"), dangling)
    write_atomic(dangling, "created")
    assert os.path.islink(dangling) and (tmp_path / "real" / "new.json").read_text() == "created"
    umask = os.umask(0o022)
    os.umask(umask)
    write_atomic(tmp_path / "fresh.txt", "x")
    assert (os.stat(tmp_path / "fresh.txt").st_mode & 0o777) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.json", "f.txt", "fresh.txt", "link.json", "real"]


def test_write_errors_name_the_target_not_the_temporary_file(tmp_path):
    from jacc.fileio import write_atomic

    (tmp_path / "file").write_text("")
    with pytest.raises(OSError) as e:
        write_atomic(tmp_path / "file" / "out.json", "x")
    assert str(e.value) == f"[Errno 17] cannot write {tmp_path / 'file' / 'out.json'}: File exists"


def test_commands_write_through_links_and_keep_modes(capsys, workdir):
    os.mkdir("keep")
    np.save("keep/J.npy", np.zeros(1))
    os.chmod("keep/J.npy", 0o600)
    os.symlink("keep/J.npy", "J.npy")
    code, _, err = run(capsys, "run", "graphs/lecture_f.json", "--at", "x1=2,x2=5", "--wrt", "x1", "-o", "J.npy")
    assert code == 0, err
    assert os.path.islink("J.npy") and float(np.load("keep/J.npy")) == pytest.approx(5.5)
    assert (os.stat("keep/J.npy").st_mode & 0o777) == 0o600
    open("plan.json", "w").close()
    os.chmod("plan.json", 0o640)
    run(capsys, "plan", "graphs/np_chain.json", "--format", "json", "-o", "plan.json", "--strategy", "chain")
    assert json.load(open("plan.json"))["mults"] == 10300 and (os.stat("plan.json").st_mode & 0o777) == 0o640
    g = __import__("jacc").load("graphs/lecture_f.json")
    os.chmod("graphs/lecture_f.json", 0o600)
    g.save("graphs/lecture_f.json")
    assert (os.stat("graphs/lecture_f.json").st_mode & 0o777) == 0o600


def test_bench_sparse_reports_time_memory_and_a_checked_jacobian(capsys, monkeypatch):
    from jacc import scale

    monkeypatch.setitem(scale.SIZES, "small", 2_000)  # (the real small size takes a second more)
    code, out, err = run(capsys, "bench", "--sparse")
    assert code == 0, err
    assert "RoeFlux over 2,000 interfaces" in out and "36,000 stored entries" in out
    assert "checked against central differences: yes" in out
    peak = float(re.search(r"peak resident memory ([\d.]+) GiB", out).group(1))
    assert 0.0 < peak < 2.0 and "within the 2 GiB target" in out


def test_time_limit_reaches_the_edge_and_face_strategies(tmp_path, capsys, monkeypatch):
    # they take it among **options: the command line dropped it (face greedy planned 1.7 s at 0.2)
    path = tmp_path / "g.json"
    examples.random_graph(5, 300, 5, seed=4, width=8).save(path)
    seen = []
    real = jacc.plan

    def spy(g, strategy, **kw):
        seen.append((strategy, kw.get("elimination"), kw.get("time_limit")))
        return real(g, strategy, **kw)
    monkeypatch.setattr(cli, "plan", spy)
    for elimination in ("edge", "face"):
        for strategy in ("forward", "reverse", "greedy"):
            assert cli._accepts(strategy, "time_limit", elimination)
    code, out, err = run(capsys, "plan", str(path), "--elimination", "face", "--strategy", "all", "--time-limit", "0.001")
    assert code == 0 and ("greedy", "face", 0.001) in seen
    row = next(line for line in out.splitlines() if line.startswith("greedy"))
    assert "did not finish within time_limit=0.001" in row  # a row of its own, the table goes on


@pytest.mark.parametrize("digits", ["-1", "x", "99"])
def test_digits_out_of_range_names_the_option(capsys, workdir, digits):
    code, _, err = run(capsys, "trace", "graphs/lecture_f.json", "--at", "x1=2,x2=5", "--digits", digits)
    assert code == 2 and "--digits: must be a whole number of decimal places" in err


def test_run_keeps_its_memory_limit_for_the_dense_jacobian_too(capsys, workdir):
    """jacc run --memory-limit bounded the plan's live Jacobians only and wrote a 72 MB result
    past a 10 MB limit, which jacc.jacobian refuses before allocating anything."""
    np.save("x.npy", np.linspace(0.1, 1.0, 3000))
    jacc.trace(lambda x: np.sin(x) * 2.0, np.ones(3000)).save("sin.json")
    code, _, err = run(capsys, "run", "sin.json", "--at", "x=@x.npy", "--memory-limit", "10000000", "-o", "J.npy")
    assert code == 2 and not os.path.exists("J.npy")
    assert err.startswith("jacc: error: jacc run: the Jacobian itself takes 72.0 MB as dense arrays, more than the "
                          "memory_limit of 10.0 MB") and "(--wrt, --of), or raise --memory-limit" in err
    code, _, _ = run(capsys, "run", "sin.json", "--at", "x=@x.npy", "--memory-limit", "80000000", "-o", "J.npy")
    assert code == 0 and np.load("J.npy").shape == (3000, 3000)


def test_compare_marks_a_formula_that_does_not_hold_at_n_1(capsys):
    """Formulas are fitted on N ≥ 2; at N = 1 the Kronecker rows printed 4 mults beside
    2N³ + N²P = 5 (found by a helper's hunt)."""
    code, out, _ = run(capsys, "compare", "--N", "1", "--P", "3", "--structure", "kronecker", "--format", "json")
    rows = {r["strategy"]: r for r in json.loads(out)["rows"]}
    assert code == 0 and rows["reverse"]["mults"] == 4 and rows["reverse"]["formula"] == "2N³ + N²P (N ≥ 2)"
    code, out, _ = run(capsys, "compare", "--N", "3", "--P", "2", "--structure", "kronecker", "--format", "json")
    rows = {r["strategy"]: r for r in json.loads(out)["rows"]}
    assert rows["reverse"]["formula"] == "2N³ + N²P" and rows["reverse"]["mults"] == 2 * 27 + 9 * 2


def test_run_and_render_refuse_in_one_line_what_they_cannot_do(capsys, workdir):
    """Hunt CI: a backend that refuses a graph names the command line's fix (not plan.execute or
    'the NumPy program runs'); --steps naming a file writes nothing; an OSError has no [Errno N];
    --wrt/--of with a name twice or an empty one, and --max-iters below 0, are refused."""
    np.save("A.npy", np.arange(12.0).reshape(3, 4) / 10)
    code, out, err = run(capsys, "run", "graphs/single_layer.json", "--at", "A=@A.npy,x=[1,2,3,4],b=[0,0,0]",
                         "--backend", "c")
    assert code == 2 and "--backend c: " in err and "--backend numpy or --backend interpret" in err
    assert "plan.execute" not in err and len(err.strip().splitlines()) == 1
    (workdir / "steps").write_text("a file")
    code, out, err = run(capsys, "render", "graphs/lecture_f.json", "--strategy", "forward", "-o", "pic.svg",
                         "--steps", "steps")
    assert code == 2 and "is a file, not a folder" in err and not (workdir / "pic.svg").exists()
    (workdir / "d1").mkdir()
    code, out, err = run(capsys, "plan", "graphs/lecture_f.json", "-o", "d1")
    assert code == 2 and "[Errno" not in err and "cannot write d1" in err
    for argv, what in [(("--wrt", "x1,x1"), "twice"), (("--wrt", ""), "empty name"), (("--of", "v5,v5"), "twice"),
                       (("--strategy", "auto", "--max-iters", "-3"), "--max-iters must be")]:
        code, out, err = run(capsys, "plan", "graphs/lecture_f.json", *argv)
        assert code == 2 and what in err, argv
