"""``Plan``: a chosen elimination order, its priced steps, a report, JSON, and execution.

>>> from jacc import examples
>>> p = plan(examples.np_chain(10, 3), "reverse")
>>> p.mults, p.forward_mults, p.reverse_mults
(10300, 30300, 10300)
>>> print(str(p).splitlines()[3])
  Naive forward cost:             30,300 mults
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .costmodel import CostModel, MemoryLimitError, human_bytes
from .eliminate import Problem, Step, accumulate, price, totals
from .graph import Graph

PLAN_FORMAT = "jacc-plan"


class Costs:
    """What every plan reports beside its own cost (vertex plans and :mod:`jacc.edgeplan`'s):
    the naive forward/reverse vertex-elimination costs, FLOPs, the speedup and the problem."""

    mults: int
    graph: Graph
    wrt: list[str]
    of: list[str]

    # The naive forward/reverse costs are for the report, not for choosing: priced on first use
    # (from the problem's cache when planning already priced them), so they never count against
    # the planning time limit.
    @property
    def forward_mults(self) -> int:
        return naive_costs(self.problem)[0]

    @property
    def reverse_mults(self) -> int:
        return naive_costs(self.problem)[1]

    @property
    def flops(self) -> int:
        """``2 · mults`` (each multiplication is a fused multiply-add)."""
        return 2 * self.mults

    @property
    def baseline_mults(self) -> int:
        return min(self.forward_mults, self.reverse_mults)

    @property
    def speedup(self) -> float:
        """Best of forward/reverse divided by this plan's multiplications."""
        return self.baseline_mults / self.mults if self.mults else float("inf") if self.baseline_mults else 1.0

    @property
    def problem(self) -> Problem:
        if "_problem" not in self.__dict__:
            self.__dict__["_problem"] = Problem.from_graph(self.graph, self.wrt, self.of)
        return self.__dict__["_problem"]

    @property
    def lower_bound(self) -> int | None:
        """A proven lower bound on the cost of every plan of this kind: this plan's own when it is
        proven optimal, else what a stopped exact search proved (``info["lower bound"]``), else None.

        >>> from jacc import examples
        >>> plan(examples.lion(), "optimal").lower_bound
        12
        """
        if self.optimal and self.cost_model.weights[1] == 0:  # (proven for its objective: of mults only here)
            return self.mults
        lb = self.info.get("lower bound")
        return lb if isinstance(lb, int) else None


@dataclass
class Plan(Costs):
    """A vertex-elimination plan: plain data plus :meth:`execute` and a printable report."""

    strategy: str
    order: list[str]
    steps: list[Step]
    mults: int
    peak_bytes: int
    graph: Graph
    wrt: list[str]
    of: list[str]
    cost_model: CostModel = field(default_factory=CostModel)
    planning_seconds: float = 0.0
    optimal: bool | None = None
    info: dict = field(default_factory=dict)

    @property
    def largest(self) -> tuple[Any, int]:
        """The largest Jacobian any step produced: (edge, bytes)."""
        best = max(self.steps, key=lambda s: s.largest_bytes, default=None)
        return (best.largest_edge, best.largest_bytes) if best else (None, 0)

    @property
    def score(self) -> float:
        return self.cost_model.score(self.mults, self.peak_bytes)

    # -- execution ------------------------------------------------------------------------------
    def execute(self, *args, **named) -> dict[tuple[str, str], np.ndarray]:
        """Accumulate the Jacobian at new input values (positional in ``graph.inputs`` order, or
        by name). Returns ``{(output, input): array of shape output.shape + input.shape}``.
        Silent on overflow and domain errors, as every compiled route is: the blocks hold the
        inf/NaN (docs/conventions.md)."""
        with np.errstate(all="ignore"):
            return accumulate(self.problem, values_at(self.graph, args, named), self.order).blocks

    def compile(self, backend: str = "auto"):
        """This plan as one generated function of the graph's inputs (positional, in
        ``graph.inputs`` order) returning ``{(output, input): block}`` like :meth:`execute`.

        ``backend``: ``"scalar"`` (straight-line float code, all-scalar graphs only; see
        :mod:`jacc.compile`), ``"c"`` (the same code built by the system C compiler, see
        :mod:`jacc.ccode`), ``"numpy"``, ``"jax"`` or ``"torch"`` (the plan lowered to one array program, see
        :mod:`jacc.program`; the primal runs on the graph), ``"auto"`` (scalar where it applies,
        else numpy), ``"interpret"`` (:meth:`execute`, the executor). The function's ``.program`` is
        the :class:`~jacc.program.Program` (None for ``"interpret"``), whose ``source`` prints the
        generated code.

        >>> from jacc import examples
        >>> f = plan(examples.lecture_f(), "reverse").compile("numpy")
        >>> {k: round(float(v), 3) for k, v in f(2.0, 5.0).items()}
        {('v5', 'x1'): 5.5, ('v5', 'x2'): 1.716}
        """
        from .compile import CompileError, compile_plan
        from .program import BACKENDS, BackendError

        names = ("auto", "scalar", "c", *BACKENDS, "interpret")
        if backend not in names:
            raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(names)}")
        if backend == "interpret":
            def run(*args, **named) -> dict:
                return self.execute(*args, **named)
            run.program = None
            return run
        if backend == "c":
            from .ccode import compile_native

            return _checking_point(self.graph, compile_native(self))
        if backend in ("auto", "scalar"):
            try:
                return _checking_point(self.graph, compile_plan(self))
            except CompileError:
                if backend == "scalar":
                    raise
        return _Compiled(self, "numpy" if backend == "auto" else backend)

    # -- report ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        edge, nbytes = self.largest
        g = self.graph
        lines = [
            f"  Graph: {g.name} ({len(self.wrt)} input(s) → {len(self.of)} output(s), "
            f"{len(self.order)} eliminable vertices)",
            f"  Strategy: {self.strategy}   objective: {self.cost_model.name}"
            + (f"   memory limit: {self.cost_model.memory_limit:,} bytes"
               if self.cost_model.memory_limit else ""),
            "  Cost convention: mults = scalar multiplications (FMAs); FLOPs = 2·mults",
            f"  Naive forward cost:  {self.forward_mults:>17,} mults",
            f"  Naive reverse cost:  {self.reverse_mults:>17,} mults",
            f"  This plan's cost:    {self.mults:>17,} mults ({self.flops:,} FLOPs)",
            f"  Speedup over best of forward/reverse: {self.speedup:.3g}×",
            f"  Peak live Jacobians: {human_bytes(self.peak_bytes)} ({self.peak_bytes:,} bytes)",
            "  Largest intermediate Jacobian: "
            + (f"∂{edge[1]}/∂{edge[0]} ({human_bytes(nbytes)})" if edge else "none"),
            f"  Planning time: {self.planning_seconds:.3g} s"
            + ("" if self.optimal is None else f"; proven optimal: {'yes' if self.optimal else 'no'}"),
        ]
        for k, v in self.info.items():
            if k != "bracketing_tree":
                lines.append(f"  {k}: {v}")
        factored = self.factored_partials
        if factored:
            shown = ", ".join(f"∂{v}/∂{u} ({d})" for (u, v), d in list(factored.items())[:4])
            more = f" and {len(factored) - 4} more" if len(factored) > 4 else ""
            lines.append(f"  Partials kept as factors (products contract them factor by factor): {shown}{more}")
        rule = "-" * 90
        lines += [rule, f"{'step':>5}  {'vertex':<16} {'mults':>14} {'fill-in':>8} {'produced':>11} {'live':>11} "
                        f"{'peak':>11}", rule]
        for n, s in enumerate(self.steps, 1):
            lines.append(f"{n:>5}  {s.vertex:<16} {s.mults:>14,} {len(s.fill_in):>8} "
                         f"{human_bytes(s.produced_bytes):>11} {human_bytes(s.live_bytes):>11} "
                         f"{human_bytes(s.peak_bytes):>11}")
        return "\n".join(lines)

    @property
    def factored_partials(self) -> dict[tuple[str, str], str]:
        """The local partials stored as factors (see the cost model), ``{(u, v): description}``.

        >>> import numpy as np
        >>> from jacc import trace
        >>> y = np.ones(3)
        >>> p = plan(trace(lambda K: y @ np.linalg.solve(K, y), np.eye(3) * 2), "reverse")
        >>> list(p.factored_partials.values())
        ['dense 3×9 as factors 3×3, 3']
        """
        edges = self.problem.symbolic_edges()
        return {k: j.describe() for k, j in edges.items() if j.factors is not None}

    def summary(self) -> dict:
        """The headline figures as a dict (for tables and JSON)."""
        return {"strategy": self.strategy, "mults": self.mults, "flops": self.flops,
                "peak_bytes": self.peak_bytes, "forward_mults": self.forward_mults,
                "reverse_mults": self.reverse_mults, "speedup": self.speedup,
                "planning_seconds": self.planning_seconds, "optimal": self.optimal}

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        cm = self.cost_model
        return {"format": PLAN_FORMAT, "version": 1, **self.summary(), "order": list(self.order),
                "wrt": self.wrt, "of": self.of,
                "cost_model": {"objective": cm.objective, "memory_limit": cm.memory_limit,
                               **({"value_bytes": cm.value_bytes} if cm.value_bytes != 8 else {})},
                "steps": [{"vertex": s.vertex, "mults": s.mults, "fill_in": [list(e) for e in s.fill_in],
                           "produced_bytes": s.produced_bytes, "live_bytes": s.live_bytes,
                           "peak_bytes": s.peak_bytes}
                          for s in self.steps],
                "info": _jsonable(self.info), "graph": self.graph.to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | Mapping) -> "Plan":
        """Rebuild a plan (its graph included); steps are re-priced and checked against the file.

        Malformed input raises ``ValueError`` naming the field and what it should hold
        (``GraphError``, a ``ValueError``, for a fault in the embedded graph)."""
        from .graph import plan_schema, read_schema

        if isinstance(text, (str, bytes)):
            try:
                text = json.loads(text)
            except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
                why = "nested too deeply" if isinstance(e, RecursionError) else str(e).splitlines()[0][:100]
                raise ValueError(f"plan: not valid JSON ({why}); pass the text Plan.to_json() wrote") from None
        if not isinstance(text, Mapping):
            raise ValueError(f"plan: expected a JSON object with \"format\": \"{PLAN_FORMAT}\", got "
                             f"{type(text).__name__}")
        d = read_schema(plan_schema(PLAN_FORMAT), dict(text), "plan")
        g = Graph.from_dict(d["graph"], "plan graph")
        cm = CostModel(**d.get("cost_model", {}))
        p = build(Problem.from_graph(g, d["wrt"], d["of"]), d["order"], d["strategy"], cm,
                  d.get("info") or {}, d.get("planning_seconds", 0.0), d.get("optimal"))
        if p.mults != d["mults"]:
            raise ValueError(f"plan file says {d['mults']} mults but its order costs {p.mults} here")
        bound = p.info.get("lower bound")
        if isinstance(bound, int) and (bound > p.mults or (p.optimal and bound != p.mults)):
            raise ValueError(f"plan: info: a lower bound of {bound} does not fit a plan of {p.mults} mults"
                             + (" proven optimal" if p.optimal else ""))
        if p.optimal or isinstance(bound, int):  # (a claim re-pricing cannot check: the file's word for it)
            p.info["proof"] = ("the plan file's claim, not checked on loading (jacc.plan(graph, 'optimal') "
                               "proves it again)")
        return p


def _generic_point(graph: Graph) -> dict:
    """Input values where lowering sees no coincidence: distinct numbers in [0.5, 0.9) (golden-ratio
    steps), so no ties for a maximum, no repeated eigenvalue, no singular all-equal matrix."""
    values, k = {}, 0
    for x in graph.inputs:
        n = math.prod(graph.shape(x))
        values[x] = (0.5 + 0.4 * np.modf((np.arange(k, k + n) + 1) * 0.6180339887498949)[0]).reshape(graph.shape(x))
        k += n
    return values


def elsewhere(graph: Graph, values: Mapping[str, Any]) -> str | None:
    """Where ``graph``'s trace depends on values (``if x > 0``, a mask) and these inputs are not
    the traced ones, what to say: the Jacobian is then the traced branch's, which may not hold here."""
    from .graph import TracedPoint, point_digest

    at = graph.meta.get("traced_at")
    if at is None or (at.holds(values) if isinstance(at, TracedPoint)
                      else point_digest({x: values[x] for x in graph.inputs}) == at):
        return None
    where = "; ".join(map(str, graph.meta.get("value_dependent", [])[:2]))
    return (f"graph {graph.name!r} was traced at other inputs and its trace depends on values ({where}): at "
            "these inputs f may take another branch, so this Jacobian may not be f's; trace f here again "
            "(jacc.jacobian does at every call)")


def warn_if_elsewhere(graph: Graph, values: Mapping[str, Any]) -> None:
    """:func:`elsewhere`'s message as a :class:`ValueDependenceWarning`."""
    message = elsewhere(graph, values)
    if message is not None:
        warnings.warn(message, ValueDependenceWarning, stacklevel=3)


def _checking_point(graph: Graph, fn: Callable) -> Callable:
    """A compiled scalar plan that warns as :meth:`Plan.execute` does when ``graph``'s trace
    depends on values and it runs at other inputs; ``fn`` itself where the trace does not (its
    call stays a few microseconds; ``fn.raw``, the unchecked code, is kept either way)."""
    if graph.meta.get("traced_at") is None:
        return fn
    from .compile import float_args

    inputs = graph.inputs

    def jacobian(*args: float) -> dict:
        xs = float_args(inputs, args)
        warn_if_elsewhere(graph, dict(zip(inputs, xs)))
        return fn(*xs)

    jacobian.__dict__.update(fn.__dict__)
    jacobian.unchecked = fn  # (for a caller whose inputs are this trace's own: jacobian's traced calls)
    return jacobian


class ValueDependenceWarning(UserWarning):
    """A graph whose trace looked at values runs at other inputs (:func:`warn_if_elsewhere`)."""


class _Compiled:
    """:meth:`Plan.compile`'s array program: lowered at once at a generic point (only shapes and
    structure matter to lowering; :func:`_generic_point`), else at its first call's arguments
    (where the graph cannot take that point, a logarithm of a negative number say, or the program
    cannot be checked there)."""

    def __init__(self, plan: Plan, backend: str):
        from .program import BackendError

        self.plan, self.backend, self._program, self._why = plan, backend, None, ""
        g = plan.graph
        point = _generic_point(g)
        try:
            self._lower(g.evaluate(point))
        except BackendError:
            raise
        except Exception as e:  # a value the graph cannot take (LinAlgError, a domain error), or a
            # program its check refuses there (LowerError): wait for the first call's arguments
            self._why = f"{type(e).__name__}: {e}"

    def _lower(self, values: dict) -> None:
        from .program import lower

        with np.errstate(all="ignore"):
            self._program = lower(self.plan, values, backend=self.backend)

    @property
    def program(self):
        """The :class:`~jacc.program.Program` (its ``source`` prints the generated code)."""
        if self._program is None:
            raise RuntimeError(f"this plan's program is lowered at its first call: at a generic point the "
                               f"graph or its program fails ({self._why}); call the compiled function once first")
        return self._program

    def __call__(self, *args, **named) -> dict[tuple[str, str], np.ndarray]:
        g = self.plan.graph
        values = values_at(g, args, named)
        if self._program is None:
            self._lower(values)
        from .program import raise_as_numpy

        found = self._program.run(values, g)
        raise_as_numpy(self.backend, g, found, lambda: accumulate(self.plan.problem, values, self.plan.order))
        return found


def values_at(graph: Graph, args: Sequence, named: Mapping) -> dict:
    """Every vertex's value at new input values (as :func:`input_values` takes them), with the
    warning of a value-dependent graph run elsewhere (:func:`warn_if_elsewhere`): what an
    ``execute`` of any elimination accumulates from."""
    values = graph.evaluate(input_values(graph, args, named))
    warn_if_elsewhere(graph, values)
    return values


def input_values(graph: Graph, args: Sequence, named: Mapping) -> dict:
    """``{input: value}`` from positional values (in ``graph.inputs`` order) and named ones."""
    if len(args) > len(graph.inputs):
        raise TypeError(f"plan takes {len(graph.inputs)} inputs {graph.inputs}, got {len(args)}")
    inputs = dict(zip(graph.inputs, args))
    for k, v in named.items():
        if k in inputs:
            raise TypeError(f"input {k!r} given twice")
        if k not in graph.inputs:  # (before any missing one: a misspelt name is the likelier slip)
            raise TypeError(f"plan has no input {k!r}; its inputs are {graph.inputs}")
        inputs[k] = v
    return inputs


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    return x


def naive_costs(problem: Problem) -> tuple[int, int]:
    """Multiplications of forward (topological) and reverse order, cached on the problem."""
    from . import budget

    with budget.lifted():  # report figures, priced on demand and never cut short
        return totals(problem, problem.eliminable)[0], totals(problem, problem.eliminable[::-1])[0]


def build(problem: Problem, order: Sequence[str], strategy: str, cost_model: CostModel,
          info: dict | None = None, seconds: float = 0.0, optimal: bool | None = None) -> Plan:
    """Price ``order`` and wrap it as a :class:`Plan`; enforces the memory limit."""
    from . import budget

    order = problem.check_order(order)
    with budget.lifted():  # the chosen order is priced in full whatever deadline encloses us
        steps, mults, peak = price(problem, order)
    if not cost_model.fits(peak):
        stopped = (info or {}).get("stopped") or (info or {}).get("stopped early")
        fix = (f"its search stopped ({stopped}) before it found an order within the limit: raise time_limit "
               "or memory_limit" if stopped else "raise memory_limit or use a strategy that honours it "
               "(markowitz, min-fill, relative-markowitz, optimal, anneal)")
        raise MemoryLimitError(
            f"the {strategy} order needs {peak:,} bytes of live Jacobians, over the memory limit of "
            f"{cost_model.memory_limit:,} bytes; {fix}")
    p = Plan(strategy, list(order), steps, mults, peak, problem.graph, problem.wrt,
             problem.of, cost_model, seconds, optimal, dict(info or {}))
    p.__dict__["_problem"] = problem  # share its pricing cache with the report
    return p


#: Share of the time left that pricing the likely cheaper naive order may take, to measure how
#: long one pricing takes (see :func:`choose`); every strategy prices that order anyway
SAMPLE_SHARE = 0.5
#: Margin on that measure: the order a strategy returns may price slower than the one measured
#: (Black–Scholes at scalar level: forward order 1.6× reverse), and a collection may pause it
RESERVE_MARGIN = 1.5


def _seconds(limit: Any) -> bool:
    return isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0


def time_limit_of(strategy: Any, options: Mapping[str, Any]) -> float | None:
    """The seconds ``strategy`` may plan for: the ``time_limit`` given, else its default (``auto``
    5 s, the searches 5–10 s); ``None`` when it has none (an explicit order, a greedy heuristic
    without one) or the value is not a positive number (the strategy refuses that itself).

    >>> time_limit_of("auto", {}), time_limit_of("auto", {"time_limit": 1}), time_limit_of("markowitz", {})
    (5.0, 1, None)
    """
    if "time_limit" in options:
        limit = options["time_limit"]
    elif isinstance(strategy, str):
        import inspect

        from .strategies import lookup

        param = inspect.signature(lookup(strategy)).parameters.get("time_limit")
        limit = None if param is None else param.default
    else:
        return None
    return limit if _seconds(limit) else None


#: ``Plan.info`` entries that state a proof, a bound or a search's figures for the plan's own
#: graph and objective (an edge search's "mults" and "states" among them)
_PROOFS = ("lower bound", "gap", "bound", "root bound", "sets explored", "stopped early", "mults", "states")


def choose(problem: Problem, strategy: Any, cost_model: CostModel, options: dict
           ) -> tuple[list[str], str, dict, bool | None]:
    """``(order, strategy name, info, proven optimal?)`` of ``strategy`` (a name, an explicit order
    or a :class:`Plan`) on ``problem``. Under a time limit (:func:`time_limit_of`: the one given,
    else the strategy's default) the strategy's deadline keeps back what pricing its order in full
    may take (measured by :func:`~jacc.eliminate.pricing_seconds`, times
    :data:`RESERVE_MARGIN`): a strategy cut short returns an order not yet priced, and the
    plan built from it must price it, within the limit too (on the 53,000-vertex scalar graph of
    the full-size Black–Scholes batch one pricing takes 0.3–0.6 s).

    >>> from jacc import examples
    >>> order, name, info, optimal = choose(Problem.from_graph(examples.np_chain(10, 3)), "reverse", CostModel(), {})
    >>> name, len(order)
    ('reverse', 2)
    """
    from . import budget
    from .eliminate import pricing_seconds
    from .strategies import run_strategy

    if isinstance(strategy, Plan):
        same = (strategy.problem.graph is problem.graph and list(strategy.wrt) == list(problem.wrt)
                and list(strategy.of) == list(problem.of) and strategy.cost_model == cost_model)
        if same:
            return list(strategy.order), strategy.strategy, dict(strategy.info), strategy.optimal
        # its proof and bounds were for another graph or objective: the order stands, unproven
        info = {k: v for k, v in strategy.info.items() if k not in _PROOFS}
        info["reused"] = (f"the order of a {strategy.strategy} plan made for another graph or objective; "
                          "its optimality and bounds are not carried over")
        return list(strategy.order), strategy.strategy, info, False
    limit = time_limit_of(strategy, options)
    if not isinstance(strategy, str) or limit is None:
        return run_strategy(strategy, problem, cost_model, **options)
    with budget.within(limit):
        reserve = RESERVE_MARGIN * pricing_seconds(problem, SAMPLE_SHARE * budget.left())
        with budget.within(until=budget.deadline() - reserve):
            return run_strategy(strategy, problem, cost_model, **options)


def plan(graph: Graph, strategy: Any = "auto", *, wrt: Sequence[str] | None = None,
         of: Sequence[str] | None = None, cost_model: CostModel | None = None, objective: Any = None,
         memory_limit: int | None = None, elimination: str = "vertex", **options) -> Plan:
    """Choose an elimination order for ``graph`` with ``strategy`` and price it.

    ``strategy``: a registered name (see ``jacc.STRATEGIES``), an explicit order (list of vertex
    names) or a :class:`Plan` (re-priced on this graph). ``options`` go to the strategy
    (e.g. ``time_limit=``, ``seed=``). ``elimination="edge"`` or ``"face"`` plans edge or face
    eliminations instead and returns a :class:`jacc.edgeplan.EdgePlan` (see that module).
    """
    from . import budget
    from .collector import paused

    t0 = time.perf_counter()  # set-up and the final pricing count as planning time too
    cm = CostModel.coerce(cost_model, objective, memory_limit)
    if elimination != "vertex":
        from .edgeplan import plan_edges

        return plan_edges(graph, strategy, elimination, wrt, of, cm, options)
    limit = time_limit_of(strategy, options)
    # the strategy checks its own time_limit; opening it here too makes the set-up count against it
    with paused():
        with budget.within(budget.INF if limit is None else limit):
            problem = Problem.from_graph(graph, wrt, of)
            order, name, info, optimal = choose(problem, strategy, cm, options)
        p = build(problem, order, name, cm, info, 0.0, optimal)  # (priced in full: past any deadline)
    p.planning_seconds = time.perf_counter() - t0
    return p
