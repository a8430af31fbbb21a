//! `pulmo eval`: the pipeline on a phantom set with exact truth (fixed seeds the models never
//! saw) and on the real series in ../shared/data; writes eval.json and report.md.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use pulmo_analysis::{Pipeline, PriorExam, Stage};
use pulmo_findings::{NoduleFinding, PriorFindings, StudyFindings};
use pulmo_phantom::{FollowUpSpec, Phantom, PhantomSpec};
use serde::Serialize;

use crate::eval::follow_up::{self, PairRun};
use crate::eval::matching::match_study;
use crate::eval::report::{self, RealRun, StudyRun};

#[derive(clap::Args)]
pub struct Args {
    /// Phantom seeds: `A..B` (B excluded), `A..=B`, or a comma-separated list.
    #[arg(long, default_value = "5000..5030")]
    seeds: String,
    /// Nodules drawn per phantom study.
    #[arg(long, default_value_t = 6)]
    nodules: usize,
    /// Where eval.json and report.md go (and, while they are analysed, the phantom studies).
    #[arg(long)]
    out: PathBuf,
    /// Evaluate follow-up instead: each seed makes a prior and its follow-up (drawn motion up to
    /// 30 mm and 10 degrees, growth, a new nodule), scored on registration, matching, VDT and
    /// follow-up Lung-RADS; writes follow-up.json and follow-up.md.
    #[arg(long)]
    follow_up: bool,
    /// The shared data folder (ct/lung-pet-ct-dx-a0002, ct/tcga-thca-wholebody); skipped if absent.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    model: super::ModelArgs,
}

#[derive(Serialize)]
struct Evaluation<'a> {
    operating_threshold: f64,
    studies: &'a [StudyRun],
    real: &'a [RealRun],
}

pub fn run(args: Args) -> Result<()> {
    let seeds = parse_seeds(&args.seeds)?;
    let pipeline = args.model.load()?;
    if args.follow_up {
        return run_follow_up(&pipeline, &seeds, args.nodules, &args.out, args.data.as_deref());
    }
    let threshold = pipeline.operating_threshold();
    // Every candidate is measured so that the FROC curve covers all thresholds; what the
    // pipeline reports at its operating point is the findings at or above it.
    let pipeline = pipeline.with_threshold(0.0);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let bar = progress(seeds.len());
    let mut runs = Vec::new();
    for seed in seeds {
        bar.set_message(format!("phantom {seed}"));
        runs.push(phantom_run(&pipeline, seed, args.nodules, &args.out).with_context(|| format!("phantom seed {seed}"))?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let real = match &args.data {
        Some(dir) => real_runs(&pipeline, dir, threshold)?,
        None => Vec::new(),
    };
    let command = format!("pulmo eval {}", std::env::args().skip(2).collect::<Vec<_>>().join(" "));
    let markdown = report::markdown(&runs, threshold, &real, &command);
    let json = serde_json::to_string_pretty(&Evaluation { operating_threshold: threshold, studies: &runs, real: &real })?;
    std::fs::write(args.out.join("eval.json"), json)?;
    std::fs::write(args.out.join("report.md"), &markdown)?;
    print!("{markdown}");
    Ok(())
}

fn progress(len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

fn run_follow_up(pipeline: &Pipeline, seeds: &[u64], nodules: usize, out: &Path, data: Option<&Path>) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tcga = data.map(|d| d.join("ct/tcga-thca-wholebody")).filter(|d| d.exists());
    let bar = progress(seeds.len() + tcga.as_ref().map_or(0, |_| REAL_FOLLOW_UP_SEEDS.len()));
    let mut runs = Vec::new();
    for &seed in seeds {
        bar.set_message(format!("phantom pair {seed}"));
        runs.extend(pair_run(pipeline, seed, nodules, out).with_context(|| format!("phantom pair {seed}"))?);
        bar.inc(1);
    }
    let mut real = Vec::new();
    if let Some(dir) = tcga {
        let ct = pulmo_dicom::load_ct_path(&dir)?;
        for seed in REAL_FOLLOW_UP_SEEDS {
            bar.set_message(format!("real pair {seed}"));
            real.extend(real_pair_run(pipeline, &ct, seed, out).with_context(|| format!("real pair {seed}"))?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let command = format!("pulmo eval {}", std::env::args().skip(2).collect::<Vec<_>>().join(" "));
    let markdown = follow_up::markdown(&runs, &real, &command);
    let json = serde_json::json!({ "phantom_pairs": runs, "real_pairs": real });
    std::fs::write(out.join("follow-up.json"), serde_json::to_string_pretty(&json)?)?;
    std::fs::write(out.join("follow-up.md"), &markdown)?;
    print!("{markdown}");
    Ok(())
}

/// Seeds of the follow-ups made by insertion into the real TCGA series (none used elsewhere);
/// eight, so that enough grown nodules qualify for the VDT statistic.
const REAL_FOLLOW_UP_SEEDS: [u64; 8] = [7000, 7001, 7002, 7003, 7004, 7005, 7006, 7007];

/// A prior and its follow-up (180 or 365 days later), both written as DICOM and read back,
/// the prior analysed alone and the follow-up against it.
fn pair_run(pipeline: &Pipeline, seed: u64, nodules: usize, out: &Path) -> Result<Option<PairRun>> {
    let prior = pulmo_phantom::generate(&PhantomSpec::evaluation(seed, nodules))?;
    let spec = FollowUpSpec { seed, interval_days: [365, 180][(seed % 2) as usize], ..FollowUpSpec::default() };
    let current = pulmo_phantom::generate_follow_up(&prior.truth, &spec)?;
    compare_pair(pipeline, &prior, &current, &out.join(format!("pair-{seed}")))
}

/// Four nodules inserted into the real series, and a year later the same exam resampled under a
/// drawn rigid motion and S-I breathing scale (as phantom follow-ups move), with the nodules
/// moved along, grown (or resolved), and one new.
fn real_pair_run(pipeline: &Pipeline, ct: &pulmo_dicom::CtSeries, seed: u64, out: &Path) -> Result<Option<PairRun>> {
    let header = super::phantom::background_header(ct);
    let prior = pulmo_phantom::insert_into(ct.volume.clone(), &header, &PhantomSpec { seed, nodule_count: 4, ..PhantomSpec::default() })?;
    let spec = FollowUpSpec { seed: seed + 500, ..FollowUpSpec::default() };
    let current = pulmo_phantom::insert_follow_up(&prior.truth, ct.volume.clone(), &header, &spec)?;
    compare_pair(pipeline, &prior, &current, &out.join(format!("real-pair-{seed}")))
}

/// Writes both studies as DICOM under `dir`, reads them back, analyses the prior alone and the
/// follow-up against it, and scores the comparison.
fn compare_pair(pipeline: &Pipeline, prior: &Phantom, current: &Phantom, dir: &Path) -> Result<Option<PairRun>> {
    let (prior_dir, current_dir) = (dir.join("prior"), dir.join("follow-up"));
    pulmo_phantom::write_study(prior, &prior_dir)?;
    pulmo_phantom::write_study(current, &current_dir)?;
    let prior_ct = pulmo_dicom::load_ct_path(&prior_dir)?;
    let current_ct = pulmo_dicom::load_ct_path(&current_dir)?;
    let prior_findings = pipeline.analyze(&prior_ct, &mut |_| {})?.findings;
    let exam = PriorExam { ct: &prior_ct, findings: &PriorFindings::from(&prior_findings) };
    let findings = pipeline.analyze_with_prior(&current_ct, Some(exam), &mut |_| {})?.findings;
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    let seconds = findings.processing.stages.iter().filter(|s| s.stage.starts_with(Stage::FollowUp.name())).map(|s| s.seconds).sum();
    Ok(follow_up::score_pair(&prior.truth, &prior_findings, &current.truth, &findings, seconds))
}

fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let number = |s: &str| s.trim().parse::<u64>().with_context(|| format!("seed {s:?} in --seeds {text:?}"));
    let seeds: Vec<u64> = if let Some((a, b)) = text.split_once("..=") {
        (number(a)?..=number(b)?).collect()
    } else if let Some((a, b)) = text.split_once("..") {
        (number(a)?..number(b)?).collect()
    } else {
        text.split(',').map(number).collect::<Result<_>>()?
    };
    if seeds.is_empty() {
        bail!("--seeds {text:?} names no seed");
    }
    Ok(seeds)
}

/// Generates the study, writes it as DICOM, reads it back and analyses it, as a study
/// arriving at the node would be.
fn phantom_run(pipeline: &Pipeline, seed: u64, nodules: usize, out: &Path) -> Result<StudyRun> {
    let spec = PhantomSpec::evaluation(seed, nodules);
    let phantom = pulmo_phantom::generate(&spec)?;
    let dir = out.join(format!("phantom-{seed}"));
    pulmo_phantom::write_study(&phantom, &dir)?;
    let started = Instant::now();
    let ct = pulmo_dicom::load_ct_path(&dir)?;
    let analysis = pipeline.analyze(&ct, &mut |_| {})?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(StudyRun {
        seed,
        pixel_spacing_mm: spec.pixel_spacing_mm,
        slice_spacing_mm: spec.slice_spacing_mm,
        slices: spec.slices,
        seconds,
        matched: match_study(&phantom.truth, &analysis.findings),
    })
}

fn real_runs(pipeline: &Pipeline, data: &Path, threshold: f64) -> Result<Vec<RealRun>> {
    let a0002 = data.join("ct/lung-pet-ct-dx-a0002");
    let mut runs = Vec::new();
    for kernel in ["b40f", "b70f"] {
        let dir = a0002.join(kernel);
        if dir.exists() {
            let boxes = tumour_boxes(&a0002.join("annotations"))?;
            runs.push(real_run(pipeline, &dir, &format!("lung-pet-ct-dx-a0002 {kernel}"), threshold, Some(&boxes))?);
        }
    }
    let tcga = data.join("ct/tcga-thca-wholebody");
    if tcga.exists() {
        runs.push(real_run(pipeline, &tcga, "tcga-thca-wholebody", threshold, None)?);
    }
    Ok(runs)
}

fn real_run(pipeline: &Pipeline, dir: &Path, name: &str, threshold: f64, boxes: Option<&[(String, [f64; 4])]>) -> Result<RealRun> {
    let ct = pulmo_dicom::load_ct_path(dir)?;
    let findings = pipeline.analyze(&ct, &mut |_| {})?.findings;
    let reported: Vec<&NoduleFinding> = findings.nodules.iter().filter(|n| n.detection_probability >= threshold).collect();
    let inside: Vec<&&NoduleFinding> = boxes.map(|b| reported.iter().filter(|n| in_box(&findings, n, b)).collect()).unwrap_or_default();
    Ok(RealRun {
        name: name.into(),
        findings: reported.len(),
        target: inside.first().map(|n| describe(n)),
        inside: inside.len(),
        annotated: boxes.is_some(),
        listed: reported.iter().take(10).map(|n| describe(n)).collect(),
    })
}

fn describe(n: &NoduleFinding) -> String {
    let m = &n.measurements;
    let zone = n.zone.map_or("outside the lung masks".to_string(), |z| z.to_string());
    format!(
        "{zone}, {}, {:.1} x {:.1} mm (mean {:.1}), {:.0} mm3, mean {:.0} HU, sphericity {:.2}, probability {:.2}, Lung-RADS {}",
        m.density.label(),
        m.long_axis_mm,
        m.short_axis_mm,
        m.mean_diameter_mm,
        m.volume_mm3,
        m.hu.mean,
        m.sphericity,
        n.detection_probability,
        n.lung_rads.category.code()
    )
}

/// Whether a finding's centre lies in an annotated box on its slice or a neighbouring one.
fn in_box(findings: &StudyFindings, n: &NoduleFinding, boxes: &[(String, [f64; 4])]) -> bool {
    let [z, y, x] = findings.source.geometry.lps_to_index(n.measurements.centre_lps_mm);
    let slice = z.round();
    boxes.iter().any(|(sop, [xmin, ymin, xmax, ymax])| {
        let Some(k) = findings.source.slices.iter().position(|s| &s.sop_instance_uid == sop) else { return false };
        (k as f64 - slice).abs() <= 1.0 && (*xmin..=*xmax).contains(&x) && (*ymin..=*ymax).contains(&y)
    })
}

/// (SOP Instance UID, [xmin, ymin, xmax, ymax] in pixels) of each Pascal-VOC file in `dir`.
fn tumour_boxes(dir: &Path) -> Result<Vec<(String, [f64; 4])>> {
    let mut boxes = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let value = |tag: &str| -> Result<f64> {
            let open = format!("<{tag}>");
            let start = text.find(&open).with_context(|| format!("{}: no <{tag}>", path.display()))? + open.len();
            let v = text[start..].split('<').next().unwrap_or_default().trim();
            v.parse().with_context(|| format!("{}: <{tag}> {v:?} is not a number", path.display()))
        };
        let sop = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        boxes.push((sop, [value("xmin")?, value("ymin")?, value("xmax")?, value("ymax")?]));
    }
    Ok(boxes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_as_ranges_or_lists() {
        assert_eq!(parse_seeds("3..6").unwrap(), vec![3, 4, 5]);
        assert_eq!(parse_seeds("3..=5").unwrap(), vec![3, 4, 5]);
        assert_eq!(parse_seeds("7, 9").unwrap(), vec![7, 9]);
        assert!(parse_seeds("5..5").is_err());
        assert!(parse_seeds("x").unwrap_err().to_string().contains("\"x\""));
    }
}
