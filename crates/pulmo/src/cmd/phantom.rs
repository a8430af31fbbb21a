//! `pulmo phantom`: synthetic chest CT studies with exact truth (baseline, follow-up of an
//! earlier phantom, or nodules inserted into a real series), written as DICOM + truth.json.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use pulmo_phantom::{BackgroundHeader, FollowUpSpec, PatientInfo, Phantom, PhantomSpec, Truth};

#[derive(clap::Args)]
pub struct Args {
    /// Everything random (anatomy, nodules, noise, UIDs) derives from this seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder for the DICOM files and truth.json (created).
    #[arg(long)]
    out: PathBuf,
    /// Rows = columns of each slice.
    #[arg(long, default_value_t = 512)]
    rows: usize,
    /// Number of slices (default: enough to cover 300 mm).
    #[arg(long)]
    slices: Option<usize>,
    /// In-plane pixel spacing, mm (clinical range 0.6 to 1.0).
    #[arg(long, default_value_t = 0.7)]
    pixel_spacing: f64,
    /// Distance between slices, mm (clinical range 0.625 to 5).
    #[arg(long, default_value_t = 1.25)]
    slice_spacing: f64,
    /// Slice thickness, mm (default: the slice spacing).
    #[arg(long)]
    thickness: Option<f64>,
    /// Image noise (standard deviation), HU.
    #[arg(long, default_value_t = 20.0)]
    noise: f64,
    /// Number of nodules.
    #[arg(long, default_value_t = 6)]
    nodules: usize,
    /// Make a follow-up of the phantom study in this folder (reads its truth.json).
    #[arg(long, conflicts_with = "background")]
    prior: Option<PathBuf>,
    /// Days between the prior and the follow-up.
    #[arg(long, default_value_t = 365, requires = "prior")]
    days: u32,
    /// New nodules in the follow-up.
    #[arg(long, default_value_t = 1, requires = "prior")]
    new_nodules: usize,
    /// Insert the nodules into this real CT series instead of synthetic anatomy.
    #[arg(long)]
    background: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spinner = progress("generating phantom");
    let phantom = match (&args.prior, &args.background) {
        (Some(prior), _) => follow_up(&args, prior)?,
        (None, Some(background)) => insertion(&args, background)?,
        (None, None) => pulmo_phantom::generate(&baseline_spec(&args))?,
    };
    spinner.set_message("writing DICOM");
    let files = pulmo_phantom::write_study(&phantom, &args.out)
        .with_context(|| format!("writing the study to {}", args.out.display()))?;
    spinner.finish_and_clear();
    let [nz, ny, nx] = phantom.volume.dims();
    println!(
        "wrote {} files ({nz} slices of {ny}x{nx}) and truth.json with {} nodule(s) to {}",
        files.len(),
        phantom.truth.nodules.len(),
        args.out.display()
    );
    Ok(())
}

fn baseline_spec(args: &Args) -> PhantomSpec {
    let defaults = PhantomSpec::default();
    PhantomSpec {
        seed: args.seed,
        rows: args.rows,
        slices: args.slices.unwrap_or_else(|| pulmo_phantom::slices_for_coverage(300.0, args.slice_spacing)),
        pixel_spacing_mm: args.pixel_spacing,
        slice_spacing_mm: args.slice_spacing,
        slice_thickness_mm: args.thickness.unwrap_or(args.slice_spacing),
        noise_hu: args.noise,
        nodule_count: args.nodules,
        ..defaults
    }
}

fn follow_up(args: &Args, prior: &Path) -> anyhow::Result<Phantom> {
    let truth = Truth::read(&prior.join("truth.json"))
        .with_context(|| format!("{} is not a pulmo phantom study (no readable truth.json)", prior.display()))?;
    let spec = FollowUpSpec {
        seed: args.seed,
        interval_days: args.days,
        new_nodules: args.new_nodules,
        slices: args.slices,
        noise_hu: Some(args.noise),
        ..FollowUpSpec::default()
    };
    Ok(pulmo_phantom::generate_follow_up(&truth, &spec)?)
}

fn insertion(args: &Args, background: &Path) -> anyhow::Result<Phantom> {
    let ct = pulmo_dicom::load_ct_path(background)?;
    let header = background_header(&ct);
    Ok(pulmo_phantom::insert_into(ct.volume, &header, &baseline_spec(args))?)
}

/// What an insertion keeps of the real series: patient, date and time, UIDs, thickness
/// (defaults where the header lacks one or it is malformed).
pub(crate) fn background_header(ct: &pulmo_dicom::CtSeries) -> BackgroundHeader {
    let p = &ct.patient_study;
    let defaults = BackgroundHeader::default();
    let patient = PatientInfo {
        id: p.patient_id.clone().unwrap_or(defaults.patient.id.clone()),
        name: p.patient_name.clone().unwrap_or(defaults.patient.name.clone()),
        birth_date: p.birth_date.clone().filter(|d| d.len() == 8).unwrap_or(defaults.patient.birth_date.clone()),
        sex: p.sex.clone().filter(|s| matches!(s.as_str(), "M" | "F" | "O")).unwrap_or(defaults.patient.sex.clone()),
    };
    BackgroundHeader {
        patient,
        study_date: p.study_date.clone().unwrap_or(defaults.study_date.clone()),
        study_time: p.study_time.clone().map(|t| t.chars().take(6).collect()).unwrap_or(defaults.study_time.clone()),
        source_study_instance_uid: Some(p.study_uid.clone()),
        source_series_instance_uid: Some(ct.series_uid.clone()),
        slice_thickness_mm: ct.slice_thickness,
        kvp: None,
    }
}

fn progress(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
