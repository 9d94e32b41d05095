"""The serialised form of a :class:`spinv.problems.Problem`: validation of its fields, the plain
JSON-able dict (strict parsing, the mask as base64 bytes), field-by-field comparison and the
one-line description.

The dict (``version`` 1)::

    {"version": 1, "kind": "ct" | "mri" | "denoise", "size": N | [H, W] | null,
     "geometry": {"n_angles", "n_detectors", "angular_range", "pixel_size",
                  "detector_spacing", "upsample",                        # CT only
                  "fan": {"source_distance", "detector_distance",
                          "detector_type"}},                # fan beams only (else absent)
     "noise": {"photons", "mu", "eta"} (CT) | {"sigma"} (MRI, denoising),
     "mask": {"shape": [H, W], "dtype": "float32" | "float64",
              "base64": <little-endian bytes> (or "values": nested list),
              "recipe": {"pattern", "rate", "seed"} | null},           # MRI only
     "coils": {"recipe": {"n_coils", "radius"}}                          # multi-coil MRI:
            | {"shape": [N_c, H, W], "dtype": "complex64", "base64": ...}}  # simulated | given

A dict without ``coils`` (every dict written before multi-coil MRI) is a single-coil problem.

>>> from spinv.problems import ct_problem
>>> d = ct_problem(32, n_angles=20).to_dict()
>>> d["geometry"]["n_detectors"], d["noise"]["photons"]
(46, 10000.0)
>>> parse_problem_dict({**d, "views": 3})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: problem.views: unknown key; expected one of version, kind, size, geometry, noise, ...
"""

from __future__ import annotations

import base64
import dataclasses
import math
from typing import Any

import numpy as np
import torch

from spinv.operators.noise import default_mu
from spinv.problems import (
    FORMAT_VERSION,
    KINDS,
    CoilRecipe,
    CTGeometry,
    FanGeometry,
    GaussianNoise,
    MaskRecipe,
    PoissonNoise,
    Problem,
)

__all__ = [
    "check_problem", "check_operator", "encode_mask", "decode_mask", "encode_coils",
    "decode_coils", "parse_problem_dict",
    "first_difference", "describe",
]

_DTYPES = {"float32": ("<f4", torch.float32), "float64": ("<f8", torch.float64)}


# ----------------------------------------------------------------------------- validation


def _normalise_size(size: Any) -> int | tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (list, tuple)) and len(size) == 2:
        h, w = size
        for v in (h, w):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"size={size!r}: expected an int >= 1 or [H, W]")
        return int(h) if h == w else (int(h), int(w))
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size={size!r}: expected an int >= 1 or [H, W]")
    return int(size)


def _need(value: Any, cls: type, name: str, kind: str) -> None:
    if not isinstance(value, cls):
        raise TypeError(f"{name}: kind {kind!r} needs a {cls.__name__}, got "
                        f"{type(value).__name__}")


def _only_for(p: Problem, name: str, kind: str) -> None:
    if getattr(p, name) is not None and p.kind != kind:
        raise ValueError(f"{name}: only a {kind!r} problem has one, this one is {p.kind!r}")


def check_problem(p: Problem) -> dict:
    """Validate the fields of ``p`` and return those to replace by their normal form: ``size``
    as an int for square images, the CT detector count and :math:`\\mu` resolved to their
    defaults, the MRI mask validated (and ``size`` taken from it when omitted)."""
    if p.kind not in KINDS:
        raise ValueError(f"kind={p.kind!r}: expected one of {', '.join(KINDS)}")
    for name, kind in (("geometry", "ct"), ("mask", "mri"), ("recipe", "mri"),
                       ("sensitivities", "mri"), ("coils", "mri")):
        _only_for(p, name, kind)
    size = _normalise_size(p.size)
    out: dict[str, Any] = {"size": size}
    if p.kind == "ct":
        if not isinstance(size, int) or size < 2:
            raise ValueError(f"size={p.size!r}: CT needs a square image of side >= 2")
        g = CTGeometry() if p.geometry is None else p.geometry
        _need(g, CTGeometry, "geometry", "ct")
        _need(p.noise, PoissonNoise, "noise", "ct")
        out["geometry"] = _resolve_geometry(g, size)
        if p.noise.mu is None:
            out["noise"] = dataclasses.replace(p.noise, mu=default_mu(size))
        return out
    _need(p.noise, GaussianNoise, "noise", p.kind)
    if p.kind == "mri":
        from spinv.operators.mri import as_mask

        if p.mask is None:
            raise ValueError("mask=None: an MRI problem needs its sampling mask")
        mask = as_mask(p.mask, "mask")
        if not bool((mask > 0).any()):
            raise ValueError("mask: every sampling weight is 0, so nothing is measured; pass a "
                             "mask with sampled k-space locations")
        if p.recipe is not None:
            _need(p.recipe, MaskRecipe, "recipe", "mri")
        hw = tuple(mask.shape)
        if size is not None and (size if isinstance(size, tuple) else (size, size)) != hw:
            raise ValueError(f"size={p.size!r}: the mask has shape {hw}")
        out.update(mask=mask, size=_normalise_size(hw))
        out.update(_check_coils(p, hw))
    return out


def _check_coils(p: Problem, hw: tuple[int, int]) -> dict:
    """The validated coil maps of a multi-coil MRI problem (made from its recipe if absent)."""
    if p.coils is None and p.sensitivities is None:
        return {}
    if p.coils is not None:
        _need(p.coils, CoilRecipe, "coils", "mri")
    from spinv.operators.mri_multicoil import as_sensitivities

    maps = p.coils.make(hw) if p.sensitivities is None else as_sensitivities(p.sensitivities)
    if tuple(maps.shape[-2:]) != hw:
        raise ValueError(f"sensitivities: image shape {tuple(maps.shape[-2:])}, the mask {hw}")
    return {"sensitivities": maps}


def _resolve_geometry(g: CTGeometry, size: int) -> CTGeometry:
    """``g`` with the defaults of its beam filled in: angular range, detector spacing and count
    (:func:`spinv.operators.ct_fan.fan_geometry` for fan beams, with the distances)."""
    if g.fan is None:
        spacing = 1.0 if g.detector_spacing is None else g.detector_spacing
        n_det = g.n_detectors or math.ceil(math.sqrt(2) * size * g.pixel_size / spacing)
        return dataclasses.replace(g, n_detectors=n_det, detector_spacing=spacing,
                                   angular_range=g.angular_range or math.pi)
    from spinv.operators.ct_fan import fan_geometry

    f = g.fan
    try:
        r = fan_geometry(size, g.pixel_size, f.source_distance, f.detector_distance,
                         f.detector_type, g.detector_spacing, g.n_detectors)
    except ValueError as err:
        name = str(err).split()[0]
        where = "geometry.fan." if name in ("source_distance", "detector_distance") else \
            "geometry."
        raise ValueError(f"{where}{err}") from None
    fan = FanGeometry(r["source_distance"], r["detector_distance"], r["detector_type"])
    return dataclasses.replace(g, n_detectors=r["n_detectors"],
                               detector_spacing=r["detector_spacing"], fan=fan,
                               angular_range=g.angular_range or 2 * math.pi)


def check_operator(p: Problem, operator) -> None:
    """Raise ValueError unless ``operator`` is the forward operator of ``p``."""
    if p.kind == "denoise":
        return
    if p.kind == "ct":
        g = p.geometry
        expected = {"image_size": p.size, "n_angles": g.n_angles, "n_detectors": g.n_detectors,
                    "pixel_size": g.pixel_size, "detector_spacing": g.detector_spacing,
                    "angular_range": g.angular_range}
        if g.fan is not None:
            expected.update(dataclasses.asdict(g.fan))
        if (g.fan is None) != (getattr(operator, "source_distance", None) is None):
            raise ValueError("operator: parallel vs fan beam does not match the problem")
    else:
        expected = {"shape": p.image_shape}
    for key, value in expected.items():
        got = getattr(operator, key, None)
        if got != value:
            raise ValueError(f"operator: {key} {got!r} does not match the problem's {value!r}")
    if p.kind == "mri" and not torch.equal(operator.mask.detach().cpu().to(p.mask.dtype),
                                           p.mask.detach().cpu()):
        raise ValueError("operator: its sampling mask is not the problem's mask")
    maps = getattr(operator, "sensitivities", None)
    if p.kind == "mri" and (maps is None) != (p.sensitivities is None):
        raise ValueError("operator: single- vs multi-coil does not match the problem")
    if maps is not None and not torch.equal(maps.detach().cpu(), p.sensitivities.cpu()):
        raise ValueError("operator: its coil sensitivities are not the problem's")


# ----------------------------------------------------------------------------- the dict


def encode_mask(mask: torch.Tensor, recipe: MaskRecipe | None) -> dict:
    """``{"shape", "dtype", "base64", "recipe"}`` of a float mask (bytes little-endian)."""
    m = mask.detach().cpu()
    name = "float64" if m.dtype == torch.float64 else "float32"
    raw = np.ascontiguousarray(m.numpy(), dtype=_DTYPES[name][0]).tobytes()
    return {"shape": list(m.shape), "dtype": name, "base64": base64.b64encode(raw).decode("ascii"),
            "recipe": None if recipe is None else dataclasses.asdict(recipe)}


def decode_mask(d: dict, key: str = "problem.mask") -> tuple[torch.Tensor, MaskRecipe | None]:
    """Inverse of :func:`encode_mask`; a nested list under ``"values"`` may replace
    ``shape``/``dtype``/``base64``."""
    _keys(d, key, ("shape", "dtype", "base64", "values", "recipe"), ())
    if ("values" in d) == ("base64" in d):
        raise ValueError(f"{key}: give exactly one of 'base64' (with shape, dtype) or 'values'")
    if "values" in d:
        try:
            mask = torch.tensor(d["values"], dtype=torch.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{key}.values: expected a nested list of numbers") from None
    else:
        _keys(d, key, ("shape", "dtype", "base64", "recipe"), ("shape", "dtype", "base64"))
        if d["dtype"] not in _DTYPES:
            raise ValueError(f"{key}.dtype={d['dtype']!r}: expected float32 or float64")
        hw = d["shape"]
        if not (isinstance(hw, list) and len(hw) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in hw)):
            raise ValueError(f"{key}.shape={hw!r}: expected [H, W] (two ints >= 1)")
        try:
            raw = base64.b64decode(d["base64"], validate=True)
        except (TypeError, ValueError):
            raise ValueError(f"{key}.base64: not valid base64 text") from None
        np_dtype, torch_dtype = _DTYPES[d["dtype"]]
        if len(raw) != hw[0] * hw[1] * np.dtype(np_dtype).itemsize:
            raise ValueError(f"{key}.base64: {len(raw)} bytes do not hold a {d['dtype']} "
                             f"mask of shape {list(hw)}")
        mask = torch.from_numpy(np.frombuffer(raw, np_dtype).reshape(hw).copy()).to(torch_dtype)
    recipe = d.get("recipe")
    if recipe is not None:
        fields = _keys(recipe, f"{key}.recipe", ("pattern", "rate", "seed"), ("pattern", "rate"))
        if not isinstance(fields["pattern"], str):
            raise ValueError(f"{key}.recipe.pattern={fields['pattern']!r}: expected a name")
        recipe = MaskRecipe(**fields)
    return mask, recipe


def encode_coils(maps: torch.Tensor, recipe: CoilRecipe | None) -> dict:
    """``{"recipe": {...}}`` for simulated maps (remade on loading), else the maps themselves:
    ``{"shape", "dtype": "complex64", "base64"}`` (little-endian interleaved re/im)."""
    if recipe is not None:
        return {"recipe": dataclasses.asdict(recipe)}
    m = maps.detach().cpu().to(torch.complex64).numpy()
    raw = np.ascontiguousarray(m, dtype="<c8").tobytes()
    return {"shape": list(m.shape), "dtype": "complex64",
            "base64": base64.b64encode(raw).decode("ascii")}


def decode_coils(d: dict, key: str = "problem.coils") -> dict:
    """Inverse of :func:`encode_coils`: ``{"coils": recipe}`` or ``{"sensitivities": maps}``."""
    d = _keys(d, key, ("recipe", "shape", "dtype", "base64"), ())
    if ("recipe" in d) == ("base64" in d):
        raise ValueError(f"{key}: give exactly one of 'recipe' or 'base64' (with shape, dtype)")
    if "recipe" in d:
        return {"coils": _section(CoilRecipe, d["recipe"], f"{key}.recipe")}
    _keys(d, key, ("shape", "dtype", "base64"), ("shape", "dtype", "base64"))
    shape = d["shape"]
    if d["dtype"] != "complex64" or not (isinstance(shape, list) and len(shape) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)):
        raise ValueError(f"{key}: expected dtype 'complex64' and shape [N_c, H, W], got "
                         f"{d['dtype']!r} and {shape!r}")
    try:
        raw = base64.b64decode(d["base64"], validate=True)
    except (TypeError, ValueError):
        raise ValueError(f"{key}.base64: not valid base64 text") from None
    if len(raw) != 8 * shape[0] * shape[1] * shape[2]:
        raise ValueError(f"{key}.base64: {len(raw)} bytes do not hold complex64 maps {shape}")
    maps = np.frombuffer(raw, "<c8").reshape(shape).astype(np.complex64)
    return {"sensitivities": torch.from_numpy(maps)}


def _keys(d: Any, key: str, allowed: tuple, required: tuple) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"{key}: expected a dict, got {type(d).__name__}")
    for k in d:
        if k not in allowed:
            raise ValueError(f"{key}.{k}: unknown key; expected one of {', '.join(allowed)}")
    for k in required:
        if k not in d:
            raise ValueError(f"{key}.{k}: missing")
    return dict(d)


def _section(cls: type, d: Any, key: str):
    names = tuple(f.name for f in dataclasses.fields(cls))
    return cls(**_keys(d, key, names, ()))


def parse_problem_dict(d: Any) -> dict:
    """The :class:`Problem` keyword arguments of a dict written by :meth:`Problem.to_dict`;
    ValueError naming the key for an unknown or missing key or a bad value."""
    d = _keys(d, "problem", ("version", "kind", "size", "geometry", "noise", "mask", "coils"),
              ("kind",))
    if d.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"problem.version={d['version']!r}: this spinv reads version "
                         f"{FORMAT_VERSION}")
    kind = d["kind"]
    if kind not in KINDS:
        raise ValueError(f"problem.kind={kind!r}: expected one of {', '.join(KINDS)}")
    for key, owner in (("geometry", "ct"), ("mask", "mri"), ("coils", "mri")):
        if key in d and kind != owner:
            raise ValueError(f"problem.{key}: only a {owner!r} problem has one, this is {kind!r}")
    try:
        out: dict[str, Any] = {"kind": kind, "size": d.get("size")}
        noise_cls = PoissonNoise if kind == "ct" else GaussianNoise
        out["noise"] = _section(noise_cls, d.get("noise", {}), "problem.noise")
        if kind == "ct":
            geometry = dict(d.get("geometry", {})) if isinstance(d.get("geometry"), dict) \
                else d.get("geometry", {})
            if isinstance(geometry, dict) and geometry.get("fan") is not None:
                geometry["fan"] = _section(FanGeometry, geometry["fan"], "problem.geometry.fan")
            out["geometry"] = _section(CTGeometry, geometry, "problem.geometry")
        if kind == "mri":
            if "mask" not in d:
                raise ValueError("problem.mask: missing (an MRI problem carries its mask)")
            out["mask"], out["recipe"] = decode_mask(d["mask"])
            if "coils" in d:
                out.update(decode_coils(d["coils"]))
        Problem(**out)  # validates the values together (size vs mask, ...)
    except (TypeError, ValueError) as err:
        text = str(err)
        raise ValueError(text if text.startswith("problem") else f"problem.{text}") from None
    return out


# ----------------------------------------------------------------------------- comparison


def _flat(p: Problem) -> list[tuple[str, Any]]:
    size = list(p.size) if isinstance(p.size, tuple) else p.size
    items: list[tuple[str, Any]] = [("kind", p.kind), ("size", size)]
    if p.geometry is not None:
        items.append(("geometry.beam", "parallel" if p.geometry.fan is None else "fan"))
    for prefix, section in (("geometry", p.geometry), ("noise", p.noise),
                            ("mask.recipe", p.recipe), ("coils", p.coils)):
        if section is not None:
            items += [(f"{prefix}.{k}", v) for k, v in dataclasses.asdict(section).items()
                      if k != "fan"]
    if p.geometry is not None and p.geometry.fan is not None:
        items += [(f"geometry.fan.{k}", v) for k, v in dataclasses.asdict(p.geometry.fan).items()]
    return items


def _text(v: Any) -> str:
    if isinstance(v, list):
        return "x".join(str(i) for i in v)
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def first_difference(a: Problem, b: Problem) -> str | None:
    """See :meth:`Problem.difference`."""
    fa, fb = dict(_flat(a)), dict(_flat(b))
    for key in list(fa) + [k for k in fb if k not in fa]:
        va, vb = fa.get(key, "(none)"), fb.get(key, "(none)")
        if va != vb:
            ta, tb = _text(va), _text(vb)
            if ta == tb:
                ta, tb = repr(va), repr(vb)
            return f"{key} {ta} vs {tb}"
    if a.mask is not None and b.mask is not None:
        ma, mb = a.mask.detach().cpu().double(), b.mask.detach().cpu().double()
        if ma.shape != mb.shape:
            return f"mask shape {_text(list(ma.shape))} vs {_text(list(mb.shape))}"
        n = int((ma != mb).sum())
        if n:
            return f"mask differs at {n} of {ma.numel()} k-space locations"
    return _maps_difference(a.sensitivities, b.sensitivities)


def _maps_difference(a: torch.Tensor | None, b: torch.Tensor | None) -> str | None:
    if a is None and b is None:
        return None
    if a is None or b is None:
        return f"coils {0 if a is None else a.shape[0]} vs {0 if b is None else b.shape[0]}"
    if a.shape != b.shape:
        return f"coil sensitivities shape {_text(list(a.shape))} vs {_text(list(b.shape))}"
    if not torch.equal(a.detach().cpu(), b.detach().cpu()):
        return "coil sensitivities differ"
    return None


def describe(p: Problem) -> str:
    """See :meth:`Problem.describe`."""
    shape = p.image_shape
    where = "any size" if shape is None else f"{shape[0]}x{shape[1]}"
    if p.kind == "ct":
        g, n = p.geometry, p.noise
        beam = "" if g.fan is None else (
            f" fan beam ({g.fan.detector_type} detector, source {g.fan.source_distance:g}, "
            f"detector {g.fan.detector_distance:g} from the source)")
        text = (f"ct {where}{beam}: {g.n_angles} views over "
                f"{math.degrees(g.angular_range):.4g} deg, "
                f"{g.n_detectors} detectors (spacing {g.detector_spacing:g}), pixel "
                f"{g.pixel_size:g}, simulated {g.upsample}x finer; ")
        if n.photons is None:
            return text + "noiseless"
        return text + f"Poisson noise, {n.photons:g} photons, mu={n.mu:.4g}, eta={n.eta:g}"
    if p.kind == "mri":
        r = p.recipe
        how = (f"{r.pattern} mask at rate {r.rate:g} (seed {r.seed})" if r is not None
               else f"given mask of sampling rate {float((p.mask > 0).float().mean()):.4g}")
        if p.sensitivities is not None:
            c = p.coils
            how += (f", {p.sensitivities.shape[0]} coils (" + (
                f"birdcage, radius {c.radius:g})" if c is not None else "given maps)"))
        return f"mri {where}: {how}; complex Gaussian noise sigma={p.noise.sigma:g}"
    return f"denoise {where}: Gaussian noise sigma={p.noise.sigma:g}"
