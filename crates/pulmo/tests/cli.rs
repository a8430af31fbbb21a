//! The pulmo binary as a user runs it: every subcommand has --help, the binary finds libtorch
//! without LD_LIBRARY_PATH, and `inspect` describes real series.

mod common;

use std::process::Command;

// common::pulmo runs the binary without LD_LIBRARY_PATH (cargo test sets one): the rpath
// alone must find libtorch.
use common::{assert_dciodvfy_clean, pulmo, python, seg_check};

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "pulmo failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_subcommand_has_help() {
    let top = stdout(&pulmo(&["--help"]));
    let subcommands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(subcommands.len() >= 2, "{top}");
    for sub in subcommands {
        let help = stdout(&pulmo(&[sub, "--help"]));
        assert!(help.contains("Usage: pulmo"), "{sub}: {help}");
    }
}

#[test]
fn devices_runs_without_ld_library_path() {
    let text = stdout(&pulmo(&["devices"]));
    println!("{text}");
    assert!(text.starts_with("libtorch 2.13"), "{text}");
}

#[test]
fn inspect_lists_real_series_with_geometry() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ct");
    if !data.exists() {
        eprintln!("SKIPPED: {} is absent (real data lives in ../shared/data)", data.display());
        return;
    }
    let table = stdout(&pulmo(&["inspect", data.to_str().unwrap()]));
    println!("{table}");
    assert!(table.lines().any(|l| l.contains(" CT ") && l.contains("   269 ") && l.contains("2.500,0.977,0.977")));
    assert_eq!(table.lines().filter(|l| l.contains("   30 ") && l.contains("8.000,0.646,0.646")).count(), 2);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&pulmo(&["inspect", "--json", data.to_str().unwrap()]))).unwrap();
    assert_eq!(json["series"].as_array().unwrap().len(), 3);
    // The annotation XML files are not DICOM: listed as skipped, with the reason.
    assert!(json["skipped"].as_array().unwrap().iter().all(|s| s["reason"].as_str().unwrap().contains("not a DICOM")));
}

#[test]
fn a_bad_path_is_a_clear_error_and_a_failing_exit_code() {
    let out = pulmo(&["inspect", "/nonexistent/folder"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/folder") && err.contains("cannot read"), "{err}");
}

#[test]
fn phantom_writes_a_series_that_pulmo_and_dciodvfy_accept() {
    let dir = tempfile::TempDir::new().unwrap();
    let base = dir.path().join("base");
    let args = ["phantom", "--seed", "7", "--rows", "200", "--pixel-spacing", "1.3", "--slice-spacing", "5", "--nodules", "3"];
    let text = stdout(&pulmo(&[&args[..], &["--out", base.to_str().unwrap()]].concat()));
    assert!(text.contains("3 nodule(s)"), "{text}");
    let ct = pulmo_dicom::load_ct_path(&base).unwrap();
    assert_eq!(ct.volume.dims()[1..], [200, 200]);
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(base.join("truth.json")).unwrap()).unwrap();
    assert_eq!(truth["nodules"].as_array().unwrap().len(), 3);
    // An independent validator: no errors (warnings, e.g. about newer attributes, are listed).
    let first = std::fs::read_dir(&base).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "dcm")).unwrap();
    assert_dciodvfy_clean(&first);
    // A follow-up of it: same patient, new study.
    let later = dir.path().join("later");
    let text = stdout(&pulmo(&["phantom", "--seed", "8", "--prior", base.to_str().unwrap(), "--days", "200", "--out", later.to_str().unwrap()]));
    assert!(text.contains("nodule(s)"), "{text}");
    let fu = pulmo_dicom::load_ct_path(&later).unwrap();
    assert_eq!(fu.patient_study.patient_id, ct.patient_study.patient_id);
    assert_ne!(fu.patient_study.study_uid, ct.patient_study.study_uid);
    // Writing again into the same folder replaces the study rather than failing.
    stdout(&pulmo(&[&args[..], &["--out", base.to_str().unwrap()]].concat()));
}

#[test]
fn json_logs_are_one_object_per_line_on_stderr() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("stray.txt"), "x").unwrap();
    let study = dir.path().join("study");
    stdout(&pulmo(&["phantom", "--seed", "2", "--rows", "200", "--pixel-spacing", "1.3", "--slice-spacing", "5", "--out", study.to_str().unwrap()]));
    let out = pulmo(&["--log-format", "json", "-v", "inspect", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert!(events.iter().any(|e| e["message"] == "skipped" && e["path"].as_str().unwrap().ends_with("stray.txt")), "{stderr}");
    assert!(events.iter().any(|e| e["message"] == "scanned" && e["series"] == 1), "{stderr}");
}

#[test]
fn phantom_inserts_nodules_into_a_real_series() {
    let Some(data) = Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ct/lung-pet-ct-dx-a0002/b40f")).filter(|p| p.exists()) else {
        eprintln!("SKIPPED: ../shared/data is absent");
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("inserted");
    let text = stdout(&pulmo(&["phantom", "--seed", "5", "--nodules", "2", "--background", data.to_str().unwrap(), "--out", out.to_str().unwrap()]));
    assert!(text.contains("2 nodule(s)"), "{text}");
    let original = pulmo_dicom::load_ct_path(&data).unwrap();
    let inserted = pulmo_dicom::load_ct_path(&out).unwrap();
    assert_eq!(inserted.volume.dims(), original.volume.dims());
    assert_eq!(inserted.volume.geometry(), original.volume.geometry());
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("truth.json")).unwrap()).unwrap();
    // At each nodule centre the inserted CT is denser than the original lung there.
    for n in truth["nodules"].as_array().unwrap() {
        let c: Vec<f64> = n["centre_lps_mm"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let idx = inserted.volume.geometry().lps_to_index([c[0], c[1], c[2]]).map(|v| v.round() as usize);
        let (before, after) = (original.volume.get(idx).unwrap(), inserted.volume.get(idx).unwrap());
        assert!(after - before > 200, "nodule {} at {idx:?}: {before} -> {after}", n["id"]);
    }
}

/// `pulmo models` lists manifests; `--check` refuses a model whose file does not match its
/// manifest's SHA-256, naming the model, and exits non-zero.
#[test]
fn models_lists_and_checks_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(stdout(&pulmo(&["models", "--dir", d])).contains("no model manifests"));
    std::fs::write(dir.path().join("fp.pt"), b"weights").unwrap();
    let manifest = format!(
        "name = \"fp\"\nversion = \"0.1\"\ntask = \"nodule-false-positive-reduction\"\nfile = \"fp.pt\"\nsha256 = \"{}\"\n\
         [input]\npatch_size = [32, 32, 32]\nspacing_mm = [1.0, 1.0, 1.0]\nwindow_hu = [-1000.0, 400.0]\n[output]\nlayout = \"logit\"\n",
        "ab".repeat(32)
    );
    std::fs::write(dir.path().join("fp.toml"), manifest).unwrap();
    let listed = pulmo(&["models", "--dir", d]);
    assert!(listed.status.success());
    assert!(stdout(&listed).contains("fp 0.1 (nodule-false-positive-reduction): fp.pt | patch [32, 32, 32]"), "{}", stdout(&listed));
    let checked = pulmo(&["models", "--dir", d, "--check"]);
    assert!(!checked.status.success());
    let err = String::from_utf8_lossy(&checked.stderr);
    assert!(err.contains("model fp") && err.contains("SHA-256"), "{err}");
}

#[test]
fn analyze_writes_findings_meshes_and_dicom_objects_and_names_a_missing_model() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    let out = dir.path().join("out");
    let phantom = ["phantom", "--seed", "23", "--rows", "300", "--pixel-spacing", "1.1", "--slice-spacing", "2.5", "--nodules", "4"];
    stdout(&pulmo(&[&phantom[..], &["--out", study.to_str().unwrap()]].concat()));
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let args = ["analyze", study.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu"];
    let text = stdout(&pulmo(&[&args[..], &["--models", models.to_str().unwrap()]].concat()));
    println!("{text}");
    assert!(text.contains("exam: Lung-RADS"), "{text}");
    let findings: pulmo_findings::StudyFindings = serde_json::from_str(&std::fs::read_to_string(out.join("findings.json")).unwrap()).unwrap();
    assert_eq!(findings.schema_version, pulmo_findings::SCHEMA_VERSION);
    assert_eq!(findings.source.slices.len(), findings.source.dims[0]);
    assert_eq!(findings.processing.stages.first().map(|s| s.stage.as_str()), Some("load"));
    assert!(!findings.nodules.is_empty(), "{text}");
    for (i, n) in findings.nodules.iter().enumerate() {
        assert_eq!(n.id as usize, i + 1);
        let mesh = out.join(n.mesh_file.as_ref().expect("each nodule names its mesh"));
        assert!(std::fs::metadata(&mesh).unwrap().len() > 84, "{} is an empty STL", mesh.display());
    }
    // Every truth nodule of 8 mm or more is among the findings.
    let truth: pulmo_phantom::Truth = serde_json::from_str(&std::fs::read_to_string(study.join("truth.json")).unwrap()).unwrap();
    for t in truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some() && t.mean_diameter_mm >= 8.0) {
        let near = findings.nodules.iter().any(|n| pulmo_volume::vec3::dist(n.measurements.centre_lps_mm, t.centre_lps_mm) <= t.long_axis_mm / 2.0);
        assert!(near, "truth nodule {} ({:?}, {:.1} mm) not reported:\n{text}", t.id, t.kind, t.mean_diameter_mm);
    }
    check_segmentation(&out, &study);
    check_report(&out, &study, &findings);
    check_summary_page(&out, &findings);
    // Without the model there is no silent fallback: the error names the manifest.
    let failed = pulmo(&[&args[..], &["--models", dir.path().to_str().unwrap()]].concat());
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("fp-reduction.toml"), "{err}");
}

/// The SEG `analyze` wrote passes dciodvfy, and highdicom decodes exactly the findings' regions
/// on the CT's slices, each over the phantom nodule it names: the truth centre's voxel inside
/// the segment and the segment centred within 1.5 mm of it.
fn check_segmentation(out: &std::path::Path, study: &std::path::Path) {
    let seg = out.join("seg.dcm");
    assert_dciodvfy_clean(&seg);
    let (findings, truth) = (out.join("findings.json"), study.join("truth.json"));
    for segment in seg_check(&seg, study, &["--findings".as_ref(), findings.as_os_str(), "--truth".as_ref(), truth.as_os_str()]) {
        assert_eq!(segment["truth_centre_inside"], true, "{segment}");
        assert!(segment["centroid_offset_mm"].as_f64().unwrap() <= 1.5, "{segment}");
    }
}

/// The summary page passes dciodvfy, is an RGB Secondary Capture flagged as burned in, and
/// shows each nodule's outline in its colour.
fn check_summary_page(out: &std::path::Path, findings: &pulmo_findings::StudyFindings) {
    let page = out.join("summary.dcm");
    assert_dciodvfy_clean(&page);
    let colours: Vec<String> = findings.nodules.iter().map(|n| format!("{:?}", pulmo_findings::nodule_colour(n.id))).collect();
    let script = r#"
import sys, json, pydicom, numpy as np
ds = pydicom.dcmread(sys.argv[1])
pixels = ds.pixel_array.reshape(-1, 3)
counts = [int(np.all(pixels == np.array(json.loads(c)), axis=1).sum()) for c in sys.argv[2:]]
print(ds.SOPClassUID, ds.PhotometricInterpretation, ds.BurnedInAnnotation, ds.Modality, json.dumps(counts))
"#;
    let run = Command::new(python()).args(["-c", script]).arg(&page).args(&colours).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8_lossy(&run.stdout);
    println!("summary page: {text}");
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields[..4], ["1.2.840.10008.5.1.4.1.1.7", "RGB", "YES", "OT"], "{text}");
    let counts: Vec<u64> = serde_json::from_str(&text[text.find('[').unwrap()..]).unwrap();
    // An outline of a nodule of 5 mm or more on a crop of 320 pixels has well over 50 pixels.
    assert!(counts.iter().all(|&c| c >= 50), "nodule outlines missing from the page: {counts:?}");
}

/// The SR and the key-image KOS pass dciodvfy; highdicom finds in the SR each nodule's groups
/// with the findings' values, pointing at the SEG; the KOS references the SEG, the SR and the
/// summary page.
fn check_report(out: &std::path::Path, study: &std::path::Path, findings: &pulmo_findings::StudyFindings) {
    for name in ["sr.dcm", "key-images.dcm"] {
        assert_dciodvfy_clean(&out.join(name));
    }
    let python = python();
    let check = Command::new(&python)
        .args(["-c", include_str!("../../pulmo-dicom/tests/sr_check.py")])
        .args([out.join("sr.dcm"), out.join("seg.dcm"), out.join("findings.json"), study.to_path_buf()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    println!("{text}");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(text.lines().count(), findings.nodules.len() + 1, "one line per nodule and one for the exam");
    let kos = r#"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
print(" ".join(sorted({i.ReferencedSOPSequence[0].ReferencedSOPClassUID for i in ds.ContentSequence if "ReferencedSOPSequence" in i})))
"#;
    let classes = Command::new(&python).args(["-c", kos]).arg(out.join("key-images.dcm")).output().unwrap();
    let classes = String::from_utf8_lossy(&classes.stdout);
    for class in ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7"] {
        assert!(classes.split_whitespace().any(|c| c == class), "key images lack {class}: {classes}");
    }
}

/// Baseline, 6 and 12 months: `analyze --prior` links each exam to the one before, and a
/// nodule seen on all three keeps the baseline's Tracking UID throughout, with both earlier
/// measurements in its history; the chain is the same phantom nodule (the generator's true
/// motions carry the baseline centre onto the last one).
#[test]
fn a_nodule_keeps_its_tracking_uid_across_three_exams() {
    let dir = tempfile::tempdir().unwrap();
    let exam = |i: usize| dir.path().join(format!("exam-{i}")).display().to_string();
    let out = |i: usize| dir.path().join(format!("out-{i}")).display().to_string();
    let phantom = ["phantom", "--seed", "23", "--rows", "300", "--pixel-spacing", "1.1", "--slice-spacing", "2.5", "--nodules", "4"];
    stdout(&pulmo(&[&phantom[..], &["--out", &exam(0)]].concat()));
    for i in 1..3 {
        let (prior, seed) = (exam(i - 1), (23 + i).to_string());
        stdout(&pulmo(&["phantom", "--seed", &seed, "--prior", &prior, "--days", "182", "--out", &exam(i)]));
    }
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let analyze = ["analyze", "--device", "cpu", "--models", models.to_str().unwrap()];
    stdout(&pulmo(&[&analyze[..], &[&exam(0), "--out", &out(0)]].concat()));
    for i in 1..3 {
        let prior_findings = format!("{}/findings.json", out(i - 1));
        let more = [&exam(i), "--out", &out(i), "--prior", &exam(i - 1)];
        let text = stdout(&pulmo(&[&analyze[..], &more, &["--prior-findings", &prior_findings]].concat()));
        println!("{text}");
    }
    let findings: Vec<pulmo_findings::StudyFindings> =
        (0..3).map(|i| serde_json::from_str(&std::fs::read_to_string(format!("{}/findings.json", out(i))).unwrap()).unwrap()).collect();
    let truths: Vec<pulmo_phantom::Truth> = (0..3).map(|i| pulmo_phantom::Truth::read(std::path::Path::new(&format!("{}/truth.json", exam(i)))).unwrap()).collect();
    // The nodule of `exam` that `n` was matched to; none for a nodule new on its exam or one
    // followed from what pulmo measured on the prior's CT (the prior's findings missed it).
    let prior_of = |exam: usize, n: &pulmo_findings::NoduleFinding| {
        let change = n.change.as_ref().filter(|c| !c.found_on_prior_ct)?;
        Some(findings[exam].nodules.iter().find(|p| p.id == change.prior.id).unwrap_or_else(|| panic!("prior nodule {} of nodule {}", change.prior.id, n.id)))
    };
    let mut chains = 0;
    for last in &findings[2].nodules {
        let Some(middle) = prior_of(1, last) else { continue };
        let Some(first) = prior_of(0, middle) else { continue };
        chains += 1;
        assert_eq!(last.tracking_uid, first.tracking_uid, "nodule {} of the last exam", last.id);
        assert_eq!(middle.tracking_uid, first.tracking_uid);
        let history = &last.change.as_ref().unwrap().history;
        assert_eq!(history.iter().map(|t| t.study_uid.as_str()).collect::<Vec<_>>(), [&findings[0].source.study_uid, &findings[1].source.study_uid]);
        let moved = (1..3).fold(first.measurements.centre_lps_mm, |p, i| truths[i].follow_up.as_ref().unwrap().prior_to_current.apply(p));
        let off = pulmo_volume::vec3::dist(moved, last.measurements.centre_lps_mm);
        assert!(off < 5.0, "nodule {} of the last exam is {off:.1} mm from where its baseline nodule moved", last.id);
    }
    assert!(chains >= 1, "no nodule followed through all three exams");

    // The last exam again, with the middle exam's findings read from pulmo's SR of it: the same
    // follow-up (the SR knows the exam before the middle one, so the history stays whole but
    // for that exam's UID, which the middle SR does not cite).
    let more = [&exam(2), "--out", &out(3), "--prior", &exam(1), "--prior-findings", &format!("{}/sr.dcm", out(1))];
    println!("{}", stdout(&pulmo(&[&analyze[..], &more].concat())));
    let from_sr: pulmo_findings::StudyFindings = serde_json::from_str(&std::fs::read_to_string(format!("{}/findings.json", out(3))).unwrap()).unwrap();
    assert_eq!(from_sr.nodules.len(), findings[2].nodules.len());
    for (a, b) in from_sr.nodules.iter().zip(&findings[2].nodules) {
        assert_eq!((&a.tracking_uid, a.status, a.lung_rads.category), (&b.tracking_uid, b.status, b.lung_rads.category), "nodule {}", a.id);
        let (Some(x), Some(y)) = (&a.change, &b.change) else {
            assert!(a.change.is_none() && b.change.is_none(), "nodule {} matched in one run only", a.id);
            continue;
        };
        assert_eq!((x.prior.id, x.volume_change.is_some(), x.doubling_class), (y.prior.id, y.volume_change.is_some(), y.doubling_class));
        let dates = |c: &pulmo_findings::NoduleChange| c.history.iter().map(|t| t.study_date.clone()).collect::<Vec<_>>();
        assert_eq!(dates(x), dates(y), "nodule {}: the track's dates", a.id);
        assert!((x.prior.volume_mm3 - y.prior.volume_mm3).abs() < 1e-6 * y.prior.volume_mm3, "nodule {}", a.id);
    }
    let cited: Vec<&str> = from_sr.prior.as_ref().unwrap().prior_objects.iter().map(|o| o.sop_class_uid.as_str()).collect();
    assert_eq!(cited, ["1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.66.4"], "the SR read and its SEG are cited");
}
