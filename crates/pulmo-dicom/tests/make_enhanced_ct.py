# Builds an Enhanced CT (multi-frame) object from a classic CT folder with pydicom, for
# tests/bad_input.rs: frames in reverse order, plane positions per frame, rescale shared.
import sys, glob
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

src, out = sys.argv[1], sys.argv[2]
slices = [pydicom.dcmread(f) for f in sorted(glob.glob(src + "/*.dcm"))]
slices.sort(key=lambda d: -float(d.ImagePositionPatient[2]))
first = slices[0]
ds = Dataset()
for kw in ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
           "StudyDate", "StudyTime", "FrameOfReferenceUID", "Rows", "Columns",
           "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
           "SamplesPerPixel", "PhotometricInterpretation"]:
    setattr(ds, kw, getattr(first, kw))
ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
ds.SOPInstanceUID = generate_uid()
ds.SeriesInstanceUID = generate_uid()
ds.Modality = "CT"
ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
ds.NumberOfFrames = len(slices)
shared = Dataset()
measures = Dataset(); measures.PixelSpacing = first.PixelSpacing; measures.SliceThickness = first.SliceThickness
orient = Dataset(); orient.ImageOrientationPatient = first.ImageOrientationPatient
transform = Dataset(); transform.RescaleSlope = first.RescaleSlope; transform.RescaleIntercept = first.RescaleIntercept
transform.RescaleType = "HU"
shared.PixelMeasuresSequence = Sequence([measures])
shared.PlaneOrientationSequence = Sequence([orient])
shared.PixelValueTransformationSequence = Sequence([transform])
ds.SharedFunctionalGroupsSequence = Sequence([shared])
frames = []
for s in slices:
    assert s.RescaleSlope == first.RescaleSlope and s.RescaleIntercept == first.RescaleIntercept
    pos = Dataset(); pos.ImagePositionPatient = s.ImagePositionPatient
    item = Dataset(); item.PlanePositionSequence = Sequence([pos])
    frames.append(item)
ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
ds.PixelData = np.stack([s.pixel_array for s in slices]).tobytes()
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = ds.SOPClassUID
meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.file_meta = meta
ds.save_as(out, enforce_file_format=True)
