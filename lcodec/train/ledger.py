"""Render the training ledger (weights/ledger.jsonl, one record per exported weight file) as
TRAINING.md: python -m lcodec.train.ledger"""
import json
import re
from pathlib import Path

from ..models.registry import WEIGHTS_DIR

LEDGER = WEIGHTS_DIR / "ledger.jsonl"
DOC = Path(__file__).resolve().parents[2] / "TRAINING.md"

INTRO = """# Training ledger

One row per weight file ever exported, oldest first (generated from
`lcodec/models/weights/ledger.jsonl` by `python -m lcodec.train.ledger`). Validation figures
are measured through the real encoder, entropy coder and container: images on
`../shared/data/images/val` (4 photos, bpp from the .lcf size including the header, PSNR per
image then averaged), audio on `../shared/data/audio/val` (12 clips, kbps from the .lcf size,
SNR per clip then averaged). Crop: pixels (images) or samples (audio) for the first 60 % of a
run; 2x (images) or 4x (audio) after. A row whose version is no longer in
`weights/index.json` is history: files made with it are refused by name.

Steps: those of the run that made the file; "from scratch": those plus the steps of every
weight file it started from (`--init-from` a shipped file, or `--init`: the level's shipped
version), so models that start from each other compare at their whole training.

| model | q | v | steps | from scratch | crop/batch | device | minutes | val rate | val quality | weights sha256 |
|---|---|---|---|---|---|---|---|---|---|---|
"""


def _val(v):
    if "kbps" in v:
        return f"{v['kbps']} kbps", f"{v['snr']} dB SNR"
    if "bpp" in v:
        return f"{v['bpp']} bpp", f"{v['psnr']} dB PSNR"
    return "", ""


RECIPES = """
## Fast-learning recipes, measured

Time to quality: walloc-rgb q2, 10 minutes of CPU training each, both runs at once with one
torch thread each on the 2-core machine (same data, batch 8, crops 128 then 256, warm-up +
cosine schedule); validation on 512 px centre crops of the 4 val photos, rounded latents:

| recipe | steps | val PSNR | latent entropy (h0, bpp) |
|---|---|---|---|
| PCA initialisation of the encoder and the decoder's linear path | 3085 | 32.83 dB | 0.449 |
| random initialisation (`--no-pca`) | 3069 | 27.08 dB | 0.353 |

    lcodec train walloc-rgb -q 2 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-pca
    lcodec train walloc-rgb -q 2 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-nopca --no-pca

Kept everywhere: PCA initialisation (+5.8 dB after 10 minutes), linear warm-up (100 steps) and
a cosine schedule planned from the measured step rate, crops of 128 px for the first 60 % of a
run and 256 px after. Rate-aware WaLLoC (q1) learns its per-channel companding scale (the
quantization step) together with a rate term.

The other recipes one at a time (2026-11-29), 10 minutes each, the two runs of a pair at once
with one torch thread each, beside a third 1-thread training run (bmshj2018-hyperprior), so
about 2/3 of the steps of the table above; same validation:

| recipe | model | steps | val PSNR | latent entropy (h0, bpp) |
|---|---|---|---|---|
| crops 128 then 256 px (the default) | q2 | 2149 | 32.64 dB | 0.436 |
| crops 128 px throughout (`--fixed-crop`) | q2 | 2193 | 32.66 dB | 0.436 |
| distillation from the installed q2 v2 (`--teacher 2`: half the distortion term fits its decoded image) | q1 | 1598 | 32.04 dB | 0.359 |
| no teacher (the default) | q1 | 2115 | 31.97 dB | 0.359 |
| learned quantization step (the default for rate-aware q1) | q1 | 1863 | 31.91 dB | 0.367 |
| fixed step (`--fixed-step`) | q1 | 1866 | 31.94 dB | 0.366 |
| warm-up (100 steps) + cosine decay (the default) | q2 | 1432 | 32.49 dB | 0.424 |
| the peak rate 5e-4 throughout (`--constant-lr`) | q2 | 1423 | 32.48 dB | 0.450 |

    lcodec train walloc-rgb -q 2 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-crop-sched
    lcodec train walloc-rgb -q 2 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-crop-fixed --fixed-crop
    lcodec train walloc-rgb -q 1 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-q1-kd --teacher 2
    lcodec train walloc-rgb -q 1 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-q1-plain
    lcodec train walloc-rgb -q 1 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-step-learned
    lcodec train walloc-rgb -q 1 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-step-fixed --fixed-step
    lcodec train walloc-rgb -q 2 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-lr-sched
    lcodec train walloc-rgb -q 2 --data ../shared/data/images/train --val ../shared/data/images/val --minutes 10 --threads 1 --run-dir runs/recipe-lr-const --constant-lr

The crop schedule makes no difference after 10 minutes (0.02 dB, noise); it stays the default
because every shipped walloc-rgb file was trained with it and the ledger's commands must
reproduce them. Distillation is +0.07 dB at the same rate for the same minutes, on 25 % fewer
steps (the teacher's forward pass costs time): per step it leads by 0.18 dB at step 1500, but
per minute the gain is within noise, so it stays an option (`--teacher N`), not a default.
The learned step makes no difference after 10 minutes either (0.03 dB, 0.001 bpp: it moves
slowly, at a tenth of the learning rate); it stays the default for q1 for the same
reproducibility reason. The learning-rate schedule reaches the same PSNR with 6 % less latent
entropy than the constant peak rate (q2 has no rate term, so that is a side effect of the
annealed end, not a target), so it stays. (The last pair ran beside two other 1-thread training runs: ~1430
steps.) Of the recipes, PCA initialisation is the one that pays; the schedule helps the rate
a little; the crop schedule, the learned step and distillation are worth nothing measurable in
10 minutes.

walloc-stereo, moving a trained model (q1 v1, MSE-only, 18.8 kbps per channel of zeroth-order
latent entropy at 16.1 dB on 2^17-sample excerpts of the val clips) to a lower rate, 20 CPU
minutes each (2 threads):

| recipe | latent h0 per channel | val SNR |
|---|---|---|
| step x2, no training (the decoder as it was) | 11.8 kbps | 14.65 dB |
| step x2, encoder frozen, decoder fine-tuned (shipped as q1 v2) | 11.8 kbps | 14.82 dB |
| rate-aware fine-tune (lmbda 2e-3, learned step, run `runs/walloc-stereo-q1-rate`) | 13.7 kbps | 13.53 dB, falling from 15.64 at step 1000 |

The rate term under a per-channel density fought the context coder's view of the rate and
cost SNR; MSE-only training of walloc-stereo raises the rate as it goes (q1 v1: 10.4 -> 18.8
kbps per channel over 20 minutes, the encoder's gain grows against the fixed companding
scale), so the shipped levels are set by step and latent width, then trained.
"""


def records():
    """Every ledger record, oldest first ([] before the first export)."""
    if not LEDGER.exists():
        return []
    return [json.loads(line) for line in LEDGER.read_text().splitlines() if line.strip()]


def parent(record, rows):
    """The ledger record of the weights this record's run started from, or None (from scratch,
    or from a run's checkpoint that was never exported)."""
    if record.get("stages"):   # a device record: its first stage names the weights it started from
        start = record["stages"][0].get("started_from")
        return next((r for r in rows if r["weights_file"] == start), None)
    if record.get("started_from"):   # named outright where the command's path does not say it
        return next((r for r in rows if r["weights_file"] == record["started_from"]), None)
    if isinstance(record.get("finetuned_from"), int):
        return next((r for r in rows if (r["model"], r["quality"], r["version"]) ==
                     (record["model"], record["quality"], record["finetuned_from"])), None)
    cmds = " ".join(record["commands"])
    found = re.search(r"--init-from \S*?([\w.-]+\.pt)\b", cmds)
    if found:
        return next((r for r in rows if r["weights_file"] == found.group(1)), None)
    if re.search(r"--init(\s|$)", cmds):   # the level's shipped weights at the time
        older = [r for r in rows if (r["model"], r["quality"]) == (record["model"], record["quality"])
                 and r["version"] < record["version"] and r.get("shipped") is not False]
        return max(older, key=lambda r: r["version"], default=None)
    return None


def steps_from_scratch(record, rows):
    """The record's steps plus those of every file it started from; None where a count is not a
    plain number."""
    total, r = 0, record
    while r is not None:
        if not isinstance(r["steps"], int):
            return None
        total += r["steps"]
        r = parent(r, rows)
    return total


def render():
    rows = records()
    out = [INTRO]
    for r in rows:
        rate, quality = _val(r.get("val", {}))
        version = f"{r['version']} (not shipped)" if r.get("shipped") is False else r["version"]
        total = steps_from_scratch(r, rows)
        out.append(f"| {r['model']} | {r['quality']} | {version} | {r['steps']} | {total or 'n/a'} "
                   f"| {r['crop']}/{r['batch']} "
                   f"| {r['device']} | {r['wall_minutes']} | {rate} | {quality} "
                   f"| `{r['weights_sha256'][:16]}` |\n")
    out.append(RECIPES)
    out.append("\n## Commands\n")
    for r in rows:
        out.append(f"\n{r['model']} q{r['quality']} v{r['version']} ({r['date']}, data `{r['data']}`):\n")
        if r.get("note"):
            out.append(f"{r['note']}.\n")
        out.extend(f"    {c}\n" for c in r["commands"])
    DOC.write_text("".join(out))


if __name__ == "__main__":
    render()
