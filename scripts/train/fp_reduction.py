"""Trains pulmo's false-positive reduction model and installs it in models/.

The data are 32^3 patches at 1 mm around the candidates pulmo's own candidate finder reports
on phantom studies and on a real CT series with nodules inserted, labelled by their exact
truth (see crates/pulmo-analysis/examples/fp_patches.rs, which scripts/train/fp-reduction runs
first). Studies are split whole: every fifth (in name order) validates. Seeded and
deterministic on the CPU.

Usage: fp_reduction.py DATA_DIR MODELS_DIR
Writes MODELS_DIR/fp-reduction.pt (TorchScript) and MODELS_DIR/fp-reduction.toml (manifest).
"""

import datetime
import os
import sys

import numpy as np
import torch

from training import PatchNet, augment, auc, install, load_studies, predict, start

CARD = {"name": "fp-reduction", "version": "0.3.0", "task": "nodule-false-positive-reduction"}
SEED = 20261129
EPOCHS = int(os.environ.get("EPOCHS", "20"))
BATCH = 64
TARGET_SENSITIVITY = 0.95
# Each epoch sees every positive and a fresh draw of this many negatives per positive:
# candidates are ~12 negatives to 1 positive, and the CPU budget is a few minutes.
NEGATIVES_PER_POSITIVE = 3
# Share of each epoch's negatives drawn from the hard ones: candidates whose segmentation the
# pipeline would report (compact blobs, mostly vessel cross-sections). The rest the pipeline
# drops by shape anyway, so the model's capacity goes where its decision matters.
HARD_SHARE = 0.5


# The network is training.PatchNet with one logit. Its fourth block (at 4^3, a few percent of
# the compute) makes the receptive field ~31 mm, the whole patch: with three its units saw
# 15 mm, less than a large nodule with its margin, or a vessel with enough of its course to
# tell it from a nodule beside it.


def compact_flags(data_dir, name, labels):
    """Which patches are compact candidates (hard negatives when not nodules); none if unknown."""
    path = os.path.join(data_dir, f"compact_{name}.npy")
    return np.load(path) if os.path.exists(path) else np.zeros_like(labels)


def load(data_dir):
    return load_studies(data_dir, compact_flags)


def stack(studies):
    x = np.concatenate([np.asarray(s[1], dtype=np.float32) for s in studies])
    y = np.concatenate([s[2] for s in studies]).astype(np.float32)
    compact = np.concatenate([s[3] for s in studies]).astype(bool)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y), torch.from_numpy(compact)


def hard_auc(scores, labels, compact):
    """AUC of the positives against the hard negatives only."""
    keep = (labels == 1) | compact
    return auc(scores[keep], labels[keep])


def main():
    data_dir, models_dir = sys.argv[1], sys.argv[2]
    spec, studies, training, validation = start(SEED, data_dir, load)
    train_x, train_y, train_compact = stack(training)
    val_x, val_y, val_compact = stack(validation)
    positives = torch.nonzero(train_y == 1).squeeze(1)
    negatives = torch.nonzero(train_y == 0).squeeze(1)
    hard = torch.nonzero((train_y == 0) & train_compact).squeeze(1)
    pos_weight = torch.tensor(float(NEGATIVES_PER_POSITIVE))
    print(f"train {len(train_y)} patches ({int(train_y.sum())} positive) from {len(training)} studies; "
          f"validate {len(val_y)} ({int(val_y.sum())} positive) from {len(validation)}; "
          f"{len(hard)} hard negatives", flush=True)
    model = PatchNet(1)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=EPOCHS)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        wanted = NEGATIVES_PER_POSITIVE * len(positives)
        hard_draw = hard[torch.randperm(len(hard), generator=generator)[:int(HARD_SHARE * wanted)]]
        draw = negatives[torch.randperm(len(negatives), generator=generator)[:wanted - len(hard_draw)]]
        epoch_set = torch.cat([positives, hard_draw, draw])
        order = epoch_set[torch.randperm(len(epoch_set), generator=generator)]
        total = 0.0
        for first in range(0, len(order), BATCH):
            idx = order[first:first + BATCH]
            x = augment(train_x[idx], generator)
            loss = loss_fn(model(x).squeeze(1), train_y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        schedule.step()
        scores = predict(model, val_x)
        print(f"epoch {epoch + 1}: loss {total / len(order):.4f}, validation AUC {auc(scores, val_y.numpy()):.4f}, "
              f"against hard negatives {hard_auc(scores, val_y.numpy(), val_compact.numpy()):.4f}", flush=True)
    scores = predict(model, val_x)
    labels = val_y.numpy()
    positives = np.sort(scores[labels == 1])
    threshold = float(positives[int(np.floor((1 - TARGET_SENSITIVITY) * len(positives)))])
    sensitivity = float((scores[labels == 1] >= threshold).mean())
    fp_per_study = float((scores[labels == 0] >= threshold).sum() / len(validation))
    hard_fp_per_study = float((scores[(labels == 0) & val_compact.numpy()] >= threshold).sum() / len(validation))
    install(model, models_dir, CARD, spec, threshold, {
        "validation_auc": auc(scores, labels),
        "validation_sensitivity": sensitivity,
        "validation_false_positives_per_study": fp_per_study,
        "validation_hard_negative_auc": hard_auc(scores, labels, val_compact.numpy()),
        "validation_compact_false_positives_per_study": hard_fp_per_study,
    }, {
        "data": f"studies {', '.join(s[0] for s in studies)} (four-digit names: pulmo-phantom seeds; realNN: the "
                "TCGA-THCA CT with isolated nodules inserted, seed NN): candidates from pulmo's candidate finder "
                "labelled by truth, plus jittered patches at every true nodule",
        "split": f"every fifth study validates: {', '.join(s[0] for s in validation)}",
        "patches": f"{len(train_y)} train ({int(train_y.sum())} positive), {len(val_y)} validation "
                   f"({int(val_y.sum())} positive)",
        "recipe": f"Adam lr 2e-3 with cosine decay, {EPOCHS} epochs of all positives and {NEGATIVES_PER_POSITIVE}x as many fresh "
                  f"negatives ({HARD_SHARE:.0%} of them hard: compact blobs the pipeline would report), batch {BATCH}, BCE with pos_weight {pos_weight.item():.1f}, flips and "
                  f"axial 90-degree turns, seed {SEED}",
        "script": "scripts/train/fp_reduction.py",
        "date": datetime.date.today().isoformat(),
    })


if __name__ == "__main__":
    main()
