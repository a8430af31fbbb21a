//! Key Object Selection writer against independent validators: a KOS referencing the 30
//! slices of a real CT series, checked by dciodvfy (dicom3tools), dsrdump and dcmdump (DCMTK),
//! pydicom, and our own reader.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pulmo_dicom::write::kos::{DocumentTitle, KeyObjectSelection, ReferencedInstance, KEY_OBJECT_SELECTION_STORAGE};
use pulmo_dicom::write::StudyContext;
use pulmo_dicom::{DicomFile, InstanceHeader};

const SERIES: &str = "ct/lung-pet-ct-dx-a0002/b40f";

fn dicom_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    files
}

/// Runs a tool; None (with a notice) when it is not installed.
fn tool(name: &str, args: &[&str]) -> Option<(bool, String)> {
    match Command::new(name).args(args).output() {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            Some((out.status.success(), text))
        }
        Err(e) => {
            eprintln!("SKIPPED: {name} not runnable ({e})");
            None
        }
    }
}

struct Built {
    _dir: tempfile::TempDir,
    path: PathBuf,
    kos: KeyObjectSelection,
}

fn build() -> Option<Built> {
    let dir = common::shared_data(SERIES)?;
    let files = dicom_files(&dir);
    assert_eq!(files.len(), 30, "{SERIES} holds 30 slices");
    let mut references = Vec::new();
    let mut study = None;
    for f in &files {
        let file = DicomFile::open(f).unwrap();
        let header = InstanceHeader::read(&file).unwrap();
        references.push(ReferencedInstance::from(&header));
        study.get_or_insert_with(|| StudyContext::from_dataset(&file.object).unwrap());
    }
    let study = study.unwrap();
    let kos = KeyObjectSelection {
        series_uid: "2.25.123456789012345678901234567890124".into(),
        sop_instance_uid: "2.25.123456789012345678901234567890123".into(),
        study,
        series_number: 9001,
        instance_number: 1,
        content_datetime: ("20240131".into(), "123456".into()),
        title: DocumentTitle::OfInterest,
        description: Some("Study received by pulmo".into()),
        references,
        manufacturer: "pulmo".into(),
        software_version: env!("CARGO_PKG_VERSION").into(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("kos.dcm");
    std::fs::write(&path, kos.to_part10().unwrap()).unwrap();
    if let Some(keep) = std::env::var_os("PULMO_KOS_KEEP") {
        std::fs::copy(&path, keep).unwrap(); // for looking at it by hand
    }
    Some(Built { _dir: tmp, path, kos })
}

#[test]
fn dciodvfy_reports_no_errors() {
    let Some(b) = build() else { return };
    let Some((_, report)) = tool("dciodvfy", &[b.path.to_str().unwrap()]) else { return };
    println!("dciodvfy report:\n{report}");
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("Error")).collect();
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
}

#[test]
fn dsrdump_parses_the_references() {
    let Some(b) = build() else { return };
    let Some((ok, out)) = tool("dsrdump", &["+Pu", "+Pt", "+Pl", b.path.to_str().unwrap()]) else { return };
    println!("{out}");
    assert!(ok, "dsrdump failed:\n{out}");
    assert!(out.contains("Key Object Selection Document"), "{out}");
    assert!(out.contains("Of Interest"), "{out}");
    assert!(out.contains("Study received by pulmo"), "{out}");
    for r in &b.kos.references {
        assert!(out.contains(&r.sop_instance_uid), "dsrdump lacks {}", r.sop_instance_uid);
    }
    let images = out.lines().filter(|l| l.contains("contains IMAGE")).count();
    assert_eq!(images, 30, "{out}");
    let lower = out.to_lowercase();
    assert!(!lower.contains("warning") && !lower.contains("error"), "{out}");
}

#[test]
fn dcmdump_reads_it() {
    let Some(b) = build() else { return };
    let Some((ok, out)) = tool("dcmdump", &["-E", b.path.to_str().unwrap()]) else { return };
    assert!(ok, "dcmdump failed:\n{out}");
    assert!(out.contains("=KeyObjectSelectionDocumentStorage"), "{out}");
    assert!(out.contains("(0008,0060) CS [KO]"), "{out}");
    assert!(!out.to_lowercase().contains("error") && !out.contains("W: "), "{out}");
}

#[test]
fn pydicom_reads_it() {
    let Some(b) = build() else { return };
    let script = r#"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
ev = ds.CurrentRequestedProcedureEvidenceSequence
sops = [s for st in ev for se in st.ReferencedSeriesSequence for s in se.ReferencedSOPSequence]
print(ds.file_meta.TransferSyntaxUID, ds.SOPClassUID, ds.Modality, ds.StudyInstanceUID, len(ev), len(sops),
      sum(1 for i in ds.ContentSequence if i.ValueType == "IMAGE"),
      ds.ConceptNameCodeSequence[0].CodeValue, ds.ContentTemplateSequence[0].TemplateIdentifier)
"#;
    let out = common::run_python(script, &[b.path.to_str().unwrap()]);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        f,
        [
            "1.2.840.10008.1.2.1",
            KEY_OBJECT_SELECTION_STORAGE,
            "KO",
            b.kos.study.study_uid.as_str(),
            "1",
            "30",
            "30",
            "113000",
            "2010"
        ],
        "{out}"
    );
}

#[test]
fn our_reader_reads_it() {
    let Some(b) = build() else { return };
    let file = DicomFile::open(&b.path).unwrap();
    let header = InstanceHeader::read(&file).unwrap();
    assert_eq!(header.sop_class_uid, KEY_OBJECT_SELECTION_STORAGE);
    assert_eq!(header.sop_instance_uid, b.kos.sop_instance_uid);
    assert_eq!(header.modality, "KO");
    assert_eq!(header.patient_study.study_uid, b.kos.study.study_uid);
    assert_eq!(header.transfer_syntax, "1.2.840.10008.1.2.1");
    let evidence = file.object.element_by_name("CurrentRequestedProcedureEvidenceSequence").unwrap();
    let study = &evidence.items().unwrap()[0];
    let series = study.element_by_name("ReferencedSeriesSequence").unwrap().items().unwrap();
    let sops: usize = series
        .iter()
        .map(|s| s.element_by_name("ReferencedSOPSequence").unwrap().items().unwrap().len())
        .sum();
    assert_eq!(sops, 30);
}
