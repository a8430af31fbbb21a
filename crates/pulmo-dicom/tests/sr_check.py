"""Independent check of a pulmo TID 1500 SR against the findings it was written from and the SEG
it references: highdicom reads the SR back (as a Comprehensive 3D SR) and finds each nodule's
volumetric and planar groups by tracking UID.

usage: sr_check.py SR SEG FINDINGS_JSON CT_DIR
The planar groups' polylines are checked against the key slice's own header (pydicom reads the
CT, highdicom maps patient to image coordinates). Prints one JSON line per nodule, then one for the exam; exits non-zero (with the reason) on any
disagreement.
"""
import glob, json, os, sys

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

sr_path, seg_path, findings_path, ct_dir = sys.argv[1:5]
findings = json.load(open(findings_path))
seg = pydicom.dcmread(seg_path, stop_before_pixels=True)
sr = hd.sr.srread(sr_path)


def fail(message):
    sys.exit(f"sr_check: {message}")


def close(found, expected, what):
    # NumericValue is a DS of at most 16 characters: 6 decimals at most, fewer for big values.
    if abs(found - expected) > max(1e-6, abs(expected) * 1e-9) + 5e-7:
        fail(f"{what}: {found} in the SR, {expected} in the findings")


ct = {}
for path in glob.glob(os.path.join(ct_dir, "**", "*"), recursive=True):
    if os.path.isfile(path):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        ct[ds.SOPInstanceUID] = ds

if not isinstance(sr, hd.sr.Comprehensive3DSR):
    fail(f"read as {type(sr).__name__}, not Comprehensive3DSR")
report = sr.content
if report[0].ContentTemplateSequence[0].TemplateIdentifier != "1500":
    fail("root template is not TID 1500")
volumetric = report.get_volumetric_roi_measurement_groups()
planar = report.get_planar_roi_measurement_groups()
nodules = findings["nodules"]
if len(volumetric) != len(nodules) or len(planar) != len(nodules):
    fail(f"{len(volumetric)} volumetric and {len(planar)} planar groups for {len(nodules)} nodules")

HU = {"mean": codes.SCT.Mean, "min": codes.SCT.Minimum, "max": codes.SCT.Maximum, "sd": codes.SCT.StandardDeviation}

for number, nodule in enumerate(nodules, start=1):
    uid = nodule["tracking_uid"]
    m = nodule["measurements"]
    [group] = report.get_volumetric_roi_measurement_groups(tracking_uid=uid)
    [plane] = report.get_planar_roi_measurement_groups(tracking_uid=uid)
    if group.tracking_identifier != f"Nodule {nodule['id']}" or plane.tracking_identifier != group.tracking_identifier:
        fail(f"nodule {number}: tracking identifiers {group.tracking_identifier!r}, {plane.tracking_identifier!r}")
    if group.finding_type != codes.SCT.Nodule:
        fail(f"nodule {number}: finding {group.finding_type}")
    segment = group.referenced_segment
    if segment.referenced_sop_instance_uid != seg.SOPInstanceUID or segment.referenced_segment_numbers != [number]:
        fail(f"nodule {number}: references segment {segment.referenced_segment_numbers} of {segment.referenced_sop_instance_uid}")
    if segment.source_series_for_segmentation.value != findings["source"]["series_uid"]:
        fail(f"nodule {number}: source series {segment.source_series_for_segmentation.value}")
    # The SEG's segment carries the same tracking UID.
    if seg.SegmentSequence[number - 1].TrackingUID != uid:
        fail(f"segment {number} of the SEG has tracking UID {seg.SegmentSequence[number - 1].TrackingUID}")

    def value(name, derivation=None):
        found = [x for x in group.get_measurements(name=name) if derivation is None or x.derivation == derivation]
        if len(found) != 1:
            fail(f"nodule {number}: {len(found)} measurements {name.meaning} {derivation}")
        return float(found[0].value), found[0]

    long_axis, item = value(codes.SCT.LongAxis)
    if item.unit.value != "mm":
        fail(f"nodule {number}: long axis in {item.unit.value}")
    close(long_axis, m["long_axis_mm"], f"nodule {number} long axis")
    close(value(codes.SCT.ShortAxis)[0], m["short_axis_mm"], f"nodule {number} short axis")
    close(value(codes.SCT.Diameter, codes.SCT.Mean)[0], m["mean_diameter_mm"], f"nodule {number} mean diameter")
    close(value(codes.SCT.Volume)[0], m["volume_mm3"], f"nodule {number} volume")
    for key, derivation in HU.items():
        close(value(codes.DCM.AttenuationCoefficient, derivation)[0], m["hu"][key], f"nodule {number} HU {key}")
    risks = {}
    for x in group.get_measurements(name=codes.DCM.ProbabilityOfCancer):
        risks[x.method.value] = {"percent": float(x.value), "model": x.method.meaning}
    for key in ("brock", "mayo"):
        if nodule[key] is not None:
            [(code, r)] = [(c, r) for c, r in risks.items() if r["model"] == nodule[key]["estimate"]["model"]]
            close(r["percent"], 100 * nodule[key]["estimate"]["probability"], f"nodule {number} {key}")
    if len(risks) != sum(nodule[k] is not None for k in ("brock", "mayo")):
        fail(f"nodule {number}: risk estimates {risks}")
    evaluations = {e.name.value: e.value for e in group.get_qualitative_evaluations()}
    if evaluations.get("LUNGRADS") is None or evaluations["LUNGRADS"].value != f"LUNGRADS-{nodule['lung_rads']['category']}":
        fail(f"nodule {number}: Lung-RADS {evaluations.get('LUNGRADS')}")

    # The planar group: the long axis on its key slice, as OHIF draws it.
    region = plane.roi
    source = region.ReferencedSOPSequence[0] if "ReferencedSOPSequence" in region else region.ContentSequence[0].ReferencedSOPSequence[0]
    slices = [s["sop_instance_uid"] for s in findings["source"]["slices"]]
    if region.graphic_type.value != "POLYLINE" or source.ReferencedSOPInstanceUID not in slices:
        fail(f"nodule {number}: planar region {region.graphic_type} on {source.ReferencedSOPInstanceUID}")
    # Its end points, mapped onto the key slice from the slice's own position and orientation,
    # are the polyline's (column, row) points, and lie in the slice's plane.
    header = ct[source.ReferencedSOPInstanceUID]
    to_image = hd.spatial.ReferenceToImageTransformer(
        image_position=header.ImagePositionPatient, image_orientation=header.ImageOrientationPatient,
        pixel_spacing=header.PixelSpacing)
    expected = to_image(np.array(m["long_axis_lps_mm"], float))
    if np.abs(expected[:, :2] - np.asarray(region.value, float)).max() > 1e-3 or np.abs(expected[:, 2]).max() > 0.5:
        fail(f"nodule {number}: polyline {region.value.tolist()} on its slice, expected {expected.tolist()}")
    [plane_long_axis] = plane.get_measurements(name=codes.SCT.LongAxis)
    close(float(plane_long_axis.value), m["long_axis_mm"], f"nodule {number} planar long axis")
    print(json.dumps({
        "nodule": nodule["id"], "segment": number, "tracking_uid": uid,
        "long_axis_mm": long_axis, "volume_mm3": value(codes.SCT.Volume)[0], "risks": risks,
        "evaluations": {k: v.meaning for k, v in evaluations.items()},
        "key_slice": slices.index(source.ReferencedSOPInstanceUID),
        "polyline": np.round(np.asarray(region.value, float), 2).tolist(),
    }))

# The exam: Lung-RADS category among the qualitative evaluations.
[exam] = [i for i in report[0].ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "C0034375"]
coded = {i.ConceptNameCodeSequence[0].CodeValue: i for i in exam.ContentSequence}
category = coded["LUNGRADS"].ConceptCodeSequence[0]
if category.CodeValue != f"LUNGRADS-{findings['exam']['lung_rads']}":
    fail(f"exam Lung-RADS {category.CodeValue}, findings say {findings['exam']['lung_rads']}")
print(json.dumps({"exam_lung_rads": category.CodeMeaning, "items": sorted(coded)}))
