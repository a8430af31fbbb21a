//! The findings as a few lines of plain text: what the CLI prints, the node logs at debug level
//! and the demo shows. No patient identity appears in it.

use std::fmt::Write;

use crate::study::StudyFindings;

/// One line per nodule under a header, then the exam's Lung-RADS category and management.
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
    let _ = writeln!(out, "nodules: {}", f.nodules.len());
    for line in nodule_table(f) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "exam: Lung-RADS {}: {}", f.exam.lung_rads.code(), f.exam.management);
    out
}

/// The nodules as a table: a header line, then one line per nodule (none without nodules).
/// The CLI prints it and the summary page draws it.
pub fn nodule_table(f: &StudyFindings) -> Vec<String> {
    if f.nodules.is_empty() {
        return Vec::new();
    }
    let mut lines = vec!["  #  zone          type         long x short mm  mean mm  volume mm3  Lung-RADS  Brock".to_string()];
    for n in &f.nodules {
        let m = &n.measurements;
        let zone = n.zone.map_or("outside lungs".to_string(), |z| z.to_string());
        let brock = n.brock.as_ref().map_or("-".to_string(), |r| format!("{:.1}%", 100.0 * r.estimate.probability));
        lines.push(format!(
            "{:>3}  {zone:<13} {:<12} {:>6.1} x {:<6.1}  {:>7.1}  {:>10.0}  {:<9}  {brock}",
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
