"""What pulmo's training scripts share: augmentation, AUC, batched prediction, and installing
a model as TorchScript with its manifest (the model contract of crates/pulmo-torch/src/model.rs).
"""

import glob
import hashlib
import json
import os

import numpy as np
import torch


class PatchNet(torch.nn.Module):
    """Four conv blocks (8, 16, 32, 64 channels), each halving the patch, global average
    pooling, `outputs` logits. On a 32^3 or 40^3 patch the last block's units see all of it."""

    def __init__(self, outputs: int):
        super().__init__()
        layers = []
        channels = [1, 8, 16, 32, 64]
        for cin, cout in zip(channels, channels[1:]):
            layers += [torch.nn.Conv3d(cin, cout, 3, padding=1), torch.nn.BatchNorm3d(cout), torch.nn.ReLU(),
                       torch.nn.MaxPool3d(2)]
        self.features = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(channels[-1], outputs)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=[2, 3, 4]))


def load_studies(data_dir, extra):
    """Every study of DATA_DIR as (name, patches, labels, extra(data_dir, name, labels)), in
    name order; patches are memory-mapped."""
    studies = []
    for path in sorted(glob.glob(os.path.join(data_dir, "patches_*.npy"))):
        name = os.path.basename(path)[len("patches_"):-len(".npy")]
        x = np.load(path, mmap_mode="r")
        y = np.load(os.path.join(data_dir, f"labels_{name}.npy"))
        studies.append((name, x, y, extra(data_dir, name, y)))
    if len(studies) < 5:
        raise SystemExit(f"{data_dir}: need at least 5 studies of patches, found {len(studies)}")
    return studies


def start(seed, data_dir, load):
    """Seeds everything and makes the CPU deterministic; returns the patch spec of DATA_DIR and
    its studies (as `load` reads them) split whole: every fifth, in name order, validates."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    spec = json.load(open(os.path.join(data_dir, "spec.json")))
    studies = load(data_dir)
    return spec, studies, [s for i, s in enumerate(studies) if i % 5 != 4], studies[4::5]


def augment(x, generator):
    """Random flips of each axis and 90-degree turns in the axial plane: nodules have no
    preferred orientation."""
    for dim in (2, 3, 4):
        if torch.rand(1, generator=generator).item() < 0.5:
            x = x.flip(dim)
    turns = int(torch.randint(0, 4, (1,), generator=generator).item())
    return torch.rot90(x, turns, dims=(3, 4))


def auc(scores, labels):
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))


def predict(model, x):
    """Sigmoid of the model's logit for every patch of x, in batches of 256."""
    model.eval()
    with torch.no_grad():
        return torch.cat([torch.sigmoid(model(x[i:i + 256]).squeeze(1)) for i in range(0, len(x), 256)]).numpy()


def install(model, models_dir, card, spec, threshold, metrics, training):
    """Saves `model` as MODELS_DIR/NAME.pt and writes its manifest NAME.toml; `card` holds
    name, version and task."""
    os.makedirs(models_dir, exist_ok=True)
    name = card["name"]
    pt = os.path.join(models_dir, f"{name}.pt")
    torch.jit.script(model.eval()).save(pt)
    sha = hashlib.sha256(open(pt, "rb").read()).hexdigest()
    lines = [
        f'name = "{name}"',
        f'version = "{card["version"]}"',
        f'task = "{card["task"]}"',
        f'file = "{name}.pt"',
        f'sha256 = "{sha}"',
        "",
        "[input]",
        f"patch_size = {spec['patch_size']}",
        f"spacing_mm = {[float(v) for v in spec['spacing_mm']]}",
        f"window_hu = {[float(v) for v in spec['window_hu']]}",
        "",
        "[output]",
        'layout = "logit"',
        f"threshold = {threshold:.6f}",
        "",
        "[training]",
    ] + [f"{k} = {json.dumps(v)}" for k, v in training.items()] + ["", "[metrics]"] + [
        f"{k} = {v:.4f}" for k, v in metrics.items()]
    open(os.path.join(models_dir, f"{name}.toml"), "w").write("\n".join(lines) + "\n")
    print(f"installed {pt} ({os.path.getsize(pt) / 1024:.0f} kB, sha256 {sha[:12]}...), threshold {threshold:.4f}, "
          f"metrics {metrics}", flush=True)
