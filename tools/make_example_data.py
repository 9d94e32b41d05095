"""Write the example measurement files of the README's "reconstruct your own data" walk-through
from bundled data, so it runs on a fresh clone: ``examples/ct_slice.dcm`` (a held-out ct-head
slice as a CT DICOM image in Hounsfield units) and ``examples/brain_kspace.h5`` (a held-out
brain-t1 slice as fastMRI-style single-coil k-space, 4x Cartesian undersampling with the mask
stored as in the fastMRI challenge files) and ``examples/brain_multicoil_kspace.h5`` (the bundled
complex brain slice seen by 8 simulated birdcage coils, fastMRI multi-coil layout, 4x lines).
All are simulated from the bundled images, and say so in their metadata.
Usage: ``python tools/make_example_data.py [OUT_DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def ct_dicom(path: Path) -> None:
    import pydicom.uid
    from pydicom.dataset import Dataset, FileMetaDataset

    from spinv.data import load_dataset

    image = load_dataset("ct-head", "test")[0]  # in [0, 1]
    hu = np.round(image * 2000.0 - 1000.0)  # a display window of [-1000, 1000] HU
    ds = Dataset()
    ds.PatientName, ds.PatientID = "Example^Bundled", "SPINV-EXAMPLE"
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.FrameOfReferenceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = pydicom.uid.CTImageStorage, pydicom.uid.generate_uid()
    ds.Modality, ds.SeriesDescription = "CT", "bundled ct-head test slice 0 (example)"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, 0.0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness, ds.InstanceNumber = [0.9, 0.9], 1.0, 1
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1000
    ds.PixelData = (hu + 1000).astype(np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


def fastmri_h5(path: Path) -> None:
    import h5py

    from spinv.data import load_dataset
    from spinv.operators.sampling import make_mask

    image = load_dataset("brain-t1", "test")[0].astype(np.complex64)
    h, w = image.shape
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image), norm="ortho"))  # fastMRI
    mask = np.asarray(make_mask("lines", (h, w), 0.25, seed=0))[0].astype(np.float32)
    header = (f"<ismrmrdHeader><encoding><reconSpace><matrixSize><x>{h}</x><y>{w}</y><z>1</z>"
              "</matrixSize></reconSpace></encoding></ismrmrdHeader>").encode()
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=(kspace * mask)[None].astype(np.complex64))
        f.create_dataset("mask", data=mask)
        f.create_dataset("ismrmrd_header", data=header)
        f.attrs["acquisition"] = "simulated from the bundled brain-t1 test slice 0 (example)"
        f.attrs["acceleration"] = 4


MULTICOIL = {"coils": 8, "acceleration": 4, "centre_fraction": 0.08, "sigma": 0.01, "seed": 0}


def fastmri_multicoil_h5(path: Path) -> None:
    """Simulated fastMRI-style multi-coil k-space ``(1, 8, 216, 176)``: the bundled complex brain
    slice (ITK, cropped from 217 x 181 to even sides divisible by 8), 8 RSS-normalised birdcage
    coils (radius 1.5), 4x equispaced lines with 8 % fully sampled centre (14 lines), complex
    Gaussian noise sigma 0.01 per coil (image max 1); ``reconstruction_rss`` is the noiseless
    fully sampled RSS (= the slice's magnitude, since the maps' RSS is 1)."""
    import h5py

    from spinv.data.datasets import load_complex_sample
    from spinv.operators.coil_sensitivities import birdcage_maps
    from spinv.operators.noise import complex_gaussian_noise
    from spinv.operators.sampling import equispaced_lines

    c = MULTICOIL
    image = load_complex_sample()[:216, 2:178]
    h, w = image.shape
    maps = birdcage_maps(c["coils"], (h, w)).numpy()
    coils = image[None] * maps
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coils, axes=(-2, -1)), norm="ortho"),
                             axes=(-2, -1))  # fastMRI's fft2c, per coil
    mask = equispaced_lines((h, w), 1 / c["acceleration"], seed=c["seed"],
                            centre_fraction=c["centre_fraction"])[0].numpy()
    import torch

    sampled = torch.from_numpy((kspace * mask).astype(np.complex64))  # y_c = S(F C_c u + eta_c)
    noisy = complex_gaussian_noise(sampled, c["sigma"], mask=torch.from_numpy(mask),
                                   seed=c["seed"]).numpy()
    header = (f"<ismrmrdHeader><encoding><reconSpace><matrixSize><x>{h}</x><y>{w}</y><z>1</z>"
              "</matrixSize></reconSpace></encoding></ismrmrdHeader>").encode()
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=noisy[None].astype(np.complex64), compression="gzip",
                         compression_opts=9)
        f.create_dataset("mask", data=mask.astype(np.float32))
        f.create_dataset("reconstruction_rss", data=np.abs(image)[None].astype(np.float32),
                         compression="gzip", compression_opts=9)
        f.create_dataset("ismrmrd_header", data=header)
        f.attrs["acquisition"] = ("simulated from the bundled complex brain slice (ITK) with 8 "
                                  "birdcage coil maps (example)")
        for key, value in c.items():
            f.attrs[key] = value


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "examples")
    out.mkdir(parents=True, exist_ok=True)
    ct_dicom(out / "ct_slice.dcm")
    fastmri_h5(out / "brain_kspace.h5")
    fastmri_multicoil_h5(out / "brain_multicoil_kspace.h5")
    print(f"wrote {out / 'ct_slice.dcm'}, {out / 'brain_kspace.h5'} and "
          f"{out / 'brain_multicoil_kspace.h5'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
