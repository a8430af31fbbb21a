//! The evaluation as markdown for docs/accuracy.md: the set, detection (operating point, FROC,
//! CPM), measurement errors by size band, density class, Lung-RADS, goals, real series.

use std::fmt::Write;

use pulmo_analysis::pipeline::{
    CONFIDENT_PROBABILITY, CONFIDENT_SPHERICITY_RELIEF, MASS_MM, MIN_LONG_AXIS_MM, MIN_SPHERICITY, MIN_SPHERICITY_MASS, MIN_SPHERICITY_SMALL, SMALL_NODULE_MM, WIDE_CUT_PROBABILITY,
};
use pulmo_clinical::Density;
use pulmo_phantom::NoduleKind;
use serde::Serialize;

use super::matching::{Found, StudyMatch, TruthRow};
use super::metrics::{at_threshold, cpm, froc, quantile, sensitivity_at, CPM_RATES};

/// One phantom study of the set as it was generated and analysed.
#[derive(Debug, Clone, Serialize)]
pub struct StudyRun {
    pub seed: u64,
    pub pixel_spacing_mm: f64,
    pub slice_spacing_mm: f64,
    pub slices: usize,
    pub seconds: f64,
    pub matched: StudyMatch,
}

/// What was found in one real annotated or unannotated series.
#[derive(Debug, Clone, Serialize)]
pub struct RealRun {
    pub name: String,
    pub findings: usize,
    /// For annotated series: the first finding inside the annotation, as a one-line description.
    pub target: Option<String>,
    /// For annotated series: how many findings lie inside the annotation (more than one: the
    /// tumour reported in parts).
    pub inside: usize,
    pub annotated: bool,
    /// The first findings, one line each.
    pub listed: Vec<String>,
}

const SIZE_BANDS: [(f64, f64, &str); 4] = [(0.0, 6.0, "< 6 mm"), (6.0, 10.0, "6-10 mm"), (10.0, 20.0, "10-20 mm"), (20.0, f64::INFINITY, ">= 20 mm")];

pub fn kind_name(k: NoduleKind) -> &'static str {
    match k {
        NoduleKind::Solid => "solid",
        NoduleKind::PartSolid => "part-solid",
        NoduleKind::GroundGlass => "ground-glass",
        NoduleKind::Calcified => "calcified",
    }
}

/// Which truth nodules a row of the detection table counts.
type Population = fn(&TruthRow) -> bool;

/// The detection populations: solid (calcified included) and part-solid >= 5 mm, and
/// ground glass >= 8 mm, by mean diameter.
fn solid_population(r: &TruthRow) -> bool {
    r.kind != NoduleKind::GroundGlass && r.mean_diameter_mm >= 5.0
}

fn ground_glass_population(r: &TruthRow) -> bool {
    r.kind == NoduleKind::GroundGlass && r.mean_diameter_mm >= 8.0
}

pub fn expected_density(k: NoduleKind) -> Density {
    match k {
        NoduleKind::Solid | NoduleKind::Calcified => Density::Solid,
        NoduleKind::PartSolid => Density::PartSolid,
        NoduleKind::GroundGlass => Density::GroundGlass,
    }
}

pub fn markdown(runs: &[StudyRun], threshold: f64, real: &[RealRun], command: &str) -> String {
    let rows: Vec<&TruthRow> = runs.iter().flat_map(|r| &r.matched.truth).collect();
    let fps: Vec<_> = runs.iter().flat_map(|r| r.matched.false_positives.iter().cloned()).collect();
    let scans = runs.len();
    let mut out = String::new();
    let _ = writeln!(out, "Produced by `{command}`.\n");
    set_section(&mut out, runs, &rows);
    let _ = writeln!(out, "## Detection\n\nOperating point: detection probability {threshold:.4} (pulmo's reporting threshold; the FROC columns sweep it). Every finding has passed the shape rules (long axis at least {MIN_LONG_AXIS_MM} mm; sphericity at least {MIN_SPHERICITY_SMALL} below {SMALL_NODULE_MM} mm, {MIN_SPHERICITY} up to {MASS_MM} mm, {MIN_SPHERICITY_MASS} for masses, {CONFIDENT_SPHERICITY_RELIEF} less for a detection of probability {CONFIDENT_PROBABILITY} or more; a detection of probability {WIDE_CUT_PROBABILITY} or more whose segmentation fails them is segmented again with wider vessel cuts). A finding names a truth nodule when its centre lies within the nodule's radius (at least 3 mm); a second finding on a named nodule counts as neither hit nor false positive.\n");
    let _ = writeln!(out, "| population | nodules | sensitivity at operating point | FP/scan at operating point | CPM | {} |", CPM_RATES.map(|r| format!("sens. @ {r} FP")).join(" | "));
    let _ = writeln!(out, "|---|---|---|---|---|{}", "---|".repeat(CPM_RATES.len()));
    let populations: [(&str, Population); 3] = [
        ("solid + part-solid >= 5 mm", solid_population),
        ("ground-glass >= 8 mm", ground_glass_population),
        ("all reportable", |_| true),
    ];
    for (name, keep) in populations {
        let population: Vec<&TruthRow> = rows.iter().copied().filter(|r| keep(r)).collect();
        let curve = froc(&population, &fps, scans);
        let op = at_threshold(&curve, threshold);
        let rates = CPM_RATES.map(|r| pct(sensitivity_at(&curve, r))).join(" | ");
        let _ = writeln!(out, "| {name} | {} | {} | {:.1} | {:.3} | {rates} |", population.len(), pct(op.sensitivity), op.fp_per_scan, cpm(&curve));
    }
    by_type_section(&mut out, &rows, threshold);
    measurement_section(&mut out, &rows);
    classification_section(&mut out, &rows);
    real_section(&mut out, real);
    out
}

fn set_section(out: &mut String, runs: &[StudyRun], rows: &[&TruthRow]) {
    let range = |f: &dyn Fn(&StudyRun) -> f64| {
        let v: Vec<f64> = runs.iter().map(f).collect();
        (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max))
    };
    let (p0, p1) = range(&|r| r.pixel_spacing_mm);
    let (s0, s1) = range(&|r| r.slice_spacing_mm);
    let sizes: Vec<f64> = rows.iter().map(|r| r.mean_diameter_mm).collect();
    let _ = writeln!(out, "## The phantom set\n");
    let _ = writeln!(
        out,
        "{} studies (seeds {}..={}), pixel spacing {p0:.2}-{p1:.2} mm, slice spacing {s0:.2}-{s1:.2} mm; {} reportable nodules (mean diameter {:.1}-{:.1} mm):",
        runs.len(),
        runs.first().map_or(0, |r| r.seed),
        runs.last().map_or(0, |r| r.seed),
        rows.len(),
        quantile(&sizes, 0.0).unwrap_or(0.0),
        quantile(&sizes, 1.0).unwrap_or(0.0)
    );
    for kind in [NoduleKind::Solid, NoduleKind::PartSolid, NoduleKind::GroundGlass, NoduleKind::Calcified] {
        let n = rows.iter().filter(|r| r.kind == kind).count();
        let _ = write!(out, " {} {n};", kind_name(kind));
    }
    let attached = |a: &str| rows.iter().filter(|r| r.attachment == a).count();
    let _ = writeln!(out, " juxtapleural {}, juxtavascular {}.", attached("juxtapleural"), attached("juxtavascular"));
    let seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    let _ = writeln!(out, "Analysis time per study (this machine): median {:.0} s.\n", quantile(&seconds, 0.5).unwrap_or(0.0));
}

fn by_type_section(out: &mut String, rows: &[&TruthRow], threshold: f64) {
    let _ = writeln!(out, "\n### Sensitivity at the operating point by type and size (found / nodules)\n");
    let _ = writeln!(out, "| type | {} |", SIZE_BANDS.map(|b| b.2).join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(SIZE_BANDS.len()));
    for kind in [NoduleKind::Solid, NoduleKind::PartSolid, NoduleKind::GroundGlass, NoduleKind::Calcified] {
        let cells = SIZE_BANDS.map(|(lo, hi, _)| {
            let band: Vec<_> = rows.iter().filter(|r| r.kind == kind && (lo..hi).contains(&r.mean_diameter_mm)).collect();
            let found = band.iter().filter(|r| r.found.as_ref().is_some_and(|f| f.probability >= threshold)).count();
            if band.is_empty() { "-".to_string() } else { format!("{found}/{}", band.len()) }
        });
        let _ = writeln!(out, "| {} | {} |", kind_name(kind), cells.join(" | "));
    }
}

fn measurement_section(out: &mut String, rows: &[&TruthRow]) {
    let _ = writeln!(out, "\n## Measurement (every found nodule, whatever its probability)\n");
    let _ = writeln!(out, "| size band (truth) | n | volume error median | volume error 90th pct | mean-diameter error median | mean-diameter error 90th pct |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let mut bands: Vec<(f64, f64, &str)> = SIZE_BANDS.to_vec();
    bands.push((6.0, f64::INFINITY, "all >= 6 mm"));
    for (lo, hi, name) in bands {
        let found: Vec<_> = rows.iter().filter(|r| (lo..hi).contains(&r.mean_diameter_mm)).filter_map(|r| r.found.as_ref().map(|f| (r, f))).collect();
        let volume: Vec<f64> = found.iter().map(|(r, f)| 100.0 * ((f.volume_mm3 - r.volume_mm3) / r.volume_mm3).abs()).collect();
        let diameter: Vec<f64> = found.iter().map(|(r, f)| (f.mean_diameter_mm - r.mean_diameter_mm).abs()).collect();
        let q = |v: &[f64], p: f64, unit: &str| quantile(v, p).map_or("-".to_string(), |x| format!("{x:.1}{unit}"));
        let _ = writeln!(out, "| {name} | {} | {} | {} | {} | {} |", found.len(), q(&volume, 0.5, "%"), q(&volume, 0.9, "%"), q(&diameter, 0.5, " mm"), q(&diameter, 0.9, " mm"));
    }
}

fn classification_section(out: &mut String, rows: &[&TruthRow]) {
    let found: Vec<_> = rows.iter().filter_map(|r| r.found.as_ref().map(|f| (r, f))).collect();
    let density_ok = found.iter().filter(|(r, f)| f.density == expected_density(r.kind)).count();
    let _ = writeln!(out, "\n## Density class and Lung-RADS (found nodules)\n");
    let _ = writeln!(out, "Density class agrees with truth on {density_ok} of {} ({}).\n", found.len(), pct(ratio(density_ok, found.len())));
    let _ = writeln!(out, "| truth \\ pulmo | solid | part-solid | ground-glass |\n|---|---|---|---|");
    for kind in [NoduleKind::Solid, NoduleKind::PartSolid, NoduleKind::GroundGlass, NoduleKind::Calcified] {
        let cells = [Density::Solid, Density::PartSolid, Density::GroundGlass].map(|d| found.iter().filter(|(r, f)| r.kind == kind && f.density == d).count().to_string());
        let _ = writeln!(out, "| {} | {} |", kind_name(kind), cells.join(" | "));
    }
    let agree = found.iter().filter(|(r, f)| r.lung_rads == f.lung_rads).count();
    let _ = writeln!(
        out,
        "\nLung-RADS v2022 category (baseline rules, 4X for a spiculated nodule of category 3 or 4 in the truth and where pulmo calls the margin spiculated) agrees with truth on {agree} of {} ({}).",
        found.len(),
        pct(ratio(agree, found.len())),
    );
    spicules_section(out, &found);
}

/// The spicules pulmo counts on found nodules and how many its margin model calls spiculated,
/// by type and the truth's shape (the phantom spiculates solid and part-solid nodules only).
fn spicules_section(out: &mut String, found: &[(&&TruthRow, &Found)]) {
    let _ = writeln!(out, "\nSpicules counted on the margin (not for ground glass), and the margins the margin model calls spiculated:\n");
    let _ = writeln!(out, "| type | truth shape | found | counted | median | 90th percentile | range | called spiculated |\n|---|---|---|---|---|---|---|---|");
    for kind in [NoduleKind::Solid, NoduleKind::PartSolid, NoduleKind::GroundGlass, NoduleKind::Calcified] {
        for shape in ["spiculated", "lobulated", "spherical"] {
            let rows: Vec<_> = found.iter().filter(|(r, _)| r.kind == kind && r.shape == shape).collect();
            if rows.is_empty() {
                continue;
            }
            let counts: Vec<f64> = rows.iter().filter_map(|(_, f)| f.spicules.map(f64::from)).collect();
            let q = |p: f64| quantile(&counts, p).map_or("-".to_string(), |x| format!("{x:.0}"));
            let called = rows.iter().filter(|(_, f)| f.spiculated == Some(true)).count();
            let _ = writeln!(out, "| {} | {shape} | {} | {} | {} | {} | {}-{} | {called} |", kind_name(kind), rows.len(), counts.len(), q(0.5), q(0.9), q(0.0), q(1.0));
        }
    }
}

fn real_section(out: &mut String, real: &[RealRun]) {
    if real.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Real series (operating point)\n");
    for r in real {
        let _ = writeln!(out, "### {}\n", r.name);
        if r.annotated {
            match &r.target {
                Some(t) if r.inside > 1 => _ = writeln!(out, "Annotated tumour found as {} findings inside the annotated boxes, the first: {t}. Other findings: {}.\n", r.inside, r.findings - r.inside),
                Some(t) => _ = writeln!(out, "Annotated tumour found: {t}. Other findings: {}.\n", r.findings.saturating_sub(1)),
                None => _ = writeln!(out, "Annotated tumour NOT found. Findings: {}.\n", r.findings),
            }
        } else {
            let _ = writeln!(out, "No annotations; {} findings, all of which would be false positives unless the patient has nodules.\n", r.findings);
        }
        for l in &r.listed {
            let _ = writeln!(out, "- {l}");
        }
        let _ = writeln!(out);
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    a as f64 / b.max(1) as f64
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}
