"""Bilevel learning of MRI sampling patterns and regularisation parameters (thesis ch. 1).

* :mod:`~spinv.bilevel.lower_level` -- the energy of Eq. (1.3), its gradient, Hessian action
  and mixed derivatives (App. 1.B, 1.D) for TV, wavelet, H1, dTV or no regulariser;
* :mod:`~spinv.bilevel.pdhg` (Algorithm 1) and :mod:`~spinv.bilevel.newton_cg` (Algorithm 2,
  with a k-space preconditioned CG);
* :mod:`~spinv.bilevel.implicit` -- implicit differentiation (Eq. 1.5), ``check_gradient``;
* :mod:`~spinv.bilevel.parametrisations` -- free pattern, Cartesian lines, fixed pattern, any
  differentiable :math:`p(\\lambda)` (App. 1.A), and the sparsity penalty;
* :mod:`~spinv.bilevel.learn` -- L-BFGS-B on Eq. (1.2) (Algorithm 3), alpha tuning,
  thresholding, evaluation; :mod:`~spinv.bilevel.baselines` -- comparison patterns;
* :mod:`~spinv.bilevel.pipeline` / :mod:`~spinv.bilevel.config` -- ``spinv sampling learn``.
"""

from spinv.bilevel.baselines import gozcu_greedy_lines, knoll_density, uninformed_patterns
from spinv.bilevel.implicit import (
    SolverOptions,
    check_gradient,
    loss_and_gradient,
    solve_lower,
    solve_lower_level,
)
from spinv.bilevel.learn import (
    BilevelObjective,
    evaluate_pattern,
    learn,
    learn_continuation,
    threshold_and_retune,
    tune_alpha,
)
from spinv.bilevel.lower_level import LowerLevel, Regulariser, make_regulariser
from spinv.bilevel.newton_cg import newton_cg
from spinv.bilevel.parametrisations import (
    CartesianLines,
    DifferentiablePattern,
    FixedPattern,
    FreePattern,
    sampling_rate,
    sparsity_penalty,
)
from spinv.bilevel.pdhg import pdhg

__all__ = [
    "BilevelObjective",
    "CartesianLines",
    "DifferentiablePattern",
    "FixedPattern",
    "FreePattern",
    "LowerLevel",
    "Regulariser",
    "SolverOptions",
    "check_gradient",
    "evaluate_pattern",
    "gozcu_greedy_lines",
    "knoll_density",
    "learn",
    "learn_continuation",
    "loss_and_gradient",
    "make_regulariser",
    "newton_cg",
    "pdhg",
    "sampling_rate",
    "solve_lower",
    "solve_lower_level",
    "sparsity_penalty",
    "threshold_and_retune",
    "tune_alpha",
    "uninformed_patterns",
]
