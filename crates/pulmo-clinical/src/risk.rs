//! Malignancy probability of a nodule by two published logistic models: Brock (PanCan full
//! model; McWilliams, NEJM 2013) and Mayo (Swensen, Arch Intern Med 1997). Each estimate keeps
//! its inputs and says which unknown inputs were assumed, and how.

use serde::{Deserialize, Serialize};

use crate::density::Density;

/// Inputs of the Brock model. `None` means the DICOM header and the images do not say.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BrockInputs {
    pub age_years: f64,
    pub female: bool,
    pub family_history: Option<bool>,
    pub emphysema: bool,
    /// Nodule size: its longest diameter in mm.
    pub size_mm: f64,
    pub density: Density,
    /// In an upper lobe (pulmo approximates this as above the carina).
    pub upper_lobe: bool,
    /// Nodules in the exam.
    pub nodule_count: u32,
    /// `None`: the model without spiculation (2a) is used.
    pub spiculation: Option<bool>,
}

/// Inputs of the Mayo model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MayoInputs {
    pub age_years: f64,
    /// Current or former smoker.
    pub smoker: Option<bool>,
    /// Extrathoracic cancer diagnosed more than 5 years ago.
    pub prior_extrathoracic_cancer: Option<bool>,
    pub diameter_mm: f64,
    pub upper_lobe: bool,
    /// `None` (not assessed) counts as not spiculated, and says so.
    pub spiculation: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskEstimate {
    /// Which model and variant, e.g. "Brock (PanCan) full model with spiculation".
    pub model: String,
    /// Probability of malignancy, 0..1.
    pub probability: f64,
    /// What was assumed for inputs nobody supplied, in words.
    pub assumptions: Vec<String>,
}

/// Nodules smaller than this are scored at this size: the Brock size term diverges at zero.
const MIN_SIZE_MM: f64 = 1.0;

/// One variant of the Brock model: its coefficients as published.
struct BrockCoefficients {
    model: &'static str,
    intercept: f64,
    age: f64,
    female: f64,
    family_history: f64,
    emphysema: f64,
    size: f64,
    part_solid: f64,
    non_solid: f64,
    upper_lobe: f64,
    count: f64,
    spiculation: f64,
}

/// Model 2b (full model with spiculation).
const BROCK_2B: BrockCoefficients = BrockCoefficients {
    model: "Brock (PanCan) full model with spiculation",
    intercept: -6.7892,
    age: 0.0287,
    female: 0.6011,
    family_history: 0.2961,
    emphysema: 0.2953,
    size: -5.3854,
    part_solid: 0.377,
    non_solid: -0.1276,
    upper_lobe: 0.6581,
    count: -0.0824,
    spiculation: 0.7729,
};

/// Model 2a (full model without spiculation).
const BROCK_2A: BrockCoefficients = BrockCoefficients {
    model: "Brock (PanCan) full model without spiculation",
    intercept: -6.8071,
    age: 0.0321,
    female: 0.5635,
    family_history: 0.3013,
    emphysema: 0.3462,
    size: -5.6693,
    part_solid: 0.3395,
    non_solid: -0.3055,
    upper_lobe: 0.7116,
    count: -0.0803,
    spiculation: 0.0,
};

/// Brock model probability: model 2b when spiculation is known, else 2a. An unknown family
/// history counts as none (and is listed among the assumptions).
pub fn brock(inputs: &BrockInputs) -> RiskEstimate {
    let mut assumptions = Vec::new();
    let c = match inputs.spiculation {
        Some(_) => &BROCK_2B,
        None => &BROCK_2A,
    };
    let family_history = known(inputs.family_history, "family history of lung cancer", &mut assumptions);
    let size = inputs.size_mm.max(MIN_SIZE_MM);
    if inputs.size_mm < MIN_SIZE_MM {
        assumptions.push(format!("size {:.1} mm scored as {MIN_SIZE_MM:.1} mm", inputs.size_mm));
    }
    let type_term = match inputs.density {
        Density::Solid => 0.0,
        Density::PartSolid => c.part_solid,
        Density::GroundGlass => c.non_solid,
    };
    // Size enters as (size/10)^-0.5, centred at 4 mm: (4/10)^-0.5 = 1.58113883.
    let logit = c.intercept
        + c.age * (inputs.age_years - 62.0)
        + c.female * flag(inputs.female)
        + c.family_history * flag(family_history)
        + c.emphysema * flag(inputs.emphysema)
        + c.size * ((size / 10.0).powf(-0.5) - 1.581_138_83)
        + type_term
        + c.upper_lobe * flag(inputs.upper_lobe)
        + c.count * (f64::from(inputs.nodule_count) - 4.0)
        + c.spiculation * flag(inputs.spiculation.unwrap_or(false));
    RiskEstimate { model: c.model.to_string(), probability: logistic(logit), assumptions }
}

/// Mayo model probability; unknown smoking history, prior cancer and spiculation count as none.
pub fn mayo(inputs: &MayoInputs) -> RiskEstimate {
    let mut assumptions = Vec::new();
    let smoker = known(inputs.smoker, "smoking history", &mut assumptions);
    let cancer = known(inputs.prior_extrathoracic_cancer, "prior extrathoracic cancer", &mut assumptions);
    let spiculation = known(inputs.spiculation, "spiculation", &mut assumptions);
    let logit = -6.8272
        + 0.0391 * inputs.age_years
        + 0.7917 * flag(smoker)
        + 1.3388 * flag(cancer)
        + 0.1274 * inputs.diameter_mm
        + 0.7838 * flag(inputs.upper_lobe)
        + 1.0407 * flag(spiculation);
    RiskEstimate { model: "Mayo Clinic model".to_string(), probability: logistic(logit), assumptions }
}

fn known(value: Option<bool>, what: &str, assumptions: &mut Vec<String>) -> bool {
    value.unwrap_or_else(|| {
        assumptions.push(format!("{what} unknown: taken as none"));
        false
    })
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model's reference point: 62 years, male, 4 mm solid, 4 nodules, nothing else.
    fn reference() -> BrockInputs {
        BrockInputs {
            age_years: 62.0,
            female: false,
            family_history: Some(false),
            emphysema: false,
            size_mm: 4.0,
            density: Density::Solid,
            upper_lobe: false,
            nodule_count: 4,
            spiculation: Some(false),
        }
    }

    fn logit(p: f64) -> f64 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn brock_reference_point_is_the_intercept() {
        let r = brock(&reference());
        assert!((logit(r.probability) - -6.7892).abs() < 1e-9, "{}", r.probability);
        assert!((r.probability - 0.001_125).abs() < 1e-6, "0.11% at the reference point");
        assert!(r.assumptions.is_empty());
        let r = brock(&BrockInputs { spiculation: None, ..reference() });
        assert!((logit(r.probability) - -6.8071).abs() < 1e-9);
        assert!(r.model.contains("without spiculation"));
    }

    /// Each input, changed alone, moves the log-odds by exactly its published coefficient.
    #[test]
    fn brock_coefficients_as_published() {
        let base = logit(brock(&reference()).probability);
        let delta = |i: BrockInputs| logit(brock(&i).probability) - base;
        let r = reference();
        let cases = [
            (BrockInputs { age_years: 72.0, ..r }, 0.287),
            (BrockInputs { female: true, ..r }, 0.6011),
            (BrockInputs { family_history: Some(true), ..r }, 0.2961),
            (BrockInputs { emphysema: true, ..r }, 0.2953),
            (BrockInputs { density: Density::PartSolid, ..r }, 0.377),
            (BrockInputs { density: Density::GroundGlass, ..r }, -0.1276),
            (BrockInputs { upper_lobe: true, ..r }, 0.6581),
            (BrockInputs { nodule_count: 1, ..r }, 3.0 * 0.0824),
            (BrockInputs { spiculation: Some(true), ..r }, 0.7729),
            // 10 mm: -5.3854 * (1 - 1.58113883)
            (BrockInputs { size_mm: 10.0, ..r }, -5.3854 * (1.0 - 1.581_138_83)),
        ];
        for (inputs, want) in cases {
            assert!((delta(inputs) - want).abs() < 1e-9, "{inputs:?}: {} vs {want}", delta(inputs));
        }
    }

    #[test]
    fn brock_rises_with_size_and_says_what_it_assumed() {
        let sizes = [2.0, 4.0, 6.0, 8.0, 15.0, 30.0];
        let p: Vec<f64> = sizes.iter().map(|&s| brock(&BrockInputs { size_mm: s, ..reference() }).probability).collect();
        assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
        let r = brock(&BrockInputs { family_history: None, size_mm: 0.0, ..reference() });
        assert!(r.probability.is_finite());
        assert_eq!(r.assumptions.len(), 2, "{:?}", r.assumptions);
        assert!(r.assumptions[0].contains("family history"));
    }

    #[test]
    fn mayo_as_published() {
        let base = MayoInputs {
            age_years: 60.0,
            smoker: Some(true),
            prior_extrathoracic_cancer: Some(false),
            diameter_mm: 10.0,
            upper_lobe: true,
            spiculation: Some(false),
        };
        let x = -6.8272 + 0.0391 * 60.0 + 0.7917 + 0.1274 * 10.0 + 0.7838;
        let r = mayo(&base);
        assert!((logit(r.probability) - x).abs() < 1e-9);
        assert!(r.assumptions.is_empty());
        let r = mayo(&MayoInputs { smoker: None, prior_extrathoracic_cancer: None, ..base });
        assert!((logit(r.probability) - (x - 0.7917)).abs() < 1e-9);
        assert_eq!(r.assumptions.len(), 2);
        let spiculated = mayo(&MayoInputs { spiculation: Some(true), ..base });
        assert!((logit(spiculated.probability) - (x + 1.0407)).abs() < 1e-9);
    }
}
