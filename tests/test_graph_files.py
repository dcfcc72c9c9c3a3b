"""Graph files: round trips, the shipped examples, and validation messages."""

import json
import os

import numpy as np
import pytest

import jacc
from jacc import examples
from jacc.eliminate import Problem, price

GRAPHS = os.path.join(os.path.dirname(__file__), "..", "graphs")


@pytest.mark.parametrize("name", sorted(examples.BUILDERS))
def test_shipped_graphs_match_builders_and_round_trip(name, tmp_path):
    g = jacc.load(os.path.join(GRAPHS, f"{name}.json"))
    assert g.to_dict() == examples.BUILDERS[name]().to_dict()
    p = tmp_path / "g.json"
    g.save(p)
    g2 = jacc.load(p)
    assert g2.to_dict() == g.to_dict()
    assert p.read_text() == g.to_json() + "\n"
    for u, v in g.nx.edges:
        a, b = g.partial(u, v), g2.partial(u, v)
        assert (a.pair, a.vlabels, a.out_shape, a.in_shape) == (b.pair, b.vlabels, b.out_shape, b.in_shape)


def test_lecture_graph_file_values():
    g = jacc.load(os.path.join(GRAPHS, "lecture_f.json"))
    vals = g.evaluate({"x1": 2.0, "x2": 5.0})
    assert vals["v5"] == pytest.approx(11.652071455223084)
    prob = Problem.from_graph(g)
    for order in (prob.eliminable, prob.eliminable[::-1]):
        acc = jacc.accumulate(prob, vals, order)
        assert acc.blocks["v5", "x1"] == pytest.approx(5.5)
        assert acc.blocks["v5", "x2"] == pytest.approx(1.7163378145367738)


def test_constants_round_trip_exactly(tmp_path):
    c = np.array([[0.1, 1 / 3], [2.5e-300, -7.0]])
    g = jacc.trace(lambda x: x * c + np.where(c > 0, x, 0.0), np.ones((2, 2)))
    g.save(tmp_path / "c.json")
    g2 = jacc.load(tmp_path / "c.json")
    x = np.arange(4.0).reshape(2, 2)
    assert np.array_equal(g.evaluate({"x": x})[g.outputs[0]], g2.evaluate({"x": x})[g2.outputs[0]])


@pytest.mark.parametrize("n,p,dense_f,dense_r,ew_f,ew_r", [(10, 3, 30300, 10300, 600, 400), (7, 5, 12250, 2646, 490, 294)])
def test_np_chain_costs_match_lecture(n, p, dense_f, dense_r, ew_f, ew_r):
    assert dense_f == n**4 * p + n**2 * p and dense_r == n**4 + n**2 * p
    for structure, (f, r) in (("dense", (dense_f, dense_r)), ("elementwise", (ew_f, ew_r))):
        prob = Problem.from_graph(examples.np_chain(n, p, structure))
        assert price(prob, prob.eliminable)[1] == f
        assert price(prob, prob.eliminable[::-1])[1] == r


def _write(tmp_path, data):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


BASE = {"format": "jacc-graph", "version": 1, "inputs": [{"name": "x", "shape": [3]}],
        "nodes": [{"name": "y", "op": "sin", "args": ["x"]}], "outputs": ["y"]}


def _with(**changes):
    d = json.loads(json.dumps(BASE))
    d.update(changes)
    return d


@pytest.mark.parametrize("data,match", [
    ("{not json", r"bad.json: line 1: not valid JSON"),
    (_with(format="other"), r"bad.json: format: expected \"format\": \"jacc-graph\""),
    (_with(version=9), r"version: this jacc reads version 1"),
    (_with(nodes=[{"name": "y", "op": "frobnicate", "args": ["x"]}]), r"node 'y': unknown op 'frobnicate'; known ops: .*sin"),
    (_with(nodes=[{"name": "y", "op": "add", "args": ["x"]}]), r"node 'y'.*add takes 2 argument\(s\), got 1"),
    (_with(nodes=[{"name": "y", "op": "matmul", "args": ["x", {"const": [[1, 2]]}]}]), r"node 'y'.*do not align"),
    (_with(nodes=[{"name": "y", "op": "sin", "args": ["z"]}]), r"node 'y': argument 'z' is not defined: no input"),
    (_with(nodes=[{"name": "a", "op": "sin", "args": ["b"]}, {"name": "b", "op": "sin", "args": ["a"]}],
           outputs=["b"]), r"node 'a': argument 'b' is not defined: it is defined later.*cycle"),
    (_with(nodes=[{"name": "x", "op": "sin", "args": ["x"]}]), r"node 'x'.*duplicate vertex name 'x'"),
    (_with(nodes=[{"name": "y", "op": "mul", "args": ["x", {"const": [1, "NaN"]}]}]), r"node 'y'.*number"),
    (_with(nodes=[{"name": "y", "op": "mul", "args": ["x", {"const": [1e999, 1, 1]}]}]), r"node 'y': constant contains NaN or infinity"),
    (_with(outputs=["w"]), r"outputs: output 'w' is not a vertex"),
    (_with(outputs=[]), r"outputs: list at least one output"),
    (_with(inputs=[{"name": "x", "shape": [-1]}]), r"input 'x'.*non-negative"),
    (_with(nodes=[{"name": "y", "op": "sin", "args": ["x"], "shape": [4]}]), r"node 'y'.*declared shape \(4,\) but arguments give \(3,\)"),
    ([1, 2], r"top level: expected a JSON object"),
])
def test_bad_files_name_file_node_and_fix(tmp_path, data, match):
    with pytest.raises(jacc.GraphError, match=match):
        jacc.load(_write(tmp_path, data))


def test_missing_file(tmp_path):
    with pytest.raises(jacc.GraphError, match="nope.json: cannot read"):
        jacc.load(tmp_path / "nope.json")


def test_abstract_graph_cannot_be_evaluated_but_can_be_planned():
    g = examples.np_chain(3, 2)
    with pytest.raises(NotImplementedError, match="planning only"):
        g.evaluate({"theta": np.ones(2)})


def test_graph_queries_and_copy():
    g = jacc.load(os.path.join(GRAPHS, "lecture_f.json"))
    assert g.inputs == ["x1", "x2"] and g.outputs == ["v5"]
    assert g.intermediates == ["v1", "v2", "v3", "v4"]
    assert g.role("x1") == "input" and g.role("v5") == "output" and g.role("v2") == "intermediate"
    assert g.topological_order()[:2] == ["x1", "x2"]
    h = g.copy()
    h.add_node("w", "exp", ["v5"])
    assert "w" not in g.nx
    g.validate()
    with pytest.raises(jacc.GraphError, match="evaluate|needs input 'x2'"):
        g.evaluate({"x1": 1.0})
    with pytest.raises(jacc.GraphError, match="input 'x1' has shape \\(2,\\)"):
        g.evaluate({"x1": np.ones(2), "x2": 1.0})
