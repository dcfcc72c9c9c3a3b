"""The jacc command: every subcommand, its errors, and every command shown in the docs."""

import doctest
import glob
import json
import os
import re
import shlex
import shutil
import struct

import numpy as np
import pytest

from jacc import cli

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
    (["nope"], "invalid choice"),
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
    assert code == 2 and "bad.json: node 'y': unknown op 'sinn'" in err


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
