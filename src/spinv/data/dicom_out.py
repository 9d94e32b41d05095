"""Reconstructions as a derived DICOM series that a PACS or viewer opens next to the original.

With a template (the dataset of the input slice), the derived image keeps the patient, study
and frame-of-reference tags and the slice geometry (position, orientation; the pixel spacing is
scaled when the reconstruction grid differs from the input grid), gets a new series and new
instance UIDs, ``ImageType`` ``DERIVED\\SECONDARY``, and says which method made it
(``SeriesDescription``, ``DerivationDescription``). Without a template (raw sinograms, k-space)
a minimal secondary-capture image with new patient-free UIDs is written.

Pixels are stored as unsigned 16-bit integers with ``RescaleSlope``/``RescaleIntercept`` chosen so
that the stored range covers the reconstruction's range (magnitudes for complex images): the
values read back with the rescale applied equal the reconstruction to within one part in
65535 of its range.

Files go to a temporary name and are renamed (:mod:`spinv.atomic`), honouring the umask.
"""

from __future__ import annotations

import datetime
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from spinv.atomic import atomic_write_bytes

__all__ = ["write_dicom_series"]

#: tags copied from the template: who, which study, where in space
KEPT_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime", "StudyDescription",
    "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID",
    "PositionReferenceIndicator", "Modality", "BodyPartExamined", "PatientPosition",
    "ImagePositionPatient", "ImageOrientationPatient", "SliceThickness", "SliceLocation",
)
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def _quantise(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    lo, hi = float(image.min()), float(image.max())
    slope = (hi - lo) / 65535.0 if hi > lo else 1.0
    stored = np.round((image - lo) / slope).clip(0, 65535).astype(np.uint16)
    return stored, slope, lo


def _dataset(image: np.ndarray, template: Any | None, series_uid: str, index: int,
             method: str) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    if template is not None:
        for tag in KEPT_TAGS:
            if tag in template:
                setattr(ds, tag, getattr(template, tag))
        spacing = getattr(template, "PixelSpacing", None)
        rows, cols = int(getattr(template, "Rows", image.shape[0])), \
            int(getattr(template, "Columns", image.shape[1]))
        if spacing is not None:
            ds.PixelSpacing = [float(spacing[0]) * rows / image.shape[0],
                               float(spacing[1]) * cols / image.shape[1]]
        ds.SOPClassUID = getattr(template, "SOPClassUID", SECONDARY_CAPTURE)
        ds.DerivationDescription = (f"spinv reconstruction ({method}) of series "
                                    f"{getattr(template, 'SeriesInstanceUID', 'unknown')}")
    else:
        ds.SOPClassUID = SECONDARY_CAPTURE
        ds.Modality = "OT"
        ds.StudyInstanceUID = generate_uid()
        ds.DerivationDescription = f"spinv reconstruction ({method}) of measured data"
    stored, slope, intercept = _quantise(image)
    now = datetime.datetime.now(datetime.timezone.utc)
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = f"spinv {method}"[:64]
    ds.SeriesNumber = 9000 + (int(getattr(template, "SeriesNumber", 0) or 0) % 1000)
    ds.InstanceNumber = index + 1
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.Manufacturer = "spinv"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", f"{intercept:.10g}"
    ds.PixelData = stored.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def write_dicom_series(folder: str | os.PathLike, images: np.ndarray,
                       templates: list[Any] | None, method: str,
                       force: bool = False) -> list[Path]:
    """Write ``images`` ``(B, H, W)`` (magnitudes of complex images) as one derived series
    ``folder/IM000001.dcm``, ...; ``templates`` (one dataset per slice, or ``None``) give the
    kept tags (module docstring). An existing non-empty ``folder`` is refused unless ``force``."""
    from pydicom.uid import generate_uid

    out = Path(folder)
    if out.exists() and any(out.iterdir()) and not force:
        raise ValueError(f"--out {str(out)!r} is a non-empty folder; pass --force to write the "
                         "DICOM series into it or choose another folder")
    a = np.abs(np.asarray(images)) if np.iscomplexobj(images) else np.asarray(images, float)
    if a.ndim != 3:
        raise ValueError(f"expected images (B, H, W), got shape {a.shape}")
    if templates is not None and len(templates) != len(a):
        raise ValueError(f"{len(templates)} DICOM templates for {len(a)} reconstructed slices")
    series_uid = generate_uid()
    paths = []
    for i, image in enumerate(a):
        ds = _dataset(image, None if templates is None else templates[i], series_uid, i, method)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        path = out / f"IM{i + 1:06d}.dcm"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths
