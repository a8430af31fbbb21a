"""Independent check of a pulmo TID 1500 SR against the findings it was written from and the SEG
it references: highdicom reads the SR back (as a Comprehensive 3D SR) and finds each nodule's
volumetric and planar groups by tracking UID.

usage: sr_check.py SR SEG FINDINGS_JSON CT_DIR
The planar groups' polylines are checked against the key slice's own header (pydicom reads the
CT, highdicom maps patient to image coordinates). With a prior in the findings, each matched
nodule's group must carry the prior's tracking UID, its prior values and the change, each
group the time point, the exam the prior's unmatched nodules, and PertinentOtherEvidenceSequence
the prior's objects. Prints one JSON line per nodule, then one for the exam; exits non-zero
(with the reason) on any disagreement.
"""
import glob, json, os, sys

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

sr_path, seg_path, findings_path, ct_dir = sys.argv[1:5]
findings = json.load(open(findings_path))
seg = pydicom.dcmread(seg_path, stop_before_pixels=True)
sr = hd.sr.srread(sr_path)
prior = findings.get("prior")


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

def pulmo(value):
    return Code(value, "99PULMO", value)


def iso(da):
    da = (da or "").strip()
    return f"{da[:4]}-{da[4:6]}-{da[6:]}" if len(da) == 8 and da.isdigit() else da


# Every group's time point: this study's date, or "current" without one.
TIME_POINT = iso(findings["source"].get("study_date") or sr.get("StudyDate", "")) or "current"


def time_point(group):
    found = [i.TextValue for i in group[0].ContentSequence
             if i.ConceptNameCodeSequence[0].CodeValue == "C2348792" and i.RelationshipType == "HAS OBS CONTEXT"]
    if found != [TIME_POINT]:
        fail(f"{group.tracking_identifier}: time point {found}, expected {TIME_POINT!r}")
    return found[0]


def expected_change(nodule):
    """The CHANGE code the writer gives a nodule's status; None for a baseline."""
    volume = (nodule.get("change") or {}).get("volume_change") or {}
    status = nodule.get("status", "baseline")
    if status == "stable" and volume.get("kind") == "shrinking":
        return "SHRINKING"
    return None if status == "baseline" else status.upper().replace("_", "-")


def prior_values(number, nodule, group):
    """The prior's values and the change in a matched nodule's group, against the findings."""
    c = nodule["change"]
    if nodule["tracking_uid"] != c["prior"]["tracking_uid"]:
        fail(f"nodule {number}: tracking UID {nodule['tracking_uid']} is not the prior's {c['prior']['tracking_uid']}")
    volume = c.get("volume_change") or {}
    expected = {
        "PRIOR-DIAMETER": (c["prior"]["mean_diameter_mm"], "mm"),
        "PRIOR-VOLUME": (c["prior"]["volume_mm3"], "mm3"),
        "PRIOR-INTERVAL": (c.get("interval_days"), "d"),
        "DIAMETER-CHANGE": (c["mean_diameter_change_mm"], "mm"),
        "SOLID-CHANGE": (c.get("solid_core_change_mm"), "mm"),
        "VOLUME-CHANGE": (c["volume_change_percent"], "%"),
        "VDT": (volume.get("doubling_time_days") if volume.get("kind") == "growing" else None, "d"),
    }
    values = {}
    for code, (value, unit) in expected.items():
        found = group.get_measurements(name=pulmo(code))
        if value is None:
            if found:
                fail(f"nodule {number}: {code} written, the findings have none")
            continue
        if len(found) != 1 or found[0].unit.value != unit:
            fail(f"nodule {number}: {len(found)} {code} items ({[f.unit.value for f in found]}), expected one in {unit}")
        close(float(found[0].value), value, f"nodule {number} {code}")
        values[code] = float(found[0].value)
    if "VDT" in values and values["VDT"] <= 0:
        fail(f"nodule {number}: VDT {values['VDT']}")
    return values


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
    solid = group.get_measurements(name=pulmo("SOLID-DIAMETER"))
    core = m.get("solid_core")
    if len(solid) != (1 if core else 0):
        fail(f"nodule {number}: {len(solid)} solid component diameters, solid core {core}")
    if core:
        close(float(solid[0].value), core["mean_diameter_mm"], f"nodule {number} solid component")
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
    change = evaluations.get("CHANGE")
    if (change.value if change else None) != expected_change(nodule):
        fail(f"nodule {number}: change {change}, status {nodule.get('status')}")
    prior_found = prior_values(number, nodule, group) if nodule.get("change") else {}
    if not nodule.get("change") and any(group.get_measurements(name=pulmo(c)) for c in ("PRIOR-DIAMETER", "VDT")):
        fail(f"nodule {number}: prior values without a match")

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
    time_point(plane)
    print(json.dumps({
        "nodule": nodule["id"], "segment": number, "tracking_uid": uid,
        "long_axis_mm": long_axis, "volume_mm3": value(codes.SCT.Volume)[0], "risks": risks,
        "evaluations": {k: v.meaning for k, v in evaluations.items()},
        "key_slice": slices.index(source.ReferencedSOPInstanceUID),
        "polyline": np.round(np.asarray(region.value, float), 2).tolist(),
        "time_point": time_point(group), "change": change.meaning if change else None, "prior": prior_found,
    }))

# The exam: Lung-RADS category among the qualitative evaluations.
[exam] = [i for i in report[0].ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "C0034375"]
coded = {i.ConceptNameCodeSequence[0].CodeValue: i for i in exam.ContentSequence}
category = coded["LUNGRADS"].ConceptCodeSequence[0]
if category.CodeValue != f"LUNGRADS-{findings['exam']['lung_rads']}":
    fail(f"exam Lung-RADS {category.CodeValue}, findings say {findings['exam']['lung_rads']}")

# The prior: which study (a TEXT), its nodules without a match (a TEXT each), its objects as
# pertinent other evidence (study > series > instance).
named = lambda code: [i.TextValue for i in exam.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == code]
unmatched = named("PRIOR-UNMATCHED")
evidence = [(study.StudyInstanceUID, series.SeriesInstanceUID, sop.ReferencedSOPInstanceUID)
            for study in sr.get("PertinentOtherEvidenceSequence", [])
            for series in study.ReferencedSeriesSequence for sop in series.ReferencedSOPSequence]
objects = (prior or {}).get("prior_objects", [])
if sorted(evidence) != sorted((o["study_uid"], o["series_uid"], o["sop_instance_uid"]) for o in objects):
    fail(f"pertinent other evidence {evidence}, prior objects {objects}")
if prior is None:
    if named("PRIOR-STUDY") or unmatched:
        fail("prior texts without a prior")
else:
    [comparison] = named("PRIOR-STUDY")
    if prior["study_uid"] not in comparison or prior["series_uid"] not in comparison:
        fail(f"the comparison names another prior: {comparison}")
    if len(unmatched) != len(prior["unmatched_prior"]):
        fail(f"{len(unmatched)} unmatched prior texts for {len(prior['unmatched_prior'])} nodules")
    why = {"resolved": "resolved", "outside_scan": "outside this scan"}
    for text, u in zip(unmatched, prior["unmatched_prior"]):
        if u["nodule"]["tracking_uid"] not in text or why[u["disappearance"]] not in text:
            fail(f"unmatched prior text {text!r} for {u}")
print(json.dumps({"exam_lung_rads": category.CodeMeaning, "items": sorted(coded),
                  "prior_study": named("PRIOR-STUDY"), "unmatched_prior": unmatched,
                  "pertinent_other_evidence": [uid for _, _, uid in evidence]}))
