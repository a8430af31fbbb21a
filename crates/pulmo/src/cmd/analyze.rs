//! `pulmo analyze DIR --out OUTDIR [--prior PRIOR_DIR]`: the whole pipeline on one CT series
//! from files, with a progress bar, compared with the patient's prior CT when given; writes
//! findings.json, one surface mesh per nodule and the DICOM objects (SEG, SR, summary page,
//! key images), prints a summary.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use pulmo_analysis::{Analysis, Pipeline, PriorExam, Progress, Stage};
use pulmo_dicom::write::StudyContext;
use pulmo_dicom::report::read_prior_report;
use pulmo_dicom::{CtSeries, DicomFile};
use pulmo_findings::{PriorFindings, PriorObject, StageTime, StudyFindings};

use crate::outputs;

#[derive(clap::Args)]
pub struct Args {
    /// A folder of DICOM files (searched recursively) or one file, holding one CT series.
    input: PathBuf,
    /// Where findings.json, the nodule meshes and the DICOM objects go (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    model: super::ModelArgs,
    /// The patient's earlier CT series (folder or file): nodules are matched with its nodules,
    /// and growth and volume doubling time reported.
    #[arg(long)]
    prior: Option<PathBuf>,
    /// findings.json or sr.dcm of an earlier `pulmo analyze` of the --prior series (or pulmo's
    /// SR of it from the PACS); without it the prior is analysed first.
    #[arg(long, requires = "prior")]
    prior_findings: Option<PathBuf>,
    /// Mesh file format for the nodule surfaces.
    #[arg(long, value_enum, default_value_t = MeshFormat::Stl)]
    mesh_format: MeshFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MeshFormat {
    Stl,
    Obj,
}

pub fn run(args: Args) -> Result<()> {
    let bar = progress_bar();
    bar.set_message("loading models");
    let pipeline = args.model.load()?;
    bar.set_message(format!("reading {}", args.input.display()));
    let started = Instant::now();
    let ct = pulmo_dicom::load_ct_path(&args.input).with_context(|| format!("loading a CT series from {}", args.input.display()))?;
    let loading = started.elapsed().as_secs_f64();
    bar.inc(1);
    let prior = match &args.prior {
        Some(dir) => Some(load_prior(&pipeline, dir, args.prior_findings.as_deref(), &bar)?),
        None => None,
    };
    let prior_exam = prior.as_ref().map(|p| PriorExam { ct: &p.ct, findings: &p.findings });
    let mut analysis = pipeline
        .analyze_with_prior(&ct, prior_exam, &mut |p| show(&bar, p))
        .with_context(|| format!("analysing {}", args.input.display()))?;
    if let (Some(comparison), Some(prior)) = (analysis.findings.prior.as_mut(), prior) {
        comparison.prior_objects = prior.objects;
    }
    bar.finish_and_clear();
    analysis.findings.processing.stages.insert(0, StageTime { stage: "load".into(), seconds: loading });
    write_outputs(&mut analysis, &args.out, args.mesh_format)?;
    write_dicom(&analysis.findings, &ct, &args.out)?;
    print!("{}", pulmo_findings::summary(&analysis.findings));
    println!("written to {}", args.out.display());
    Ok(())
}

/// The prior exam as a follow-up needs it: its CT and findings.
struct Prior {
    ct: CtSeries,
    findings: PriorFindings,
    /// pulmo's SR (and its SEG) of the prior when the findings come from that SR.
    objects: Vec<PriorObject>,
}

/// The prior CT and its findings: read from `findings` (findings.json of that series, or
/// pulmo's SR of it), or made now.
fn load_prior(pipeline: &Pipeline, dir: &Path, findings: Option<&Path>, bar: &ProgressBar) -> Result<Prior> {
    bar.set_message(format!("reading the prior {}", dir.display()));
    let ct = pulmo_dicom::load_ct_path(dir).with_context(|| format!("loading the prior CT series from {}", dir.display()))?;
    let (findings, objects) = match findings {
        Some(path) if is_dicom(path) => {
            let file = DicomFile::open(path).with_context(|| format!("reading {}", path.display()))?;
            let report = read_prior_report(&file, &ct.source_series())?;
            (report.findings, report.objects)
        }
        Some(path) => (PriorFindings::from(&findings_json(path, &ct, dir)?), Vec::new()),
        None => {
            bar.set_message("analysing the prior");
            let analysis = pipeline.analyze(&ct, &mut |_| {}).with_context(|| format!("analysing the prior {}", dir.display()))?;
            (PriorFindings::from(&analysis.findings), Vec::new())
        }
    };
    Ok(Prior { ct, findings, objects })
}

/// A Part-10 file starts with its 128-byte preamble and "DICM".
fn is_dicom(path: &Path) -> bool {
    let mut head = [0u8; 132];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok() && &head[128..] == b"DICM"
}

fn findings_json(path: &Path, ct: &CtSeries, dir: &Path) -> Result<StudyFindings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let findings: StudyFindings = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if findings.source.series_uid != ct.series_uid {
        bail!("{} is about series {}, but the prior {} is series {}", path.display(), findings.source.series_uid, dir.display(), ct.series_uid);
    }
    Ok(findings)
}

/// One step for loading, then a hundred per stage (measurement advances per detection).
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(1 + 100 * Stage::ALL.len() as u64);
    let style = ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}

fn show(bar: &ProgressBar, p: Progress) {
    let index = Stage::ALL.iter().position(|s| *s == p.stage).unwrap_or(0) as u64;
    let within = if p.total == 0 { 0 } else { 100 * p.done as u64 / p.total as u64 };
    bar.set_position(1 + 100 * index + within);
    match p.stage {
        Stage::Measurement => bar.set_message(format!("measurement ({} of {} detections)", p.done, p.total)),
        stage => bar.set_message(stage.name()),
    }
}

/// The DICOM objects (`seg.dcm` with nodules, `sr.dcm`, `summary.dcm`, `key-images.dcm`).
/// Same series, algorithm and models, same UIDs: sending the files again replaces them in a
/// PACS.
fn write_dicom(findings: &StudyFindings, ct: &CtSeries, out: &Path) -> Result<()> {
    let study = StudyContext::from(&ct.patient_study);
    let models: Vec<&str> = findings.algorithm.models.iter().map(|m| m.sha256.get(..12).unwrap_or(&m.sha256)).collect();
    let seed = format!("{}/{}-{}/{}", findings.source.series_uid, findings.algorithm.name, findings.algorithm.version, models.join("+"));
    for object in outputs::study_objects(findings, &ct.volume, &study, &seed).context("building the DICOM objects")? {
        let path = out.join(object.file_name);
        std::fs::write(&path, object.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Meshes first, so that findings.json names only files that exist.
fn write_outputs(analysis: &mut Analysis, out: &Path, format: MeshFormat) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (nodule, surface) in analysis.findings.nodules.iter_mut().zip(&analysis.surfaces) {
        let (name, extension) = (format!("nodule-{}", nodule.id), match format {
            MeshFormat::Stl => "stl",
            MeshFormat::Obj => "obj",
        });
        let file = format!("{name}.{extension}");
        let path = out.join(&file);
        let w = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        match format {
            MeshFormat::Stl => surface.write_stl(w),
            MeshFormat::Obj => surface.write_obj(w),
        }
        .with_context(|| format!("writing {}", path.display()))?;
        nodule.mesh_file = Some(file);
    }
    let path = out.join("findings.json");
    let w = BufWriter::new(File::create(&path).with_context(|| format!("creating {}", path.display()))?);
    serde_json::to_writer_pretty(w, &analysis.findings).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
