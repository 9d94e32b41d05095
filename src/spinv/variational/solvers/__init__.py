"""Batched solvers: PGD/FISTA, PDHG (Algorithm 1) and Newton-CG (Algorithm 2).

Each returns ``(solution, history)`` with a :class:`~spinv.variational.solvers.history.History`.
"""

from spinv.variational.solvers.fista import fista, pgd
from spinv.variational.solvers.fourier_block import FourierDataBlock
from spinv.variational.solvers.history import History
from spinv.variational.solvers.newton_cg import newton_cg
from spinv.variational.solvers.pdhg import DualBlock, LeastSquaresBlock, RegulariserBlock, pdhg

__all__ = [
    "History",
    "fista",
    "pgd",
    "newton_cg",
    "pdhg",
    "DualBlock",
    "LeastSquaresBlock",
    "RegulariserBlock",
    "FourierDataBlock",
]
