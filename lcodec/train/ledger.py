"""Render the training ledger (weights/ledger.jsonl, one record per exported weight file) as
TRAINING.md: python -m lcodec.train.ledger"""
import json
from pathlib import Path

from ..models.registry import WEIGHTS_DIR

LEDGER = WEIGHTS_DIR / "ledger.jsonl"
DOC = Path(__file__).resolve().parents[2] / "TRAINING.md"

INTRO = """# Training ledger

One row per weight file ever exported, oldest first (generated from
`lcodec/models/weights/ledger.jsonl` by `python -m lcodec.train.ledger`). Validation figures
are measured through the real encoder, entropy coder and container on
`../shared/data/images/val` (4 photos, bpp from the .lcf size including the header, PSNR per
image then averaged). A row whose version is no longer in `weights/index.json` is history:
files made with it are refused by name.

| model | q | v | steps | crop/batch | device | minutes | val bpp | val PSNR | weights sha256 |
|---|---|---|---|---|---|---|---|---|---|
"""


def render():
    rows = [json.loads(line) for line in LEDGER.read_text().splitlines() if line.strip()]
    out = [INTRO]
    for r in rows:
        v = r.get("val", {})
        out.append(f"| {r['model']} | {r['quality']} | {r['version']} | {r['steps']} | {r['crop']}/{r['batch']} "
                   f"| {r['device']} | {r['wall_minutes']} | {v.get('bpp', '')} | {v.get('psnr', '')} "
                   f"| `{r['weights_sha256'][:16]}` |\n")
    out.append("\n## Commands\n")
    for r in rows:
        out.append(f"\n{r['model']} q{r['quality']} v{r['version']} ({r['date']}, data `{r['data']}`):\n")
        out.extend(f"    {c}\n" for c in r["commands"])
    DOC.write_text("".join(out))


if __name__ == "__main__":
    render()
