r"""Reconstruction with a generative regulariser: minimisation over :math:`(u, z)`.

For MRI data :math:`y = SFu + \eta` (:class:`spinv.operators.SubsampledFourier`) and a real image
:math:`u`, we minimise (talk 002, slides "Generative Regularizers" / "Example: MRI")

.. math:: \Phi(u, z) = \frac{1}{2\sigma^2}\|Au - y\|^2 + \lambda\, E(u, z),

where :math:`E` is the joint energy of a :mod:`spinv.generative.regularisers` regulariser, so
that :math:`\min_u \Phi = \min_u \tfrac1{2\sigma^2}\|Au-y\|^2 + \lambda R(u)`. Two solvers:

``"alternating"``
    block-coordinate descent. The :math:`z`-step takes a few Adam steps on :math:`E(u,\cdot)`;
    the :math:`u`-step is exact, a linear solve
    :math:`(\sigma^{-2}N + \lambda\Sigma(z)^{-1})u
    = \sigma^{-2}\mathrm{Re}A^*y + \lambda\Sigma(z)^{-1}G(z)`
    with :math:`N = \mathrm{Re}\,A^*A` on real images. For a subsampled Fourier operator
    :math:`N` is a circular convolution, diagonal in k-space (:class:`FourierDiagonalNormal`),
    so for :math:`\Sigma = \gamma I` (mean-only, identity) the solve is one FFT pair; for the
    other covariances it is preconditioned conjugate gradients
    (:func:`spinv.linalg.conjugate_gradient`, relative tolerance :math:`10^{-5}`) with that
    Fourier solve as preconditioner. For other operators (multi-coil SENSE) :math:`N` is
    applied as is and every :math:`u`-step is that CG (:class:`OperatorNormal`,
    :func:`normal_operator`).
``"joint"``
    Adam on :math:`(u, z)` together.

The range constraint (Bora et al. 2017) minimises :math:`\tfrac1{2\sigma^2}\|AG(z)-y\|^2 +
\lambda\tfrac w2\|z\|^2` over :math:`z` alone (Adam) and returns :math:`u = G(z)`.

Several latent initialisations run as one batch: the encoder mean of the zero-filled image
(when the model has an encoder), :math:`z=0`, and random draws; per image the run with the
lowest final :math:`\Phi` is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from spinv.generative.regularisers import GenerativeRegulariser
from spinv.linalg import batch_view, conjugate_gradient, inner
from spinv.nn.covariance import ScaledIdentity
from spinv.variational.solvers.history import check_iterations, check_number

__all__ = [
    "FourierDiagonalNormal",
    "GenerativeOptions",
    "OperatorNormal",
    "GenerativeResult",
    "data_fidelity",
    "reconstruct_generative",
    "initial_latents",
    "normal_operator",
    "METHODS",
]

METHODS = ("alternating", "joint")


def _real(x: torch.Tensor) -> torch.Tensor:
    return x.real if x.is_complex() else x


def data_fidelity(operator, u: torch.Tensor, y: torch.Tensor, noise_std: float) -> torch.Tensor:
    """:math:`\\tfrac1{2\\sigma^2}\\|Au-y\\|^2` per image, shape ``(B,)``."""
    r = operator(u) - y
    return 0.5 * r.abs().pow(2).reshape(r.shape[0], -1).sum(dim=1) / noise_std**2


class FourierDiagonalNormal:
    """:math:`N = \\mathrm{Re}\\,A^*A` restricted to real images, when it is a circular
    convolution (true for :math:`A=SF` with any centring shifts): :math:`N = F^{-1}\\Lambda F`.

    The eigenvalues :math:`\\Lambda = \\mathrm{fft2}(N\\delta_0)` come from one application of
    :math:`N` to the unit impulse at pixel ``(0, 0)``; :meth:`check` verifies the structure
    on a random image (:meth:`from_operator` raises ``ValueError`` if it does not hold).

    >>> import torch
    >>> from spinv.operators import SubsampledFourier
    >>> mask = (torch.rand(8, 8, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    >>> N = FourierDiagonalNormal.from_operator(SubsampledFourier(mask), (8, 8))
    >>> x = torch.randn(2, 1, 8, 8)
    >>> u = N.solve(x, 1.0, 0.5)                        # (N + 0.5 I) u = x
    >>> bool(torch.allclose(N.apply(u) + 0.5 * u, x, atol=1e-5))
    True
    """

    def __init__(self, eigenvalues: torch.Tensor):
        self.eigenvalues = eigenvalues  # (H, W) real, >= 0

    @classmethod
    def from_operator(cls, operator, shape: tuple[int, int], dtype=torch.float32, device=None):
        H, W = shape
        delta = torch.zeros(1, 1, H, W, dtype=dtype, device=device)
        delta[..., 0, 0] = 1
        kernel = _real(operator.normal(delta) if hasattr(operator, "normal") else
                       operator.adjoint(operator(delta)))
        eig = torch.fft.fft2(kernel.to(dtype))[0, 0].real.clamp_min(0)
        out = cls(eig)
        err = out.check(operator, dtype=dtype, device=device)
        if err > 1e-3:
            raise ValueError(
                f"operator {type(operator).__name__}: Re A*A is not a circular convolution "
                f"(relative mismatch {err:.2e}); the k-space u-step needs a Fourier operator"
            )
        return out

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`Nu` for real ``u`` ``(B, 1, H, W)``."""
        return torch.fft.ifft2(torch.fft.fft2(u) * self.eigenvalues.to(u.dtype)).real

    def precondition(self, rhs: torch.Tensor, a, b) -> torch.Tensor:
        """The exact :meth:`solve` (the preconditioner of the CG :math:`u`-step)."""
        return self.solve(rhs, a, b)

    def solve(self, rhs: torch.Tensor, a: float | torch.Tensor, b: float | torch.Tensor):
        """Solve :math:`(aN + bI)u = \\mathrm{rhs}` (``a``, ``b`` scalars or ``(B,)``)."""
        if isinstance(a, torch.Tensor):
            a = batch_view(a, rhs)
        if isinstance(b, torch.Tensor):
            b = batch_view(b, rhs)
        return torch.fft.ifft2(torch.fft.fft2(rhs) / (a * self.eigenvalues.to(rhs.dtype) + b)).real

    @torch.no_grad()
    def check(self, operator, seed: int = 0, dtype=torch.float32, device=None) -> float:
        H, W = self.eigenvalues.shape
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(1, 1, H, W, generator=g, dtype=dtype).to(device)
        ref = _real(operator.adjoint(operator(x)))
        return float((self.apply(x) - ref).norm() / ref.norm().clamp_min(1e-30))


class OperatorNormal:
    """:math:`N = \\mathrm{Re}\\,A^*A` on real images for any linear operator (multi-coil SENSE,
    :class:`spinv.operators.mri_multicoil.MultiCoilFourier`, where :math:`N` is no circular
    convolution): :meth:`apply` uses ``operator.normal`` (else adjoint after forward),
    :meth:`solve` runs :func:`spinv.linalg.conjugate_gradient` on :math:`aN+bI` (relative
    tolerance :math:`10^{-5}`, ``cg_iterations``) preconditioned by :meth:`precondition`, the
    Fourier-diagonal approximation whose kernel is :math:`N` applied to the impulse at the
    image centre (exact for :math:`\\sum_c|C_c|^2` constant)."""

    def __init__(self, operator, shape: tuple[int, int], dtype=torch.float32, device=None,
                 cg_iterations: int = 30):
        H, W = shape
        self.operator, self.cg_iterations = operator, int(cg_iterations)
        delta = torch.zeros(1, 1, H, W, dtype=dtype, device=device)
        delta[..., H // 2, W // 2] = 1
        kernel = torch.roll(self.apply(delta), (-(H // 2), -(W // 2)), dims=(-2, -1))
        self.approx = FourierDiagonalNormal(torch.fft.fft2(kernel)[0, 0].real.clamp_min(0))

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`Nu` for real ``u`` ``(B, 1, H, W)``."""
        op = self.operator
        return _real(op.normal(u) if hasattr(op, "normal") else op.adjoint(op(u))).to(u.dtype)

    def precondition(self, rhs: torch.Tensor, a, b) -> torch.Tensor:
        """Approximate :math:`(aN+bI)^{-1}\\mathrm{rhs}` (one FFT pair)."""
        return self.approx.solve(rhs, a, b)

    def solve(self, rhs: torch.Tensor, a, b) -> torch.Tensor:
        """Solve :math:`(aN + bI)u = \\mathrm{rhs}` by preconditioned CG."""
        av = batch_view(a, rhs) if isinstance(a, torch.Tensor) else a
        bv = batch_view(b, rhs) if isinstance(b, torch.Tensor) else b
        return conjugate_gradient(lambda v: av * self.apply(v) + bv * v, rhs,
                                  self.precondition(rhs, a, b), rtol=1e-5,
                                  max_iterations=self.cg_iterations,
                                  preconditioner=lambda v: self.precondition(v, a, b)).x


def normal_operator(operator, shape: tuple[int, int], dtype=torch.float32, device=None,
                    cg_iterations: int = 30):
    """:class:`FourierDiagonalNormal` when :math:`\\mathrm{Re}A^*A` is a circular convolution
    (single-coil sampled Fourier: exact FFT solves), else :class:`OperatorNormal` (CG)."""
    try:
        return FourierDiagonalNormal.from_operator(operator, shape, dtype, device)
    except ValueError:
        return OperatorNormal(operator, shape, dtype, device, cg_iterations)


@dataclass(frozen=True)
class GenerativeOptions:
    """How :func:`reconstruct_generative` minimises :math:`\\Phi(u,z)` (module docstring).

    ``method``: ``"alternating"`` (block-coordinate descent with the exact :math:`u`-step) or
    ``"joint"`` (Adam on :math:`(u,z)`); the range constraint always optimises :math:`z` only.
    ``iterations``: outer rounds (one progress tick and one history entry each). ``z_steps``:
    Adam steps on :math:`z` per round (``"joint"`` and the range constraint: Adam steps on
    :math:`(u,z)` resp. :math:`z` per round). ``z_lr``, ``u_lr``: Adam rates of :math:`z` and of
    :math:`u` (``u_lr``: ``"joint"`` only). ``n_inits``: latent initialisations run as one batch
    (:func:`initial_latents`; per image the lowest final :math:`\\Phi` is kept).
    ``cg_iterations``: preconditioned CG steps of the :math:`u`-step when :math:`\\Sigma` is not
    a multiple of :math:`I` (relative tolerance :math:`10^{-5}`). ``seed``: of the random
    latent draws.
    """

    method: str = "alternating"
    iterations: int = 30
    z_steps: int = 10
    z_lr: float = 0.05
    u_lr: float = 0.01
    n_inits: int = 3
    cg_iterations: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"GenerativeOptions.method={self.method!r}: expected one of "
                             f"{', '.join(METHODS)}")
        for name in ("z_lr", "u_lr"):
            check_number(getattr(self, name), f"GenerativeOptions.{name}")
        for name, low in (("iterations", 1), ("z_steps", 1), ("n_inits", 1),
                          ("cg_iterations", 0)):
            check_iterations(getattr(self, name), f"GenerativeOptions.{name}", low)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"GenerativeOptions.seed={self.seed!r}: expected an integer")


@dataclass
class GenerativeResult:
    """Output of :func:`reconstruct_generative`: images ``u`` (B,1,H,W), latents ``z``, final
    objective per image, the index of the winning initialisation and the objective history
    (mean over the batch of the best run, per outer iteration)."""

    u: torch.Tensor
    z: torch.Tensor
    objective: torch.Tensor
    init_index: torch.Tensor
    history: list[float] = field(default_factory=list)


@torch.no_grad()
def initial_latents(
    model, u0: torch.Tensor, n_inits: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(n_inits, B, d)`` latents: encoder mean of ``u0`` (if the model has ``encode``), zeros,
    then standard normal draws."""
    if not isinstance(n_inits, int) or n_inits < 1:
        raise ValueError(f"n_inits={n_inits!r}; expected an integer >= 1")
    B, d = u0.shape[0], int(model.latent_dim)
    inits = []
    if hasattr(model, "encode"):
        inits.append(model.encode(u0)[0].to(u0.dtype))
    inits.append(u0.new_zeros(B, d))
    while len(inits) < n_inits:
        inits.append(torch.randn(B, d, generator=generator, dtype=u0.dtype).to(u0.device))
    return torch.stack(inits[:n_inits])


def _rep(x: torch.Tensor, k: int) -> torch.Tensor:
    return x.unsqueeze(0).expand(k, *x.shape).reshape(k * x.shape[0], *x.shape[1:])


def reconstruct_generative(
    operator,
    y: torch.Tensor,
    regulariser: GenerativeRegulariser,
    lam: float = 1.0,
    noise_std: float = 1.0,
    options: GenerativeOptions | None = None,
    *,
    u_init: torch.Tensor | None = None,
    progress: bool = False,
) -> GenerativeResult:
    """Minimise :math:`\\Phi(u,z)` (module docstring) for data ``y`` of ``operator``.

    ``lam`` is :math:`\\lambda`, ``noise_std`` :math:`\\sigma`; ``options`` the method, the
    budget and the Adam rates (:class:`GenerativeOptions`; ``None``: the defaults).
    ``"alternating"`` runs ``iterations`` rounds of ``z_steps`` Adam steps on :math:`z` followed
    by the exact :math:`u`-step; ``"joint"`` and the range constraint take ``iterations *
    z_steps`` Adam steps. ``u_init`` defaults to the real part of the zero-filled image
    :math:`\\mathrm{Re}A^*y`; ``progress`` shows a tqdm bar over the rounds.
    """
    options = GenerativeOptions() if options is None else options
    if not isinstance(options, GenerativeOptions):
        raise TypeError(f"options={options!r}: expected a GenerativeOptions or None")
    if not isinstance(regulariser, GenerativeRegulariser):
        raise TypeError(f"regulariser must be a GenerativeRegulariser, got {type(regulariser)}")
    for name, v in (("lam", lam), ("noise_std", noise_std)):
        if not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{name}={v!r}; expected a number > 0")
    if not isinstance(y, torch.Tensor) or y.dim() != 4:
        raise ValueError(f"y must be a (B, 1, H, W) tensor, got {getattr(y, 'shape', type(y))}")
    model = regulariser.model
    ref = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    dtype = ref.dtype if ref is not None else torch.float32
    B = y.shape[0]
    y = y.detach()
    zf = _real(operator.adjoint(y)).to(dtype)
    u0 = zf if u_init is None else u_init.to(dtype)
    z0 = initial_latents(model, u0, options.n_inits, torch.Generator().manual_seed(options.seed))
    K = z0.shape[0]
    yk = _rep(y, K)

    def objective(u_, z_):
        if regulariser.hard:
            u_ = model.decode_mean(z_)
        return data_fidelity(operator, u_, yk, noise_std) + lam * regulariser.energy(u_, z_)

    problem = _LatentProblem(operator, regulariser, objective, _rep(zf, K), lam,
                             float(noise_std) ** 2)
    tick, close = _progress_bar(progress, options.iterations,
                                f"generative[{regulariser.kind}/{options.method}]")
    try:
        u, z, history = _minimise(problem, _rep(u0, K).clone(),
                                  z0.reshape(K * B, -1).clone().requires_grad_(True), options,
                                  tick)
    finally:
        close()
    with torch.no_grad():
        obj = objective(u, z).reshape(K, B)
        best = obj.argmin(dim=0)
        idx = best * B + torch.arange(B, device=best.device)
        u_best = (model.decode_mean(z) if regulariser.hard else u)[idx]
        return GenerativeResult(u_best.detach(), z.detach()[idx], obj.min(dim=0).values, best,
                                history)


@dataclass
class _LatentProblem:
    """What the minimisation of :math:`\\Phi` needs: the operator, the regulariser,
    :math:`\\Phi(u, z)` per run, :math:`\\mathrm{Re}A^*y` per run, :math:`\\lambda` and
    :math:`\\sigma^2`."""

    operator: Callable
    regulariser: GenerativeRegulariser
    objective: Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]
    atb: torch.Tensor
    lam: float
    s2: float


def _minimise(problem: _LatentProblem, u: torch.Tensor, z: torch.Tensor,
              options: GenerativeOptions, tick):
    """Minimise :math:`\\Phi` from ``(u, z)`` by the range constraint (over :math:`z`), the
    joint Adam or the alternating scheme; returns ``(u, z, history)``."""
    reg, objective, o = problem.regulariser, problem.objective, options
    if reg.hard:
        history = _adam_rounds([z], torch.optim.Adam([z], lr=o.z_lr), lambda: objective(None, z),
                               o.iterations, o.z_steps, lambda: float(objective(None, z).mean()),
                               tick)
        with torch.no_grad():
            return reg.model.decode_mean(z), z, history
    if o.method == "joint":
        u = u.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([{"params": [u], "lr": o.u_lr}, {"params": [z], "lr": o.z_lr}])
        history = _adam_rounds([u, z], opt, lambda: objective(u, z), o.iterations, o.z_steps,
                               lambda: float(objective(u, z).mean()), tick)
        return u.detach(), z, history
    # z-steps on lam E(u, .), then the exact u-step
    H, W = problem.atb.shape[-2:]
    fourier = normal_operator(problem.operator, (H, W), u.dtype, problem.atb.device,
                              o.cg_iterations)
    state = {"u": u}

    def u_step() -> float:
        state["u"] = _u_step(reg, fourier, z, state["u"], problem.atb, problem.lam, problem.s2,
                             o.cg_iterations)
        return float(objective(state["u"], z).mean())

    history = _adam_rounds([z], torch.optim.Adam([z], lr=o.z_lr),
                           lambda: problem.lam * reg.energy(state["u"].detach(), z),
                           o.iterations, o.z_steps, u_step, tick)
    return state["u"], z, history


def _progress_bar(enabled: bool, total: int, desc: str):
    """``(tick, close)`` of a tqdm bar, or two no-ops."""
    if not enabled:
        return (lambda: None), (lambda: None)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, leave=False)
    return bar.update, bar.close


def _adam_rounds(inputs, opt, loss, rounds: int, steps: int, end_of_round, tick) -> list[float]:
    """``rounds`` times: ``steps`` Adam steps on ``loss().sum()`` w.r.t. ``inputs``, then
    ``end_of_round()`` without autograd (its value is recorded) and ``tick()``."""
    history = []
    for _ in range(rounds):
        for _ in range(steps):
            opt.zero_grad()
            loss().sum().backward(inputs=inputs)
            opt.step()
        with torch.no_grad():
            history.append(end_of_round())
        tick()
    return history


def _u_step(regulariser, fourier, z, u, atb, lam, s2, cg_iterations):
    """Exact minimiser over u of Phi(., z): (N/s2 + lam P) u = atb/s2 + lam P G(z)."""
    mean, cov = regulariser.prior(z)
    if isinstance(cov, ScaledIdentity):  # P = I/gamma: diagonal in k-space
        inv_gamma = torch.exp(-cov.log_gamma.reshape(-1))
        b = lam * inv_gamma
        return fourier.solve(atb / s2 + batch_view(b, u) * mean, 1.0 / s2, b)
    rhs = atb / s2 + lam * cov.apply_precision(mean)

    def apply_A(v):
        return fourier.apply(v) / s2 + lam * cov.apply_precision(v)

    r0 = rhs - apply_A(u)  # Rayleigh quotient of P on the residual: scalar preconditioner level
    pbar = (inner(r0, cov.apply_precision(r0)) / inner(r0, r0).clamp_min(1e-30)).clamp_min(1e-8)

    def precond(v):
        return fourier.precondition(v, 1.0 / s2, lam * pbar)

    return conjugate_gradient(apply_A, rhs, u, rtol=1e-5, max_iterations=cg_iterations,
                              preconditioner=precond).x
