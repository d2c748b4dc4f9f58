"""Regenerate the golden .lcf files after shipping new weights: python tests/make_golden.py

Each installed model/quality gets golden/NAME-qN.lcf (a real photo crop, or 0.3 s of the
bundled drum loop), the sha256 of its entropy-decoded symbols (all tiles), and its decoded
image as PNG (audio: as 24-bit FLAC). Old goldens of versions no longer
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


def golden_input(modality):
    """The input every golden file of a modality encodes: (source, encode kwargs)."""
    examples = HERE.parent.parent / "examples"
    if modality == "image":
        return np.asarray(Image.open(examples / "seeding.png").convert("RGB"))[120:168, 300:364], {}
    import soundfile as sf
    x, rate = sf.read(str(examples / "loop_amen.flac"), dtype="float64", always_2d=True)
    return x[:13230], {"rate": rate}


def symbols_sha256(f):
    """sha256 of the entropy-decoded symbols of every tile of an .lcf file, in tile order."""
    h = hashlib.sha256()
    if f.header["model"] in api.CONCEALING:   # whole-image codecs: the index map itself
        idx = f.codec("cpu").index_map(f.container.tiles, f.header["height"], f.header["width"])[0]
        return hashlib.sha256(idx.astype("<i2").tobytes()).hexdigest()
    if f.header["model"] == "mgm":   # its latents are small code vectors: pin the indices themselves
        codec, grid = f._tiles("cpu")
        for i, (_, _, th, tw) in enumerate(grid):
            for idx in codec.decode_symbols(f._tile(i), th, tw):
                h.update(idx.astype("<i2").tobytes())
        return h.hexdigest()
    for i in range(f.header["tiles"]):
        h.update(f.latents("cpu", tile=i).numpy().astype("<i2").tobytes())
    return h.hexdigest()


def main():
    HERE.mkdir(exist_ok=True)
    manifest = {}
    for m in registry.list_models():
        src, kw = golden_input(m["modality"])
        for q in m["qualities"]:
            if not m["levels"][str(q)]["installed"]:
                continue
            name = f"{m['name']}-q{q}"
            blob = lcodec.encode(src, model=m["name"], quality=q, device="cpu", **kw)
            (HERE / f"{name}.lcf").write_bytes(blob)
            f = api.open(blob)
            if m["modality"] == "image":
                Image.fromarray(f.decode("cpu")).save(HERE / f"{name}.decoded.png")
            else:
                import soundfile as sf
                sf.write(str(HERE / f"{name}.decoded.flac"), f.decode("cpu"), kw["rate"], subtype="PCM_24")
            manifest[name] = {"model": m["name"], "quality": q, "version": f.header["model_version"],
                              "modality": m["modality"], "symbols_sha256": symbols_sha256(f)}
    for old in HERE.glob("*.lcf"):  # goldens of models no longer installed
        if old.stem not in manifest:
            old.unlink()
            for dec in HERE.glob(f"{old.stem}.decoded.*"):
                dec.unlink()
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
