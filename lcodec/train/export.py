"""Export a trained run as shipped weights: fp16 weights, frozen context tables fitted on the
training latents of exactly those fp16 weights, the registry entry, and the ledger record
(validation measured through the real encoder, entropy coder and container)."""
import datetime
import json
import math
import os
import platform
import shutil

import numpy as np
import torch

from ..codec import context
from ..codec.tiling import tile_grid
from ..models import registry
from ..models.registry import WEIGHTS_DIR, sha256_file
from ..models.state import to_fp16
from ..models.walloc_image import tile_symbols
from . import data, trainer
from .ledger import LEDGER, records


def load_checkpoint(model, run_dir):
    """The codec's weights from a run's last checkpoint (without the optimizer or the rate model)."""
    state = torch.load(f"{run_dir}/last.pt", map_location="cpu", weights_only=True)["model"]
    model.load_state_dict({k[len("codec."):]: v for k, v in state.items() if k.startswith("codec.")})
    return model


def fp16_model(name, quality, run_dir):
    """The run's last checkpoint rounded to fp16 (what ships), as a float32 model in eval mode
    holding exactly those values + the fp16 state; built by the family's trainer."""
    model = load_checkpoint(trainer(name).build(name, quality), run_dir)
    half = to_fp16(model)
    return model.eval(), half


def training_tiles(name, data_dir):
    """Every training image cut into H x W x 3 uint8 tiles exactly as the encoder tiles it."""
    tile = registry.model_spec(name)["tile"]
    for img in data.load_images(data_dir):
        arr = img.permute(1, 2, 0).numpy()
        for y, x, th, tw in tile_grid(arr.shape[0], arr.shape[1], tile):
            yield arr[y:y + th, x:x + tw]


def fit_tables(model, name, data_dir):
    """Frozen context tables from the training latents, tiled exactly as the encoder tiles."""
    if registry.model_spec(name)["modality"] == "audio":
        return fit_audio_tables(model, name, data_dir)
    model = model.cpu()
    thr = model.thresholds()
    samples = [tile_symbols(model, thr, t) for t in training_tiles(name, data_dir)]
    return context.fit(samples, model.latent, model.max_symbol)


def fit_audio_tables(model, name, data_dir):
    from ..audio_codec import tile_inputs
    from ..codec import signal_context
    from ..io import audio
    from ..models.walloc_audio import group_symbols, normalize, to_mid_side
    spec = registry.model_spec(name)
    model = model.cpu()
    thr = model.thresholds()
    samples = []
    for path in data.audio_files(data_dir):
        info = audio.probe(path)
        reader = audio.Reader(info)
        for x in tile_inputs(reader, info, spec["rate"], spec["segment"], spec["overlap"]):
            samples.append(group_symbols(model, thr, normalize(to_mid_side(x))[0]))
        reader.close()
    return signal_context.fit(samples, model.max_symbol)


def save_files(half, tables, out_dir, stem, dictionary=None):
    """Write STEM.pt, STEM.tables.npz (and CLC's STEM.dict.pt) into out_dir; returns their
    paths (the dictionary's is None without one)."""
    os.makedirs(out_dir, exist_ok=True)
    wpath, tpath = os.path.join(out_dir, f"{stem}.pt"), os.path.join(out_dir, f"{stem}.tables.npz")
    torch.save(half, wpath)
    with open(tpath, "wb") as f:
        f.write(tables.to_bytes())
    dpath = None
    if dictionary is not None:
        dpath = os.path.join(out_dir, f"{stem}.dict.pt")
        with open(dpath, "wb") as f:
            f.write(dictionary)
    return wpath, tpath, dpath


FILE_KEYS = ("weights_file", "tables_file", "dictionary_file")


def _replace_index_entry(key, entry):
    index = registry.load_index()
    old = index.get(key)
    index[key] = entry
    tmp = registry.INDEX.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, registry.INDEX)
    if old:  # the old version is no longer installed: its files go, its ledger record stays
        for k in FILE_KEYS:
            if old.get(k) and old[k] not in [entry.get(f) for f in FILE_KEYS]:
                (WEIGHTS_DIR / old[k]).unlink(missing_ok=True)


def install(name, quality, version, weights_path, tables_path, record, val_dir, dictionary_path=None):
    """Ship weights + tables (+ CLC's dictionary) as `version` of (name, quality): registry,
    validation, ledger."""
    from .. import api
    old = registry.load_index().get(f"{name}/q{quality}")
    used = [r["version"] for r in records() if (r["model"], r["quality"]) == (name, quality)]
    if max(used + [old["version"] if old else 0]) >= version:
        raise SystemExit(f"{name} q{quality} version {max(used)} exists (installed or in the ledger): "
                         "new weights need a higher version")
    stem = f"{name}-q{quality}-v{version}"
    wfile, tfile = f"{stem}.pt", f"{stem}.tables.npz"
    if os.path.abspath(weights_path) != str(WEIGHTS_DIR / wfile):
        shutil.copyfile(weights_path, WEIGHTS_DIR / wfile)
        shutil.copyfile(tables_path, WEIGHTS_DIR / tfile)
    entry = {"version": version, "weights_file": wfile, "weights_sha256": sha256_file(WEIGHTS_DIR / wfile),
             "tables_file": tfile, "tables_sha256": sha256_file(WEIGHTS_DIR / tfile)}
    if dictionary_path:
        dfile = f"{stem}.dict.pt"
        if os.path.abspath(dictionary_path) != str(WEIGHTS_DIR / dfile):
            shutil.copyfile(dictionary_path, WEIGHTS_DIR / dfile)
        entry.update(dictionary_file=dfile, dictionary_sha256=sha256_file(WEIGHTS_DIR / dfile))
    _replace_index_entry(f"{name}/q{quality}", entry)
    api._codecs.clear()
    entry["val"] = evaluate(name, quality, val_dir) if val_dir else {}
    _replace_index_entry(f"{name}/q{quality}", entry)
    record = {"model": name, "quality": quality, **record, **entry, "date": datetime.date.today().isoformat()}
    with open(LEDGER, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
    from .ledger import render
    render()
    print(json.dumps(record, indent=1))
    return record


def hyperprior_fp16(name, quality, run_dir):
    """The hyperprior peer's last checkpoint rounded to fp16, and its frozen z tables."""
    from ..models import hyperprior
    model, half = fp16_model(name, quality, run_dir)
    return half, hyperprior.fit_z_tables(model)


def mgm_fp16(name, quality, run_dir, data_dir):
    """MGM's last checkpoint rounded to fp16, and its static index tables fitted on the
    training images through exactly the encoder's tiling and index choice (nearest codeword,
    or rate-weighted where the quality sets a rate_weight)."""
    from ..models import mgm
    model, half = fp16_model(name, quality, run_dir)
    weight = registry.quality_spec(name, quality).get("rate_weight", 0.0)
    return half, mgm.fit_rate_weighted_tables(training_tiles(name, data_dir), model, weight)


def clc_fp16(name, quality, run_dir, data_dir):
    """CLC's last checkpoint rounded to fp16, its frozen z tables, and its dictionary (bytes:
    the run's, or built anew and saved in the run folder where the registry's dictionary size
    changed) with the reference latents of exactly those fp16 weights."""
    from ..models import clc, hyperprior
    from .hyperprior_train import References
    model, half = fp16_model(name, quality, run_dir)
    refs = References(name, quality, lambda: data.load_images(data_dir), run_dir)
    latents = clc.reference_latents(model, refs.d["crops"], refs.stride)
    return half, hyperprior.fit_z_tables(model), clc.dictionary_bytes(dict(refs.d, latents=latents))


def vqgan_fp16(name, quality, run_dir, data_dir):
    """VQGAN's last checkpoint rounded to fp16, and its static context tables."""
    model, half = fp16_model(name, quality, run_dir)
    return half, vqgan_tables(model, name, data_dir)


def vqgan_tables(model, name, data_dir):
    """Static context tables fitted on the index maps of the whole training images and their
    mirror images (the encoder's own path). On the GPU where there is one (a device run): the
    tables are frequencies, and the odd index a float rounding flips does not change what they
    must do, while the CPU takes minutes."""
    from ..models import vqgan
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model.eval().to(dev)
    with torch.no_grad():
        maps = [vqgan.image_indices(model, t.permute(1, 2, 0).numpy(), dev)
                for img in data.load_images(data_dir) for t in (img, img.flip(-1))]
    model.cpu()
    return vqgan.fit_tables(maps, model.quantizer.codes().detach(), registry.model_spec(name)["tile"])


def shipped_state(name, quality, run_dir, data_dir):
    """(fp16 state dict, frozen tables, dictionary bytes or None) of a run's last checkpoint,
    for any model family."""
    family = registry.model_spec(name)["family"]
    if family == "clc":
        return clc_fp16(name, quality, run_dir, data_dir)
    if family == "hyperprior":
        return (*hyperprior_fp16(name, quality, run_dir), None)
    if family == "mgm":
        return (*mgm_fp16(name, quality, run_dir, data_dir), None)
    if family == "vqgan":
        return (*vqgan_fp16(name, quality, run_dir, data_dir), None)
    model, half = fp16_model(name, quality, run_dir)
    return half, fit_tables(model, name, data_dir), None


def export_run(name, quality, run_dir, data_dir, val_dir, version, commands, device, steps, minutes,
               batch, crop):
    """Ship a finished run of any trainable model as `version` of (name, quality)."""
    half, tables, dictionary = shipped_state(name, quality, run_dir, data_dir)
    stem = f"{name}-q{quality}-v{version}"
    wpath, tpath, dpath = save_files(half, tables, str(WEIGHTS_DIR), stem, dictionary)
    record = {"data": str(data_dir), "val_data": str(val_dir), "steps": steps, "batch": batch, "crop": crop,
              "device": f"{device} ({platform.processor() or platform.machine()})",
              "wall_minutes": round(minutes, 1), "commands": commands}
    return install(name, quality, version, wpath, tpath, record, val_dir, dpath)


def evaluate(name, quality, val_dir):
    """bpp (real .lcf size, header included) and PSNR per image, averaged over images; for
    audio, kbps and SNR per file, averaged over files."""
    from .. import api
    if registry.model_spec(name)["modality"] == "audio":
        return evaluate_audio(name, quality, val_dir)
    from ..io.images import read_image
    bpps, psnrs = [], []
    for path in data.image_files(val_dir):
        pixels, _ = read_image(path)
        blob = api.encode(pixels, model=name, quality=quality, device="cpu")
        rec = api.decode(blob, device="cpu")
        mse = np.mean((rec.astype(np.float64) - pixels) ** 2)
        bpps.append(len(blob) * 8 / (pixels.shape[0] * pixels.shape[1]))
        psnrs.append(10 * math.log10(255.0 ** 2 / max(mse, 1e-12)))
    return {"images": len(bpps), "bpp": round(float(np.mean(bpps)), 4),
            "psnr": round(float(np.mean(psnrs)), 3)}


def evaluate_audio(name, quality, val_dir):
    import soundfile as sf
    from .. import api
    kbps, snrs = [], []
    for path in data.audio_files(val_dir):
        x, rate = sf.read(str(path), dtype="float64", always_2d=True)
        blob = api.encode(path, model=name, quality=quality, device="cpu")
        y = api.decode(blob, device="cpu")
        kbps.append(len(blob) * 8 / (len(x) / rate) / 1000)
        snrs.append(10 * math.log10(max(np.sum(x ** 2), 1e-20) / max(np.sum((y - x) ** 2), 1e-20)))
    return {"files": len(kbps), "kbps": round(float(np.mean(kbps)), 3), "snr": round(float(np.mean(snrs)), 3)}
