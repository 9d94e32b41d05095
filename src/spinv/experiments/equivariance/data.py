"""Data of the chapter-2 experiments (thesis §2.5.1, at reduced size), CT and MRI.

Slices of a bundled dataset, area-downsampled to ``image_size``², with

* **CT** (``ct-head``): low-dose post-log sinograms of a 50-view parallel-beam ray transform,
  simulated on a twice finer grid against the inverse crime
  (:func:`spinv.operators.ct.simulate_ct`, Poisson noise); ROI = body mask
  (:func:`spinv.data.transforms.body_mask_ct`, the thesis uses lung masks);
* **MRI** (``brain-t1``): :math:`y = S(Fu + \\varepsilon)` with a Cartesian variable-density
  line pattern :math:`S` (:func:`spinv.operators.sampling.variable_density_lines`, ~20 % as in
  Fig. 2.6) and complex white Gaussian noise :math:`\\varepsilon`; the complex image is handled
  by the learned method as 2 real channels. ROI = convex hull of the thresholded foreground
  (:func:`spinv.data.transforms.roi_mask_mri`, §2.5.4).

Held-out slices are tested upright and rotated by uniform random angles in [-180°, 180°): the
ground truth is rotated first, at the bundled resolution, then area-averaged to ``image_size``
and simulated (:func:`assemble_data`; this avoids the blur that makes rotated images easier,
thesis Appendix 2.A). Data noise is drawn once and kept fixed.

>>> d = prepare_data(DataSpec("mri", image_size=16), n_train=2, n_test=2, seed=0)
>>> tuple(d.x_train.shape), d.y_train.dtype, tuple(d.mask_rot.shape)
((2, 1, 16, 16), torch.complex64, (2, 1, 16, 16))
>>> round(d.operator.sampling_rate, 2)
0.19
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = [
    "DATASETS",
    "DataSpec",
    "ExperimentData",
    "assemble_data",
    "available",
    "data_to",
    "downsample",
    "experiment_setup",
    "load_ct_slices",
    "load_slices",
    "prepare_ct_data",
    "prepare_data",
    "prepare_mri_data",
]

DATASETS = {"ct": "ct-head", "mri": "brain-t1"}


@dataclass(frozen=True)
class DataSpec:
    """The measurement set-up of an experiment: ``problem`` (``ct``/``mri``), ``image_size``,
    CT ``n_angles`` and ``photons`` per detector pixel, MRI sampling ``rate`` and ``noise``."""

    problem: str = "ct"
    image_size: int = 64
    n_angles: int = 50
    photons: float = 1e4
    rate: float = 0.2
    noise: float = 0.02

    @classmethod
    def from_config(cls, cfg) -> DataSpec:
        """The set-up of an equivariance config (:mod:`spinv.experiments.equivariance.config`)."""
        return cls(cfg.problem, cfg.image_size, cfg.n_angles, cfg.photons, cfg.rate, cfg.noise)


@dataclass
class ExperimentData:
    """Training and test data of a chapter-2 experiment, CT or MRI (all image tensors
    ``(N, 1, n, n)``); ``setup`` describes the problem, dataset and evaluation as sections of an
    :class:`~spinv.training.config.ExperimentConfig` (``problem``, ``data``, ``eval``) so that
    the models trained on it leave runs that ``spinv evaluate`` accepts."""

    operator: torch.nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_rot: torch.Tensor
    y_rot: torch.Tensor
    mask_test: torch.Tensor
    mask_rot: torch.Tensor
    angles: torch.Tensor
    setup: dict = field(default_factory=dict)


def available(problem: str, split: str) -> int:
    """Number of slices of the dataset of ``problem`` (``ct``/``mri``) in ``split``."""
    from spinv.data import load_dataset

    if problem not in DATASETS:
        raise ValueError(f"problem={problem!r}: expected one of {sorted(DATASETS)}")
    return len(load_dataset(DATASETS[problem], split))


def downsample(x: torch.Tensor, image_size: int | None) -> torch.Tensor:
    """Area-average ``x`` to ``image_size``² (``None`` or the same size: unchanged), in [0, 1]."""
    if image_size is not None and tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="area")
    return x.clamp(0, 1).contiguous()


def load_slices(problem: str, split: str, count: int | None, image_size: int | None
                ) -> torch.Tensor:
    """``(count, 1, image_size, image_size)`` float32 slices in [0, 1] of the dataset of
    ``problem`` (``count=None``: all; ``image_size=None``: the bundled resolution)."""
    from spinv.data import load_dataset

    arr = load_dataset(DATASETS[problem], split)
    if count is not None:
        if not isinstance(count, int) or count < 1 or count > len(arr):
            raise ValueError(f"count={count!r}: expected 1..{len(arr)} slices of split {split!r}")
        arr = arr[:count]
    return downsample(torch.from_numpy(arr)[:, None], image_size)


def load_ct_slices(split: str, count: int | None, image_size: int | None) -> torch.Tensor:
    """``(N, 1, image_size, image_size)`` float32 slices of ``ct-head`` in [0, 1]."""
    return load_slices("ct", split, count, image_size)


def experiment_setup(problem: dict, dataset: str, test_split: str, n_test: int) -> dict:
    """The ``setup`` of :class:`ExperimentData`: config sections ``problem`` (as given),
    ``data`` (``dataset``, area downsampling) and ``eval`` (ROI metrics on ``n_test`` slices of
    ``test_split``)."""
    return {"name": dataset, "problem": problem,
            "data": {"dataset": dataset, "val_size": 0, "resize": "area"},
            "eval": {"split": test_split, "roi": True, "n_images": n_test}}


def assemble_data(operator: torch.nn.Module, x_train: torch.Tensor, x_test: torch.Tensor,
                  simulate, roi_mask, seed: int, *, x_test_native: torch.Tensor | None = None
                  ) -> ExperimentData:
    """The experiment's data from ground truths: the test images rotated by random angles in
    [-180, 180) drawn from ``seed`` (rotate, then measure), measurements ``simulate(x, s)`` with
    seeds ``seed + 1, 2, 3`` for the training, upright and rotated sets, ROI masks
    ``roi_mask(x)``.

    With ``x_test_native`` (the test slices at a finer resolution, e.g. the bundled one) the
    rotation is applied there and the result area-averaged to the size of ``x_test``. Rotating
    the working-resolution images instead blurs them (bilinear interpolation), which makes the
    rotated test set *easier* for every method (thesis Appendix 2.A, Figs. 2.13-2.14); at a 4x
    finer grid that blur is largely averaged away, so upright and rotated scores compare the
    orientation, not the sharpness.
    """
    from spinv.data.transforms import rotate

    gen = torch.Generator().manual_seed(seed)
    angles = (torch.rand(len(x_test), generator=gen, dtype=torch.float64) * 2 - 1) * 180.0
    if x_test_native is None:
        x_rot = rotate(x_test, angles).clamp(0, 1)
    else:
        if len(x_test_native) != len(x_test):
            raise ValueError(
                f"x_test_native has {len(x_test_native)} images: expected {len(x_test)}, one per "
                "test image"
            )
        x_rot = downsample(rotate(x_test_native, angles), x_test.shape[-1])
    return ExperimentData(
        operator=operator, x_train=x_train, y_train=simulate(x_train, seed + 1),
        x_test=x_test, y_test=simulate(x_test, seed + 2),
        x_rot=x_rot, y_rot=simulate(x_rot, seed + 3),
        mask_test=roi_mask(x_test), mask_rot=roi_mask(x_rot), angles=angles,
    )


def _check_n_train(n_train) -> None:
    if not isinstance(n_train, int) or isinstance(n_train, bool) or n_train < 1:
        raise ValueError(f"n_train={n_train!r}: expected a positive integer")


def prepare_ct_data(n_train: int, image_size: int = 64, n_test: int = 8, n_angles: int = 50,
                    seed: int = 0, *, photons: float = 1e4, test_split: str = "test"
                    ) -> ExperimentData:
    """Ground truths, low-dose sinograms (``photons`` per detector pixel) and body masks of the
    CT experiment: ``n_train`` training slices, ``n_test`` slices of ``test_split`` (``"test"``
    or ``"val"``) upright and rotated by random angles in [-180, 180)."""
    from spinv.data.transforms import body_mask_ct
    from spinv.operators import ParallelBeamCT
    from spinv.operators.ct import simulate_ct

    _check_n_train(n_train)
    native = load_ct_slices(test_split, n_test, None)
    data = assemble_data(
        ParallelBeamCT(image_size, n_angles),
        load_ct_slices("train", n_train, image_size),
        downsample(native, image_size),
        lambda x, s: simulate_ct(x, n_angles, photons=photons, seed=s),
        body_mask_ct,
        seed,
        x_test_native=native,
    )
    data.setup = experiment_setup(
        {"kind": "ct", "image_size": image_size, "n_angles": n_angles, "photons": photons,
         "mu": None, "upsample": 2}, "ct-head", test_split, n_test)
    return data


def prepare_mri_data(spec: DataSpec, n_train: int, n_test: int = 8, seed: int = 0,
                     test_split: str = "test") -> ExperimentData:
    """MRI counterpart of :func:`prepare_ct_data` (same container; ground truths real float32,
    measurements complex64). The sampling pattern (``lines``) is drawn with ``seed``."""
    from spinv.data.transforms import roi_mask_mri
    from spinv.operators import SubsampledFourier
    from spinv.operators.sampling import variable_density_lines

    _check_n_train(n_train)
    if not 0 < spec.rate <= 1:
        raise ValueError(f"rate={spec.rate!r}: expected a sampling rate in (0, 1]")
    if not spec.noise >= 0:
        raise ValueError(f"noise={spec.noise!r}: expected a noise level >= 0")
    size, noise = spec.image_size, spec.noise
    op = SubsampledFourier(variable_density_lines((size, size), spec.rate, seed=seed))
    native = load_slices("mri", test_split, n_test, None)
    data = assemble_data(
        op,
        load_slices("mri", "train", n_train, size),
        downsample(native, size),
        lambda x, s: op.measure(x, sigma=noise, seed=s).to(torch.complex64),
        roi_mask_mri,
        seed,
        x_test_native=native,
    )
    data.setup = experiment_setup(
        {"kind": "mri", "image_size": size, "noise_sigma": noise,
         "mask": {"pattern": "lines", "rate": spec.rate, "seed": seed}},
        "brain-t1", test_split, n_test)
    return data


def prepare_data(spec: DataSpec, n_train: int, n_test: int, seed: int = 0,
                 test_split: str = "test") -> ExperimentData:
    """CT or MRI data of the experiment (see the module docstring)."""
    if spec.problem == "ct":
        return prepare_ct_data(n_train, spec.image_size, n_test, spec.n_angles, seed,
                               photons=spec.photons, test_split=test_split)
    if spec.problem == "mri":
        return prepare_mri_data(spec, n_train, n_test, seed, test_split)
    raise ValueError(f"problem={spec.problem!r}: expected 'ct' or 'mri'")


def data_to(data: ExperimentData, device: torch.device) -> ExperimentData:
    """A copy of ``data`` with every tensor (and the operator) on ``device``."""
    fields = {k: (v.to(device) if isinstance(v, torch.Tensor | torch.nn.Module) else v)
              for k, v in vars(data).items()}
    fields["angles"] = data.angles  # bookkeeping, stays on the CPU
    return ExperimentData(**fields)
