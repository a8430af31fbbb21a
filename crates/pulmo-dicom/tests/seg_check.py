"""Independent check of a pulmo DICOM SEG against the CT it segments (geometry from the CT's
own headers, read by pydicom), and optionally against the findings it was written from and the
phantom truth: highdicom reads the SEG back.

usage: seg_check.py SEG CT_DIR [--findings FINDINGS_JSON] [--truth TRUTH_JSON]
Prints one JSON line per segment; exits non-zero (with the reason) on any disagreement.
"""
import argparse, glob, json, os, sys

import highdicom as hd
import numpy as np
import pydicom

parser = argparse.ArgumentParser()
parser.add_argument("seg")
parser.add_argument("ct_dir")
parser.add_argument("--findings")
parser.add_argument("--truth")
args = parser.parse_args()


def fail(message):
    sys.exit(f"seg_check: {message}")


ct = {}
for path in glob.glob(os.path.join(args.ct_dir, "**", "*"), recursive=True):
    if os.path.isfile(path):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        if ds.get("Modality") == "CT":
            ct[ds.SOPInstanceUID] = ds
first = next(iter(ct.values()))
row_dir, col_dir = np.array(first.ImageOrientationPatient[:3], float), np.array(first.ImageOrientationPatient[3:], float)
normal = np.cross(row_dir, col_dir)
slices = sorted(ct, key=lambda uid: float(np.dot(np.array(ct[uid].ImagePositionPatient, float), normal)))
row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)


def lps(uid, row, column):
    """Patient position of a pixel centre of a CT slice, from that slice's own header."""
    return np.array(ct[uid].ImagePositionPatient, float) + column * col_spacing * row_dir + row * row_spacing * col_dir


def pixel_at(point):
    """The CT pixel (slice, row, column) whose centre is nearest a patient position."""
    uid = min(slices, key=lambda u: abs(np.dot(point - np.array(ct[u].ImagePositionPatient, float), normal)))
    d = point - np.array(ct[uid].ImagePositionPatient, float)
    return uid, int(round(np.dot(d, col_dir) / row_spacing)), int(round(np.dot(d, row_dir) / col_spacing))


seg = hd.seg.segread(args.seg)
if seg.SegmentationType != "BINARY":
    fail(f"SegmentationType {seg.SegmentationType}")
for attr in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID"):
    if seg.get(attr) != first.get(attr):
        fail(f"{attr} {seg.get(attr)} differs from the CT's {first.get(attr)}")
if (seg.Rows, seg.Columns) != (first.Rows, first.Columns):
    fail(f"{seg.Rows}x{seg.Columns} frames on {first.Rows}x{first.Columns} images")
referenced = {i.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
if seg.ReferencedSeriesSequence[0].SeriesInstanceUID != first.SeriesInstanceUID or not referenced <= set(slices):
    fail("ReferencedSeriesSequence does not name the CT series and its slices")

# Each frame lies on its source slice: same position as the CT image it derives from.
for k, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
    uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
    position = np.array(frame.PlanePositionSequence[0].ImagePositionPatient, float)
    if np.abs(position - np.array(ct[uid].ImagePositionPatient, float)).max() > 0.01:
        fail(f"frame {k + 1} at {position} is not on its source slice {uid}")

nodules = json.load(open(args.findings))["nodules"] if args.findings else None
source_slices = [s["sop_instance_uid"] for s in json.load(open(args.findings))["source"]["slices"]] if args.findings else None
truth = json.load(open(args.truth))["nodules"] if args.truth else []
if nodules is not None and len(seg.SegmentSequence) != len(nodules):
    fail(f"{len(seg.SegmentSequence)} segments for {len(nodules)} nodules")
voxel_mm3 = row_spacing * col_spacing * float(np.linalg.norm(
    np.array(ct[slices[1]].ImagePositionPatient, float) - np.array(ct[slices[0]].ImagePositionPatient, float)))

for number in range(1, len(seg.SegmentSequence) + 1):
    description = seg.get_segment_description(number)
    if description.segmented_property_type != hd.sr.CodedConcept("27925004", "SCT", "Nodule"):
        fail(f"segment {number} type {description.segmented_property_type}")
    # The segment's pixels as highdicom decodes them, per CT slice.
    volume = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=slices, segment_numbers=[number], assert_missing_frames_are_empty=True
    )[..., 0]
    found = {(slices[z], int(y), int(x)) for z, y, x in zip(*np.nonzero(volume))}
    result = {"segment": number, "label": description.SegmentLabel, "voxels": len(found),
              "volume_mm3": round(len(found) * voxel_mm3, 1)}
    if nodules is not None:
        nodule = nodules[number - 1]
        if description.tracking_uid != nodule["tracking_uid"]:
            fail(f"segment {number} tracking UID {description.tracking_uid} != {nodule['tracking_uid']}")
        region = nodule["region"]
        (z0, y0, x0), (dz, dy, dx) = region["start"], region["dims"]
        flags = np.concatenate([np.full(r, k % 2 == 1) for k, r in enumerate(region["runs"])]).reshape(dz, dy, dx)
        expected = {(source_slices[z + z0], int(y + y0), int(x + x0)) for z, y, x in zip(*np.nonzero(flags))}
        if found != expected:
            fail(f"segment {number}: {len(found)} pixels decoded, {len(expected)} in the findings, {len(found ^ expected)} differ")
        result["findings_volume_mm3"] = round(nodule["measurements"]["volume_mm3"], 1)
    if truth:
        points = np.array([lps(*p) for p in found])
        centroid = points.mean(axis=0)
        t = min(truth, key=lambda t: np.linalg.norm(np.array(t["centre_lps_mm"]) - centroid))
        centre = np.array(t["centre_lps_mm"])
        # The segment holds the CT pixel the truth centre falls in, and is centred on the nodule.
        result.update(truth_id=t["id"], truth_volume_mm3=round(t["volume_mm3"], 1),
                      centroid_offset_mm=round(float(np.linalg.norm(centroid - centre)), 2),
                      truth_centre_inside=pixel_at(centre) in found)
    print(json.dumps(result))
