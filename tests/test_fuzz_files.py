"""Fuzzing graph files through ``jacc.load`` and every command that reads one.

Each case mutates one of the files in ``graphs/`` (or a few extra files that use every op with
parameters and non-finite constants): a value at a random place replaced by a wrong JSON type, a
huge, negative or non-finite number; a field deleted or duplicated; values swapped between
places; the text truncated. Whatever the file, ``load`` must either succeed or raise
``GraphError``, and each command (called in-process through ``cli.main``) must end with exit 0, or
exit 2 and exactly one line ``jacc: error: …`` on stderr — never a traceback. A short seeded run
is part of the default suite; ``-m slow`` runs a few thousand cases.
"""

import copy
import glob
import json
import os
import random

import numpy as np
import pytest

import jacc
from jacc import cli

GRAPHS = os.path.join(os.path.dirname(__file__), "..", "graphs")
HUGE_INT = "1" + "0" * 400  # JSON text: an integer no float can hold

BAD_VALUES = [None, True, False, 0, -1, 1, 2, 0.5, -0.0, 2 ** 31, 2 ** 53 + 1, 2 ** 63, 2 ** 64, -2 ** 63 - 1,
              1e308, -1e308, "", "x", "x1", "inf", "-inf", "nan", "@", "θ", "a b", [], [0], [-1], [1, 2],
              [[1, 2], [3]], [[[]]], ["int", 0], [["int", 99]], [["slice", 0, 0, 0]], ["new"], {}, {"a": 1},
              {"const": [1, 2]}, {"const": None}, "sum", "dense", "ij,j->i", "ij->k"]


def _extra_seeds() -> dict[str, dict]:
    """Graphs that use every parameterised op, and constants with ±inf, NaN and -0.0."""
    def f(x, W):
        h = np.tanh(W @ x)
        s = np.where(h > 0, h, -np.inf)  # a masked softmax's -inf
        e = np.exp(s - np.max(s))
        p = e / np.sum(e)
        z = np.concatenate([p[::-1], np.stack([x[0], x[1]], axis=0)], axis=0)
        t = np.einsum("ij,j->i", W.T.reshape(3, 2), z[:2]) * np.array([-0.0, 1.0, np.nan])
        return np.clip(np.mean(t.reshape(1, 3), axis=1, keepdims=True), -1.0, np.inf) + np.broadcast_to(x[:1], (1, 1))

    x, W = np.array([0.3, -0.2, 0.5]), np.arange(6.0).reshape(2, 3) / 7 - 0.3
    traced = jacc.trace(f, x, W).to_dict()
    tour = {"format": "jacc-graph", "version": 1, "name": "tour",
            "inputs": [{"name": "X", "shape": [2, 3]}, {"name": "θ", "shape": [3]}],
            "nodes": [{"name": "T", "op": "transpose", "args": ["X"], "params": {"axes": [1, 0]}},
                      {"name": "G", "op": "getitem", "args": ["X"],
                       "params": {"index": [["array", [True, False]], ["slice", None, None, -1]]}},
                      {"name": "S", "op": "sum", "args": ["T"], "params": {"axis": [0], "keepdims": False}},
                      {"name": "c", "op": "constant", "args": [], "params": {"value": [1.0, "-inf", "nan"]}},
                      {"name": "y", "op": "add", "args": ["S", "c"]},
                      {"name": "A", "op": "abstract", "args": ["y", "θ"], "params": {"partials": ["dense", "elementwise"]},
                       "shape": [3]}],
            "outputs": ["A", "G"]}
    return {"traced.json": traced, "tour.json": tour}


def _seeds() -> dict[str, dict]:
    seeds = {os.path.basename(p): json.load(open(p)) for p in sorted(glob.glob(os.path.join(GRAPHS, "*.json")))}
    return {**seeds, **_extra_seeds()}


def _paths(doc, prefix=()):
    """Every place in a JSON document (including the root)."""
    yield prefix
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def _set(doc, path, value):
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _dump(doc) -> str:
    return json.dumps(doc, ensure_ascii=False).replace('"__HUGE__"', HUGE_INT)


def mutate(doc: dict, rng: random.Random) -> str:
    """One mutated copy of ``doc`` as JSON text."""
    doc = copy.deepcopy(doc)
    paths = list(_paths(doc))
    path = rng.choice(paths)
    kind = rng.choice(["replace", "replace", "replace", "delete", "duplicate", "swap", "number", "truncate",
                       "nonfinite", "replace_twice"])
    if kind == "replace":
        return _dump(_set(doc, path, copy.deepcopy(rng.choice(BAD_VALUES + ["__HUGE__"]))))
    if kind == "replace_twice":
        for p in rng.sample(paths, min(2, len(paths))):
            try:
                doc = _set(doc, p, copy.deepcopy(rng.choice(BAD_VALUES)))
            except (KeyError, IndexError, TypeError):  # the first change removed the second place
                pass
        return _dump(doc)
    if kind == "delete" and path:
        parent = _get(doc, path[:-1])
        del parent[path[-1]]
        return _dump(doc)
    if kind == "duplicate":
        objects = [p for p in paths if isinstance(_get(doc, p), dict) and _get(doc, p)]
        target = _get(doc, rng.choice(objects))
        key = rng.choice(list(target))
        target["__DUP__"] = rng.choice(BAD_VALUES)
        return _dump(doc).replace('"__DUP__"', json.dumps(key, ensure_ascii=False))
    if kind == "swap":
        return _dump(_set(doc, path, copy.deepcopy(_get(doc, rng.choice(paths)))))
    if kind == "number":
        numbers = [p for p in paths if isinstance(_get(doc, p), (int, float)) and not isinstance(_get(doc, p), bool)]
        if numbers:
            p = rng.choice(numbers)
            v = _get(doc, p)
            return _dump(_set(doc, p, rng.choice([v + 1, v - 1, -v, v * 1000, 2 ** 62, -(2 ** 62), v + 0.5])))
    if kind == "nonfinite":
        return _dump(doc).replace("1.0", rng.choice(["NaN", "Infinity", "-Infinity", "1e999"]), 1)
    text = _dump(doc)
    return text[:rng.randrange(len(text))]


def _at_files(g, folder) -> str | None:
    """``--at`` text for ``g`` with every input in a .npy file (None when too big to evaluate)."""
    if any(int(np.prod(g.shape(v))) > 10_000 for v in g.nx):
        return None
    parts = []
    for k, x in enumerate(g.inputs):
        path = os.path.join(folder, f"in{k}.npy")
        np.save(path, np.linspace(0.1, 0.9, int(np.prod(g.shape(x)))).reshape(g.shape(x)))
        parts.append(f"{x}=@{path}")
    return ",".join(parts)


def check_one_line(argv, capsys) -> int:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), f"exit {code} for {argv}: {err}"
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("jacc: error: "), f"{argv}: {err!r}"
    return code


def fuzz(n: int, seed: int, tmp_path, capsys) -> dict:
    rng = random.Random(seed)
    seeds = _seeds()
    names = sorted(seeds)
    tally = {"loaded": 0, "refused": 0}
    path = str(tmp_path / "fuzz.json")
    for case in range(n):
        name = names[case % len(names)]
        text = mutate(seeds[name], rng)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            g = jacc.load(path)
        except jacc.GraphError as e:
            msg = str(e)
            assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
            tally["refused"] += 1
            code = check_one_line(["plan", path], capsys)  # the command says the same, in one line
            assert code == 2
            continue
        tally["loaded"] += 1
        check_one_line(["plan", path, "--strategy", rng.choice(["forward", "reverse", "markowitz", "auto"]),
                        "--time-limit", "0.05"], capsys)
        check_one_line(["render", path, "-o", str(tmp_path / "g.dot"), "--strategy", "reverse"], capsys)
        at = _at_files(g, str(tmp_path))
        if at is not None:
            check_one_line(["run", path, "--at", at, "--strategy", "reverse", "--format", "json"], capsys)
            check_one_line(["trace", path, "--at", at, "--mode", "reverse"], capsys)
    return tally


def test_fuzz_graph_files_short(tmp_path, capsys):
    tally = fuzz(160, seed=12, tmp_path=tmp_path, capsys=capsys)
    assert tally["refused"] > 60 and tally["loaded"] > 10  # both paths were exercised


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_graph_files_long(tmp_path, capsys, seed):
    tally = fuzz(1500, seed=seed, tmp_path=tmp_path, capsys=capsys)
    assert tally["refused"] > 500 and tally["loaded"] > 100


def fuzz_plans(n: int, seed: int) -> int:
    """Mutated plan files: ``Plan.from_json`` either rebuilds the plan or raises ValueError."""
    rng = random.Random(seed)
    plans = [jacc.plan(jacc.load(os.path.join(GRAPHS, f)), s).to_dict()
             for f, s in (("lecture_f.json", "reverse"), ("three_layer.json", "markowitz"))]
    refused = 0
    for case in range(n):
        text = mutate(plans[case % 2], rng)
        try:
            jacc.Plan.from_json(text)
        except ValueError as e:
            assert str(e) and "\n" not in str(e)
            refused += 1
    return refused


def test_fuzz_plan_files_short():
    assert fuzz_plans(150, seed=5) > 50


@pytest.mark.slow
def test_fuzz_plan_files_long():
    assert fuzz_plans(3000, seed=6) > 1000


def test_fuzz_at_values(tmp_path, capsys, monkeypatch):
    """Random ``--at`` texts over the characters of the grammar: exit 0 or one line and exit 2."""
    monkeypatch.chdir(tmp_path)
    np.save("a.npy", np.ones(()))
    rng = random.Random(7)
    pieces = ["x1", "x2", "=", ",", "[", "]", "@a.npy", "@", "2", "-1.5", "inf", "nan", "1e999", "true", " ",
              "θ", "x[0]", "\"a\"", "{}", "1" * 5000, "[[1]]", "[1,2]"]
    graph = os.path.join(GRAPHS, "lecture_f.json")
    codes = set()
    for _ in range(200):
        at = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        codes.add(check_one_line(["run", graph, "--at", at, "--strategy", "reverse"], capsys))
    for at in ("x1=2,x2=5", "x2=@a.npy,x1=inf", "x1=[[1]],x2=1"):
        codes.add(check_one_line(["run", graph, "--at", at, "--strategy", "reverse"], capsys))
    assert codes == {0, 2}
