"""Nonexpansive and averaged ResNets from gradient flows of convex potentials (thesis ch. 3).

A layer integrates the vector field :math:`f_{A,b}(z) = -A^T\\sigma(Az + b)` (Lemma 3.2.1) for one
step of an explicit Runge--Kutta method (Definition 3.2.1); :math:`A` is a convolution,
:math:`A^T` its exact adjoint (``conv_transpose2d``, same weights and padding), :math:`\\sigma`
increasing and :math:`L`-Lipschitz (ReLU / leaky ReLU, :math:`L=1`). Since :math:`-f_{A,b}` is the
gradient of the :math:`\\|A\\|^2L`-smooth convex :math:`\\phi(A\\cdot+b)`, it satisfies (3.4) with
:math:`\\nu = 1/(\\|A\\|^2L)`, and Theorem 3.2.1 makes the step nonexpansive when

.. math:: h\\|A\\|^2 \\le 2r/L \\qquad (r = \\text{circle-contractivity radius, Remark 3.2.1}).

For forward Euler (Algorithm 7) Theorem 3.2.3 gives more: the layer is :math:`\\alpha`-averaged
when :math:`h\\|A\\|^2\\le 2\\alpha/L`; a composition of :math:`\\alpha_i`-averaged layers is
:math:`\\alpha`-averaged with :math:`\\alpha = m/(m-1+1/\\max_i\\alpha_i)` (Theorem 3.2.4), and
:math:`(1-\\alpha)\\,\\mathrm{id}+\\alpha\\Xi` is :math:`\\alpha`-averaged for nonexpansive
:math:`\\Xi` (Definition 3.2.3).

The denoiser :math:`\\Gamma = A_{project}\\circ\\Xi\\circ A_{lift}` (§3.3.2) with
:math:`\\|A_{lift}\\|,\\|A_{project}\\|\\le 1` is used as :math:`\\gamma\\Gamma` (non-residual,
Eq. 3.5) or :math:`\\mathrm{id}-\\gamma\\Gamma` (residual, Eq. 3.6).
If moreover :math:`A_{project}=A_{lift}^T` (``tied=True``) and :math:`\\Xi` is
:math:`\\tfrac12`-averaged, then :math:`\\langle\\Gamma x-\\Gamma y, x-y\\rangle =
\\langle\\Xi Lx-\\Xi Ly, Lx-Ly\\rangle\\ge\\|\\Xi Lx-\\Xi Ly\\|^2
\\ge\\|\\Gamma x-\\Gamma y\\|^2`, i.e. :math:`\\Gamma` is firmly nonexpansive,
:math:`\\Gamma=\\tfrac12(\\mathrm{id}+N)`, and the residual denoiser
:math:`\\mathrm{id}-\\gamma\\Gamma = (1-\\tfrac\\gamma2)\\mathrm{id}+\\tfrac\\gamma2(-N)`
is :math:`\\gamma/2`-averaged for :math:`\\gamma<2` (the "oracle" argument behind
:math:`\\gamma=1.99`).

Norm control (§3.3, extended): :meth:`NonexpansiveDenoiser.enforce_constraints` runs one
warm-started power iteration per convolution on its real padding and image size (the thesis'
estimate, kept for monitoring) and then a *certified upper bound*
(:func:`spinv.nn.spectral.conv_norm_upper_bound`); if the bound exceeds the target, the weight
is scaled down so that the bound holds. :meth:`certified_lipschitz` then returns a provable bound.

>>> import torch
>>> net = NonexpansiveDenoiser(1, width=4, depth=2, method="heun", gamma=1.0, seed=0)
>>> x, y = torch.randn(2, 1, 1, 8, 8, generator=torch.Generator().manual_seed(1)).unbind(0)
>>> lip = net.certified_lipschitz()
>>> bool((net(x) - net(y)).norm() <= lip * (x - y).norm())
True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from spinv.nn.nonexpansive_options import Certification, DenoiserStructure
from spinv.nn.runge_kutta import (
    ButcherTableau,
    circle_contractivity_radius,
    get_tableau,
    rk_lipschitz_bound,
)
from spinv.nn.spectral import conv_norm_upper_bound, power_iteration_step

__all__ = [
    "composed_averagedness",
    "layer_averagedness_for",
    "ODELayer",
    "NormConstrainedConv",
    "NonexpansiveResNet",
    "NonexpansiveDenoiser",
    "DenoiserStructure",
    "Certification",
    "project_conv_norm",
]

_SHRINK = 1.0 - 1e-6  # rescale a little below the target so rounding cannot push it over
_ACTIVATIONS = {"relu": 0.0, "leaky_relu": 0.01}


def composed_averagedness(alphas: list[float]) -> float:
    """Theorem 3.2.4: :math:`\\Xi_m\\circ\\dots\\circ\\Xi_1` is
    :math:`m/(m-1+1/\\max_i\\alpha_i)`-averaged.

    >>> round(composed_averagedness([0.5, 0.5]), 6)
    0.666667
    """
    if not alphas or any(not (0.0 < a < 1.0) for a in alphas):
        raise ValueError(f"alphas={alphas}: expected a non-empty list of values in (0, 1)")
    m = len(alphas)
    return m / (m - 1 + 1.0 / max(alphas))


def layer_averagedness_for(alpha: float, depth: int) -> float:
    """Per-layer :math:`\\alpha_i=\\alpha/(\\mathrm{it}(1-\\alpha)+\\alpha)` making a depth-``it``
    composition :math:`\\alpha`-averaged (inverse of Theorem 3.2.4).

    >>> round(composed_averagedness([layer_averagedness_for(0.5, 10)] * 10), 12)
    0.5
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha}: expected a value in (0, 1)")
    if depth < 1:
        raise ValueError(f"depth={depth}: expected a positive integer")
    return alpha / (depth * (1.0 - alpha) + alpha)


def _check_positive(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r}: expected a positive finite number")


@torch.no_grad()
def project_conv_norm(weight: torch.Tensor, max_norm: float, padding: int,
                      certify_size: tuple[int, int] | None = None, grid: int = 16) -> float:
    """Scale ``weight`` in place so that its certified norm bound is ``<= max_norm``.

    Computes the certified upper bound ``U`` (:func:`spinv.nn.spectral.conv_norm_upper_bound`);
    if ``U > max_norm`` multiplies the weight by ``max_norm / U`` (times ``1 - 1e-6``), so the
    scaled operator has norm ``<= U * factor <= max_norm``. Returns the certified bound after.
    """
    bound = conv_norm_upper_bound(weight, padding, certify_size, grid)
    if bound > max_norm:
        factor = max_norm / bound * _SHRINK
        weight.mul_(factor)
        bound *= factor
    return bound


class NormConstrainedConv(nn.Module):
    """A bias-free stride-1 convolution with a certified norm constraint :math:`\\|A\\|\\le`
    ``max_norm`` (enforced by :meth:`enforce`), used as lift / projection."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 max_norm: float = 1.0, transpose_of: NormConstrainedConv | None = None) -> None:
        super().__init__()
        self.padding = kernel_size // 2
        self.max_norm = float(max_norm)
        self.transpose_of = [transpose_of] if transpose_of is not None else []  # not a submodule
        if transpose_of is None:
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size,
                                                   kernel_size))
            nn.init.kaiming_normal_(self.weight, nonlinearity="linear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transpose_of:
            src = self.transpose_of[0]
            return F.conv_transpose2d(x, src.weight, padding=src.padding)
        return F.conv2d(x, self.weight, padding=self.padding)


class ODELayer(nn.Module):
    """One explicit RK step :math:`z\\mapsto\\Phi_h(0, z, f_{A,b})`,
    :math:`f_{A,b}(z) = -A^T\\sigma(Az+b)` (Lemma 3.2.1; Algorithm 7 for Euler, Eq. 3.7 Heun).

    ``A`` maps ``channels`` to ``hidden`` channels with a ``kernel_size`` convolution.
    """

    def __init__(self, channels: int, hidden: int, kernel_size: int, tableau: ButcherTableau,
                 step: float, activation: str = "relu", max_norm: float = 1.0) -> None:
        super().__init__()
        if not tableau.explicit:
            raise ValueError(f"method={tableau.name!r}: only explicit RK tableaux are supported")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: expected one of {sorted(_ACTIVATIONS)}")
        self.tableau = tableau
        self.step = float(step)
        self.padding = kernel_size // 2
        self.negative_slope = _ACTIVATIONS[activation]
        self.max_norm = float(max_norm)
        self.weight = nn.Parameter(torch.empty(hidden, channels, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        self.bias = nn.Parameter(torch.randn(hidden) / math.sqrt(hidden))  # E||b||^2 = 1 (§3.3)

    def field(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`f_{A,b}(z) = -A^T\\sigma(Az + b)`."""
        u = F.conv2d(z, self.weight, self.bias, padding=self.padding)
        u = F.leaky_relu(u, self.negative_slope) if self.negative_slope else F.relu(u)
        return -F.conv_transpose2d(u, self.weight, padding=self.padding)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        a, b, h = self.tableau.a, self.tableau.b, self.step
        ks: list[torch.Tensor] = []
        for i in range(self.tableau.stages):
            y = z
            for j in range(i):
                if a[i][j] != 0.0:
                    y = y + (h * a[i][j]) * ks[j]
            ks.append(self.field(y))
        out = z
        for i, k in enumerate(ks):
            if b[i] != 0.0:
                out = out + (h * b[i]) * k
        return out


class NonexpansiveResNet(nn.Module):
    """:math:`\\Xi = \\Xi_{it}\\circ\\dots\\circ\\Xi_1` of ODE layers (Algorithm 7, any
    explicit RK method).

    - ``alpha=None``: nonexpansive, per-layer :math:`\\|A_i\\|^2\\le 2r/(hL)` (Theorem 3.2.1).
    - ``alpha`` with ``averaging="layers"`` (forward Euler only): per-layer
      :math:`\\alpha_i` from :func:`layer_averagedness_for`, :math:`\\|A_i\\|^2\\le2\\alpha_i/(hL)`
      (Theorems 3.2.3, 3.2.4), so :math:`\\Xi` is ``alpha``-averaged.
    - ``alpha`` with ``averaging="relaxation"``: :math:`(1-\\alpha)\\mathrm{id}+\\alpha\\Xi` with
      :math:`\\Xi` nonexpansive (Definition 3.2.3), step size independent of the depth.
    """

    def __init__(self, channels: int, depth: int = 10, hidden: int | None = None,
                 method: str | ButcherTableau = "euler", step: float = 2.0,
                 kernel_size: int = 3, activation: str = "relu", alpha: float | None = None,
                 averaging: str = "relaxation") -> None:
        super().__init__()
        for name, v in (("channels", channels), ("depth", depth)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r}: expected a positive integer")
        _check_positive("step", step)
        self.tableau = get_tableau(method)
        self.radius = circle_contractivity_radius(self.tableau)
        if not self.radius > 0:
            raise ValueError(f"method={self.tableau.name!r} has circle-contractivity radius "
                             f"{self.radius}; no step size makes its layers nonexpansive")
        if averaging not in ("relaxation", "layers"):
            raise ValueError(f"averaging={averaging!r}: expected 'relaxation' or 'layers'")
        if alpha is not None and not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha={alpha}: expected None or a value in (0, 1)")
        if alpha is not None and averaging == "layers" and self.tableau.name != "euler":
            raise ValueError("averaging='layers' needs method='euler' (Theorem 3.2.3)")
        self.step = float(step)
        self.lip_activation = 1.0
        self.alpha = alpha
        self.averaging = averaging
        if alpha is not None and averaging == "layers":
            bound_sq = 2 * layer_averagedness_for(alpha, depth) / (self.step * self.lip_activation)
        else:
            bound_sq = 2 * self.radius / (self.step * self.lip_activation)
        self.layers = nn.ModuleList(
            ODELayer(channels, hidden or channels, kernel_size, self.tableau, step, activation,
                     max_norm=math.sqrt(bound_sq))
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x
        for layer in self.layers:
            z = layer(z)
        if self.alpha is not None and self.averaging == "relaxation":
            return (1.0 - self.alpha) * x + self.alpha * z
        return z

    @torch.no_grad()
    def enforce_constraints(self, certify_size: tuple[int, int] | None = None,
                            grid: int = 16) -> list[float]:
        """Project every layer onto its certified norm bound; returns the bounds after."""
        return [project_conv_norm(layer.weight, layer.max_norm, layer.padding, certify_size,
                                  grid) for layer in self.layers]

    def certified_lipschitz(self, certify_size: tuple[int, int] | None = None,
                            grid: int = 16) -> float:
        """A provable Lipschitz constant of :math:`\\Xi` for the current weights."""
        norms = [conv_norm_upper_bound(layer.weight, layer.padding, certify_size, grid)
                 for layer in self.layers]
        return self.certificate(norms)[0]

    def certificate(self, norms: list[float]) -> tuple[float, float | None]:
        """``(lipschitz, averagedness or None)`` of :math:`\\Xi` given upper bounds of the
        :math:`\\|A_i\\|`: 1 where :math:`h\\|A_i\\|^2L\\le 2r`, else
        :math:`h\\|A_i\\|^2L-1` for forward Euler (cocoercivity) or the crude RK bound."""
        lip, alphas = 1.0, []
        for n in norms:
            lf = n * n * self.lip_activation
            if self.step * lf <= 2 * self.radius:
                layer_lip = 1.0
            elif self.tableau.name == "euler":
                # grad phi is 1/beta-cocoercive, beta = ||A||^2 L (Theorem 3.2.2), so
                # ||d - h dg||^2 <= ||d||^2 - (2h/beta - h^2)||dg||^2 <= (h beta - 1)^2 ||d||^2
                layer_lip = max(1.0, self.step * lf - 1.0)
            else:
                layer_lip = rk_lipschitz_bound(self.tableau, self.step, lf)
            lip *= layer_lip
            a_i = self.step * lf / 2 if self.tableau.name == "euler" else 1.0
            alphas.append(max(a_i, 1e-12) if a_i < 1 else None)  # A_i = 0: identity layer
        avg = None
        if all(a is not None for a in alphas):
            avg = composed_averagedness(alphas)  # type: ignore[arg-type]
        if self.alpha is not None and self.averaging == "relaxation":
            # (1 - a) id + a Xi: a-averaged if Xi is nonexpansive, (a * beta)-averaged if Xi is
            # beta-averaged (Definition 3.2.3)
            inner_nonexpansive = lip <= 1.0
            lip = (1 - self.alpha) + self.alpha * lip
            if avg is not None:
                avg = self.alpha * avg
            elif inner_nonexpansive:
                avg = self.alpha
        return lip, avg


class NonexpansiveDenoiser(nn.Module):
    """Denoiser :math:`\\gamma\\Gamma` or :math:`\\mathrm{id}-\\gamma\\Gamma`,
    :math:`\\Gamma = A_{project}\\circ\\Xi\\circ A_{lift}` (§3.3.2, Eqs. 3.5, 3.6).

    Parameters: ``in_channels``; ``width`` (channels of :math:`\\Xi`, 64 in the thesis);
    ``depth`` (it = 10); ``method`` (``"euler"``, ``"heun"``, ``"rk4"`` or a tableau); ``step``
    (h = 2); ``gamma``; ``residual``; ``structure`` (:class:`DenoiserStructure`: averaging,
    tying, activation, kernel size); ``certification`` (:class:`Certification`; with
    ``norm_control="power"``, :meth:`certified_lipschitz` reports the true certificate of the
    resulting weights, which may exceed the nominal one); ``seed``. :meth:`from_config` builds
    one from the flat option dict stored in configs and run directories.

    Call :meth:`enforce_constraints` after every optimiser step; it is also called at
    construction (about a second at the thesis' width 64 on one loaded CPU core; see
    ``benchmarks/nonexpansive.py``), instead of the thesis' 1000 power iterations per operator.
    """

    def __init__(self, in_channels: int = 1, width: int = 64, depth: int = 10,
                 method: str | ButcherTableau = "euler", step: float = 2.0, gamma: float = 1.0,
                 residual: bool = True, structure: DenoiserStructure | None = None,
                 certification: Certification | None = None, seed: int | None = 0) -> None:
        super().__init__()
        st = structure if structure is not None else DenoiserStructure()
        ce = certification if certification is not None else Certification()
        alpha, averaging, tied = st.alpha, st.averaging, st.tied
        activation, kernel_size = st.activation, st.kernel_size
        certify_size, certify_grid = ce.certify_size, ce.certify_grid
        power_size, norm_control = ce.power_size, ce.norm_control
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels={in_channels!r}: expected a positive integer")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width={width!r}: expected a positive integer")
        _check_positive("gamma", gamma)
        if certify_size is not None and (len(certify_size) != 2 or min(certify_size) < 1):
            raise ValueError(f"certify_size={certify_size!r}: expected None or (H, W)")
        self.config = dict(in_channels=in_channels, width=width, depth=depth,
                           method=get_tableau(method).name, step=step, gamma=gamma,
                           residual=residual, alpha=alpha, averaging=averaging, tied=tied,
                           activation=activation, kernel_size=kernel_size,
                           certify_size=list(certify_size) if certify_size else None,
                           certify_grid=certify_grid, power_size=list(power_size),
                           norm_control=norm_control)
        if norm_control not in ("certified", "power"):
            raise ValueError(f"norm_control={norm_control!r}: expected 'certified' or 'power'")
        if not isinstance(method, str):
            self.config["method_tableau"] = {"a": [list(r) for r in method.a], "b": list(method.b)}
        ctx = torch.random.fork_rng() if seed is not None else _nullcontext()
        with ctx:
            if seed is not None:
                torch.manual_seed(seed)
            self.lift = NormConstrainedConv(in_channels, width, kernel_size)
            self.xi = NonexpansiveResNet(width, depth, None, method, step, kernel_size,
                                         activation, alpha, averaging)
            self.project = NormConstrainedConv(width, in_channels, kernel_size,
                                               transpose_of=self.lift if tied else None)
            gen = torch.Generator().manual_seed(0 if seed is None else seed)
            for name, conv in self._convs():
                u = torch.randn((1, conv.weight.shape[1], *power_size), generator=gen)
                self.register_buffer(_buf(name), u / u.norm())
                self.register_buffer(_buf(name, "sigma"), torch.zeros(()))
        self.gamma = float(gamma)
        self.residual = bool(residual)
        self.tied = bool(tied)
        self.certify_size = tuple(certify_size) if certify_size is not None else None
        self.certify_grid = int(certify_grid)
        self.norm_control = norm_control
        # the certified rule needs the power iterates for monitoring only; the thesis' rule
        # relies on them (it used 1000 iterations at initialisation; 100 here)
        self.enforce_constraints(power_iterations=5 if norm_control == "certified" else 100)

    @classmethod
    def from_config(cls, in_channels: int = 1, **options) -> NonexpansiveDenoiser:
        """A denoiser from the flat options of :attr:`config` (as stored in configs and run
        directories: ``alpha``, ``tied``, ``certify_size``, ... at the top level)."""
        structure = {f.name: options.pop(f.name) for f in dataclasses.fields(DenoiserStructure)
                     if f.name in options}
        certification = {f.name: options.pop(f.name) for f in dataclasses.fields(Certification)
                         if f.name in options}
        for key in ("certify_size", "power_size"):
            if certification.get(key) is not None:
                certification[key] = tuple(certification[key])
        return cls(in_channels, **options, structure=DenoiserStructure(**structure),
                   certification=Certification(**certification))

    # -- forward ---------------------------------------------------------------------------
    def gamma_net(self, y: torch.Tensor) -> torch.Tensor:
        """:math:`\\Gamma(y) = A_{project}\\Xi(A_{lift}y)`."""
        return self.project(self.xi(self.lift(y)))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 4:
            raise ValueError(f"y: expected a (B, C, H, W) tensor, got shape {tuple(y.shape)}")
        g = self.gamma * self.gamma_net(y)
        return y - g if self.residual else g

    # -- norm control ----------------------------------------------------------------------
    def _convs(self) -> Iterator[tuple[str, nn.Module]]:
        yield "lift", self.lift
        for i, layer in enumerate(self.xi.layers):
            yield f"xi{i}", layer
        if not self.project.transpose_of:
            yield "project", self.project

    def _bound(self, weight: torch.Tensor, padding: int) -> float:
        return conv_norm_upper_bound(weight, padding, self.certify_size, self.certify_grid)

    @torch.no_grad()
    def enforce_constraints(self, power_iterations: int = 1) -> dict[str, float]:
        """Project the weights onto the certified norm constraints (call after each step).

        For each convolution: ``power_iterations`` warm-started power-iteration steps (the
        thesis' estimate, stored for monitoring), then a certified upper bound ``U``; if
        ``U > max_norm`` the weight is multiplied by ``max_norm / U`` (slightly less), so the
        certified bound of the new weight, ``U * factor``, is below ``max_norm``. Returns the
        certified norms after projection (the power estimates with ``norm_control="power"``).
        """
        out = {}
        for name, conv in self._convs():
            w = conv.weight
            u = getattr(self, _buf(name))
            sigma, u_new = power_iteration_step(w, u, conv.padding, power_iterations)
            u.copy_(u_new)
            if self.norm_control == "power":  # the thesis' rule: rescale by the estimate
                if sigma > conv.max_norm:
                    w.mul_(conv.max_norm / sigma)
                    sigma = conv.max_norm
                out[name] = sigma
                getattr(self, _buf(name, "sigma")).fill_(sigma)
                continue
            before = float(w.detach().norm())
            bound = project_conv_norm(w, conv.max_norm, conv.padding, self.certify_size,
                                      self.certify_grid)
            sigma *= float(w.detach().norm()) / before if before > 0 else 1.0
            getattr(self, _buf(name, "sigma")).fill_(sigma)
            out[name] = bound
        return out

    def power_estimates(self) -> dict[str, float]:
        """Latest power-iteration estimates (lower bounds) of each convolution's norm."""
        return {n: float(getattr(self, _buf(n, "sigma"))) for n, _ in self._convs()}

    @torch.no_grad()
    def certified_norms(self) -> dict[str, float]:
        """Certified upper bounds of the current convolutions' norms (computed afresh)."""
        return {n: self._bound(c.weight, c.padding) for n, c in self._convs()}

    @torch.no_grad()
    def certified_lipschitz(self) -> float:
        """A provable Lipschitz constant of the denoiser for the current weights.

        :math:`\\mathrm{Lip}(\\Gamma)\\le\\|A_{project}\\|\\,\\mathrm{Lip}(\\Xi)\\,\\|A_{lift}\\|`
        with certified norms; the denoiser is :math:`\\gamma\\mathrm{Lip}(\\Gamma)` (Eq. 3.5) or
        :math:`1+\\gamma\\mathrm{Lip}(\\Gamma)` (Eq. 3.6), or 1 when it is certified averaged
        or when :math:`\\Gamma` is certified firmly nonexpansive and :math:`\\gamma = 2`
        (residual: :math:`\\mathrm{id}-2\\Gamma` is nonexpansive, not averaged).
        """
        lip, _ = self._certificate()
        return lip

    @torch.no_grad()
    def certified_averagedness(self) -> float | None:
        """:math:`\\alpha` such that the denoiser is provably :math:`\\alpha`-averaged, or None
        (needs ``tied=True`` and :math:`\\Xi` certified :math:`\\tfrac12`-averaged; module doc)."""
        return self._certificate()[1]

    def _certificate(self) -> tuple[float, float | None]:
        norms = self.certified_norms()
        xi_lip, xi_avg = self.xi.certificate([norms[f"xi{i}"] for i in range(len(self.xi.layers))])
        n_lift = norms["lift"]
        n_proj = n_lift if self.tied else norms["project"]
        lip_gamma = n_proj * xi_lip * n_lift
        lip = 1.0 + self.gamma * lip_gamma if self.residual else self.gamma * lip_gamma
        avg = None
        firm = self.tied and n_lift <= 1.0 and xi_avg is not None and xi_avg <= 0.5
        if firm and self.residual and self.gamma < 2.0:
            avg = self.gamma / 2.0
        elif firm and not self.residual and self.gamma <= 1.0:
            avg = 1.0 - self.gamma / 2.0
        if avg is not None or (firm and self.residual and self.gamma == 2.0):
            # gamma = 2: id - 2 Gamma = -(2 Gamma - id), the reflection of a firmly
            # nonexpansive map, is nonexpansive but in general not averaged (Gamma = id)
            lip = min(lip, 1.0)
        return lip, avg


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _buf(name: str, kind: str = "u") -> str:
    return f"_power_{kind}_{name}"
