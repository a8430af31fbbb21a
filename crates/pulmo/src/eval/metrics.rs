//! Detection and measurement statistics: FROC curves, the CPM score (mean sensitivity at 1/8
//! to 8 false positives per scan), medians and percentiles.

use serde::Serialize;

use super::matching::{FalsePositive, TruthRow};

/// The false-positive rates the CPM averages over (LUNA16's).
pub const CPM_RATES: [f64; 7] = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FrocPoint {
    pub threshold: f64,
    pub fp_per_scan: f64,
    pub sensitivity: f64,
}

/// The FROC curve of a population of truth nodules: at each finding probability, the share of
/// the population found at or above it and the false positives per scan. Findings on nodules
/// outside the population count as neither.
pub fn froc(population: &[&TruthRow], false_positives: &[FalsePositive], scans: usize) -> Vec<FrocPoint> {
    let mut scored: Vec<(f64, bool)> = population.iter().filter_map(|r| r.found.as_ref().map(|f| (f.probability, true))).collect();
    scored.extend(false_positives.iter().map(|f| (f.probability, false)));
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (positives, scans) = (population.len().max(1) as f64, scans.max(1) as f64);
    let (mut hits, mut fps, mut points) = (0usize, 0usize, Vec::new());
    for (i, (p, hit)) in scored.iter().enumerate() {
        if *hit { hits += 1 } else { fps += 1 }
        // One point per distinct probability: ties enter together.
        if scored.get(i + 1).is_none_or(|next| next.0 < *p) {
            points.push(FrocPoint { threshold: *p, fp_per_scan: fps as f64 / scans, sensitivity: hits as f64 / positives });
        }
    }
    points
}

/// Highest sensitivity with at most `rate` false positives per scan (0 if none).
pub fn sensitivity_at(curve: &[FrocPoint], rate: f64) -> f64 {
    curve.iter().filter(|p| p.fp_per_scan <= rate).map(|p| p.sensitivity).fold(0.0, f64::max)
}

/// The curve's point at a probability threshold: what the pipeline reports there.
pub fn at_threshold(curve: &[FrocPoint], threshold: f64) -> FrocPoint {
    curve.iter().rev().find(|p| p.threshold >= threshold).copied().unwrap_or(FrocPoint { threshold, fp_per_scan: 0.0, sensitivity: 0.0 })
}

pub fn cpm(curve: &[FrocPoint]) -> f64 {
    CPM_RATES.iter().map(|r| sensitivity_at(curve, *r)).sum::<f64>() / CPM_RATES.len() as f64
}

/// The `q` quantile (0..1, nearest rank); `None` for no values.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::super::matching::{Found, Shape};
    use super::*;
    use pulmo_phantom::NoduleKind;

    fn shape() -> Shape {
        Shape {
            long_axis_mm: 8.0,
            longest_3d_mm: 8.5,
            volume_mm3: 270.0,
            sphericity: 0.9,
            hu_mean: 20.0,
            hu_sd: 30.0,
            juxtapleural: false,
            density: pulmo_clinical::Density::Solid,
            solid_component_mm: None,
        }
    }

    fn row(found: Option<f64>) -> TruthRow {
        TruthRow {
            study: 1,
            id: 1,
            kind: NoduleKind::Solid,
            shape: "spherical".into(),
            attachment: "isolated".into(),
            mean_diameter_mm: 8.0,
            volume_mm3: 268.0,
            lung_rads: "3".into(),
            lung_rads_size: "3".into(),
            found: found.map(|p| Found {
                finding_id: 1,
                probability: p,
                shape: shape(),
                distance_mm: 0.5,
                mean_diameter_mm: 8.0,
                volume_mm3: 270.0,
                density: pulmo_clinical::Density::Solid,
                lung_rads: "3".into(),
                spicules: Some(0),
                spiculated: Some(false),
                spiculation_probability: None,
                margin_irregularity: None,
            }),
        }
    }

    fn fp(p: f64) -> FalsePositive {
        FalsePositive { study: 1, probability: p, mean_diameter_mm: 4.0, shape: shape() }
    }

    #[test]
    fn froc_counts_hits_and_false_positives_by_threshold() {
        // Four nodules (one missed), two scans; findings by probability: 0.9 hit, 0.8 FP,
        // 0.7 hit, 0.6 FP, 0.6 FP (tie), 0.5 hit.
        let rows = [row(Some(0.9)), row(Some(0.7)), row(Some(0.5)), row(None)];
        let population: Vec<&TruthRow> = rows.iter().collect();
        let curve = froc(&population, &[fp(0.8), fp(0.6), fp(0.6)], 2);
        let got: Vec<(f64, f64, f64)> = curve.iter().map(|p| (p.threshold, p.fp_per_scan, p.sensitivity)).collect();
        assert_eq!(got, vec![(0.9, 0.0, 0.25), (0.8, 0.5, 0.25), (0.7, 0.5, 0.5), (0.6, 1.5, 0.5), (0.5, 1.5, 0.75)]);
        assert_eq!(sensitivity_at(&curve, 0.125), 0.25);
        assert_eq!(sensitivity_at(&curve, 1.0), 0.5);
        assert_eq!(sensitivity_at(&curve, 8.0), 0.75);
        // 0.25 at 1/8, 1/4; 0.5 at 1/2, 1; 0.75 at 2, 4, 8.
        assert!((cpm(&curve) - (0.25 * 2.0 + 0.5 * 2.0 + 0.75 * 3.0) / 7.0).abs() < 1e-12);
        assert_eq!(at_threshold(&curve, 0.65).sensitivity, 0.5);
        assert_eq!(at_threshold(&curve, 0.65).fp_per_scan, 0.5);
        assert_eq!(at_threshold(&curve, 0.95).sensitivity, 0.0);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.9), Some(5.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
