"""Batched solvers: PGD/FISTA, PDHG (Algorithm 1) and Newton-CG (Algorithm 2).

``pdhg`` is the generic PDHG; ``fast_pdhg`` (same arguments) runs the MRI problem of Eq. (1.3)
on fused buffers where that applies and is chosen by callers that want it. Linear algebra (CG,
power iteration, batched inner products) comes from :mod:`spinv.linalg`.

Each returns ``(solution, history)`` with a :class:`~spinv.variational.solvers.history.History`;
the knobs of PDHG and FISTA travel as :class:`PDHGOptions` and :class:`FISTAOptions`.
"""

from spinv.variational.solvers.fista import FISTAOptions, fista, pgd
from spinv.variational.solvers.fourier_block import FourierDataBlock
from spinv.variational.solvers.fused_fourier_tv import fast_pdhg
from spinv.variational.solvers.history import History
from spinv.variational.solvers.newton_cg import Armijo, newton_cg
from spinv.variational.solvers.pdhg import (
    DualBlock,
    LeastSquaresBlock,
    PDHGOptions,
    RegulariserBlock,
    pdhg,
)

__all__ = [
    "History",
    "FISTAOptions",
    "fista",
    "pgd",
    "newton_cg",
    "Armijo",
    "PDHGOptions",
    "pdhg",
    "fast_pdhg",
    "DualBlock",
    "LeastSquaresBlock",
    "RegulariserBlock",
    "FourierDataBlock",
]
