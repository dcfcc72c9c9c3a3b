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
    (_with(format="other"), r"bad.json: format: expected \"jacc-graph\", got 'other'$"),
    (_with(version=9), r"bad.json: version: expected 1 \(the version this jacc reads\), got 9$"),
    (_with(nodes=[{"name": "y", "op": "frobnicate", "args": ["x"]}]), r"node 'y': op: unknown op 'frobnicate'; known ops: .*sin"),
    (_with(nodes=[{"name": "y", "op": "add", "args": ["x"]}]), r"node 'y'.*add takes 2 argument\(s\), got 1"),
    (_with(nodes=[{"name": "y", "op": "matmul", "args": ["x", {"const": [[1, 2]]}]}]), r"node 'y'.*do not align"),
    (_with(nodes=[{"name": "y", "op": "sin", "args": ["z"]}]), r"node 'y': argument 'z' is not defined: no input"),
    (_with(nodes=[{"name": "a", "op": "sin", "args": ["b"]}, {"name": "b", "op": "sin", "args": ["a"]}],
           outputs=["b"]), r"node 'a': argument 'b' is not defined: it is defined later.*cycle"),
    (_with(nodes=[{"name": "x", "op": "sin", "args": ["x"]}]), r"node 'x'.*duplicate vertex name 'x'"),
    (_with(nodes=[{"name": "y", "op": "mul", "args": ["x", {"const": [1, "NaN"]}]}]), r"node 'y'.*number"),
    (_with(nodes=[{"name": "y", "op": "mul", "args": ["x", {"const": [1e999, 1, 1]}]}]),
     r"node 'y': args\[1\]\.const\[0\]: expected a finite number, or \"inf\", \"-inf\" or \"nan\" .*, got inf$"),
    (_with(outputs=["w"]), r"outputs: output 'w' is not a vertex"),
    (_with(outputs=[]), r"outputs: expected a non-empty list of vertex names, got an empty list$"),
    (_with(inputs=[{"name": "x", "shape": [-1]}]), r"input 'x': shape\[0\]: expected a size \(an integer from 0 to 2⁵³\), got -1$"),
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


# -- issue 12: every field's JSON type and range is checked up front (item 15) --------------------

def _node(op, args, params=None, **extra):
    return _with(nodes=[{"name": "y", "op": op, "args": args, **({"params": params} if params is not None else {}),
                         **extra}])


SCHEMA_CASES = [
    # (file content, the message after "bad.json: ")
    (_with(nodes=[{"name": "y", "op": ["sin"], "args": ["x"]}]),
     "node 'y': op: expected an op name (a string), got a list; known ops: abs, "),
    (_with(nodes=[{"name": {"a": 1}, "op": "sin", "args": ["x"]}]),
     "node #0: name: expected a vertex name (a string), got an object"),
    (_with(inputs=[{"name": ["x"], "shape": [3]}]), "input #0: name: expected a vertex name (a string), got a list"),
    (_node("sin", 3), "node 'y': args: expected a list of arguments, got 3"),
    (_node("sin", ["x"], 3), "node 'y': params: expected an object, got 3"),
    (_with(meta=3), "meta: expected an object, got 3"),
    (_with(meta=[1]), "meta: expected an object, got a list"),
    # the meta keys jacc reads (hunt CI: each gave a TypeError or AttributeError inside jacc run)
    (_with(meta={"one_hot": 5}), "meta.one_hot: must map a mask vertex to [its labels vertex, the class count]"),
    (_with(meta={"one_hot": {"y": 3}}), "meta.one_hot: must map a mask vertex to [its labels vertex, the class count]"),
    (_with(meta={"one_hot": {"y": ["nowhere", 3]}}), "meta.one_hot: must map a mask vertex"),
    (_with(meta={"value_dependent": 3}), "meta.value_dependent: must be a list of strings"),
    (_with(meta={"traced_at": 1}), "meta.traced_at: must be a string"),
    (_with(meta={"output_tuple": "yes"}), "meta.output_tuple: must be true or false"),
    (_with(version=True), "version: expected 1 (the version this jacc reads), got true"),
    (_with(version=1.0), "version: expected 1 (the version this jacc reads), got 1.0"),
    (_with(name=7), "name: expected a string, got 7"),
    (_with(outputs="y"), "outputs: expected a non-empty list of vertex names, got 'y'"),
    (_with(outputs=[0]), "outputs[0]: expected a vertex name (a string), got 0"),
    (_with(inputs=[{"name": "x", "shape": [2 ** 63]}]),
     "input 'x': shape[0]: expected a size (an integer from 0 to 2⁵³), got an integer of 19 digits"),
    (_with(inputs=[{"name": "x", "shape": [2 ** 30, 2 ** 30]}]),
     "input 'x': shape: 1073741824 × 1073741824 is 1,152,921,504,606,846,976 elements, more than the "
     "9,007,199,254,740,992 jacc handles; expected a shape: a list of at most 32 sizes (integers ≥ 0), e.g. [3, 4]"),
    (_with(inputs=[{"name": "x", "shape": [1] * 33}]),
     "input 'x': shape: expected a shape: a list of at most 32 sizes (integers ≥ 0), e.g. [3, 4], got a list"),
    (_with(inputs=[{"name": "x", "shape": 3}]),
     "input 'x': shape: expected a shape: a list of at most 32 sizes (integers ≥ 0), e.g. [3, 4], got 3"),
    (_with(inputs=[{"name": "x"}]),
     "input 'x': shape: missing; expected a shape: a list of at most 32 sizes (integers ≥ 0), e.g. [3, 4]"),
    (_with(nodes=[{"name": "y", "op": "sin", "args": ["x"], "param": {}}]),
     "node 'y': param: unknown field; the fields here are name, op, args, params, shape"),
    (_with(extra=1), "extra: unknown field; the fields here are format, version, name, inputs, nodes, outputs, meta"),
    # constants
    (_node("mul", ["x", 2.0, 3.0]), "node 'y' (mul): mul takes 2 argument(s), got 3"),
    (_node("mul", ["x", True]), "node 'y': args[1]: expected a vertex name, a number, or {\"const\": ...}, got true"),
    (_node("mul", ["x", None]), "node 'y': args[1]: expected a vertex name, a number, or {\"const\": ...}, got null"),
    (_node("mul", ["x", {"const": [1, [2], 3]}]),
     "node 'y': args[1].const: rows of different lengths; expected a number or a nested list of numbers "
     "(non-finite ones as \"inf\", \"-inf\", \"nan\") with equal-length rows"),
    (_node("mul", ["x", {"const": [True, 1, 2]}]),
     "node 'y': args[1].const[0]: expected a finite number, or \"inf\", \"-inf\" or \"nan\" (JSON has no NaN or "
     "infinity), got true"),
    (_node("mul", ["x", {"const": ["Inf", 1, 2]}]),
     "node 'y': args[1].const[0]: expected a finite number, or \"inf\", \"-inf\" or \"nan\" (JSON has no NaN or "
     "infinity), got 'Inf'"),
    (_node("where", [{"const": [1, 0, 1], "dtype": "bool"}, "x", "x"]),
     "node 'y': args[0].const[0]: expected true or false, got 1"),
    (_node("mul", ["x", {"const": [1, 2, 3], "dtype": "int"}]),
     "node 'y': args[1].dtype: expected \"float\" or \"bool\", got 'int'"),
    (_node("mul", ["x", {"value": 1}]), "node 'y': args[1].value: unknown field; the fields here are const, dtype"),
    (_node("constant", [], {"value": None}),
     "node 'y': params.value: expected a number or a nested list of numbers (non-finite ones as \"inf\", \"-inf\", "
     "\"nan\"), got null"),
    (_node("constant", [], {"value": "a"}),
     "node 'y': params.value: expected a finite number, or \"inf\", \"-inf\" or \"nan\" (JSON has no NaN or infinity), "
     "got 'a'"),
    (_node("constant", [], {}), "node 'y': params.value: missing; expected a number or a nested list of numbers "
                                "(non-finite ones as \"inf\", \"-inf\", \"nan\")"),
    (_node("constant", [], {"value": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}),
     "node 'y': params.value[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
     "[0][0][0]: nested more than 32 lists deep; expected a number or a nested list of numbers (non-finite ones as "
     "\"inf\", \"-inf\", \"nan\")"),
    # op parameters: JSON type and range
    (_node("sum", ["x"], {"axis": 0.5}),
     "node 'y': params.axis: expected an axis, a list of axes, or null (every axis), got 0.5"),
    (_node("sum", ["x"], {"axis": [0, "1"]}),
     "node 'y': params.axis[1]: expected an axis (a small integer; negative counts from the end), got '1'"),
    (_node("sum", ["x"], {"axis": 2 ** 64}),
     "node 'y': params.axis: expected an axis (a small integer; negative counts from the end), got an integer of "
     "20 digits"),
    (_node("sum", ["x"], {"keepdims": 1}), "node 'y': params.keepdims: expected true or false, got 1"),
    (_node("sum", ["x"], {"axes": 0}), "node 'y': params.axes: unknown field; the fields here are axis, keepdims"),
    (_node("sin", ["x"], {"axis": 0}), "node 'y': params.axis: unknown field; the fields here are none"),
    (_node("clip", ["x"], {"lo": "a"}),
     "node 'y': params.lo: expected a finite number, or \"inf\", \"-inf\" or \"nan\" (JSON has no NaN or infinity), "
     "got 'a'"),
    (_node("clip", ["x"], {"hi": [[1], 2]}),
     "node 'y': params.hi: rows of different lengths; expected a number or a nested list of numbers (non-finite ones "
     "as \"inf\", \"-inf\", \"nan\") with equal-length rows"),
    (_node("clip", ["x"], {"hi": {"a": 1}}),
     "node 'y': params.hi: expected a number or a nested list of numbers (non-finite ones as \"inf\", \"-inf\", "
     "\"nan\") or null, got an object"),
    (_node("clip", ["x"], {"hi": [1, 2]}),
     "node 'y' (clip): shapes (3,), (2,) cannot be broadcast together"),
    (_node("reshape", ["x"], {"shape": [-1, -1]}),
     "node 'y': params.shape: more than one -1; expected a target shape such as [2, -1]"),
    (_node("reshape", ["x"], {"shape": [-2, 3]}),
     "node 'y': params.shape[0]: expected a size, or -1 for the rest, got -2"),
    (_node("reshape", ["x"], {}), "node 'y': params.shape: missing; expected a target shape such as [2, -1]"),
    (_node("broadcast_to", ["x"], {"shape": [2, 0.5]}),
     "node 'y': params.shape[1]: expected a size (an integer from 0 to 2⁵³), got 0.5"),
    (_node("einsum", ["x"], {"spec": "i->j"}),
     "node 'y': params.spec: expected an einsum spec with an explicit output, e.g. \"ij,j->i\", got 'i->j'"),
    (_node("einsum", ["x"], {"spec": "i"}),
     "node 'y': params.spec: expected an einsum spec with an explicit output, e.g. \"ij,j->i\", got 'i'"),
    (_node("getitem", ["x"], {"index": [["slice", 0, 1]]}),
     "node 'y': params.index[0]: expected an index item [\"int\", i], [\"slice\", start, stop, step], [\"new\"] or "
     "[\"array\", [...]], got a list"),
    (_node("getitem", ["x"], {"index": [["slice", 0, 1, 0]]}),
     "node 'y': params.index[0][3]: expected a non-zero integer, got 0"),
    (_node("getitem", ["x"], {"index": [["int", 2 ** 63]]}),
     "node 'y': params.index[0][1]: expected an integer, got an integer of 19 digits"),
    (_node("getitem", ["x"], {"index": [["array", 1]]}),
     "node 'y': params.index[0][1]: expected a list (an index array), got a number; use [\"int\", i] for one index"),
    (_node("getitem", ["x"], {"index": [["array", [0.5]]]}),
     "node 'y': params.index[0][1][0]: expected integers or booleans, got 0.5"),
    (_node("getitem", ["x"], {"index": [["int", 3]]}),
     "node 'y' (getitem): index [['int', 3]] does not fit shape (3,): index 3 is out of bounds for axis 0 with size 3"),
    (_node("abstract", ["x"], {"partials": ["diagonal"]}, shape=[3]),
     "node 'y': params.partials[0]: expected a partial structure (dense, elementwise, identity, sum, broadcast, kronecker), "
     "got 'diagonal'"),
    (_node("abstract", ["x"], {"partials": ["dense"]}),
     "node 'y': shape: missing; an abstract node needs its shape, e.g. \"shape\": [3]"),
    # argument counts and axis ranges that the op's shape rule takes for granted
    (_node("concatenate", []), "node 'y' (concatenate): concatenate needs at least 1 argument(s), got 0"),
    (_node("stack", [], {"axis": 0}), "node 'y' (stack): stack needs at least 1 argument(s), got 0"),
    (_node("einsum", [], {"spec": "->"}), "node 'y' (einsum): einsum needs at least 1 argument(s), got 0"),
    (_node("transpose", ["x"], {"axes": [5]}), "node 'y' (transpose): axes 5 is out of range for 1 axes (use -1 … 0)"),
    (_node("transpose", ["x"], {"axes": [-2]}), "node 'y' (transpose): axes -2 is out of range for 1 axes (use -1 … 0)"),
    (_node("concatenate", ["x", "x"], {"axis": 1}),
     "node 'y' (concatenate): axis 1 is out of range for 1 axes (use -1 … 0)"),
    (_node("stack", ["x", "x"], {"axis": 2}), "node 'y' (stack): axis 2 is out of range for 2 axes (use -2 … 1)"),
    (_node("sum", ["x"], {"axis": [0, -1]}), "node 'y' (sum): axis [0, -1] repeats an axis"),
    (_node("mean", ["x"], {"axis": 1}), "node 'y' (mean): axis 1 is out of range for 1 axes (use -1 … 0)"),
    (_with(inputs=[{"name": "x", "shape": []}], nodes=[{"name": "y", "op": "transpose", "args": ["x"],
                                                        "params": {"axes": [0]}}]),
     "node 'y' (transpose): axes 0 is out of range: the argument has no axes"),
    # checked by running the op once on zeros at loading (they failed at the first run, naming no node)
    (_node("put", ["x", {"const": [1.0, 2.0]}, {"const": [1, 1]}]), "node 'y' (put): put positions must be distinct"),
    (_node("gather", ["x", {"const": [0, 9]}]), "node 'y' (gather): gather positions must be integers in [0, 3)"),
    (_node("scatter_add", ["x", {"const": [0, 5, 1]}], {"size": 4}),
     "node 'y' (scatter_add): scatter_add positions must be integers in [0, 4)"),
    (_node("interp", ["x", {"const": [2.0, 1.0, 0.0]}, {"const": [0.0, 1.0, 2.0]}]),
     "node 'y' (interp): interp's knots must increase strictly"),
    (_with(inputs=[{"name": "x", "shape": [3]}, {"name": "z", "shape": [2]}],
           nodes=[{"name": "y", "op": "value_from", "args": ["x", "z"]}]),
     "node 'y' (value_from): its two arguments must have one shape, got (3,) and (2,)"),
]


@pytest.mark.parametrize("data,message", SCHEMA_CASES)
def test_every_field_is_checked_with_one_line_naming_file_node_field_and_fix(tmp_path, data, message):
    p = _write(tmp_path, data)
    with pytest.raises(jacc.GraphError) as e:
        jacc.load(p)
    assert str(e.value).startswith(f"{p}: {message}")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text,message", [
    ('{"format": "jacc-graph", "version": 1, "version": 2}', "key 'version' appears twice in one object; keep one"),
    ('[' * 100_000 + ']' * 100_000, "not readable as JSON: nested too deeply"),
    ('{"a": ' + "1" * 5000 + '}', "not readable as JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits"),
    (json.dumps(BASE).replace('"x"]', '"x", ' + "1" + "0" * 400 + "]"),
     "node 'y': args[1]: expected a finite number (JSON has no NaN or infinity: write {\"const\": \"nan\"}, \"inf\" "
     "or \"-inf\"), got an integer of 401 digits"),
    (json.dumps(BASE).replace('"x"]', '"x", NaN]'), "node 'y': args[1]: expected a finite number (JSON has no NaN or "
     "infinity: write {\"const\": \"nan\"}, \"inf\" or \"-inf\"), got nan"),
    (json.dumps(BASE).replace('"x"]', '"x", {"const": [1, -Infinity, 2]}]'),
     "node 'y': args[1].const[1]: expected a finite number, or \"inf\", \"-inf\" or \"nan\" (JSON has no NaN or "
     "infinity), got -inf"),
    (json.dumps(BASE).replace('"x"]', '"x", {"const": [1, 1e999, 2]}]'),
     "node 'y': args[1].const[1]: expected a finite number, or \"inf\", \"-inf\" or \"nan\" (JSON has no NaN or "
     "infinity), got inf"),
])
def test_json_text_limits(tmp_path, text, message):
    with pytest.raises(jacc.GraphError) as e:
        jacc.load(_write(tmp_path, text))
    assert str(e.value).endswith(f"bad.json: {message}")


def test_file_that_is_not_utf8(tmp_path):
    p = tmp_path / "bad.json"
    p.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(jacc.GraphError, match=r"bad.json: not UTF-8 text \(byte 10\); save the file as UTF-8 JSON$"):
        jacc.load(p)


def test_every_op_parameter_has_a_schema_entry():
    from jacc.graph import PARAMS
    from jacc.ops import OPS

    assert {op: set(o.params) for op, o in OPS.items() if o.params} == {op: set(f) for op, f in PARAMS.items()}


@pytest.mark.parametrize("params,shape", [
    ({"axis": None}, ()), ({"axis": -1, "keepdims": True}, (1,)), ({"axis": [0]}, ()), ({}, ()),
])
def test_valid_parameters_still_load(tmp_path, params, shape):
    g = jacc.load(_write(tmp_path, _node("sum", ["x"], params)))
    assert g.shape("y") == shape
    assert g.evaluate({"x": np.array([1.0, 2.0, 4.0])})["y"] == pytest.approx(7.0)


# -- item 16: what jacc writes it reads back, bit for bit ----------------------------------------

def _masked_softmax(x):
    s = np.where(np.array([True, False, True]), x, -np.inf)
    e = np.exp(s - np.max(s))
    return e / np.sum(e) * np.array([1.0, -0.0, 2.0])


def _bits(a):
    return np.asarray(a, float).tobytes()


def test_non_finite_and_negative_zero_constants_round_trip_exactly(tmp_path):
    x = np.array([0.3, -1.2, 0.8])
    g = jacc.trace(_masked_softmax, x)
    g.add_node("c", "constant", [], {"value": [math_inf := float("inf"), -math_inf, float("nan"), -0.0, 5e-324]})
    g.add_node("k", "clip", [g.outputs[0]], {"lo": -math_inf, "hi": float("nan")})
    g.set_outputs(g.outputs + ["c", "k"])
    path = tmp_path / "softmax.json"
    g.save(path)
    text = path.read_text()

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token} written")
    json.loads(text, parse_constant=refuse)  # strict JSON: no NaN/Infinity tokens
    assert '"-inf"' in text and '"nan"' in text and "-0.0" in text
    g2 = jacc.load(path)
    consts = lambda h: [a.value for v in h.topological_order() for a in h.nx.nodes[v]["args"]  # noqa: E731
                        if isinstance(a, jacc.Const)]
    assert [(_bits(a), a.dtype) for a in consts(g)] == [(_bits(a), a.dtype) for a in consts(g2)]
    assert _bits(g2.nx.nodes["c"]["params"]["value"]) == _bits([math_inf, -math_inf, float("nan"), -0.0, 5e-324])
    assert g2.nx.nodes["k"]["params"]["lo"] == -math_inf
    g2.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text  # save ∘ load ∘ save is the identity on text
    v1, v2 = g.evaluate({"x": x}), g2.evaluate({"x": x})
    assert all(_bits(v1[v]) == _bits(v2[v]) for v in g.nx)
    p1, p2 = jacc.plan(g, "reverse", of=[g.outputs[0]]), jacc.plan(g2, "reverse", of=[g.outputs[0]])
    J1, J2 = p1.execute(x)[g.outputs[0], "x"], p2.execute(x)[g.outputs[0], "x"]
    assert _bits(J1) == _bits(J2)
    from conftest import fd_jacobian
    np.testing.assert_allclose(J1, fd_jacobian(_masked_softmax, [x], 0), atol=1e-8)


def test_plan_with_non_finite_constants_round_trips(tmp_path):
    x = np.array([0.3, -1.2, 0.8])
    p = jacc.plan(jacc.trace(_masked_softmax, x), "reverse")
    q = jacc.Plan.from_json(p.to_json())
    assert q.order == p.order and _bits(q.execute(x)[q.of[0], "x"]) == _bits(p.execute(x)[p.of[0], "x"])


def _branchy(x):
    return 2.0 * x if x.sum() > 0 else -3.0 * x


def test_a_value_dependent_graph_warns_when_it_runs_at_other_inputs(tmp_path, capsys):
    import warnings

    from jacc.plan import ValueDependenceWarning

    g = jacc.trace(_branchy, np.ones(2))
    g.save(tmp_path / "h.json")
    for graph in (g, jacc.load(tmp_path / "h.json")):
        p = jacc.plan(graph, "reverse")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # at the traced point: silent
            np.testing.assert_array_equal(p.execute(np.ones(2))[graph.outputs[0], "x"], 2 * np.eye(2))
            p.compile("numpy")(np.ones(2))
        for run in (p.execute, p.compile("numpy")):
            with pytest.warns(ValueDependenceWarning, match="comparison '>' at .*test_graph_files"):
                run(-np.ones(2))  # (f would take the other branch: −3·I)
    from jacc import cli

    assert cli.main(["run", str(tmp_path / "h.json"), "--at", "x=[-1,-1]"]) == 0
    err = capsys.readouterr().err
    assert err.count("jacc: warning: graph '_branchy' was traced at other inputs") == 1


def test_a_compiled_scalar_plan_warns_too_where_its_trace_looked_at_values(tmp_path):
    import warnings

    from jacc.plan import ValueDependenceWarning

    g = jacc.trace(lambda x, y: x * y if x > 0 else -x * y, 2.0, 3.0, scalarize=True)
    g.save(tmp_path / "s.json")
    for graph in (g, jacc.load(tmp_path / "s.json")):
        p = jacc.plan(graph, "reverse")
        for backend in ("scalar", "c", "auto"):
            fn = p.compile(backend)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert fn(2.0, 3.0)[graph.outputs[0], "y"] == 2.0
            with pytest.warns(ValueDependenceWarning, match="traced at other inputs"):
                assert fn(-2.0, 3.0)[graph.outputs[0], "y"] == -2.0  # (f's is +2 there)
    h = jacc.trace(lambda x, y: x * y, 2.0, 3.0, scalarize=True)
    plain = jacc.plan(h, "reverse").compile("scalar")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plain(-2.0, 3.0)[h.outputs[0], "y"] == -2.0


def test_a_plan_files_claims_of_optimality_are_marked_as_the_files():
    g = examples.np_chain(10, 3)
    proven, forward = jacc.plan(g, "optimal"), jacc.plan(g, "forward")  # 10,300 and 30,300
    assert "proof" not in proven.info and "proof" in jacc.Plan.from_json(proven.to_json()).info
    d = json.loads(forward.to_json())
    assert "proof" not in jacc.Plan.from_json(d).info and forward.mults > proven.mults
    d["optimal"] = True  # an edited file: re-pricing cannot tell
    forged = jacc.Plan.from_json(d)
    assert forged.optimal and "not checked on loading" in forged.info["proof"] and "proof:" in str(forged)
    d["optimal"], d["info"] = None, {"lower bound": forward.mults + 1}
    with pytest.raises(ValueError, match=f"a lower bound of {forward.mults + 1} does not fit a plan of {forward.mults}"):
        jacc.Plan.from_json(d)


def test_a_graph_with_nested_arguments_and_results_saves_its_leaves(tmp_path):
    # the containers are Python objects that jacobian reads to shape its result; the file keeps
    # their leaves as vertices (to_json raised TypeError on the TreeSpec in meta)
    def f(p):
        return {"a": p["x"] * 2.0, "b": (np.sin(p["y"]).sum(), p["x"] @ p["x"])}

    p = {"x": np.array([1.0, 2.0, 3.0]), "y": np.array([0.5, -0.5])}
    g = jacc.trace(f, p)
    path = tmp_path / "nested.json"
    g.save(path)
    g2 = jacc.load(path)
    assert g2.inputs == ["p.x", "p.y"] and g2.outputs == g.outputs and g2.meta["output_tuple"] is True
    blocks = jacc.plan(g2, "reverse").execute(p["x"], p["y"])
    J = jacc.jacobian(f)(p)
    out_a, out_b0, out_b1 = g2.outputs
    np.testing.assert_array_equal(blocks[out_a, "p.x"], J["a"]["x"])
    np.testing.assert_allclose(blocks[out_b0, "p.y"], J["b"][0]["y"])
    np.testing.assert_allclose(blocks[out_b1, "p.x"], J["b"][1]["x"])
    q = jacc.Plan.from_json(jacc.plan(g, "forward").to_json())
    np.testing.assert_allclose(q.execute(p["x"], p["y"])[out_b1, "p.x"], 2 * p["x"])


# -- item 9b: names in any script ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["θ", "x[0]", "layer-1.w", "変数", "_x", "कि", "x²", "Δt_2", "ñ"])
def test_unicode_identifier_like_names_are_accepted(tmp_path, name):
    data = _with(inputs=[{"name": name, "shape": [3]}], nodes=[{"name": "y", "op": "sin", "args": [name]}])
    g = jacc.load(_write(tmp_path, data))
    g.save(tmp_path / "again.json")
    assert jacc.load(tmp_path / "again.json").inputs == [name]
    J = jacc.plan(g, "forward").execute(np.zeros(3))["y", name]
    np.testing.assert_allclose(J, np.eye(3))


@pytest.mark.parametrize("name,why", [
    ("", "start with a letter"), ("1x", "start with a letter"), ("y@out", "start with a letter"),
    ("a b", "start with a letter"), ("x,y", "start with a letter"), ("x=1", "start with a letter"),
    ("-x", "start with a letter"), ("[0]", "start with a letter"), ("x\n", "start with a letter"),
    ("e\u0301", "write it in Unicode NFC form ('é')"),
])
def test_odd_names_are_refused(tmp_path, name, why):
    data = _with(inputs=[{"name": name, "shape": [3]}], nodes=[{"name": "y", "op": "sin", "args": [name]}])
    with pytest.raises(jacc.GraphError) as e:
        jacc.load(_write(tmp_path, data))
    assert f"input {name!r}: vertex name {name!r} is not valid: {why}" in str(e.value)


# -- item 18: shape rules never allocate the operand ---------------------------------------------

@pytest.mark.parametrize("index,shape", [
    ([["int", 3]], (10 ** 6,)),
    ([["slice", None, None, 2], ["int", -1]], (500_000,)),
    ([["array", [0, 5, 7]], ["slice", 10, 20, None]], (3, 10)),
    ([["slice", None, None, None], ["new"], ["array", [[1], [2]]]], (10 ** 6, 1, 2, 1)),
    ([["array", [0]], ["new"], ["array", [0]]], (1, 1)),
])
def test_getitem_shape_of_a_huge_operand_is_computed_without_allocating(index, shape):
    import tracemalloc

    g = jacc.Graph("big")
    g.add_input("A", (10 ** 6, 10 ** 6))
    tracemalloc.start()
    try:
        g.add_node("r", "getitem", ["A"], {"index": index})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert g.shape("r") == shape and peak < 1_000_000


def test_getitem_shape_rule_agrees_with_numpy():
    import random

    from jacc.indexing import IndexShapeError, index_shape

    rng = random.Random(3)

    def item(n):
        kind = rng.choice(["int", "slice", "new", "array", "mask"])
        if kind == "int":
            return ["int", rng.randint(-n - 1, n)]
        if kind == "slice":
            return ["slice", rng.choice([None, -5, -1, 0, 1, 2, 7]), rng.choice([None, -5, -1, 0, 1, 3, 9]),
                    rng.choice([None, -2, -1, 1, 2, 3])]
        if kind == "new":
            return ["new"]
        if kind == "array":
            vals = np.array(rng.choices(range(-n - 1, n + 1), k=rng.randint(1, 3)))
            return ["array", vals.reshape(rng.choice([(-1,), (1, -1), (-1, 1)])).tolist()]
        return ["array", [rng.random() < 0.5 for _ in range(max(n, 1))]]

    def numpy_index(index):
        return tuple(it[1] if it[0] == "int" else slice(*it[1:]) if it[0] == "slice" else None if it[0] == "new"
                     else np.asarray(it[1]) for it in index)

    refused = 0
    for _ in range(3000):
        shape = tuple(rng.randint(0, 4) for _ in range(rng.randint(0, 4)))
        index = [item(rng.choice(shape) if shape else 2) for _ in range(rng.randint(0, 4))]
        try:
            want = np.empty(shape)[numpy_index(index)].shape
        except (IndexError, ValueError):
            want = None
        try:
            got = index_shape(shape, index)
        except IndexShapeError:
            got = None
        assert got == want, (shape, index)
        refused += want is None
    assert 500 < refused < 2500  # both outcomes were exercised


# -- item 14: malformed plan files ---------------------------------------------------------------

def _plan_dict():
    return json.loads(jacc.plan(examples.three_layer(), "markowitz").to_json())


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(order=3), "plan: order: expected a list of vertex names, got 3"),
    (lambda d: d.update(order=[1]), "plan: order[0]: expected a vertex name (a string), got 1"),
    (lambda d: d.update(wrt="x"), "plan: wrt: expected a list of vertex names, got 'x'"),
    (lambda d: d.pop("graph"), "plan: graph: missing; expected an object"),
    (lambda d: d.pop("format"), "plan: format: missing; expected \"jacc-plan\""),
    (lambda d: d.update(format="jacc-graph"), "plan: format: expected \"jacc-plan\", got 'jacc-graph'"),
    (lambda d: d.update(cost_model=[]),
     "plan: cost_model: expected a cost model {\"objective\": \"mults\", \"memory_limit\": null}, got an empty list"),
    (lambda d: d.update(cost_model={"objective": "speed"}),
     "plan: cost_model.objective: expected \"mults\", \"memory\" or \"time\", got 'speed'"),
    (lambda d: d.update(cost_model={"objective": {"mults": "a"}}),
     "plan: cost_model.objective.mults: expected a finite number, or \"inf\", \"-inf\" or \"nan\" (JSON has no NaN or "
     "infinity), got 'a'"),
    (lambda d: d.update(cost_model={"budget": 1}),
     "plan: cost_model.budget: unknown field; the fields here are objective, memory_limit"),
    (lambda d: d.update(cost_model={"memory_limit": -5}),
     "plan: cost_model.memory_limit: expected a positive number of bytes, got -5"),
    (lambda d: d.update(mults="1"), "plan: mults: expected a multiplication count (an integer ≥ 0), got '1'"),
    (lambda d: d.update(optimal="yes"), "plan: optimal: expected true or false or null, got 'yes'"),
    (lambda d: d.update(planning_seconds=-1), "plan: planning_seconds: expected a number of seconds ≥ 0, got -1"),
    (lambda d: d.update(info=[]), "plan: info: expected an object, got an empty list"),
    (lambda d: d["graph"].update(version=2), "plan graph: version: expected 1 (the version this jacc reads), got 2"),
    (lambda d: d["graph"]["nodes"][0].update(op="nope"), "plan graph: node 'v1': op: unknown op 'nope'"),
    (lambda d: d.update(of=["q"]), "of: 'q' is not a vertex of graph 'three_layer'"),
    (lambda d: d.update(order=["v1"]), "elimination order must list every eliminable vertex once"),
    (lambda d: d.update(mults=d["mults"] + 1), "plan file says 315 mults but its order costs 314 here"),
])
def test_malformed_plan_files_raise_value_error_naming_the_field(change, message):
    d = _plan_dict()
    change(d)
    for given in (d, json.dumps(d)):
        with pytest.raises(ValueError) as e:
            jacc.Plan.from_json(given)
        assert str(e.value).startswith(message) and "\n" not in str(e.value)


@pytest.mark.parametrize("text,message", [
    ("{", "plan: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); "
          "pass the text Plan.to_json() wrote"),
    ("[1]", "plan: expected a JSON object with \"format\": \"jacc-plan\", got list"),
    (3, "plan: expected a JSON object with \"format\": \"jacc-plan\", got int"),
    ("[" * 100_000, "plan: not valid JSON (nested too deeply); pass the text Plan.to_json() wrote"),
])
def test_plan_text_that_is_not_a_plan(text, message):
    with pytest.raises(ValueError) as e:
        jacc.Plan.from_json(text)
    assert str(e.value) == message


def test_an_empty_constant_keeps_its_shape_through_a_file(tmp_path):
    # save wrote a (2, 0, 3) constant as [[], []]: load refused jacc's own file ("shapes (2, 1, 3),
    # (2, 0) differ outside axis 1"); found by fuzzing
    x = np.ones((2, 1, 3))
    g = jacc.trace(lambda x: np.concatenate([x, np.zeros((2, 0, 3))], axis=1) * 2.0, x)
    path = tmp_path / "g.json"
    g.save(path)
    h = jacc.load(path)
    y = g.outputs[0]
    np.testing.assert_array_equal(jacc.plan(h, "reverse").execute(x)[y, "x"],
                                  jacc.plan(g, "reverse").execute(x)[y, "x"])
    h.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()
    with pytest.raises(jacc.GraphError, match="empty constant only"):
        jacc.Graph.from_dict({**g.to_dict(), "nodes": [
            {**n, "args": [n["args"][0], {"const": [1.0, 2.0], "shape": [2, 0]}]} if n["op"] == "concatenate" else n
            for n in g.to_dict()["nodes"]]})


@pytest.mark.parametrize("mask", ["m", {"const": [0.5, 0.0, -2.0]}], ids=["vertex of floats", "float constant"])
def test_a_where_mask_that_is_not_boolean_reads_as_numpy_reads_it(mask):
    # nonzero is true, in the value and in the derivative (the partial was weighted by the mask's values)
    d = {"format": "jacc-graph", "version": 1, "name": "w",
         "inputs": [{"name": "m", "shape": [3]}, {"name": "x", "shape": [3]}],
         "nodes": [{"name": "y", "op": "where", "args": [mask, "x", 0.0]}], "outputs": ["y"]}
    g = jacc.Graph.from_dict(d, "w.json")
    m, x = np.array([0.5, -2.0, 0.0]), np.array([1.0, 2.0, 3.0])
    truth = (m if mask == "m" else np.array([0.5, 0.0, -2.0])) != 0
    np.testing.assert_array_equal(g.evaluate({"m": m, "x": x})["y"], np.where(truth, x, 0.0))
    p = jacc.plan(g, "reverse")
    for J in (p.execute(m, x), p.compile("numpy")(m, x)):
        np.testing.assert_array_equal(J["y", "x"], np.diag(truth.astype(float)))
        np.testing.assert_array_equal(J["y", "m"], np.zeros((3, 3)))


def test_a_plan_refuses_inputs_a_cast_would_change_as_jacobian_does():
    """Plan.execute and the array programs cast their inputs to float: a complex argument lost its
    imaginary part (a ComplexWarning only), strings were parsed and bools read as 0 and 1; the
    scalar and C code gave NumPy's bare TypeError for an argument of the wrong shape."""
    from jacc.graph import GraphError

    p = jacc.plan(jacc.trace(lambda x: np.sin(x) * 2.0, np.ones(2)), "reverse")
    for bad, kind in ((np.array([1 + 5j, 2.0]), "complex128"), (["0.5", "1e0"], "<U3"),
                      (np.array([True, False]), "bool")):
        for run in (p.execute, p.compile("numpy")):
            with pytest.raises(TypeError, match=f"input 'x' must be a real float array, got dtype {kind}"):
                run(bad)
    s = jacc.plan(jacc.trace(lambda x: np.sin(x) * 2.0, 0.5), "reverse")
    for backend in ("scalar", "c"):
        fn = s.compile(backend)
        with pytest.raises(GraphError, match=r"input 'x' has shape \(1,\), .*graph.* expects \(\)"):
            fn(np.array([0.5]))
        with pytest.raises(TypeError, match="input 'x' must be a real number, not bool"):
            fn(True)
        assert fn(0.5)[s.graph.outputs[0], "x"] == 2 * np.cos(0.5)
