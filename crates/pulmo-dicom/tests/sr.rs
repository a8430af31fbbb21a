//! TID 1500 SR writer against independent validators: the report of test findings on the real
//! a0002 CT grid, with the SEG it references, checked by dciodvfy (dicom3tools), dsrdump
//! (DCMTK), PixelMed's DicomSRValidator (templates), and read back by highdicom, whose groups
//! must carry the findings' tracking UIDs, segments and values; and the same as a follow-up of
//! a prior exam, whose prior values, changes and objects must read back too.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::findings::{findings_with_balls, follow_up, found_on_prior_ct, Ball, FOLLOW_UP_DAYS, GROWTH_MM};
use common::{dciodvfy_errors, output};
use pulmo_clinical::fleischner::{self, Multiplicity, PatientRisk};
use pulmo_clinical::risk::{self, BrockInputs, MayoInputs};
use pulmo_dicom::write::sr::COMPREHENSIVE_3D_SR_STORAGE;
use pulmo_dicom::write::{Equipment, NewInstance, NoduleReport, NoduleSegmentation, SegmentationRef, StudyContext, WriteError};
use pulmo_dicom::{load_ct_path, DicomFile, InstanceHeader};
use pulmo_dicom::report::{read_prior_report, ReportError};
use pulmo_findings::{FleischnerAdvice, PriorFindings, Risk, Side, SolidCore, StudyFindings};

const SERIES: &str = "ct/lung-pet-ct-dx-a0002/b40f";

/// PixelMed warnings that are not faults of the report (docs/dicom-outputs.md, "## SR"):
/// PixelMed's TID 1411 table (2022) has no rows for a group's qualitative evaluations, CODE
/// items any concept name may head, so it flags each of them; it flags highdicom's own
/// QualitativeEvaluation in a TID 1411 group the same way.
const PIXELMED_FALSE_POSITIVES: &[&str] = &[
    r#"CONTAINER (125007,DCM,"Measurement Group")/CODE (DENSITY,99PULMO,"Nodule density class"): Content Item not in template"#,
    r#"CONTAINER (125007,DCM,"Measurement Group")/CODE (CALCIFICATION,99PULMO,"Calcification"): Content Item not in template"#,
    r#"CONTAINER (125007,DCM,"Measurement Group")/CODE (SPICULATION,99PULMO,"Spiculated margin"): Content Item not in template"#,
    r#"CONTAINER (125007,DCM,"Measurement Group")/CODE (LUNGRADS,99PULMO,"Lung-RADS v2022 category"): Content Item not in template"#,
    r#"CONTAINER (125007,DCM,"Measurement Group")/CODE (CHANGE,99PULMO,"Change since prior"): Content Item not in template"#,
];

struct Written {
    dir: tempfile::TempDir,
    sr: PathBuf,
    seg: PathBuf,
    findings_json: PathBuf,
    ct_dir: PathBuf,
    findings: StudyFindings,
    study: StudyContext,
}

fn sr_instance() -> NewInstance {
    NewInstance::derived("sr test", 9003, "20261129", "101500")
}

fn seg_instance() -> NewInstance {
    NewInstance::derived("sr test seg", 9002, "20261129", "101500")
}

fn segmentation_ref() -> SegmentationRef {
    let seg = seg_instance();
    SegmentationRef { series_uid: seg.series_uid, sop_instance_uid: seg.sop_instance_uid }
}

/// Two balls as in tests/seg.rs, with what the fixture leaves out filled in so that every part
/// of the report is written: Brock, Mayo and a solid core on nodule 1, spiculation and
/// calcification on nodule 2, Fleischner advice for the exam.
fn findings(ct: &pulmo_dicom::CtSeries) -> StudyFindings {
    let [nz, ny, nx] = ct.volume.dims();
    let balls = [
        Ball { centre: [nz / 2, ny / 2, nx / 3], radius_mm: 12.0, side: Side::Right },
        Ball { centre: [nz / 2 + 3, ny / 3, 2 * nx / 3], radius_mm: 4.0, side: Side::Left },
    ];
    let mut f = findings_with_balls(ct, &balls);
    let first = f.nodules[0].measurements.clone();
    let brock = BrockInputs {
        age_years: 64.0,
        female: true,
        family_history: None,
        emphysema: false,
        size_mm: first.long_axis_mm,
        density: first.density,
        upper_lobe: true,
        nodule_count: 2,
        spiculation: None,
    };
    let mayo = MayoInputs {
        age_years: 64.0,
        smoker: Some(true),
        prior_extrathoracic_cancer: None,
        diameter_mm: first.long_axis_mm,
        upper_lobe: true,
        spiculation: None,
    };
    f.nodules[0].brock = Some(Risk { inputs: brock, estimate: risk::brock(&brock) });
    f.nodules[0].mayo = Some(Risk { inputs: mayo, estimate: risk::mayo(&mayo) });
    f.nodules[0].measurements.solid_core = Some(SolidCore { long_axis_mm: 9.0, short_axis_mm: 8.0, mean_diameter_mm: 8.5, volume_mm3: 320.0 });
    f.nodules[1].measurements.spiculated = Some(true);
    f.nodules[1].measurements.calcified = true;
    let advice = |risk| fleischner::recommend(first.density, first.mean_diameter_mm, Multiplicity::Multiple, risk);
    f.exam.fleischner = Some(FleischnerAdvice {
        nodule_id: 1,
        size_band: advice(PatientRisk::Low).size_band,
        low_risk: advice(PatientRisk::Low).text.into(),
        high_risk: advice(PatientRisk::High).text.into(),
        applies_to: fleischner::APPLIES_TO.into(),
    });
    f
}

fn report<'a>(
    f: &'a StudyFindings,
    study: &'a StudyContext,
    instance: &'a NewInstance,
    equipment: &'a Equipment,
    seg: Option<&'a SegmentationRef>,
) -> NoduleReport<'a> {
    NoduleReport { findings: f, study, instance, equipment, segmentation: seg }
}

fn write() -> Option<Written> {
    write_with(|f| f)
}

/// The report (and its SEG) of the test findings as `make` turns them.
fn write_with(make: fn(StudyFindings) -> StudyFindings) -> Option<Written> {
    let ct_dir = common::shared_data(SERIES)?;
    let ct = load_ct_path(&ct_dir).unwrap();
    let findings = make(findings(&ct));
    let study = StudyContext::from(&ct.patient_study);
    let equipment = Equipment::pulmo("test");
    let dir = tempfile::tempdir().unwrap();
    let seg = NoduleSegmentation { findings: &findings, study: &study, instance: &seg_instance(), equipment: &equipment };
    let seg_path = dir.path().join("seg.dcm");
    std::fs::write(&seg_path, seg.to_part10().unwrap()).unwrap();
    let (instance, segmentation) = (sr_instance(), segmentation_ref());
    let sr = report(&findings, &study, &instance, &equipment, Some(&segmentation));
    let sr_path = dir.path().join("sr.dcm");
    std::fs::write(&sr_path, sr.to_part10().unwrap()).unwrap();
    let findings_json = dir.path().join("findings.json");
    std::fs::write(&findings_json, serde_json::to_vec(&findings).unwrap()).unwrap();
    if let Some(keep) = std::env::var_os("PULMO_SR_KEEP") {
        // For a look in a viewer: the SR and its SEG side by side.
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&sr_path, keep.join("sr.dcm")).unwrap();
        std::fs::copy(&seg_path, keep.join("seg.dcm")).unwrap();
    }
    Some(Written { dir, sr: sr_path, seg: seg_path, findings_json, ct_dir, findings, study })
}

fn dsrdump(path: &Path) -> (bool, String) {
    let (ok, report) = output(Command::new("dsrdump").arg(path), "dsrdump (DCMTK)");
    println!("dsrdump:\n{report}");
    (ok, report)
}

/// PixelMed's template validation: its messages that are errors or warnings, one per line.
fn pixelmed(path: &Path) -> Vec<String> {
    let mut java = Command::new("java");
    java.args(["-Djdk.xml.xpathExprOpLimit=0", "-Djdk.xml.xpathExprGrpLimit=0", "-Djdk.xml.xpathTotalOpLimit=0"])
        .args(["-cp", "/usr/share/java/pixelmed.jar", "com.pixelmed.validate.DicomSRValidator"])
        .arg(path);
    let (ok, report) = output(&mut java, "java with libpixelmed-java");
    println!("PixelMed DicomSRValidator:\n{report}");
    assert!(ok, "DicomSRValidator failed to run");
    report.lines().filter(|l| l.starts_with("Error") || l.starts_with("Warning")).map(String::from).collect()
}

#[test]
fn dciodvfy_reports_no_errors() {
    let Some(w) = write() else { return };
    let errors = dciodvfy_errors(&w.sr);
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
}

#[test]
fn dsrdump_reads_it_without_errors() {
    let Some(w) = write() else { return };
    let (ok, report) = dsrdump(&w.sr);
    assert!(ok, "dsrdump failed");
    assert!(!report.to_lowercase().contains("error"), "dsrdump reports an error");
    assert!(report.contains("Imaging Measurement Report") && report.contains("Nodule 2"), "the content tree is dumped");
}

#[test]
fn pixelmed_finds_no_template_errors() {
    let Some(w) = write() else { return };
    let unexpected: Vec<String> =
        pixelmed(&w.sr).into_iter().filter(|m| !PIXELMED_FALSE_POSITIVES.iter().any(|known| m.contains(known))).collect();
    assert!(unexpected.is_empty(), "PixelMed messages not known to be false positives:\n{}", unexpected.join("\n"));
}

#[test]
fn highdicom_finds_each_nodules_groups_with_the_findings_values() {
    let Some(w) = write() else { return };
    let out = common::run_python(
        include_str!("sr_check.py"),
        &[w.sr.to_str().unwrap(), w.seg.to_str().unwrap(), w.findings_json.to_str().unwrap(), w.ct_dir.to_str().unwrap()],
    );
    println!("{out}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), w.findings.nodules.len() + 1);
    assert_eq!(lines[0]["risks"].as_object().map(|r| r.len()), Some(2), "Brock and Mayo on nodule 1");
    assert_eq!(lines[2]["exam_lung_rads"], "Lung-RADS 4A");
}

#[test]
fn our_reader_reads_it_as_sr() {
    let Some(w) = write() else { return };
    let file = DicomFile::open(&w.sr).unwrap();
    let header = InstanceHeader::read(&file).unwrap();
    assert_eq!(header.sop_class_uid, COMPREHENSIVE_3D_SR_STORAGE);
    assert_eq!(header.modality, "SR");
    assert_eq!(header.patient_study.study_uid, w.findings.source.study_uid);
    assert_eq!(header.sop_instance_uid, sr_instance().sop_instance_uid, "UIDs follow from the seed");
}

#[test]
fn texts_beyond_ascii_are_declared_utf8() {
    let Some(w) = write() else { return };
    let mut f = w.findings.clone();
    f.exam.management = "Kontrolle in 3 Monaten (Lungenrundherd \u{2265} 8 mm)".into();
    let equipment = Equipment::pulmo("test");
    let (instance, seg) = (sr_instance(), segmentation_ref());
    let bytes = report(&f, &w.study, &instance, &equipment, Some(&seg)).to_part10().unwrap();
    let back = DicomFile::from_bytes(Path::new("sr.dcm"), &bytes).unwrap();
    let charset = back.object.element(dicom_dictionary_std::tags::SPECIFIC_CHARACTER_SET).unwrap().to_str().unwrap();
    assert_eq!(charset.trim(), "ISO_IR 192");
    let path = w.dir.path().join("utf8-sr.dcm");
    std::fs::write(&path, bytes).unwrap();
    let (ok, dump) = dsrdump(&path);
    assert!(ok && !dump.to_lowercase().contains("error"), "dsrdump reports an error");
}

#[test]
fn a_report_without_nodules_has_no_groups_and_passes_the_validators() {
    let Some(w) = write() else { return };
    let mut none = w.findings.clone();
    none.nodules.clear();
    none.exam.lung_rads = pulmo_clinical::lung_rads::Category::One;
    none.exam.management = pulmo_clinical::lung_rads::Category::One.management().into();
    none.exam.fleischner = None;
    let equipment = Equipment::pulmo("test");
    let bytes = report(&none, &w.study, &sr_instance(), &equipment, None).to_part10().unwrap();
    let path = w.dir.path().join("empty-sr.dcm");
    std::fs::write(&path, bytes).unwrap();
    let errors = dciodvfy_errors(&path);
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
    let (ok, dump) = dsrdump(&path);
    assert!(ok && !dump.to_lowercase().contains("error"), "dsrdump reports an error");
    assert!(!dump.contains("Measurement Group") && dump.contains("LUNGRADS-1"), "no groups, exam Lung-RADS 1");
    let unexpected: Vec<String> =
        pixelmed(&path).into_iter().filter(|m| !PIXELMED_FALSE_POSITIVES.iter().any(|known| m.contains(known))).collect();
    assert!(unexpected.is_empty(), "PixelMed messages not known to be false positives:\n{}", unexpected.join("\n"));
}

#[test]
fn unwritable_findings_are_named() {
    let Some(w) = write() else { return };
    let equipment = Equipment::pulmo("test");
    let instance = sr_instance();
    let seg = segmentation_ref();
    let attempt = |f: &StudyFindings, seg: Option<&SegmentationRef>| report(f, &w.study, &instance, &equipment, seg).to_part10();

    let err = attempt(&w.findings, None).unwrap_err();
    assert!(matches!(&err, WriteError::Empty { field } if field.starts_with("segmentation")), "{err}");

    let mut resampled = w.findings.clone();
    resampled.source.slices.clear();
    let err = attempt(&resampled, Some(&seg)).unwrap_err().to_string();
    assert!(err.contains("findings.source.slices") && err.contains("resampled"), "{err}");

    let mut bad_tracking = w.findings.clone();
    bad_tracking.nodules[1].tracking_uid = "1.2.03".into();
    let err = attempt(&bad_tracking, Some(&seg)).unwrap_err().to_string();
    assert!(err.contains("findings.nodules[1].tracking_uid"), "{err}");

    let mut not_a_number = w.findings.clone();
    not_a_number.nodules[0].measurements.hu.sd = f64::NAN;
    let err = attempt(&not_a_number, Some(&seg)).unwrap_err().to_string();
    assert!(err.contains("findings.nodules[0].measurements.hu.sd"), "{err}");

    let mut other_study = w.findings.clone();
    other_study.source.study_uid = "1.2.3".into();
    assert!(attempt(&other_study, Some(&seg)).unwrap_err().to_string().contains("study.study_uid"));

    let bad_seg = SegmentationRef { series_uid: seg.series_uid.clone(), sop_instance_uid: "1..2".into() };
    assert!(attempt(&w.findings, Some(&bad_seg)).unwrap_err().to_string().contains("segmentation.sop_instance_uid"));
}

#[test]
fn a_follow_up_report_passes_the_validators_and_carries_the_change() {
    let Some(w) = write_with(follow_up) else { return };
    let errors = dciodvfy_errors(&w.sr);
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
    let (ok, dump) = dsrdump(&w.sr);
    assert!(ok && !dump.to_lowercase().contains("error"), "dsrdump reports an error");
    assert!(dump.contains("Change since prior") && dump.contains("Prior nodule without a match"), "the follow-up items are dumped");
    let unexpected: Vec<String> =
        pixelmed(&w.sr).into_iter().filter(|m| !PIXELMED_FALSE_POSITIVES.iter().any(|known| m.contains(known))).collect();
    assert!(unexpected.is_empty(), "PixelMed messages not known to be false positives:\n{}", unexpected.join("\n"));

    let out = common::run_python(
        include_str!("sr_check.py"),
        &[w.sr.to_str().unwrap(), w.seg.to_str().unwrap(), w.findings_json.to_str().unwrap(), w.ct_dir.to_str().unwrap()],
    );
    println!("{out}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (grown, new, exam) = (&lines[0], &lines[1], &lines[2]);
    let prior = w.findings.prior.as_ref().unwrap();
    // The growing nodule keeps the prior's tracking UID and carries its prior values.
    let change = w.findings.nodules[0].change.as_ref().unwrap();
    assert_eq!(grown["tracking_uid"], change.prior.tracking_uid.as_str());
    assert_eq!(grown["change"], "Growing");
    let dated = w.findings.source.study_date.is_some();
    let expected_items = if dated { 6 } else { 4 }; // no interval, no doubling time without dates
    assert_eq!(grown["prior"].as_object().unwrap().len(), expected_items, "{grown}");
    assert!((grown["prior"]["DIAMETER-CHANGE"].as_f64().unwrap() - GROWTH_MM).abs() < 1e-6, "{grown}");
    if dated {
        assert_eq!(grown["prior"]["PRIOR-INTERVAL"].as_f64(), Some(FOLLOW_UP_DAYS as f64));
        let vdt = grown["prior"]["VDT"].as_f64().unwrap();
        assert!(vdt > 0.0 && vdt < FOLLOW_UP_DAYS as f64 * 2.0, "{grown}");
        let date = w.findings.source.study_date.as_deref().unwrap();
        assert_eq!(grown["time_point"], format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]));
    } else {
        assert_eq!(grown["time_point"], "current");
    }
    assert_eq!(new["change"], "New");
    assert_eq!(new["prior"], serde_json::json!({}), "a new nodule has no prior values");
    // The exam: which prior, its resolved nodule, its SR and SEG as pertinent other evidence.
    assert!(exam["prior_study"][0].as_str().unwrap().contains(&prior.study_uid), "{exam}");
    let unmatched = exam["unmatched_prior"].as_array().unwrap();
    assert_eq!(unmatched.len(), 1);
    assert!(unmatched[0].as_str().unwrap().ends_with(": resolved"), "{exam}");
    let evidence: Vec<&str> = exam["pertinent_other_evidence"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let objects: Vec<&str> = prior.prior_objects.iter().map(|o| o.sop_instance_uid.as_str()).collect();
    assert_eq!(evidence, objects);
}

#[test]
fn baseline_groups_carry_their_time_point_and_no_prior_items() {
    let Some(w) = write() else { return };
    let (_, dump) = dsrdump(&w.sr);
    assert_eq!(dump.matches("Time Point").count(), 2 * w.findings.nodules.len(), "every group has a time point");
    for absent in ["Change since prior", "prior"] {
        assert!(!dump.contains(absent), "{absent} in a baseline report");
    }
    let file = DicomFile::open(&w.sr).unwrap();
    assert!(file.object.element(dicom_dictionary_std::tags::PERTINENT_OTHER_EVIDENCE_SEQUENCE).is_err());
}

#[test]
fn unwritable_follow_ups_are_named() {
    let Some(w) = write_with(follow_up) else { return };
    let equipment = Equipment::pulmo("test");
    let (instance, seg) = (sr_instance(), segmentation_ref());
    let attempt = |f: &StudyFindings| report(f, &w.study, &instance, &equipment, Some(&seg)).to_part10().unwrap_err().to_string();

    let mut renamed = w.findings.clone();
    renamed.nodules[0].tracking_uid = pulmo_dicom::derived_uid("another nodule");
    let err = attempt(&renamed);
    assert!(err.contains("findings.nodules[0].tracking_uid") && err.contains("prior's tracking UID"), "{err}");

    let mut infinite = w.findings.clone();
    infinite.nodules[0].change.as_mut().unwrap().volume_change_percent = f64::INFINITY;
    assert!(attempt(&infinite).contains("findings.nodules[0].change.volume_change_percent"));

    let mut twice = w.findings.clone();
    let objects = &mut twice.prior.as_mut().unwrap().prior_objects;
    objects.push(objects[0].clone());
    assert!(attempt(&twice).contains("findings.prior.prior_objects"));

    let mut bad_uid = w.findings.clone();
    bad_uid.prior.as_mut().unwrap().prior_objects[1].series_uid = "1.02".into();
    assert!(attempt(&bad_uid).contains("findings.prior.prior_objects[1].series_uid"));
}

/// pulmo reads its own follow-up report back as the prior findings of the next exam: the
/// values the findings hold (to the report's 16-character decimals), each nodule's position
/// from its long axis on the key slice, the exam before as the track's earlier point, and the
/// report and its SEG as the objects to cite.
#[test]
fn the_report_reads_back_as_the_prior_findings() {
    let Some(w) = write_with(follow_up) else { return };
    let ct = load_ct_path(&w.ct_dir).unwrap();
    let read = read_prior_report(&DicomFile::open(&w.sr).unwrap(), &ct.source_series()).unwrap();
    let want = PriorFindings::from(&w.findings);
    assert_eq!((&read.findings.study_uid, &read.findings.series_uid), (&want.study_uid, &want.series_uid));
    assert_eq!(read.findings.study_date, want.study_date);
    assert_eq!(read.findings.nodules.len(), want.nodules.len());
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{what}: read {a}, wrote {b}");
    for (got, want) in read.findings.nodules.iter().zip(&want.nodules) {
        let (g, n) = (&got.nodule, &want.nodule);
        assert_eq!((g.id, &g.tracking_uid, g.density, g.lung_rads), (n.id, &n.tracking_uid, n.density, n.lung_rads));
        close(g.long_axis_mm, n.long_axis_mm, "long axis");
        close(g.short_axis_mm, n.short_axis_mm, "short axis");
        close(g.mean_diameter_mm, n.mean_diameter_mm, "mean diameter");
        close(g.volume_mm3, n.volume_mm3, "volume");
        assert_eq!(g.solid_core_mean_diameter_mm.is_some(), n.solid_core_mean_diameter_mm.is_some());
        let off = pulmo_volume::vec3::dist(g.centre_lps_mm, n.centre_lps_mm);
        assert!(off < 1.5, "nodule {}: centre {:?} is {off:.2} mm from {:?}", n.id, g.centre_lps_mm, n.centre_lps_mm);
    }
    assert_eq!(read.findings.nodules[0].nodule.solid_core_mean_diameter_mm, Some(8.5));
    // The grown nodule's exam before: the prior's values and date, and the prior's study.
    let prior = w.findings.prior.as_ref().unwrap();
    let change = w.findings.nodules[0].change.as_ref().unwrap();
    let [earlier] = &read.findings.nodules[0].history[..] else { panic!("one earlier point: {:?}", read.findings.nodules[0].history) };
    close(earlier.mean_diameter_mm, change.prior.mean_diameter_mm, "earlier diameter");
    close(earlier.volume_mm3, change.prior.volume_mm3, "earlier volume");
    assert_eq!((&earlier.study_uid, &earlier.study_date), (&prior.study_uid, &prior.study_date));
    assert!(read.findings.nodules[1].history.is_empty(), "the new nodule has no earlier point");
    let objects: Vec<(&str, &str)> = read.objects.iter().map(|o| (o.series_uid.as_str(), o.sop_instance_uid.as_str())).collect();
    let (sr, seg) = (sr_instance(), seg_instance());
    assert_eq!(objects, [(sr.series_uid.as_str(), sr.sop_instance_uid.as_str()), (seg.series_uid.as_str(), seg.sop_instance_uid.as_str())]);
    assert_eq!(read.written, "20261129101500");
}

/// A report read against another series, and a file that is no pulmo report, are refused
/// with the file and the reason.
#[test]
fn a_report_of_another_series_or_no_report_is_refused() {
    let Some(w) = write() else { return };
    let ct = load_ct_path(&w.ct_dir).unwrap();
    let mut other = ct.source_series();
    other.series_uid = pulmo_dicom::derived_uid("another series");
    let err = read_prior_report(&DicomFile::open(&w.sr).unwrap(), &other).unwrap_err();
    assert!(matches!(err, ReportError::Content { .. }) && err.to_string().contains("not the prior CT series"), "{err}");
    let err = read_prior_report(&DicomFile::open(&w.seg).unwrap(), &ct.source_series()).unwrap_err();
    assert!(matches!(err, ReportError::NotPulmoReport { .. }) && err.to_string().contains("seg.dcm"), "{err}");
    let mut elsewhere = ct.source_series();
    elsewhere.study_uid = pulmo_dicom::derived_uid("another study");
    let err = read_prior_report(&DicomFile::open(&w.sr).unwrap(), &elsewhere).unwrap_err();
    assert!(err.to_string().contains("StudyInstanceUID"), "{err}");
}

/// A nodule the prior's findings missed but its CT shows: its group carries the values
/// measured there (no prior tracking UID to keep), the exam says so, the validators pass, and
/// the report reads back with that earlier point.
#[test]
fn a_nodule_found_on_the_prior_ct_is_said_so() {
    let Some(w) = write_with(found_on_prior_ct) else { return };
    let errors = dciodvfy_errors(&w.sr);
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
    let (ok, dump) = dsrdump(&w.sr);
    assert!(ok && !dump.to_lowercase().contains("error"), "dsrdump reports an error");
    // (dsrdump shortens long texts.)
    assert!(dump.contains(r#"Nodule found on the prior CT only now")="Nodule 2 is not in the prio"#), "the exam says it");
    let unexpected: Vec<String> =
        pixelmed(&w.sr).into_iter().filter(|m| !PIXELMED_FALSE_POSITIVES.iter().any(|known| m.contains(known))).collect();
    assert!(unexpected.is_empty(), "PixelMed messages not known to be false positives:\n{}", unexpected.join("\n"));
    let ct = load_ct_path(&w.ct_dir).unwrap();
    let read = read_prior_report(&DicomFile::open(&w.sr).unwrap(), &ct.source_series()).unwrap();
    let seen = &read.findings.nodules[1];
    assert_eq!(seen.nodule.tracking_uid, w.findings.nodules[1].tracking_uid);
    assert_eq!(seen.history.len(), 1, "{seen:?}");
}
