"""jacc: a Jacobian-accumulation compiler.

Trace a NumPy function into a linearised computational graph with structured partial
Jacobians, choose a vertex-elimination order, and accumulate the Jacobian.

>>> import numpy as np, jacc
>>> jacc.jacobian(lambda x: np.sin(x).sum())(np.zeros(2))
array([1., 1.])
"""

from . import numpy_api  # noqa: F401  (registers the NumPy functions the tracer records)
from .api import jacobian, value_and_jacobian
from .chain import matrix_chain_order
from .costmodel import CostModel, CostModelError, MemoryLimitError
from .eliminate import Accumulation, OrderError, Problem, accumulate, price
from .graph import Const, Graph, GraphError, load
from .matrix_free import matrix_free_chain_order
from .ops import OPS, ShapeError
from .plan import Plan, plan
from .render import RenderError, render
from .strategies import STRATEGIES, UnknownStrategyError
from .strategies.optimal import SearchSizeError
from .structure import Jac
from .trace import TieWarning, TraceError, UnsupportedOperationError, supported_functions, trace

__version__ = "0.1.0"

__all__ = [
    "jacobian", "value_and_jacobian", "trace", "load", "Graph", "GraphError", "Const", "Jac", "Problem", "accumulate",
    "price", "Accumulation", "OrderError", "OPS", "ShapeError", "STRATEGIES",
    "UnknownStrategyError", "TraceError", "TieWarning", "UnsupportedOperationError", "supported_functions",
    "matrix_chain_order", "matrix_free_chain_order", "CostModel", "CostModelError", "MemoryLimitError", "Plan", "plan",
    "SearchSizeError", "render", "RenderError",
]
