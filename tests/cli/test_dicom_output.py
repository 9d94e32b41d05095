"""A reconstruction of a DICOM input is written as a derived DICOM series: patient, study and
geometry tags kept, new series and instance UIDs, the method named, pixel values preserved
(issue 13, item 4)."""

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from spinv.cli import main
from spinv.data.phantoms import shepp_logan


@pytest.fixture
def ct_series(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    image = (shepp_logan(32).numpy().reshape(32, 32) * 1000).astype(np.uint16)
    for k in range(3):
        ds = Dataset()
        ds.PatientName, ds.PatientID = "Doe^Jane", "P-042"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID, ds.Modality = frame, "CT"
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.ImagePositionPatient = [0.0, 0.0, float(k)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 1.0
        ds.InstanceNumber = k + 1
        ds.Rows = ds.Columns = 32
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1000
        ds.PixelData = image.tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"s{k}.dcm", enforce_file_format=True)
    return folder, study, series, frame


def test_derived_series_keeps_patient_and_geometry_with_new_uids(ct_series, tmp_path, capsys):
    folder, study, series, frame = ct_series
    out = tmp_path / "recon"
    assert main(["reconstruct", "--problem", "ct", "--input", str(folder), "--slice", "1",
                 "--method", "fbp", "--angles", "30", "--out", str(out)]) == 0
    (path,) = sorted(out.iterdir())
    ds = pydicom.dcmread(path)
    assert (ds.PatientID, ds.StudyInstanceUID, ds.FrameOfReferenceUID) == ("P-042", study, frame)
    assert ds.SeriesInstanceUID != series and "fbp" in ds.SeriesDescription
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert [float(v) for v in ds.ImagePositionPatient] == [0.0, 0.0, 1.0]
    assert "fbp" in ds.DerivationDescription and series in ds.DerivationDescription
    assert main(["reconstruct", "--problem", "ct", "--input", str(folder), "--slice", "1",
                 "--method", "fbp", "--angles", "30", "--out", str(tmp_path / "r.npy")]) == 0
    reference = np.load(tmp_path / "r.npy")
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    span = reference.max() - reference.min()
    assert np.abs(values - reference).max() <= span / 65535 + 1e-6


def test_a_non_empty_output_folder_is_refused(ct_series, tmp_path, capsys):
    folder = ct_series[0]
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = main(["reconstruct", "--problem", "ct", "--input", str(folder), "--method", "fbp",
                 "--angles", "30", "--out", str(out)])
    assert code == 2 and "--force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
