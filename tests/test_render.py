"""Tests of jacc.render: DOT text, plan annotations, Graphviz discovery and atomic writes."""

import os
import shutil
import struct
import sys
import types
import xml.etree.ElementTree as ET

import pydot
import pytest

from jacc import examples
from jacc.graph import Graph
from jacc.plan import plan
from jacc.render import RenderError, bracketing_dot, chain_tree, frames, render, to_dot

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")


def node(d: pydot.Dot, name: str) -> pydot.Node:
    (n,) = d.get_node(f'"{name}"')
    return n


def dashed(d: pydot.Dot) -> list[pydot.Edge]:
    return [e for e in d.get_edges() if "dashed" in str(e.get("style"))]


@pytest.fixture
def no_graphviz(monkeypatch, tmp_path):
    """Hide the `dot` program and make `import pygraphviz` fail."""
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None if cmd == "dot" else real_which(cmd, *a, **k))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setitem(sys.modules, "pygraphviz", None)


def test_lecture_dot_has_every_vertex_and_edge_structure():
    g = examples.lecture_f()
    text = to_dot(g).to_string()
    for v in g.nx:
        assert f'"{v}"' in text
        assert g.op(v) in text
    for u, v in g.nx.edges:
        assert f'"{u}" -> "{v}" [label="{g.partial(u, v).describe()}"' in text
    assert 'shape=ellipse' in node(to_dot(g), "x1").to_string()
    assert 'peripheries=2' in node(to_dot(g), "v5").to_string()


def test_sizes_and_unicode_in_labels():
    text = to_dot(examples.np_chain(10, 3)).to_string()
    assert "dense 100×3" in text and "dense 1×100" in text and "10×10" in text


def test_markowitz_plan_annotates_steps_costs_and_fill_in():
    g = examples.three_layer()
    p = plan(g, "markowitz")
    d = to_dot(g, p)
    for k, s in enumerate(p.steps, 1):
        label = node(d, s.vertex).get("label")
        assert f"step {k} · {s.mults:,} mult" in label
        assert node(d, s.vertex).get("fillcolor")
    for v in g.inputs + g.outputs:
        assert "step" not in node(d, v).get("label")
    fill = [(a, b) for s in p.steps for a, b in s.fill_in]
    edges = dashed(d)
    assert len(edges) == len(fill) > 0
    assert {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in edges} == set(fill)
    assert all(e.get("label").startswith('"step ') for e in edges)
    assert "1,234" not in d.to_string() and "2,286" in d.to_string()  # thousands separators in title


def test_output_sinks_map_back_to_the_output_vertex():
    g = Graph("sinks")
    g.add_input("x", (3,))
    g.add_node("a", "tanh", ["x"])
    g.add_node("b", "sin", ["a"])
    g.set_outputs(["a", "b"])
    p = plan(g, "markowitz")
    text = to_dot(g, p).to_string()
    assert "@out" not in text
    pairs = {(e.get_source(), e.get_destination()) for e in dashed(to_dot(g, p))}
    assert pairs == {('"x"', '"a"'), ('"x"', '"b"')}
    assert all("@out" not in f.to_string() for f in frames(p))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot's parser on newer pyparsing
def test_escaping_of_awkward_names_and_titles(tmp_path):
    g = Graph('we"ird')
    g.add_input("x[0]", (2,))
    g.add_node("a.b-c", "tanh", ["x[0]"])
    g.add_node("graph", "sin", ["a.b-c"])  # a DOT keyword as a vertex name
    g.set_outputs(["graph"])
    title = 'say "hi" \\ <b> & ∂y/∂x → 2×3\nsecond line'
    text = to_dot(g, plan(g, "forward"), title=title).to_string()
    parsed = pydot.graph_from_dot_data(text)
    assert parsed and {n.get_name() for n in parsed[0].get_nodes()} >= {'"x[0]"', '"a.b-c"', '"graph"'}
    assert "&lt;b&gt; &amp; ∂y/∂x" in text and "&quot;hi&quot;" in text
    if shutil.which("dot"):
        (out,) = render(g, plan(g, "forward"), tmp_path / "w.svg", title=title)
        names = "".join(ET.parse(out).getroot().itertext())
        assert "x[0]" in names and "a.b-c" in names and 'say "hi"' in names


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dot_output_works_without_graphviz(no_graphviz, tmp_path):
    g = examples.lecture_f()
    p = plan(g, "reverse")
    out = tmp_path / "f.dot"
    assert render(g, p, out) == [str(out)]
    assert pydot.graph_from_dot_data(out.read_text(encoding="utf-8"))
    written = render(g, p, steps_dir=tmp_path / "steps", fmt="dot")
    assert len(written) == len(p.steps) + 1 and all(os.path.exists(w) for w in written)


def test_svg_without_graphviz_says_how_to_get_it(no_graphviz, tmp_path):
    g = examples.lecture_f()
    with pytest.raises(RenderError) as err:
        render(g, plan(g, "reverse"), tmp_path / "f.svg", steps_dir=tmp_path / "steps")
    msg = str(err.value)
    assert "'dot'" in msg and "apt-get install graphviz" in msg and "brew install graphviz" in msg
    assert "pip install pygraphviz" in msg and ".dot" in msg
    assert isinstance(err.value, RuntimeError)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp files


def test_unknown_extension_lists_supported_formats(tmp_path):
    with pytest.raises(RenderError, match=r"\.dot, \.svg, \.png, \.pdf"):
        render(examples.lecture_f(), path=tmp_path / "f.jpg")
    with pytest.raises(RenderError, match="supported"):
        render(examples.lecture_f(), path=tmp_path / "noext")
    assert list(tmp_path.iterdir()) == []


def test_pygraphviz_fallback_and_no_leftovers_on_error(no_graphviz, monkeypatch, tmp_path):
    calls = []

    class AGraph:
        def __init__(self, string):
            self.text = string

        def draw(self, path, format, prog):
            calls.append((format, prog))
            with open(path, "w") as fh:
                fh.write("<svg>half")
            if format == "pdf":
                raise OSError("boom")
            with open(path, "w") as fh:
                fh.write("<svg/>")

    monkeypatch.setitem(sys.modules, "pygraphviz", types.SimpleNamespace(AGraph=AGraph))
    g = examples.lecture_f()
    out = tmp_path / "f.svg"
    assert render(g, path=out) == [str(out)] and out.read_text() == "<svg/>"
    assert calls == [("svg", "dot")]
    old = tmp_path / "f.pdf"
    old.write_text("previous")
    with pytest.raises(OSError, match="boom"):
        render(g, path=old)
    assert old.read_text() == "previous"  # the old file survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.svg"]


@needs_dot
def test_failing_dot_leaves_no_temp_files(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out_dir = tmp_path / "out"
    with pytest.raises(RenderError, match="syntax error"):
        render(examples.lecture_f(), path=out_dir / "f.png")
    assert list(out_dir.iterdir()) == []


@needs_dot
def test_svg_parses_and_names_vertices(tmp_path):
    g = examples.three_layer()
    (out,) = render(g, plan(g, "markowitz"), tmp_path / "t.svg")
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    text = " ".join(root.itertext())
    for v in g.nx:
        assert v in text
    assert "step 11" in text


@needs_dot
def test_png_has_signature_and_sensible_size(tmp_path):
    g = examples.lecture_f()
    (out,) = render(g, plan(g, "reverse"), tmp_path / "f.png")
    data = open(out, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind, width, height = struct.unpack(">I4sII", data[8:24])
    assert kind == b"IHDR" and length == 13
    assert 200 < width < 5000 and 200 < height < 5000


@needs_dot
def test_pdf_and_steps_dir(tmp_path):
    g = examples.three_layer()
    p = plan(g, "markowitz")
    written = render(g, p, tmp_path / "t.pdf", steps_dir=tmp_path / "steps", fmt="svg")
    assert open(written[0], "rb").read(5) == b"<?xml"  # fmt wins over the extension
    steps = sorted(os.listdir(tmp_path / "steps"))
    assert len(steps) == len(p.steps) + 1 == len(written) - 1
    assert steps[0] == "step_000.svg" and steps[-1] == f"step_{len(p.steps):03d}.svg"
    (pdf,) = render(g, p, tmp_path / "t2.pdf")
    assert open(pdf, "rb").read(4) == b"%PDF"


def test_frames_show_state_after_each_step():
    g = examples.three_layer()
    p = plan(g, "markowitz")
    fs = frames(p)
    assert len(fs) == len(p.steps) + 1
    assert not dashed(fs[0]) or all(e.get("style") == "invis" for e in dashed(fs[0]))
    first = p.steps[0]
    bold = [e for e in fs[1].get_edges() if e.get("penwidth") == "2.5"]
    assert len(bold) == len(first.fill_in)
    assert "dashed" in node(fs[1], first.vertex).get("style")  # eliminated: greyed out
    assert "dashed" not in str(node(fs[0], first.vertex).get("style"))
    visible = [e for e in fs[-1].get_edges() if e.get("style") != "invis"]
    assert {e.get_destination() for e in visible} == {'"v12"'}  # only input → output Jacobians left


def test_chain_tree_for_np_chain():
    p = plan(examples.np_chain(10, 3), "chain")
    d = chain_tree(p)
    names = [n.get_name() for n in d.get_nodes()]
    assert sum(n.startswith("leaf") for n in names) == 3
    assert sum(n.startswith("prod") for n in names) == 2
    text = d.to_string()
    assert "∂L/∂K" in text and "∂D/∂theta" in text
    for s in p.steps:
        assert f"{s.mults:,} mults" in text
    assert len(d.get_edges()) == 4


def test_chain_tree_none_without_bracketing():
    assert chain_tree(plan(examples.lecture_f(), "markowitz")) is None


def test_bracketing_dot_with_costs():
    d = bracketing_dot((0, (1, 2)), ["A", "B", "C"], {(1, 2): 1234, (0, (1, 2)): 7})
    text = d.to_string()
    assert "1,234 mults" in text and "7 mults" in text and '"A"' in text
    assert len(d.get_edges()) == 4


def test_a_plan_through_a_gather_into_a_scatter_is_drawn():
    """The picture's states multiplied symbolic partials numerically: a gather's positions, never
    built for pricing, were read (AttributeError on bincount of x[[0, 1, 2, 3, 0]])."""
    import numpy as np

    import jacc

    g = jacc.trace(lambda x: np.bincount(np.array([2, 0, 3, 3, 1]), weights=x[[0, 1, 2, 3, 0]], minlength=5),
                   np.arange(4.0))
    for strategy in ("reverse", "forward", "markowitz"):
        p = plan(g, strategy)
        text = to_dot(g, p).to_string()
        assert text.startswith("digraph") and "1: v1" in text and "0 mults" in text
