"""Pictures of graphs and elimination plans: DOT text via pydot, SVG/PNG/PDF via Graphviz.

Vertices show name, op and shape (inputs are ellipses, outputs double-bordered boxes); edges
show the partial Jacobian's structure (``diag 8``, ``dense 8×4`` …). With a plan, every
eliminated vertex shows its step and cost, filled along a yellow→purple palette by step, and
the fill-in edges the plan creates are drawn dashed in magenta, labelled with their step.

>>> from jacc import examples
>>> from jacc.plan import plan
>>> g = examples.lecture_f()
>>> text = to_dot(g, plan(g, "reverse")).to_string()
>>> "step 4" in text and "style=dashed" in text
True
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING, Callable, Hashable, Iterator, Mapping, Sequence

import pydot

from .chain import Bracket
from .eliminate import PRICING, Eliminator
from .fileio import write_atomic
from .graph import Graph
from .structure import Jac

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["RenderError", "FORMATS", "step_colour", "to_dot", "frames", "bracketing_dot", "chain_tree", "render"]

FORMATS = ("dot", "svg", "png", "pdf")
FONT = "Helvetica,Arial,sans-serif"
FILL_IN = "#c2185b"  # accent colour of fill-in edges (outside the vertex palette)
OFF_PATH = "#b0b0b0"  # edges/vertices that play no part in the plan, or are already gone
PNG_DPI = 110
# viridis, reversed: light yellow for the first step, dark purple for the last
_PALETTE = ["#fde725", "#90d743", "#35b779", "#21918c", "#31688e", "#443983", "#440154"]

Key = Hashable


class RenderError(RuntimeError):
    """A picture could not be written (no Graphviz, unknown format, Graphviz failed)."""


# -- escaping and small formatting helpers -------------------------------------------------------
def _q(s: object) -> str:
    """A DOT double-quoted string (backslashes, quotes and newlines escaped)."""
    t = str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{t}"'


def _h(s: object) -> str:
    """Text escaped for a Graphviz HTML-like label."""
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _html(*rows: str) -> str:
    return "<" + "<BR/>".join(rows) + ">"


def _small(text: str, size: int = 10) -> str:
    return f'<FONT POINT-SIZE="{size}">{text}</FONT>'


def _mults(n: int) -> str:
    return f"{n:,} mult" + ("" if n == 1 else "s")


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def step_colour(k: int, n: int) -> str:
    """Fill colour of step ``k`` (1-based) of ``n`` along the sequential palette.

    >>> step_colour(1, 5), step_colour(5, 5)
    ('#fde725', '#440154')
    """
    t = (k - 1) / (n - 1) if n > 1 else 0.0
    x = t * (len(_PALETTE) - 1)
    i = min(int(x), len(_PALETTE) - 2)
    a, b = _PALETTE[i], _PALETTE[i + 1]
    rgb = [round(int(a[c:c + 2], 16) + (x - i) * (int(b[c:c + 2], 16) - int(a[c:c + 2], 16)))
           for c in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _ink(fill: str) -> str:
    """Black or white text, whichever reads better on ``fill``."""
    r, g, b = (int(fill[c:c + 2], 16) / 255 for c in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _vertex(g: Graph, key: Key) -> str:
    """The graph vertex behind an elimination key (an output sink ``y@out`` maps to ``y``)."""
    k = str(key)
    return k[:-4] if k not in g.nx and k.endswith("@out") else k


# -- graph pictures --------------------------------------------------------------------------------
def _new_dot(label: str | None, rankdir: str = "TB") -> pydot.Dot:
    d = pydot.Dot(graph_type="digraph", rankdir=rankdir, charset=_q("UTF-8"), nodesep="0.25",
                  ranksep="0.45", fontname=_q(FONT), labelloc="t", labeljust="l")
    if label is not None:
        d.set("label", label)
    d.set_node_defaults(fontname=_q(FONT), fontsize="12", shape="box", style=_q("rounded,filled"),
                        fillcolor="white", margin=_q("0.12,0.05"))
    d.set_edge_defaults(fontname=_q(FONT), fontsize="9", color="#555555", fontcolor="#333333",
                        arrowsize="0.7")
    return d


def _add_vertex(d: pydot.Dot, g: Graph, v: str, *, step: int | None = None, mults: int = 0,
                n_steps: int = 0, gone: bool = False, current: bool = False, off: bool = False) -> None:
    """One vertex: name / op · shape, plus ``step k · cost`` once eliminated (or planned)."""
    rows = [f"<B>{_h(v)}</B>", _small(f"{_h(g.op(v))} · {_h(_shape(g.shape(v)))}")]
    if step is not None:
        rows.append(_small(f"<B>step {step} · {_mults(mults)}</B>", 11))
    attrs: dict[str, str] = {"label": _html(*rows)}
    role = g.role(v)
    if role == "input":
        attrs.update(shape="ellipse", style="filled")
    elif role == "output":
        attrs.update(peripheries="2")
    if step is not None and not gone:
        fill = step_colour(step, n_steps)
        attrs.update(fillcolor=_q(fill), fontcolor=_ink(fill))
    if gone or off:
        attrs.update(fontcolor=_q(OFF_PATH), fillcolor=_q("#f4f4f4"),
                     color=_q(step_colour(step, n_steps) if gone and step else OFF_PATH),
                     style=_q(attrs.get("style", "rounded,filled").strip('"') + ",dashed"))
    if current:
        attrs.update(color=_q(step_colour(step or 1, n_steps or 1)), penwidth="3")
    d.add_node(pydot.Node(_q(v), **attrs))


def _legend(title: str, plan: "Plan | None", done: int | None = None, steps: Sequence[str] | None = None) -> str:
    """An HTML graph label: the title and, with a plan, the elimination order as coloured cells
    (``done`` given: steps after it are left white); ``steps`` names the steps instead of the
    plan's order."""
    text = '<BR ALIGN="LEFT"/>'.join(_h(line) for line in title.splitlines())
    rows = [f'<TR><TD ALIGN="LEFT" COLSPAN="13"><B>{text}</B></TD></TR>']
    names = steps if steps is not None else plan.order if plan is not None else []
    if names:
        n = len(names)
        cells = []
        for k, v in enumerate(names, 1):
            fill = step_colour(k, n)
            if done is not None and k > done:
                cells.append(f'<TD BORDER="1" COLOR="#cccccc">{k}: {_h(v)}</TD>')
            else:
                extra = ' BORDER="3" COLOR="#000000"' if k == done else ""
                cells.append(f'<TD BGCOLOR="{fill}"{extra}><FONT COLOR="{_ink(fill)}">{k}: {_h(v)}'
                             f"</FONT></TD>")
        head = '<TD ALIGN="LEFT">elimination order:</TD>'
        for i in range(0, n, 12):
            rows.append("<TR>" + (head if i == 0 else "<TD></TD>") + "".join(cells[i:i + 12]) + "</TR>")
    return f'<<TABLE BORDER="0" CELLSPACING="3" CELLPADDING="3">{"".join(rows)}</TABLE>>'


def _plan_title(g: Graph, plan: "Plan") -> str:
    return (f"{g.name}: {plan.strategy} plan, {_mults(plan.mults)} "
            f"(forward {plan.forward_mults:,}, reverse {plan.reverse_mults:,})")


def _states(plan: "Plan") -> Iterator[dict[tuple[Key, Key], Jac]]:
    """The symbolic edge set before any elimination, then after each step of ``plan``."""
    e = Eliminator(plan.problem.symbolic_edges(), PRICING)  # (structural: a gather's positions stay unbuilt)

    def snap() -> dict[tuple[Key, Key], Jac]:
        return {(u, w): j for u, out in e.succ.items() for w, j in out.items()}

    yield snap()
    for v in plan.order:
        e.eliminate(v)
        yield snap()


def _graph_of(graph: Graph | None, plan: "Plan | None") -> Graph:
    """``graph``, or the plan's graph when ``graph`` is None; a plan must be for this graph."""
    if plan is None:
        if graph is None:
            raise ValueError("give a graph or a plan to draw")
        return graph
    if graph is not None and graph is not plan.graph and set(graph.nx.edges) != set(plan.graph.nx.edges):
        raise ValueError(f"the plan is for graph {plan.graph.name!r}, not {graph.name!r}")
    return plan.graph


def to_dot(graph: Graph | None, plan: "Plan | None" = None, *, title: str | None = None) -> pydot.Dot:
    """The graph as a :class:`pydot.Dot`; with ``plan``, its steps, costs and fill-in.

    >>> from jacc import examples
    >>> d = to_dot(examples.np_chain(10, 3))
    >>> "dense 100×3" in d.to_string()
    True
    """
    graph = _graph_of(graph, plan)
    if plan is not None and getattr(plan, "elimination", "vertex") != "vertex":
        return _edge_plan_dot(graph, plan, title)
    n = len(plan.order) if plan else 0
    step_of = {v: k for k, v in enumerate(plan.order, 1)} if plan else {}
    heading = title or (_plan_title(graph, plan) if plan else graph.name)
    d = _new_dot(_legend(heading, plan))
    keep = set(plan.problem.edges) if plan else set(graph.nx.edges)
    on_path = {x for e in keep for x in e}
    for v in graph.topological_order():
        k = step_of.get(v)
        _add_vertex(d, graph, v, step=k, mults=plan.steps[k - 1].mults if k else 0, n_steps=n,
                    off=plan is not None and v not in on_path)
    for u, v in graph.nx.edges:
        attrs = {} if (u, v) in keep else {"color": _q(OFF_PATH), "fontcolor": _q(OFF_PATH)}
        d.add_edge(pydot.Edge(_q(u), _q(v), label=_q(graph.partial(u, v).describe()), **attrs))
    if plan:
        for k, state in enumerate(_states(plan)):
            for i, j in plan.steps[k - 1].fill_in if k else ():
                a, b = _vertex(graph, i), _vertex(graph, j)
                if a != b:
                    d.add_edge(pydot.Edge(_q(a), _q(b), label=_q(f"step {k}"),
                                          tooltip=_q(f"∂{b}/∂{a}: {state[i, j].describe()}, fill-in of step {k}"),
                                          style="dashed", color=_q(FILL_IN + "99"), fontcolor=_q(FILL_IN),
                                          constraint="false"))
    return d


def _edge_plan_dot(graph: Graph, plan, title: str | None) -> pydot.Dot:
    """An edge- or face-elimination plan: every edge a step eliminated carries that step (in its
    colour), every edge a step created is dashed magenta with its step, and one a step added a
    product to says ``+= step k``; the legend lists the moves in order."""
    n = len(plan.steps)
    names = [f"{plan.describe_step(s)} ({_mults(s.mults)})" for s in plan.steps]
    heading = title or (f"{graph.name}: {plan.strategy} {plan.elimination} elimination, {_mults(plan.mults)} "
                        f"(vertex forward {plan.forward_mults:,}, reverse {plan.reverse_mults:,})")
    d = _new_dot(_legend(heading, None, steps=names))
    keep = set(plan.problem.edges)
    on_path = {x for e in keep for x in e}
    for v in graph.topological_order():
        _add_vertex(d, graph, v, off=v not in on_path)
    gone = {s.edge: k for k, s in enumerate(plan.steps, 1) if s.kind in ("front", "back")}
    added: dict = {}
    for k, s in enumerate(plan.steps, 1):
        for e in s.absorbed:
            added.setdefault(e, []).append(k)
    for u, v in graph.nx.edges:
        label = graph.partial(u, v).describe()
        attrs: dict = {} if (u, v) in keep else {"color": _q(OFF_PATH), "fontcolor": _q(OFF_PATH)}
        if (u, v) in gone:
            k = gone[u, v]
            label += f"\n{plan.steps[k - 1].kind} step {k}"
            attrs.update(color=_q(step_colour(k, n)), penwidth="3")
        if (u, v) in added:
            label += "\n+= step " + ", ".join(map(str, added[u, v]))
        d.add_edge(pydot.Edge(_q(u), _q(v), label=_q(label), **attrs))
    for k, s in enumerate(plan.steps, 1):
        for i, j in s.fill_in:
            a, b = _vertex(graph, i), _vertex(graph, j)
            if a != b:
                more = gone.get((i, j))
                label = f"step {k}" + (f", {plan.steps[more - 1].kind} step {more}" if more else "")
                d.add_edge(pydot.Edge(_q(a), _q(b), label=_q(label), style="dashed", color=_q(FILL_IN + "99"),
                                      fontcolor=_q(FILL_IN), constraint="false"))
    return d


def frames(plan: "Plan", *, title: str | None = None) -> list[pydot.Dot]:
    """One picture per elimination state: ``[original, after step 1, …, after step n]``.

    Eliminated vertices are greyed (dashed, with their step); edges show the Jacobians present at
    that point; fill-in is dashed magenta, bold when created by the step just taken. Edges that
    are gone stay as invisible edges so vertices keep their places from picture to picture.

    >>> from jacc import examples
    >>> from jacc.plan import plan
    >>> len(frames(plan(examples.np_chain(10, 3), "forward")))
    3
    """
    g, prob = plan.graph, plan.problem
    n = len(plan.order)
    born = {e: k for k, s in enumerate(plan.steps, 1) for e in s.fill_in}
    on_path = {x for e in prob.edges for x in e}
    heading = title or _plan_title(g, plan)
    out = []
    states = list(_states(plan))
    for k, state in enumerate(states):
        if k == 0:
            caption = f"{heading} | original graph, {n} eliminations to go"
        else:
            s = plan.steps[k - 1]
            so_far = sum(t.mults for t in plan.steps[:k])
            caption = (f"{heading} | after step {k}/{n}: eliminated {s.vertex} ({_mults(s.mults)}, "
                       f"{so_far:,} so far)")
        d = _new_dot(_legend(caption, plan, done=k))
        gone = {v: t for t, v in enumerate(plan.order[:k], 1)}
        for v in g.topological_order():
            t = gone.get(v)
            _add_vertex(d, g, v, step=t, mults=plan.steps[t - 1].mults if t else 0, n_steps=n,
                        gone=t is not None and v not in prob.out_key, current=t == k and k > 0,
                        off=v not in on_path)
        for u, v in g.nx.edges:
            label = _q(g.partial(u, v).describe())
            if (u, v) not in prob.edges:
                d.add_edge(pydot.Edge(_q(u), _q(v), label=label, color=_q(OFF_PATH), fontcolor=_q(OFF_PATH)))
            elif (u, v) in state:
                d.add_edge(pydot.Edge(_q(u), _q(v), label=_q(state[u, v].describe())))
            else:
                d.add_edge(pydot.Edge(_q(u), _q(v), label=label, style="invis"))
        for (i, j), t in born.items():  # every fill-in of the plan; absent ones invisible
            a, b = _vertex(g, i), _vertex(g, j)
            if a == b:
                continue
            jac = state.get((i, j))
            attrs = dict(color=_q(FILL_IN), fontcolor=_q(FILL_IN), constraint="false")
            if jac is None:
                attrs.update(style="invis")
            elif t == k:
                attrs.update(style=_q("dashed,bold"), penwidth="2.5")
            else:
                attrs.update(style="dashed")
            text = (jac or states[t][i, j]).describe()
            d.add_edge(pydot.Edge(_q(a), _q(b), label=_q(f"{text} (step {t})"), **attrs))
        out.append(d)
    return out


# -- bracketing trees ------------------------------------------------------------------------------
def bracketing_dot(bracket: Bracket, names: Sequence[str], costs: Mapping[Bracket, int] | None = None,
                   *, notes: Mapping[Bracket, str] | None = None, title: str | None = None) -> pydot.Dot:
    """A bracketing tree: leaves are the chain's factors ``names[i]``, inner nodes the products
    (with ``costs[subtree]`` mults and ``notes[subtree]`` when given).

    >>> d = bracketing_dot(((0, 1), 2), ["A", "B", "C"], {(0, 1): 60})
    >>> "60 mults" in d.to_string()
    True
    """
    costs, notes = costs or {}, notes or {}
    d = pydot.Dot(graph_type="digraph", rankdir="TB", ordering="out", charset=_q("UTF-8"),
                  fontname=_q(FONT), labelloc="t", nodesep="0.3")
    if title is not None:
        d.set("label", _q(title))
    d.set_node_defaults(fontname=_q(FONT), fontsize="12")
    d.set_edge_defaults(arrowhead="none", color="#555555")
    counter = [0]

    def visit(node: Bracket) -> str:
        if isinstance(node, tuple):
            pid = f"prod{counter[0]}"
            counter[0] += 1
            rows = ["<B>×</B>"]
            if node in costs:
                rows.append(_small(_mults(costs[node])))
            if node in notes:
                rows.append(_small(_h(notes[node])))
            d.add_node(pydot.Node(pid, label=_html(*rows), shape="ellipse", style="filled",
                                  fillcolor=_q("#fff3c4")))
            for child in node:
                d.add_edge(pydot.Edge(pid, visit(child)))
            return pid
        lid = f"leaf{int(node)}"
        d.add_node(pydot.Node(lid, label=_q(names[int(node)]), shape="box", style=_q("rounded,filled"),
                              fillcolor=_q("#e8eef7")))
        return lid

    visit(bracket)
    leaves = [pydot.Node(f"leaf{i}") for i in range(len(names))]
    rank = pydot.Subgraph(rank="same")
    for leaf in leaves:
        rank.add_node(leaf)
    d.add_subgraph(rank)
    return d


def chain_tree(plan: "Plan") -> pydot.Dot | None:
    """The bracketing tree of a plan on a chain (``None`` if the plan has no bracketing).

    Rebuilt from the order: eliminating ``w`` joins the segments on both sides of ``w``; the
    product costs ``plan.steps[k].mults``.

    >>> from jacc import examples
    >>> from jacc.plan import plan
    >>> d = chain_tree(plan(examples.np_chain(10, 3), "chain"))
    >>> len([n for n in d.get_nodes() if n.get_name().startswith("prod")])
    2
    """
    if "bracketing" not in plan.info:
        return None
    prob, g = plan.problem, plan.graph
    succ: dict[Key, list[Key]] = {}
    for u, v in list(prob.edges) + list(prob.extra):
        succ.setdefault(u, []).append(v)
    if len(prob.wrt) != 1 or any(len(s) != 1 for s in succ.values()):
        return None
    path: list[Key] = [prob.wrt[0]]
    while path[-1] in succ:
        path.append(succ[path[-1]][0])
    n = len(path) - 1  # factors, output side first: factor t is ∂path[n-t]/∂path[n-t-1]
    edges = prob.symbolic_edges()
    names = [f"∂{_vertex(g, path[n - t])}/∂{_vertex(g, path[n - t - 1])}\n"
             f"{edges[path[n - t - 1], path[n - t]].describe()}" for t in range(n)]
    # seg[p] is the tree of the segment that starts at path position p (input side)
    seg: dict[int, Bracket] = {p: n - 1 - p for p in range(n)}
    end = {p: p + 1 for p in range(n)}
    start_of = {p + 1: p for p in range(n)}
    costs: dict[Bracket, int] = {}
    notes: dict[Bracket, str] = {}
    pos = {v: p for p, v in enumerate(path)}
    for k, (v, step) in enumerate(zip(plan.order, plan.steps), 1):
        p = pos.get(v)
        if p is None or p not in seg or p not in start_of:
            return None
        left = start_of.pop(p)
        node = (seg.pop(p), seg[left])  # output-side factor first, as in the product
        seg[left] = node
        end[left] = end.pop(p)
        start_of[end[left]] = left
        costs[node], notes[node] = step.mults, f"step {k}: eliminate {v}"
    if len(seg) != 1:
        return None
    return bracketing_dot(seg[0], names, costs, notes=notes,
                          title=f"{g.name}: {plan.strategy} bracketing, {_mults(plan.mults)}")


# -- writing files ---------------------------------------------------------------------------------
MISSING_DOT = ("Graphviz's 'dot' program is needed to write .svg/.png/.pdf; install it with your system "
               "package manager (e.g. `apt-get install graphviz`, `brew install graphviz`) or "
               "`pip install pygraphviz`, or write .dot instead")


def _format(path: str | None, fmt: str | None) -> str:
    f = (fmt or (os.path.splitext(path)[1] if path is not None else ".svg")).lower().lstrip(".")
    if f not in FORMATS:
        where = f"format {fmt!r}" if fmt else f"extension of {path!r}"
        raise RenderError(f"cannot write {where}: supported formats are "
                          + ", ".join(f".{x}" for x in FORMATS))
    return f


def _converter(fmt: str) -> Callable[[str, str], None]:
    """A function writing DOT text to a file in ``fmt``: direct for .dot, else Graphviz's
    ``dot`` on PATH, else pygraphviz; :class:`RenderError` when neither is there."""
    if fmt == "dot":
        def write_dot(text: str, out: str) -> None:
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(text)
        return write_dot
    exe = shutil.which("dot")
    if exe:
        def run_dot(text: str, out: str) -> None:
            try:
                r = subprocess.run([exe, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True,
                                   timeout=300)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise RenderError(f"running Graphviz ({exe}) failed: {e}") from None
            if r.returncode != 0 or not r.stdout:
                msg = r.stderr.decode("utf-8", "replace").strip() or f"exit status {r.returncode}"
                raise RenderError(f"Graphviz ({exe} -T{fmt}) failed: {msg}")
            with open(out, "wb") as fh:
                fh.write(r.stdout)
        return run_dot
    try:
        import pygraphviz
    except ImportError:
        raise RenderError(MISSING_DOT) from None

    def run_pygraphviz(text: str, out: str) -> None:
        pygraphviz.AGraph(string=text).draw(out, format=fmt, prog="dot")
    return run_pygraphviz


def _write_atomic(path: str, text: str, convert: Callable[[str, str], None]) -> str:
    return write_atomic(path, lambda tmp: convert(text, tmp))


def _text(d: pydot.Dot, fmt: str) -> str:
    if fmt == "png":
        d.set("dpi", str(PNG_DPI))
    return d.to_string()


def write(d: pydot.Dot, path: str | os.PathLike, fmt: str | None = None) -> str:
    """Write one DOT picture (e.g. :func:`chain_tree`'s) to ``path``, atomically."""
    p = os.fspath(path)
    f = _format(p, fmt)
    return _write_atomic(p, _text(d, f), _converter(f))


def render(graph: Graph | None, plan: "Plan | None" = None, path: str | os.PathLike | None = None, *,
           steps_dir: str | os.PathLike | None = None, fmt: str | None = None,
           title: str | None = None) -> list[str]:
    """Write a picture of ``graph`` (and ``plan``) to ``path``; with ``steps_dir`` also one picture
    per elimination state (``step_000`` = the original graph). The format is ``fmt`` or the
    extension of ``path`` (``.dot``, ``.svg``, ``.png``, ``.pdf``; ``.dot`` needs no Graphviz).
    Files are written atomically. Returns the written paths.

    >>> import os, tempfile
    >>> from jacc import examples
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     render(examples.lecture_f(), path=os.path.join(tmp, "f.dot")) == [os.path.join(tmp, "f.dot")]
    True
    """
    if path is None and steps_dir is None:
        raise ValueError("render needs a path (e.g. 'graph.svg') or steps_dir")
    if steps_dir is not None and plan is None:
        raise ValueError("steps_dir needs a plan: its steps are what gets drawn")
    if steps_dir is not None and getattr(plan, "elimination", "vertex") != "vertex":
        raise ValueError("steps_dir (--steps) draws vertex plans step by step; for an edge or face plan draw "
                         "one picture (path=..., -o), whose edges carry their steps")
    p = os.fspath(path) if path is not None else None
    f = _format(p, fmt)
    convert = _converter(f)  # fails before anything is written when Graphviz is missing
    if steps_dir is not None and os.path.exists(steps_dir) and not os.path.isdir(steps_dir):
        raise ValueError(f"steps_dir {os.fspath(steps_dir)!r} is a file, not a folder: name a folder (made if missing)")
    written = []
    if p is not None:
        written.append(_write_atomic(p, _text(to_dot(graph, plan, title=title), f), convert))
    if steps_dir is not None and plan is not None:
        folder = os.fspath(steps_dir)
        for k, d in enumerate(frames(plan, title=title)):
            written.append(_write_atomic(os.path.join(folder, f"step_{k:03d}.{f}"), _text(d, f), convert))
    return written
