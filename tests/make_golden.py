"""Regenerate the golden .lcf files after shipping new weights: python tests/make_golden.py

Each installed model/quality gets golden/NAME-qN.lcf (a real photo crop), the sha256 of its
entropy-decoded symbols, and its decoded image as PNG. Old goldens of versions no longer
installed are kept only if their model version still is (otherwise they must be refused)."""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lcodec  # noqa: E402
from lcodec import api  # noqa: E402
from lcodec.models import registry  # noqa: E402

HERE = Path(__file__).resolve().parent / "golden"


def main():
    HERE.mkdir(exist_ok=True)
    crop = np.asarray(Image.open(HERE.parent.parent / "examples" / "seeding.png").convert("RGB"))[120:168, 300:364]
    manifest = {}
    for m in registry.list_models():
        for q in m["qualities"]:
            if not m["levels"][str(q)]["installed"]:
                continue
            name = f"{m['name']}-q{q}"
            blob = lcodec.encode(crop, model=m["name"], quality=q, device="cpu")
            (HERE / f"{name}.lcf").write_bytes(blob)
            f = api.open(blob)
            codec = f.codec("cpu")
            sym = codec.decode_symbols(f.container.tiles[0], crop.shape[0], crop.shape[1])
            Image.fromarray(f.decode("cpu")).save(HERE / f"{name}.decoded.png")
            manifest[name] = {"model": m["name"], "quality": q, "version": f.header["model_version"],
                              "symbols_sha256": hashlib.sha256(sym.astype("<i2").tobytes()).hexdigest()}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
