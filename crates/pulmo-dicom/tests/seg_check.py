"""Independent check of a pulmo DICOM SEG against the findings it was written from and the CT
it segments: highdicom reads the SEG back, pydicom reads the CT headers.

usage: seg_check.py SEG FINDINGS_JSON CT_DIR [TRUTH_JSON]
Prints one JSON line per segment; exits non-zero (with the reason) on any disagreement.
"""
import glob, json, os, sys

import highdicom as hd
import numpy as np
import pydicom

seg_path, findings_path, ct_dir = sys.argv[1:4]
truth_path = sys.argv[4] if len(sys.argv) > 4 else None
findings = json.load(open(findings_path))
source = findings["source"]
nz, ny, nx = source["dims"]

ct = {}
for path in glob.glob(os.path.join(ct_dir, "**", "*"), recursive=True):
    if os.path.isfile(path):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        if ds.get("Modality") == "CT":
            ct[ds.SOPInstanceUID] = ds
slices = [s["sop_instance_uid"] for s in source["slices"]]
z_of = {uid: z for z, uid in enumerate(slices)}
assert all(uid in ct for uid in slices), "the findings name slices that are not in the CT folder"

seg = hd.seg.segread(seg_path)
first = ct[slices[0]]


def fail(message):
    sys.exit(f"seg_check: {message}")


if seg.SegmentationType != "BINARY":
    fail(f"SegmentationType {seg.SegmentationType}")
for attr in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID"):
    if seg.get(attr) != first.get(attr):
        fail(f"{attr} {seg.get(attr)} differs from the CT's {first.get(attr)}")
if seg.Rows != ny or seg.Columns != nx:
    fail(f"{seg.Rows}x{seg.Columns} frames on a {ny}x{nx} grid")
if len(seg.SegmentSequence) != len(findings["nodules"]):
    fail(f"{len(seg.SegmentSequence)} segments for {len(findings['nodules'])} nodules")
referenced = {i.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
if seg.ReferencedSeriesSequence[0].SeriesInstanceUID != source["series_uid"] or not referenced <= set(slices):
    fail("ReferencedSeriesSequence does not name the source series and its slices")

# Each frame lies on its source slice: same position as the CT image it derives from.
for k, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
    uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
    position = np.array(frame.PlanePositionSequence[0].ImagePositionPatient, float)
    if np.abs(position - np.array(ct[uid].ImagePositionPatient, float)).max() > 0.01:
        fail(f"frame {k + 1} at {position} is not on its source slice {uid}")

truth = json.load(open(truth_path))["nodules"] if truth_path else []
spacing = np.array(source["geometry"]["spacing"])
voxel_mm3 = float(np.prod(spacing))
origin = np.array(source["geometry"]["origin"])
direction = np.array(source["geometry"]["direction"])  # rows: unit LPS vector of index axes z, y, x


def lps(index):
    return origin + (np.asarray(index, float) * spacing) @ direction


for number, nodule in enumerate(findings["nodules"], start=1):
    description = seg.get_segment_description(number)
    if description.tracking_uid != nodule["tracking_uid"]:
        fail(f"segment {number} tracking UID {description.tracking_uid} != {nodule['tracking_uid']}")
    if description.segmented_property_type != hd.sr.CodedConcept("27925004", "SCT", "Nodule"):
        fail(f"segment {number} type {description.segmented_property_type}")
    # The segment's voxels as highdicom decodes them, per source slice.
    volume = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=slices, segment_numbers=[number], assert_missing_frames_are_empty=True
    )[..., 0]
    found = {(z, y, x) for z, y, x in zip(*np.nonzero(volume))}
    region = nodule["region"]
    (z0, y0, x0), (dz, dy, dx) = region["start"], region["dims"]
    flags = np.concatenate([np.full(r, k % 2 == 1) for k, r in enumerate(region["runs"])]).reshape(dz, dy, dx)
    expected = {(z + z0, y + y0, x + x0) for z, y, x in zip(*np.nonzero(flags))}
    if found != expected:
        fail(f"segment {number}: {len(found)} voxels decoded, {len(expected)} in the findings, {len(found ^ expected)} differ")
    centroid = lps(np.mean(sorted(found), axis=0))
    result = {"segment": number, "voxels": len(found), "volume_mm3": round(len(found) * voxel_mm3, 1),
              "findings_volume_mm3": round(nodule["measurements"]["volume_mm3"], 1)}
    if truth:
        t = min(truth, key=lambda t: np.linalg.norm(np.array(t["centre_lps_mm"]) - centroid))
        # The truth centre's voxel is in the segment, and the segment is centred on the nodule.
        centre_index = np.rint(np.linalg.solve((direction.T * spacing), np.array(t["centre_lps_mm"]) - origin)).astype(int)
        result.update(truth_id=t["id"], truth_volume_mm3=round(t["volume_mm3"], 1),
                      centroid_offset_mm=round(float(np.linalg.norm(centroid - np.array(t["centre_lps_mm"]))), 2),
                      truth_centre_inside=tuple(int(c) for c in centre_index) in found)
    print(json.dumps(result))
