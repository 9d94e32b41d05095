"""Variational reconstruction recipes for CT and MRI, and regularisation-parameter tuning.

:func:`reconstruct_variational` solves

.. math:: \\hat u\\in\\arg\\min_u \\tfrac12\\|Au-y\\|^2 + R_\\alpha(u)
          + \\tfrac\\varepsilon2\\|u\\|^2 \\;(+\\,\\iota_{u\\ge0}),

the least-squares data term on the measured data (CT: the low-dose sinogram; MRI with
:math:`A=SF`: :math:`\\tfrac12\\|S(Fu-y)\\|^2`, thesis Eq. 1.3), with ``method`` one of

* ``"tv"`` -- isotropic TV :math:`\\alpha\\|\\nabla u\\|_{2,1}`;
* ``"tv-smooth"`` -- :math:`\\alpha\\sum_i\\rho_\\gamma(|\\nabla u|_i)` (§1.2.1);
* ``"wavelet"`` -- :math:`\\alpha\\sum_i\\rho_\\gamma(|Wu|_i)`, Daubechies-4, ``levels`` levels;
* ``"h1"`` -- :math:`\\tfrac\\alpha2\\|\\nabla u\\|^2`;
* ``"tgv"`` -- :math:`\\mathrm{TGV}^2` with :math:`(\\alpha_1,\\alpha_0)=(\\alpha, 2\\alpha)`;
* ``"dtv"`` -- directional TV with the ``reference`` image.

The default solver is PDHG (Algorithm 1, step rule of :func:`~.solvers.pdhg.step_sizes`). For
``SubsampledFourier`` the data term uses the thesis' splitting :math:`K_1=I` with the
closed-form prox of Eq. (1.11) (:class:`~.solvers.fourier_block.FourierDataBlock`); any other
data operator is rescaled internally to unit norm (``A/s``, ``y/s``, weight :math:`s^2`; same
minimiser) so that the primal-dual steps are balanced for CT, whose ray transform has norm
:math:`\\gg\\|\\nabla\\|`.

:func:`tune_alpha` picks :math:`\\alpha` maximising the mean PSNR on training images by a 1-D
search: a logarithmic grid, then golden-section search in :math:`\\log\\alpha` between the grid
neighbours of the best point. :func:`tv_pdhg_iterates` yields the PDHG iterates of TV
reconstruction (to compare learned methods past their depth, thesis Fig. 2.12).

>>> import torch
>>> from spinv.operators import Identity
>>> g = torch.Generator().manual_seed(0)
>>> clean = torch.zeros(1, 1, 16, 16); clean[..., 4:12, 4:12] = 1.0
>>> noisy = clean + 0.1 * torch.randn(clean.shape, generator=g)
>>> u = reconstruct_variational(Identity(), noisy, "tv", alpha=0.1,
...                             options=VariationalOptions(iterations=300))
>>> bool((u - clean).norm() < 0.5 * (noisy - clean).norm())
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from spinv.operators.base import Identity, LinearOperator
from spinv.variational.regularisers import (
    Regulariser,
    abs2,
    batch_sum,
    check_alpha,
    h1,
    smoothed_tv,
    wavelet_regulariser,
)
from spinv.variational.solvers.fista import FISTAOptions, fista
from spinv.variational.solvers.fourier_block import FourierDataBlock
from spinv.variational.solvers.fused_fourier_tv import fast_pdhg
from spinv.variational.solvers.history import History, check_iterations, check_number
from spinv.variational.solvers.newton_cg import newton_cg
from spinv.variational.solvers.pdhg import (
    STEP_RULES,
    LeastSquaresBlock,
    PDHGOptions,
    RegulariserBlock,
    pdhg_iterates,
)
from spinv.variational.tgv import TGV
from spinv.variational.tv import TV, DirectionalTV

METHODS = ("tv", "tv-smooth", "wavelet", "h1", "tgv", "dtv")
SOLVERS = ("pdhg", "fista", "newton-cg")
REGULARISER_PARAMETERS = ("gamma", "levels", "wavelet", "eta", "alpha0")


@dataclass(frozen=True)
class VariationalOptions:
    """How :func:`reconstruct_variational` solves :math:`\\min_u \\tfrac12\\|Au-y\\|^2 +
    R_\\alpha(u) + \\tfrac\\varepsilon2\\|u\\|^2\\;(+\\iota_{u\\ge0})` (thesis Eq. 1.3).

    ``solver``: ``"pdhg"`` (Algorithm 1, §1.2.3; every method), ``"fista"`` (all but tgv; the
    prox of TV/dTV is an inner warm-started dual solve, the wavelet prox is closed-form,
    tv-smooth/h1 are treated as smooth terms) or ``"newton-cg"`` (Algorithm 2; the smooth
    methods tv-smooth, wavelet, h1). ``iterations``, ``tol``: the solver's budget and stopping
    tolerance (PDHG: the Algorithm 1 residual; FISTA: relative change; Newton-CG: its gradient
    rule). ``epsilon``: the strong-convexity weight :math:`\\varepsilon` of Eq. (1.3).
    ``nonnegative``: constrain :math:`u\\ge0` (real images, solver ``"pdhg"``: the prox of
    :math:`G`). ``step_rule``: the PDHG step rule (:class:`~.solvers.pdhg.PDHGOptions`).
    ``op_norm``: :math:`\\|A\\|` if known (``None``: estimated by power iteration, and for a
    subsampled Fourier operator the k-space data block of Eq. 1.11 is used instead).
    """

    solver: str = "pdhg"
    iterations: int = 500
    tol: float = 1e-6
    epsilon: float = 0.0
    nonnegative: bool = False
    step_rule: str = "auto"
    op_norm: float | None = None

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver={self.solver!r}: expected one of {', '.join(SOLVERS)}")
        check_iterations(self.iterations, "VariationalOptions.iterations")
        check_number(self.tol, "VariationalOptions.tol", inclusive=True)
        check_number(self.epsilon, "VariationalOptions.epsilon", inclusive=True)
        check_number(self.op_norm, "VariationalOptions.op_norm", optional=True)
        if self.step_rule not in STEP_RULES:
            raise ValueError(f"VariationalOptions.step_rule={self.step_rule!r}: expected one of "
                             f"{', '.join(map(repr, STEP_RULES))}")
        if not isinstance(self.nonnegative, bool):
            raise TypeError(f"VariationalOptions.nonnegative={self.nonnegative!r}: expected a "
                            "bool")
        if self.nonnegative and self.solver != "pdhg":
            raise ValueError(f"VariationalOptions.nonnegative=True: needs solver='pdhg', got "
                             f"solver={self.solver!r}")

    def pdhg(self) -> PDHGOptions:
        """The :class:`~.solvers.pdhg.PDHGOptions` of these options."""
        return PDHGOptions(iterations=self.iterations, tol=self.tol, step_rule=self.step_rule)


class ScaledOperator(LinearOperator):
    """:math:`A/s` for a linear operator ``A`` and a scalar ``s > 0``."""

    def __init__(self, operator: LinearOperator, scale: float) -> None:
        super().__init__()
        self.operator, self.scale = operator, float(scale)
        self.domain_dtype = getattr(operator, "domain_dtype", torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.operator(x) / self.scale

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.operator.adjoint(y) / self.scale


def make_regulariser(
    method: str,
    alpha: float,
    reference: torch.Tensor | None = None,
    gamma: float = 1e-2,
    levels: int = 3,
    wavelet: str = "db4",
    eta: float = 1e-2,
    alpha0: float | None = None,
) -> Regulariser | TGV:
    """The regulariser object of ``method`` (see the module docstring) with weight ``alpha``."""
    alpha = check_alpha(alpha)
    if method == "tv":
        return TV(alpha)
    if method == "tv-smooth":
        return smoothed_tv(alpha, gamma)
    if method == "wavelet":
        return wavelet_regulariser(alpha, gamma, levels, wavelet)
    if method == "h1":
        return h1(alpha)
    if method == "tgv":
        return TGV(alpha, alpha0)
    if method == "dtv":
        if reference is None:
            raise ValueError("method='dtv' needs reference= (an image (B, C, H, W))")
        return DirectionalTV(alpha, reference, eta=eta)
    raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")


def _is_subsampled_fourier(operator) -> bool:
    try:
        from spinv.operators.mri import SubsampledFourier
    except ImportError:  # pragma: no cover
        return False
    return type(operator) is SubsampledFourier


def _operator_norm(operator, u0: torch.Tensor) -> float:
    if isinstance(operator, Identity):
        return 1.0
    return 1.01 * operator.norm((1,) + tuple(u0.shape[1:]))


def reconstruct_variational(
    operator,
    y: torch.Tensor,
    method: str = "tv",
    alpha: float = 1e-2,
    options: VariationalOptions | None = None,
    *,
    reference: torch.Tensor | None = None,
    u0: torch.Tensor | None = None,
    return_history: bool = False,
    **regulariser,
):
    """Variational reconstruction from data ``y = A u + noise`` (see the module docstring).

    Parameters
    ----------
    operator : a :class:`~spinv.operators.base.LinearOperator` (``ParallelBeamCT``,
        ``SubsampledFourier``, ``Identity``, ...).
    y : measured data, the output shape of ``operator``.
    method : ``"tv" | "tv-smooth" | "wavelet" | "h1" | "tgv" | "dtv"``.
    alpha : regularisation weight (>= 0).
    options : solver, budget, tolerance, :math:`\\varepsilon`, nonnegativity, PDHG step rule,
        :math:`\\|A\\|` (:class:`VariationalOptions`; ``None``: the defaults).
    reference : reference image for ``"dtv"`` (``(B or 1, C, H, W)``).
    u0 : warm start; default ``operator.analytic(y)`` (FBP for CT, zero filling for MRI).
    regulariser : ``gamma``, ``levels``, ``wavelet``, ``eta``, ``alpha0`` of the regulariser
        (:func:`make_regulariser`).

    Returns the reconstruction (same dtype as ``operator.adjoint(y)``), or ``(u, history)``.
    """
    options = VariationalOptions() if options is None else options
    if not isinstance(options, VariationalOptions):
        raise TypeError(f"options={options!r}: expected a VariationalOptions or None")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y: expected a torch.Tensor, got {type(y).__name__}")
    unknown = sorted(set(regulariser) - set(REGULARISER_PARAMETERS))
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {unknown} (regulariser parameters: "
                        f"{', '.join(REGULARISER_PARAMETERS)}; solver knobs go in "
                        "VariationalOptions)")
    reg = make_regulariser(method, alpha, reference, **regulariser)
    if u0 is None:
        u0 = operator.analytic(y)
    if options.nonnegative and u0.is_complex():
        raise ValueError("nonnegative=True: only for real images (got a complex u0)")
    data, u0, scale = _data_block(operator, y, u0, options.op_norm)
    if options.solver == "pdhg":
        g_prox = _nonnegative_prox(options.epsilon) if options.nonnegative else None
        if isinstance(reg, TGV):
            u, _, hist = reg.solve([data], u0, options.pdhg(), epsilon=options.epsilon,
                                   g_prox=g_prox)
        else:
            u, hist = fast_pdhg([data, RegulariserBlock(reg)], u0, options.pdhg(),
                                epsilon=options.epsilon, g_prox=g_prox)
    elif isinstance(reg, TGV):
        raise ValueError(f"solver={options.solver!r}: method='tgv' supports solver='pdhg' only")
    else:
        u, hist = _solve_primal(operator, y, reg, u0, scale, options)
    return (u, hist) if return_history else u


def _data_block(operator, y: torch.Tensor, u0: torch.Tensor, op_norm: float | None):
    """The data term as a PDHG block, the (possibly complexified) start and the scale
    :math:`s` of the operator: the k-space block of Eq. (1.11) for a subsampled Fourier
    operator of unknown norm (:math:`\\|SF\\|\\le1`), else :math:`\\tfrac{s^2}2\\|(A/s)u -
    y/s\\|^2` with :math:`s=\\|A\\|` (given or estimated) so that the block has norm 1."""
    if _is_subsampled_fourier(operator) and op_norm is None:
        if not u0.is_complex():
            u0 = u0.to(torch.complex128 if u0.dtype == torch.float64 else torch.complex64)
        return FourierDataBlock(operator.mask, y), u0, 1.0
    scale = float(op_norm) if op_norm is not None else _operator_norm(operator, u0)
    data = LeastSquaresBlock(
        ScaledOperator(operator, scale), y / scale, weight=scale**2, op_norm=1.0
    )
    return data, u0, scale


def _nonnegative_prox(epsilon: float):
    """:math:`\\operatorname{prox}_{tG}` of :math:`G(u)=\\tfrac\\varepsilon2\\|u\\|^2+
    \\iota_{u\\ge0}` (on ``u`` of a TGV pair ``(u, w)``)."""

    def g_prox(x, t):
        if isinstance(x, tuple):
            return ((x[0] / (1 + t * epsilon)).clamp(min=0), x[1] / (1 + t * epsilon))
        return (x / (1 + t * epsilon)).clamp(min=0)

    return g_prox


def _solve_primal(operator, y, reg, u0, scale: float, options: VariationalOptions):
    """FISTA or Newton-CG (``options.solver``) on the primal energy of Eq. (1.3)."""
    epsilon, iterations, tol = options.epsilon, options.iterations, options.tol

    def f(u):
        return 0.5 * batch_sum(abs2(operator(u) - y)) + 0.5 * epsilon * batch_sum(abs2(u))

    def grad_f(u):
        return operator.adjoint(operator(u) - y) + epsilon * u

    if options.solver == "newton-cg":
        if reg.smoothness is None:
            raise ValueError(f"solver='newton-cg' needs a smooth method, got {reg!r}")

        def energy(u):
            return f(u) + reg.value(u)

        def grad(u):
            return grad_f(u) + reg.gradient(u)

        def hvp(u, v):
            return operator.adjoint(operator(v)) + epsilon * v + reg.hvp(u, v)

        return newton_cg(energy, grad, hvp, u0, iterations=iterations, tol=tol)
    fista_options = FISTAOptions(iterations=iterations, tol=tol)
    lipschitz = scale**2 + epsilon
    if reg.smoothness is not None and not getattr(reg, "_orthogonal", False):
        # smooth regulariser without a closed-form prox: FISTA on the whole smooth energy
        lip = lipschitz + reg.smoothness * reg.op_norm**2
        return fista(lambda u: f(u) + reg.value(u), lambda u: grad_f(u) + reg.gradient(u), u0,
                     fista_options, lipschitz=lip)
    state: dict = {}

    def prox_g(v, step):
        if isinstance(reg, TV | DirectionalTV):
            out, state["p"] = reg.prox(v, step, p0=state.get("p"), return_dual=True)
            return out
        return reg.prox(v, float(step.max()))

    return fista(f, grad_f, u0, fista_options, lipschitz=lipschitz, prox_g=prox_g, g=reg.value)


def tv_pdhg_iterates(
    operator,
    y: torch.Tensor,
    alpha: float,
    u0: torch.Tensor | None = None,
    epsilon: float = 0.0,
    iterations: int | None = None,
    op_norm: float | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the PDHG iterates :math:`u^1, u^2, \\dots` of TV reconstruction (Algorithm 1).

    Infinite unless ``iterations`` is given. Same recipe (scaling, steps) as
    :func:`reconstruct_variational` with ``method="tv"``.

    >>> import torch
    >>> from spinv.operators import Identity
    >>> it = tv_pdhg_iterates(Identity(), torch.ones(1, 1, 4, 4), alpha=0.1, iterations=3)
    >>> len(list(it))
    3
    """
    reg = TV(alpha)
    if u0 is None:
        u0 = operator.analytic(y)
    if _is_subsampled_fourier(operator) and op_norm is None:
        data = FourierDataBlock(operator.mask, y)
    else:
        scale = float(op_norm) if op_norm is not None else _operator_norm(operator, u0)
        data = LeastSquaresBlock(
            ScaledOperator(operator, scale), y / scale, weight=scale**2, op_norm=1.0
        )
    gen = pdhg_iterates([data, RegulariserBlock(reg)], u0, epsilon=epsilon)
    k = 0
    while iterations is None or k < iterations:
        x, _, _, _ = next(gen)
        k += 1
        yield x


def _psnr(u: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    from spinv.metrics import psnr

    if u.is_complex():
        u = u.abs()
    if ref.is_complex():
        ref = ref.abs()
    return psnr(u.float(), ref.float())


def log_search(score: Callable[[float], float], grid: Sequence[float],
               refine: int = 6) -> tuple[float, list[tuple[float, float]]]:
    """Maximise ``score`` over positive values: the log-spaced ``grid``, then ``refine``
    golden-section steps in :math:`\\log` between the best point's neighbours (unimodal
    assumption). A non-finite score counts as :math:`-\\infty`. Returns the best value and every
    ``(value, score)`` evaluated, sorted by value.

    >>> best, hist = log_search(lambda a: -math.log(a / 0.02) ** 2, [1e-3, 1e-2, 1e-1], 12)
    >>> round(best, 3)
    0.02
    """
    grid = sorted(float(a) for a in grid)
    if not grid or grid[0] <= 0:
        raise ValueError(f"grid={grid!r}: expected a non-empty list of positive values")
    cache: dict[float, float] = {}

    def f(a: float) -> float:
        if a not in cache:
            v = float(score(a))
            cache[a] = v if math.isfinite(v) else -math.inf
        return cache[a]

    values = [f(a) for a in grid]
    i = max(range(len(grid)), key=values.__getitem__)
    if len(grid) >= 2 and refine > 0:
        lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, len(grid) - 1)])
        ratio = (math.sqrt(5) - 1) / 2
        c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        for _ in range(refine):
            if f(math.exp(c)) >= f(math.exp(d)):
                hi, d = d, c
                c = hi - ratio * (hi - lo)
            else:
                lo, c = c, d
                d = lo + ratio * (hi - lo)
    best = max(cache, key=cache.get)
    return best, sorted(cache.items())


def tune_alpha(
    simulate: Callable[[torch.Tensor], tuple[object, torch.Tensor]],
    images_train: torch.Tensor | np.ndarray,
    method: str = "tv",
    grid: Sequence[float] | None = None,
    golden_iterations: int = 8,
    reference: torch.Tensor | None = None,
    return_history: bool = False,
    **recon_kwargs,
):
    """Choose :math:`\\alpha` maximising the mean PSNR of ``method`` on ``images_train``.

    ``simulate(images)`` maps ground truths ``(B, C, H, W)`` (a numpy ``(N, H, W)`` array is
    accepted) to ``(operator, y)``; it is called once, so the noise is fixed during the search.
    ``grid`` defaults to ``logspace(-4, 0, 9)``; the best grid point and its neighbours bracket
    a golden-section search in :math:`\\log\\alpha` with ``golden_iterations`` steps (assumes
    the PSNR is unimodal there). ``recon_kwargs`` (``options``, regulariser parameters) go to
    :func:`reconstruct_variational`.
    Returns ``alpha`` or ``(alpha, {"alphas": [...], "psnr": [...]})``.
    """
    if isinstance(images_train, np.ndarray):
        images_train = torch.from_numpy(images_train)
    if not isinstance(images_train, torch.Tensor):
        raise TypeError(f"images_train: expected a tensor or array, got {type(images_train)}")
    if images_train.dim() == 3:
        images_train = images_train[:, None]
    if images_train.dim() != 4 or images_train.shape[0] < 1:
        raise ValueError(f"images_train.shape={tuple(images_train.shape)}: expected (N, C, H, W)")
    grid = list(np.logspace(-4, 0, 9) if grid is None else grid)
    if not grid or any(not (isinstance(a, (int, float)) and a > 0) for a in grid):
        raise ValueError(f"grid={grid!r}: expected a non-empty list of positive floats")
    grid = sorted(float(a) for a in grid)
    operator, y = simulate(images_train)

    def score(alpha: float) -> float:
        u = reconstruct_variational(operator, y, method, alpha, reference=reference, **recon_kwargs)
        return float(_psnr(u, images_train).mean())

    alpha, history = log_search(score, grid, golden_iterations)
    if return_history:
        return alpha, {"alphas": [a for a, _ in history], "psnr": [v for _, v in history]}
    return alpha


__all__ = [
    "METHODS",
    "History",
    "VariationalOptions",
    "log_search",
    "make_regulariser",
    "reconstruct_variational",
    "tune_alpha",
    "tv_pdhg_iterates",
    "ScaledOperator",
]
