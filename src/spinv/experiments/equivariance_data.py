"""Data and training for the equivariance sweeps of thesis §2.5 (CT and MRI).

Data (§2.5.1, at reduced size): slices of a bundled dataset, area-downsampled to
``image_size``², with

* **CT** (``ct-head``): low-dose post-log sinograms of a 50-view parallel-beam ray transform,
  simulated on a twice finer grid (:func:`spinv.operators.ct.simulate_ct`); ROI = body mask
  (:func:`spinv.data.transforms.body_mask_ct`, the thesis uses lung masks);
* **MRI** (``brain-t1``): :math:`y = S(Fu + \\varepsilon)` with a Cartesian variable-density
  line pattern :math:`S` (:func:`spinv.sampling.variable_density_lines`, ~20 % as in Fig. 2.6)
  and complex white Gaussian noise :math:`\\varepsilon`; the complex image is handled by the
  learned method as 2 real channels. ROI = convex hull of the thresholded foreground
  (:func:`spinv.data.transforms.roi_mask_mri`, §2.5.4).

Held-out slices are tested upright and rotated by uniform random angles in [-180°, 180°): the
ground truth is rotated first, at the bundled resolution, then area-averaged to ``image_size``
and simulated (:func:`spinv.experiments.equivariance.assemble_data`; this avoids the blur that
makes rotated images easier, thesis Appendix 2.A).

Training (§2.5.2, :mod:`spinv.experiments.equivariance_training`): empirical risk
:math:`\\frac1N\\sum_i \\|u_i^* - \\Phi(y_i)\\|_2^2` minimised by Adam with minibatches; for
complex reconstructions the modulus of the error is squared. Data noise is drawn once and kept
fixed.

>>> d = prepare_data("mri", n_train=2, image_size=16, n_test=2, seed=0)
>>> tuple(d.x_train.shape), d.y_train.dtype, tuple(d.mask_rot.shape)
((2, 1, 16, 16), torch.complex64, (2, 1, 16, 16))
>>> round(d.operator.sampling_rate, 2)
0.19
"""

from __future__ import annotations

import torch

from spinv.experiments.equivariance import (
    ExperimentData,
    assemble_data,
    downsample,
    experiment_setup,
    load_ct_slices,
    prepare_ct_data,
)

__all__ = [
    "DATASETS",
    "available",
    "data_to",
    "load_slices",
    "prepare_data",
    "prepare_mri_data",
]

DATASETS = {"ct": "ct-head", "mri": "brain-t1"}


def available(problem: str, split: str) -> int:
    """Number of slices of the dataset of ``problem`` (``ct``/``mri``) in ``split``."""
    from spinv.data import load_dataset

    if problem not in DATASETS:
        raise ValueError(f"problem={problem!r}: expected one of {sorted(DATASETS)}")
    return len(load_dataset(DATASETS[problem], split))


def load_slices(problem: str, split: str, count: int, image_size: int | None) -> torch.Tensor:
    """``(count, 1, image_size, image_size)`` float32 slices in [0, 1] (area downsampling;
    ``image_size=None``: the bundled resolution)."""
    if problem == "ct":
        return load_ct_slices(split, count, image_size)
    from spinv.data import load_dataset

    arr = load_dataset(DATASETS[problem], split)
    if not isinstance(count, int) or count < 1 or count > len(arr):
        raise ValueError(f"count={count!r}: expected 1..{len(arr)} slices of split {split!r}")
    return downsample(torch.from_numpy(arr[:count])[:, None], image_size)


def prepare_mri_data(
    n_train: int,
    image_size: int = 64,
    n_test: int = 8,
    rate: float = 0.2,
    noise: float = 0.02,
    seed: int = 0,
    test_split: str = "test",
) -> ExperimentData:
    """MRI counterpart of :func:`spinv.experiments.equivariance.prepare_ct_data` (same
    container, fields ``operator, x_*, y_*, mask_*, angles, setup``; ground truths real float32,
    measurements complex64). The sampling pattern (``lines``) is drawn with ``seed``."""
    from spinv.data.transforms import roi_mask_mri
    from spinv.operators import SubsampledFourier
    from spinv.sampling import variable_density_lines

    if not isinstance(n_train, int) or isinstance(n_train, bool) or n_train < 1:
        raise ValueError(f"n_train={n_train!r}: expected a positive integer")
    if not 0 < rate <= 1:
        raise ValueError(f"rate={rate!r}: expected a sampling rate in (0, 1]")
    if not noise >= 0:
        raise ValueError(f"noise={noise!r}: expected a noise level >= 0")
    op = SubsampledFourier(variable_density_lines((image_size, image_size), rate, seed=seed))
    native = load_slices("mri", test_split, n_test, None)
    data = assemble_data(
        op,
        load_slices("mri", "train", n_train, image_size),
        downsample(native, image_size),
        lambda x, s: op.measure(x, sigma=noise, seed=s).to(torch.complex64),
        roi_mask_mri,
        seed,
        x_test_native=native,
    )
    data.setup = experiment_setup(
        {"kind": "mri", "image_size": image_size, "noise_sigma": noise,
         "mask": {"pattern": "lines", "rate": rate, "seed": seed}},
        "brain-t1", test_split, n_test)
    return data


def prepare_data(
    problem: str,
    n_train: int,
    image_size: int,
    n_test: int,
    seed: int = 0,
    test_split: str = "test",
    n_angles: int = 50,
    photons: float = 1e4,
    rate: float = 0.2,
    noise: float = 0.02,
) -> ExperimentData:
    """CT or MRI data of the experiment (see the module docstring)."""
    if problem == "ct":
        return prepare_ct_data(n_train, image_size, n_test, n_angles, seed, photons=photons,
                               test_split=test_split)
    if problem == "mri":
        return prepare_mri_data(n_train, image_size, n_test, rate, noise, seed, test_split)
    raise ValueError(f"problem={problem!r}: expected 'ct' or 'mri'")


def data_to(data: ExperimentData, device: torch.device) -> ExperimentData:
    """A copy of ``data`` with every tensor (and the operator) on ``device``."""
    fields = {k: (v.to(device) if isinstance(v, torch.Tensor | torch.nn.Module) else v)
              for k, v in vars(data).items()}
    fields["angles"] = data.angles  # bookkeeping, stays on the CPU
    return ExperimentData(**fields)
