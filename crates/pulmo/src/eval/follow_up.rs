//! Follow-up evaluation: pulmo's comparison of a phantom follow-up with its prior against the
//! generator's truth (the true motion, which prior nodule each nodule is, its true growth).

use std::fmt::Write;

use pulmo_clinical::lung_rads::{self, Features, Previous, Status};
use pulmo_clinical::growth::VolumeChange;
use pulmo_findings::{NoduleFinding, StudyFindings};
use pulmo_phantom::{NoduleKind, NoduleShape, NoduleTruth, RigidMotion, Truth};
use pulmo_volume::vec3;
use serde::Serialize;

use super::matching::{match_study, StudyMatch};
use super::metrics::quantile;
use super::report::{expected_density, kind_name};

/// VDT error is judged where growth is measurable: nodules of at least this mean diameter...
const VDT_MIN_DIAMETER_MM: f64 = 6.0;
/// ...whose true volume changed by at least this fraction.
const VDT_MIN_VOLUME_CHANGE: f64 = 0.25;

/// One phantom pair: the prior, its follow-up, and how pulmo's comparison scored.
#[derive(Debug, Clone, Serialize)]
pub struct PairRun {
    pub seed: u64,
    pub interval_days: u32,
    pub motion: RigidMotion,
    pub breathing_scale_si: f64,
    /// Wall time of the follow-up stage (lungs of the prior, registration, matching), s.
    pub follow_up_seconds: f64,
    pub lung_dice: f64,
    /// |estimated - true| mapping of every prior truth nodule centre by the global registration, mm.
    pub global_errors_mm: Vec<f64>,
    /// The same after the local refinement, at the prior nodules pulmo matched, mm.
    pub refined_errors_mm: Vec<f64>,
    pub links: Vec<Link>,
}

/// A true nodule of the follow-up that pulmo reported, and what pulmo linked it to.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub truth_id: u32,
    pub kind: NoduleKind,
    pub mean_diameter_mm: f64,
    /// The truth's prior nodule, when it existed and pulmo reported it on the prior.
    pub expected_prior: Option<u32>,
    /// Whether the truth calls it new (or its prior nodule went unreported).
    pub truly_new: bool,
    /// Whether the truth has a prior nodule for it (reported by pulmo on the prior or not).
    pub had_prior: bool,
    /// The prior finding pulmo matched it to.
    pub linked_prior: Option<u32>,
    /// pulmo found it on the prior's CT, its prior findings having missed it.
    pub found_on_prior_ct: bool,
    pub correct: bool,
    pub true_vdt_days: Option<f64>,
    pub true_volume_ratio: Option<f64>,
    pub vdt_days: Option<f64>,
    pub lung_rads_truth: String,
    pub lung_rads: String,
}

/// Scores pulmo's follow-up findings `current` (compared with `prior`) against the truths.
pub fn score_pair(prior_truth: &Truth, prior: &StudyFindings, truth: &Truth, current: &StudyFindings, follow_up_seconds: f64) -> Option<PairRun> {
    let fu = truth.follow_up.as_ref()?;
    let comparison = current.prior.as_ref()?;
    let prior_match = match_study(prior_truth, prior);
    let current_match = match_study(truth, current);
    let global_errors_mm = prior_truth
        .nodules
        .iter()
        .filter(|n| n.in_field_of_view)
        .map(|n| vec3::dist(comparison.prior_to_current.apply(n.centre_lps_mm), fu.prior_to_current.apply(n.centre_lps_mm)))
        .collect();
    let refined_errors_mm = current
        .nodules
        .iter()
        .filter_map(|f| f.change.as_ref())
        .map(|c| vec3::dist(c.prior_mapped_lps_mm, fu.prior_to_current.apply(c.prior.centre_lps_mm)))
        .collect();
    let links = current_match
        .truth
        .iter()
        .filter_map(|row| {
            let found = row.found.as_ref()?;
            let finding = current.nodules.iter().find(|f| f.id == found.finding_id)?;
            Some(link(prior_truth, &prior_match, truth, truth.nodule(row.id)?, finding))
        })
        .collect();
    Some(PairRun {
        seed: truth.seed,
        interval_days: fu.interval_days,
        motion: fu.motion,
        breathing_scale_si: fu.breathing_scale_si,
        follow_up_seconds,
        lung_dice: comparison.registration.lung_dice,
        global_errors_mm,
        refined_errors_mm,
        links,
    })
}

fn link(prior_truth: &Truth, prior_match: &StudyMatch, truth: &Truth, n: &NoduleTruth, finding: &NoduleFinding) -> Link {
    let fu = truth.follow_up.as_ref();
    let prior_id = fu.and_then(|f| f.matching.iter().find(|m| m.current == n.id)).and_then(|m| m.prior);
    let expected_prior = prior_id.and_then(|id| {
        let row = prior_match.truth.iter().find(|r| r.id == id)?;
        row.found.as_ref().map(|f| f.finding_id)
    });
    let found_on_prior_ct = finding.change.as_ref().is_some_and(|c| c.found_on_prior_ct);
    let linked_prior = finding.change.as_ref().filter(|c| !c.found_on_prior_ct).map(|c| c.prior.id);
    let vdt_days = match finding.change.as_ref().and_then(|c| c.volume_change) {
        Some(VolumeChange::Growing { doubling_time_days }) => Some(doubling_time_days),
        _ => None,
    };
    Link {
        truth_id: n.id,
        kind: n.kind,
        mean_diameter_mm: n.mean_diameter_mm,
        expected_prior,
        truly_new: expected_prior.is_none(),
        had_prior: prior_id.is_some(),
        linked_prior,
        found_on_prior_ct,
        // A nodule whose prior went unreported is right to be new or found on the prior's CT,
        // wrong to be linked; a truly new one is wrong to be found there.
        correct: match found_on_prior_ct {
            true => prior_id.is_some() && expected_prior.is_none(),
            false => linked_prior == expected_prior,
        },
        true_vdt_days: n.growth.as_ref().and_then(|g| g.vdt_days),
        true_volume_ratio: n.growth.as_ref().map(|g| g.volume_ratio),
        vdt_days,
        lung_rads_truth: truth_category(prior_truth, prior_id, n, fu.map_or(0, |f| f.interval_days)).code().to_string(),
        lung_rads: finding.lung_rads.category.code().to_string(),
    }
}

/// The follow-up category the truth implies: pulmo-clinical's rules on the true sizes and
/// shapes (a spiculated nodule is suspicious: 4X), with the prior nodule's true baseline
/// category for stepped management.
fn truth_category(prior_truth: &Truth, prior_id: Option<u32>, n: &NoduleTruth, interval_days: u32) -> lung_rads::Category {
    let prior = prior_id.and_then(|id| prior_truth.nodule(id));
    let status = match prior {
        None => Status::New,
        Some(p) => lung_rads::follow_up_status(&[
            lung_rads::Measured { day: -(interval_days as f64), mean_diameter_mm: p.mean_diameter_mm },
            lung_rads::Measured { day: 0.0, mean_diameter_mm: n.mean_diameter_mm },
        ])
        .unwrap_or(Status::Stable),
    };
    let solid = |t: &NoduleTruth| t.solid_core.as_ref().map_or(0.0, |c| c.mean_diameter_mm);
    let previous = prior.and_then(|p| {
        let category = serde_json::to_value(p.lung_rads_size_category).ok().and_then(|v| serde_json::from_value(v).ok())?;
        Some(Previous { category, density: expected_density(p.kind), mean_diameter_mm: p.mean_diameter_mm, solid_component_mm: solid(p) })
    });
    lung_rads::assess(&lung_rads::Nodule {
        density: expected_density(n.kind),
        mean_diameter_mm: n.mean_diameter_mm,
        solid_component_mm: solid(n),
        status,
        features: Features { benign: n.kind == NoduleKind::Calcified, suspicious: n.shape == NoduleShape::Spiculated, ..Features::default() },
        previous,
    })
    .category
}

/// The follow-up section of docs/accuracy.md: the phantom pairs, then the pairs made by
/// inserting nodules into a real series (when there are any).
pub fn markdown(runs: &[PairRun], real: &[PairRun], command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Produced by `{command}`.\n");
    let (shifts, angles) = motion_ranges(runs);
    let _ = writeln!(
        out,
        "### Set\n\n{} phantom pairs (prior + follow-up); shifts {:.1}-{:.1} mm, largest rotation per pair {:.1}-{:.1} degrees; intervals {}-{} days; {} true nodules of the follow-ups reported by pulmo.\n",
        runs.len(),
        min(&shifts), max(&shifts), min(&angles), max(&angles),
        runs.iter().map(|r| r.interval_days).min().unwrap_or(0),
        runs.iter().map(|r| r.interval_days).max().unwrap_or(0),
        runs.iter().map(|r| r.links.len()).sum::<usize>()
    );
    sections(&mut out, runs, "###");
    if !real.is_empty() {
        let (shifts, angles) = motion_ranges(real);
        let _ = writeln!(
            out,
            "### Real CT with inserted nodules\n\n{} pairs: nodules inserted into the real tcga-thca-wholebody series; the follow-up {} days later is the same real exam resampled under a drawn rigid motion and S-I breathing scale (rotation and scale about the lungs' centroid; shifts {:.1}-{:.1} mm, largest rotation per pair {:.1}-{:.1} degrees), with the nodules moved along, grown (or resolved), and new ones inserted. These pairs test registration, matching, growth and VDT on real lungs. {} true nodules of the follow-ups reported by pulmo.\n",
            real.len(),
            real.iter().map(|r| r.interval_days).max().unwrap_or(0),
            min(&shifts), max(&shifts), min(&angles), max(&angles),
            real.iter().map(|r| r.links.len()).sum::<usize>()
        );
        sections(&mut out, real, "####");
    }
    out
}

/// Per pair: the shift's length (mm) and the largest Euler angle (degrees) of the true motion.
fn motion_ranges(runs: &[PairRun]) -> (Vec<f64>, Vec<f64>) {
    let shifts = runs.iter().map(|r| vec3::norm(r.motion.translation_mm)).collect();
    let angles = runs.iter().map(|r| r.motion.rotation_deg.iter().map(|a| a.abs()).fold(0.0, f64::max)).collect();
    (shifts, angles)
}

fn sections(out: &mut String, runs: &[PairRun], level: &str) {
    let links: Vec<&Link> = runs.iter().flat_map(|r| &r.links).collect();
    registration_section(out, runs, level);
    matching_section(out, &links, level);
    vdt_section(out, &links, level);
    lung_rads_section(out, &links, level);
}

fn registration_section(out: &mut String, runs: &[PairRun], level: &str) {
    let global: Vec<f64> = runs.iter().flat_map(|r| r.global_errors_mm.iter().copied()).collect();
    let refined: Vec<f64> = runs.iter().flat_map(|r| r.refined_errors_mm.iter().copied()).collect();
    let seconds: Vec<f64> = runs.iter().map(|r| r.follow_up_seconds).collect();
    let dice: Vec<f64> = runs.iter().map(|r| r.lung_dice).collect();
    let _ = writeln!(out, "{level} Registration\n\nError at nodule centres: |pulmo's mapping - true mapping| of the prior's true nodule centres (goal: median <= 2 mm).\n");
    let _ = writeln!(out, "| mapping | points | median mm | 90th percentile mm | max mm |\n|---|---|---|---|---|");
    for (name, values) in [("global (lung masks, affine)", &global), ("refined at matched nodules (local rigid)", &refined)] {
        let _ = writeln!(out, "| {name} | {} | {} | {} | {} |", values.len(), q(values, 0.5), q(values, 0.9), q(values, 1.0));
    }
    let _ = writeln!(out, "\nLung Dice after registration: median {:.3}. Follow-up stage time per pair (prior's lungs, registration, refinement, matching): median {} s.\n", quantile(&dice, 0.5).unwrap_or(f64::NAN), q(&seconds, 0.5));
}

fn matching_section(out: &mut String, links: &[&Link], level: &str) {
    let both: Vec<&&Link> = links.iter().filter(|l| !l.truly_new).collect();
    let new: Vec<&&Link> = links.iter().filter(|l| l.truly_new).collect();
    let ok = |v: &[&&Link]| v.iter().filter(|l| l.correct).count();
    let _ = writeln!(out, "{level} Matching\n\nAmong true nodules pulmo reported on the follow-up: those whose prior nodule pulmo also reported must link to that finding (goal 100%); the rest must be new.\n");
    let _ = writeln!(out, "| population | nodules | correct | accuracy |\n|---|---|---|---|");
    for (name, v) in [("reported on both exams", &both), ("new (or prior unreported)", &new)] {
        let _ = writeln!(out, "| {name} | {} | {} | {} |", v.len(), ok(v), pct(ok(v), v.len()));
    }
    let unreported: Vec<&&Link> = new.iter().copied().filter(|l| l.had_prior).collect();
    let found = unreported.iter().filter(|l| l.found_on_prior_ct).count();
    let _ = writeln!(out, "\nOf the {} whose prior nodule pulmo did not report on the prior, {found} were found on the prior's CT (followed from what was measured there); {} truly new nodules were wrongly found there.", unreported.len(), new.iter().filter(|l| !l.had_prior && l.found_on_prior_ct).count());
    for l in links.iter().filter(|l| !l.correct) {
        let how = if l.found_on_prior_ct { "found on the prior's CT" } else { "linked to prior finding" };
        let _ = writeln!(out, "\n- wrong: truth {} ({} {:.1} mm) {how} {:?}, expected {:?}", l.truth_id, kind_name(l.kind), l.mean_diameter_mm, l.linked_prior, l.expected_prior);
    }
    let _ = writeln!(out);
}

fn vdt_section(out: &mut String, links: &[&Link], level: &str) {
    let growing: Vec<&&Link> = links
        .iter()
        .filter(|l| l.correct && l.mean_diameter_mm >= VDT_MIN_DIAMETER_MM)
        .filter(|l| l.true_volume_ratio.is_some_and(|r| r >= 1.0 + VDT_MIN_VOLUME_CHANGE))
        .collect();
    let judged: Vec<f64> =
        growing.iter().filter_map(|l| Some(((l.vdt_days? - l.true_vdt_days?) / l.true_vdt_days?).abs() * 100.0)).collect();
    let growing = growing.len();
    let _ = writeln!(out, "{level} Volume doubling time\n\nCorrectly followed nodules (matched, or found on the prior's CT) >= {VDT_MIN_DIAMETER_MM} mm whose true volume grew by >= {:.0}%: {} with a VDT from pulmo out of {growing} growing (goal: median error <= 10%).\n", VDT_MIN_VOLUME_CHANGE * 100.0, judged.len());
    let _ = writeln!(out, "| median error % | 90th percentile % |\n|---|---|\n| {} | {} |\n", q(&judged, 0.5), q(&judged, 0.9));
}

fn lung_rads_section(out: &mut String, links: &[&Link], level: &str) {
    let agree = links.iter().filter(|l| l.lung_rads == l.lung_rads_truth).count();
    let _ = writeln!(out, "{level} Lung-RADS follow-up category\n\nTruth: pulmo-clinical's v2022 follow-up rules on the true sizes and the prior's true category. Agreement {} of {} ({}).\n", agree, links.len(), pct(agree, links.len()));
}

fn q(values: &[f64], p: f64) -> String {
    quantile(values, p).map_or("-".into(), |v| format!("{v:.1}"))
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 { "-".into() } else { format!("{:.1}%", 100.0 * n as f64 / of as f64) }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
