//! The findings as a few lines of plain text: what the CLI prints, the node logs at debug level
//! and the demo shows. No patient identity appears in it.

use std::fmt::Write;

use pulmo_clinical::growth::VolumeChange;

use crate::follow_up::{found_on_prior_ct, ChangeSincePrior, PriorComparison, UnmatchedPrior};
use crate::nodule::NoduleFinding;
use crate::study::StudyFindings;

/// One line per nodule under a header, then the exam's Lung-RADS category and management; with
/// a prior, which prior it was and its nodules that found no match.
pub fn summary(f: &StudyFindings) -> String {
    let mut out = String::new();
    let [nz, ny, nx] = f.source.dims;
    let [sz, sy, sx] = f.source.geometry.spacing;
    let _ = writeln!(out, "series {} ({nx} x {ny} x {nz} voxels of {sx:.2} x {sy:.2} x {sz:.2} mm)", f.source.series_uid);
    let ml = |e: Option<crate::LungExtent>| e.map_or("-".to_string(), |e| format!("{:.0} mL", e.volume_ml));
    let _ = writeln!(
        out,
        "lungs: right {}, left {}, LAA-950 {:.1}%{}",
        ml(f.lungs.right),
        ml(f.lungs.left),
        100.0 * f.lungs.laa950_fraction,
        if f.lungs.emphysema { " (emphysema)" } else { "" }
    );
    if let Some(prior) = &f.prior {
        let _ = writeln!(out, "prior: {}", prior_line(prior));
    }
    let _ = writeln!(out, "nodules: {}", f.nodules.len());
    for line in nodule_table(f) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(unmatched) = f.prior.as_ref().and_then(unmatched_line) {
        let _ = writeln!(out, "prior nodules not seen: {unmatched}");
    }
    if let Some(found) = found_on_prior_ct(&f.nodules) {
        let _ = writeln!(out, "not in the prior's findings, seen on its CT: {found}");
    }
    let _ = writeln!(out, "exam: Lung-RADS {}: {}", f.exam.lung_rads.code(), f.exam.management);
    out
}

/// The nodules as a table: a header line, then one line per nodule (none without nodules).
/// The CLI prints it and the summary page draws it, at most 98 characters wide (what fits on
/// the page). With a prior the last column is the change since it instead of the Brock risk
/// (a baseline model; the page's panels and the SR keep it) and the volume column narrows.
pub fn nodule_table(f: &StudyFindings) -> Vec<String> {
    if f.nodules.is_empty() {
        return Vec::new();
    }
    let follow_up = f.prior.is_some();
    let (volume, last) = if follow_up { ("vol mm3", "change") } else { ("volume mm3", "Brock") };
    let width = volume.len();
    let mut lines = vec![format!("  #  zone          type         long x short mm  mean mm  {volume}  Lung-RADS  {last}")];
    for n in &f.nodules {
        let m = &n.measurements;
        let zone = n.zone.map_or("outside lungs".to_string(), |z| z.to_string());
        let last = if follow_up {
            change_text(n)
        } else {
            n.brock.as_ref().map_or("-".to_string(), |r| format!("{:.1}%", 100.0 * r.estimate.probability))
        };
        lines.push(format!(
            "{:>3}  {zone:<13} {:<12} {:>6.1} x {:<6.1}  {:>7.1}  {:>width$.0}  {:<9}  {last}",
            n.id,
            m.density.label(),
            m.long_axis_mm,
            m.short_axis_mm,
            m.mean_diameter_mm,
            m.volume_mm3,
            n.lung_rads.category.code()
        ));
    }
    lines
}

/// A nodule's change since the prior in a few words: "new", "stable", "shrinking" (stable to
/// Lung-RADS, smaller by volume), "slowly growing", or a growing nodule's mean diameter change
/// with its volume doubling time when the volume grew too.
fn change_text(n: &NoduleFinding) -> String {
    let change = n.change.as_ref();
    match n.change_since_prior() {
        None => "-".into(),
        Some(ChangeSincePrior::New) => "new".into(),
        Some(ChangeSincePrior::SlowlyGrowing) => "slowly growing".into(),
        Some(ChangeSincePrior::Shrinking) => "shrinking".into(),
        Some(ChangeSincePrior::Stable) => "stable".into(),
        Some(ChangeSincePrior::Growing) => {
            let Some(c) = change else { return "growing".into() };
            let mm = format!("{:+.1} mm", c.mean_diameter_change_mm);
            match c.volume_change {
                Some(VolumeChange::Growing { doubling_time_days: d }) if d.is_finite() && d > 0.0 => format!("{mm}, VDT {d:.0} d"),
                _ => mm,
            }
        }
    }
}

/// "CT of 2024-01-31, 366 days earlier, lung Dice 0.95 (study 1.2.3)": which prior, and how
/// well its lungs registered onto this study's.
fn prior_line(p: &PriorComparison) -> String {
    format!("CT of {}, {}, lung Dice {:.2} (study {})", p.date_text(), p.interval_text(), p.registration.lung_dice, p.study_uid)
}

/// The prior's nodules that no nodule of this study matches, with why; `None` when all matched.
fn unmatched_line(p: &PriorComparison) -> Option<String> {
    let items: Vec<String> = p.unmatched_prior.iter().map(UnmatchedPrior::describe).collect();
    (!items.is_empty()).then(|| items.join(", "))
}


#[cfg(test)]
mod tests {
    use pulmo_clinical::density::Density;
    use pulmo_clinical::lung_rads::{Assessment, Category, Status};
    use pulmo_volume::{Affine, BoxRegion, Geometry};

    use super::*;
    use crate::follow_up::{Disappearance, NoduleChange, PriorNodule, RegistrationQuality, UnmatchedPrior};
    use crate::study::{Algorithm, ExamAssessment, LungSummary, Processing, SourceSeries};
    use crate::{HuStats, Level, Measurements, PatientFacts, Side, Zone};

    fn nodule(id: u32, mean_mm: f64, category: Category) -> NoduleFinding {
        let c = [-60.0, 0.0, 100.0];
        NoduleFinding {
            id,
            tracking_uid: format!("2.25.{id}"),
            detection_probability: 0.9,
            zone: Some(Zone { side: Side::Right, level: Level::Upper }),
            measurements: Measurements {
                centre_lps_mm: c,
                long_axis_mm: mean_mm + 0.5,
                short_axis_mm: mean_mm - 0.5,
                long_axis_lps_mm: [c, c],
                short_axis_lps_mm: [c, c],
                mean_diameter_mm: mean_mm,
                axial_plane_z_mm: c[2],
                longest_diameter_3d_mm: mean_mm + 1.0,
                volume_mm3: std::f64::consts::PI / 6.0 * mean_mm.powi(3),
                hu: HuStats { mean: 20.0, sd: 15.0, min: -100.0, max: 80.0 },
                mass_mg: 0.0,
                solid_core: None,
                solid_fraction: 1.0,
                density: Density::Solid,
                sphericity: 1.0,
                spiculated: None,
                spicules: None,
                spiculation_probability: None,
                margin_irregularity: None,
                calcified: false,
                juxtapleural: false,
            },
            lung_rads: Assessment { category, reason: String::new() },
            status: Status::Baseline,
            change: None,
            brock: None,
            mayo: None,
            mesh_file: None,
            region: BoxRegion::default(),
        }
    }

    fn findings() -> StudyFindings {
        StudyFindings {
            schema_version: crate::SCHEMA_VERSION,
            source: SourceSeries {
                study_uid: "1.2.3".into(),
                series_uid: "1.2.3.4".into(),
                frame_of_reference_uid: None,
                study_date: Some("20250131".into()),
                dims: [100, 512, 512],
                geometry: Geometry::axial([0.0; 3], [2.5, 0.7, 0.7]).unwrap(),
                slices: Vec::new(),
            },
            algorithm: Algorithm { name: "pulmo".into(), version: "0".into(), models: Vec::new() },
            patient: PatientFacts { age_years: None, female: None },
            lungs: LungSummary { right: None, left: None, carina_z_mm: None, laa950_fraction: 0.01, emphysema: false },
            nodules: vec![nodule(1, 24.0, Category::FourB), nodule(2, 7.0, Category::Three)],
            exam: ExamAssessment { lung_rads: Category::FourB, management: "chest CT".into(), fleischner: None },
            prior: None,
            notes: Vec::new(),
            processing: Processing { device: "cpu".into(), candidates: 0, detections: 0, stages: Vec::new() },
        }
    }

    fn prior_nodule(id: u32, mean_mm: f64) -> PriorNodule {
        PriorNodule {
            id,
            tracking_uid: format!("2.25.9{id}"),
            centre_lps_mm: [0.0; 3],
            density: Density::Solid,
            long_axis_mm: mean_mm,
            short_axis_mm: mean_mm,
            mean_diameter_mm: mean_mm,
            volume_mm3: std::f64::consts::PI / 6.0 * mean_mm.powi(3),
            solid_core_mean_diameter_mm: None,
            lung_rads: Category::Two,
        }
    }

    fn change(prior_mm: f64, current_mm: f64, volume_change: Option<VolumeChange>) -> NoduleChange {
        NoduleChange {
            prior: prior_nodule(1, prior_mm),
            prior_mapped_lps_mm: [0.0; 3],
            match_distance_mm: 1.0,
            interval_days: Some(366.0),
            mean_diameter_change_mm: current_mm - prior_mm,
            solid_core_change_mm: None,
            volume_change_percent: ((current_mm / prior_mm).powi(3) - 1.0) * 100.0,
            volume_change,
            doubling_class: None,
            history: Vec::new(),
            found_on_prior_ct: false,
        }
    }

    fn follow_up() -> StudyFindings {
        let mut f = findings();
        f.nodules[0].status = Status::Growing;
        f.nodules[0].change = Some(change(21.9, 24.0, Some(VolumeChange::Growing { doubling_time_days: 245.4 })));
        f.nodules[1].status = Status::New;
        let unmatched = |id, disappearance| UnmatchedPrior { nodule: prior_nodule(id, 6.0), expected_lps_mm: [0.0; 3], disappearance };
        f.prior = Some(PriorComparison {
            study_uid: "1.2.9".into(),
            series_uid: "1.2.9.1".into(),
            study_date: Some("20240130".into()),
            interval_days: Some(367.0),
            prior_to_current: Affine::IDENTITY,
            registration: RegistrationQuality { lung_dice: 0.953, similarity: 0.9 },
            unmatched_prior: vec![unmatched(3, Disappearance::Resolved), unmatched(4, Disappearance::OutsideScan)],
            prior_objects: Vec::new(),
        });
        f
    }

    #[test]
    fn baseline_table_keeps_its_brock_column() {
        let mut f = findings();
        f.nodules.truncate(1);
        let text = summary(&f);
        let expected = [
            "nodules: 1",
            "  #  zone          type         long x short mm  mean mm  volume mm3  Lung-RADS  Brock",
            "  1  right upper   solid          24.5 x 23.5       24.0        7238  4B         -",
            "exam: Lung-RADS 4B: chest CT",
        ];
        assert!(text.contains(&expected.join("\n")), "{text}");
        assert!(!text.contains("prior"), "{text}");
    }

    #[test]
    fn follow_up_table_says_what_changed() {
        let f = follow_up();
        let table = nodule_table(&f);
        assert_eq!(table[0], "  #  zone          type         long x short mm  mean mm  vol mm3  Lung-RADS  change");
        assert_eq!(table[1], "  1  right upper   solid          24.5 x 23.5       24.0     7238  4B         +2.1 mm, VDT 245 d");
        assert!(table[2].ends_with("3          new"), "{}", table[2]);
        let text = summary(&f);
        assert!(text.contains("prior: CT of 2024-01-30, 367 days earlier, lung Dice 0.95 (study 1.2.9)\nnodules: 2\n"), "{text}");
        let unmatched = "prior nodules not seen: 3 (solid 6.0 mm, resolved), 4 (solid 6.0 mm, outside this scan, not evaluated)\nexam:";
        assert!(text.contains(unmatched), "{text}");
    }

    #[test]
    fn change_words() {
        let mut n = nodule(1, 8.0, Category::Two);
        n.status = Status::Stable;
        n.change = Some(change(8.0, 8.0, Some(VolumeChange::Stable)));
        assert_eq!(change_text(&n), "stable");
        n.change = Some(change(10.0, 8.0, Some(VolumeChange::Shrinking)));
        assert_eq!(change_text(&n), "shrinking");
        n.status = Status::SlowlyGrowing;
        assert_eq!(change_text(&n), "slowly growing");
        // Growing by diameter while the volume did not: no doubling time to give.
        n.status = Status::Growing;
        n.change = Some(change(6.0, 8.0, Some(VolumeChange::Stable)));
        assert_eq!(change_text(&n), "+2.0 mm");
        n.change = None;
        assert_eq!(change_text(&n), "growing");
    }

    #[test]
    fn the_widest_follow_up_row_fits_the_summary_page() {
        let mut f = follow_up();
        let n = &mut f.nodules[0];
        n.zone = None;
        n.measurements.density = Density::GroundGlass;
        n.measurements.long_axis_mm = 123.4;
        n.measurements.short_axis_mm = 110.2;
        n.measurements.mean_diameter_mm = 116.8;
        n.measurements.volume_mm3 = 834_567.0;
        n.change = Some(change(104.5, 116.8, Some(VolumeChange::Growing { doubling_time_days: 1234.0 })));
        let table = nodule_table(&f);
        assert!(table[1].ends_with("+12.3 mm, VDT 1234 d"), "{}", table[1]);
        assert!(table.iter().all(|l| l.chars().count() <= 98), "{table:#?}");
    }
}
