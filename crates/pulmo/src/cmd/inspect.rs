//! `pulmo inspect PATH...`: what DICOM series are there, and can pulmo use them.
//! Reads headers only (no pixel decoding), so it is quick on large folders.

use std::collections::BTreeSet;
use std::path::PathBuf;

use pulmo_dicom::{scan, Series, StackPlan};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// Folders (searched recursively) or files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One line of the report. UIDs are shortened for the table; the patient is shown as a short
/// token derived from PatientID so that patients can be told apart without printing PHI.
#[derive(Serialize)]
struct SeriesRow {
    patient: String,
    study_uid: String,
    series_uid: String,
    modality: String,
    images: usize,
    slices: Option<usize>,
    matrix: String,
    spacing_mm: Option<[f64; 3]>,
    thickness_mm: Option<f64>,
    transfer_syntaxes: Vec<String>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct Report {
    series: Vec<SeriesRow>,
    skipped: Vec<pulmo_dicom::Skipped>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let set = scan(&args.paths, false)?;
    let mut problems_patient = Vec::new();
    if let Err(e) = set.check_single_patient() {
        problems_patient.push(e.to_string());
    }
    let report = Report { series: set.series.iter().map(row).collect(), skipped: set.skipped };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
        for p in problems_patient {
            println!("note: {p}");
        }
    }
    Ok(())
}

fn row(series: &Series) -> SeriesRow {
    let h = series.header();
    let (slices, spacing, thickness, problems) = match StackPlan::for_series(series) {
        Ok(plan) => (Some(plan.dims[0]), Some(plan.geometry.spacing), plan.slice_thickness, plan.notes),
        Err(e) => (None, None, h.frames.first().and_then(|f| f.thickness), vec![e.to_string()]),
    };
    let syntaxes: BTreeSet<String> =
        series.instances.iter().map(|i| syntax_name(&i.header.transfer_syntax)).collect();
    SeriesRow {
        patient: patient_token(h.patient_study.patient_id.as_deref()),
        study_uid: h.patient_study.study_uid.clone(),
        series_uid: series.label(),
        modality: h.modality.clone(),
        images: series.frame_count(),
        slices,
        matrix: format!("{}x{}", h.columns, h.rows),
        spacing_mm: spacing,
        thickness_mm: thickness,
        transfer_syntaxes: syntaxes.into_iter().collect(),
        problems,
    }
}

fn print_table(report: &Report) {
    println!(
        "{:<8} {:<14} {:<14} {:<4} {:>6} {:>6} {:<9} {:<20} {:>6}  {:<24} PROBLEMS / NOTES",
        "PATIENT", "STUDY", "SERIES", "MOD", "IMAGES", "SLICES", "MATRIX", "SPACING z,y,x (mm)", "THICK", "TRANSFER SYNTAX"
    );
    for r in &report.series {
        let spacing = r.spacing_mm.map_or("-".into(), |s| format!("{:.3},{:.3},{:.3}", s[0], s[1], s[2]));
        println!(
            "{:<8} {:<14} {:<14} {:<4} {:>6} {:>6} {:<9} {:<20} {:>6}  {:<24} {}",
            r.patient,
            short_uid(&r.study_uid),
            short_uid(&r.series_uid),
            r.modality,
            r.images,
            r.slices.map_or("-".into(), |n| n.to_string()),
            r.matrix,
            spacing,
            r.thickness_mm.map_or("-".into(), |t| format!("{t:.2}")),
            r.transfer_syntaxes.join(","),
            if r.problems.is_empty() { "ok".into() } else { r.problems.join("; ") }
        );
    }
    if !report.skipped.is_empty() {
        println!("\n{} file(s) skipped:", report.skipped.len());
        for s in &report.skipped {
            println!("  {}", s.reason);
        }
    }
}

/// "…" plus the last 12 characters: enough to tell series apart in one listing.
fn short_uid(uid: &str) -> String {
    let chars: Vec<char> = uid.chars().collect();
    if chars.len() <= 13 {
        uid.to_string()
    } else {
        format!("…{}", chars[chars.len() - 12..].iter().collect::<String>())
    }
}

/// A stable 4-hex-digit token of the PatientID (FNV-1a), not the ID itself.
fn patient_token(id: Option<&str>) -> String {
    let Some(id) = id else { return "-".into() };
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("P-{:04x}", hash & 0xffff)
}

fn syntax_name(uid: &str) -> String {
    let name = match uid {
        "1.2.840.10008.1.2" => "ImplicitLE",
        "1.2.840.10008.1.2.1" => "ExplicitLE",
        "1.2.840.10008.1.2.2" => "ExplicitBE",
        "1.2.840.10008.1.2.1.99" => "Deflated",
        "1.2.840.10008.1.2.5" => "RLE",
        "1.2.840.10008.1.2.4.50" => "JPEG-baseline",
        "1.2.840.10008.1.2.4.51" => "JPEG-extended",
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "JPEG-lossless",
        "1.2.840.10008.1.2.4.80" => "JPEG-LS",
        "1.2.840.10008.1.2.4.81" => "JPEG-LS-near",
        "1.2.840.10008.1.2.4.90" => "J2K-lossless",
        "1.2.840.10008.1.2.4.91" => "J2K",
        other => other,
    };
    name.to_string()
}
