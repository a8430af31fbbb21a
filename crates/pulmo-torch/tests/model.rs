//! The model contract against real TorchScript files made by the project's PyTorch: a good
//! model loads and runs; each way a model can be wrong gives an error naming the model and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use pulmo_torch::model::{list_manifests, Model, ModelError};
use pulmo_torch::{Device, Tensor};

/// Writes `good.pt` (one logit per patch) and `wide.pt` (two outputs per patch) into `dir`.
fn make_models(dir: &Path) -> Option<()> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if !python.exists() {
        eprintln!("SKIPPED: {} is absent (scripts/setup makes it)", python.display());
        return None;
    }
    let script = r#"
import sys, torch
class Net(torch.nn.Module):
    def __init__(self, outputs: int):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 2, 3)
        self.outputs = outputs
    def forward(self, x):
        y = self.conv(x).mean(dim=[2, 3, 4])
        return y[:, :self.outputs]
torch.manual_seed(0)
torch.jit.script(Net(1)).save(sys.argv[1] + "/good.pt")
torch.jit.script(Net(2)).save(sys.argv[1] + "/wide.pt")
"#;
    // TorchScript compiles from source, so the script must be a file (not `python -c`).
    let file = dir.join("make_models.py");
    std::fs::write(&file, script).unwrap();
    let status = Command::new(python).arg(&file).arg(dir).status().ok()?;
    assert!(status.success(), "making TorchScript test models");
    Some(())
}

fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

fn manifest(dir: &Path, name: &str, file: &str, sha: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "name = \"{name}\"\nversion = \"1\"\ntask = \"test\"\nfile = \"{file}\"\nsha256 = \"{sha}\"\n{extra}\
         [input]\npatch_size = [8, 8, 8]\nspacing_mm = [1.0, 1.0, 1.0]\nwindow_hu = [-1000.0, 400.0]\n\
         [output]\nlayout = \"logit\"\n[metrics]\nauc = 0.5\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn model_contract() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if make_models(d).is_none() {
        return;
    }
    let good_sha = sha256(&d.join("good.pt"));

    let good = Model::load(&manifest(d, "good", "good.pt", &good_sha, ""), Device::Cpu).unwrap();
    let logits = good.forward(&Tensor::zeros([3, 1, 8, 8, 8], (tch::Kind::Float, tch::Device::Cpu))).unwrap();
    assert_eq!(logits.size(), [3]);
    assert_eq!(good.manifest.metrics["auc"], 0.5);

    let wrong_sha = "0".repeat(64);
    let err = Model::load(&manifest(d, "tampered", "good.pt", &wrong_sha, ""), Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("model tampered") && err.to_string().contains(&good_sha), "{err}");

    let err = Model::load(&manifest(d, "missing", "nowhere.pt", &good_sha, ""), Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::File { .. }) && err.to_string().contains("nowhere.pt"), "{err}");

    let wide_sha = sha256(&d.join("wide.pt"));
    let err = Model::load(&manifest(d, "wide", "wide.pt", &wide_sha, ""), Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Shape { .. }) && err.to_string().contains("[2, 2]"), "{err}");

    std::fs::write(d.join("junk.pt"), b"not a TorchScript archive").unwrap();
    let junk_sha = sha256(&d.join("junk.pt"));
    let err = Model::load(&manifest(d, "junk", "junk.pt", &junk_sha, ""), Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Load { .. }) && err.to_string().contains("model junk"), "{err}");

    let bad = manifest(d, "typo", "good.pt", &good_sha, "colour = \"blue\"\n");
    let err = Model::load(&bad, Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Manifest { .. }) && err.to_string().contains("typo.toml"), "{err}");

    let listed = list_manifests(d).unwrap();
    let names: Vec<String> = listed.iter().map(|(p, _)| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["good", "junk", "missing", "tampered", "typo", "wide"]);
    assert!(listed.iter().filter(|(_, m)| m.is_err()).count() == 1, "only the typo's manifest is unreadable");
}
