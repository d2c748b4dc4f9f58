"""Turn a lent GPU's minutes into better shipped weights, then bring them home.

On the device (scripts/device_run.sh wraps this with the carried wheels and data):

    python -m lcodec.train.device train --plan walloc-rgb:2:4 --plan walloc-stereo:3:4 \\
        --data-root .data --out $OUT

fine-tunes each MODEL:QUALITY:MINUTES from its shipped weights (or trains it from scratch if
none ship; any trainable family: walloc-*, mgm, vqgan, the hyperpriors and clc; an mgm level
trains on the index choice its encoder makes, `--prior-weight` its rate_weight, and a clc level
on references from each crop's own photo, `--same-photo-refs`), writes
fp16 weights + frozen tables + one records.json to $OUT (2 files per model, < 16 MiB each), and
checks that files encoded on the GPU decode to the same symbols on the CPU and the GPU, and
whether they are byte-identical to CPU-encoded ones (device_check.json). Back here:

    python -m lcodec.train.device install /work/.device/.../files --data-root ../shared/data

ships each returned pair as the next version, with its ledger record.
"""
import argparse
import glob
import json
import os
import time
from types import SimpleNamespace

import numpy as np
import torch


FOLDER = {"image": "images", "audio": "audio"}


def data_dirs(data_root, name):
    """(train, val) folders of a model's modality under data_root (images/ or audio/)."""
    from ..models.registry import model_spec
    sub = os.path.join(data_root, FOLDER[model_spec(name)["modality"]])
    return os.path.join(sub, "train"), os.path.join(sub, "val")


# peak learning rate of a fine-tune on the device, by stage (None: the model's own training)
STAGE_LR = {None: 2e-4, "restorer": 3e-4, "codebook": 1e-3}


def parse_plan(plan):
    """MODEL:QUALITY:MINUTES[:STAGE] -> (name, quality, minutes, stage or None)."""
    name, quality, minutes, *stage = plan.split(":")
    return name, int(quality), float(minutes), (stage[0] if stage else None)


def start_weights(name, quality, stage, trained):
    """What a plan starts from: a later stage (vqgan's restorer or codebook) starts from the
    checkpoint this call trained last for the same model; otherwise the shipped weights of that
    quality (a codebook stage: of the largest codebook's quality), or nothing (from scratch)."""
    from ..models import registry
    if stage and name in trained:
        return trained[name]
    source = max(registry.model_spec(name)["qualities"]) if stage == "codebook" else quality
    try:
        return registry.verified_path(registry.weights_entry(name, source), "weights_file")
    except Exception:
        return None


def train_on_device(plans, data_root, out, batch, crop):
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name_dev = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.benchmark = True   # training only
    call = SimpleNamespace(plans=plans, data_root=data_root, out=out, batch=batch, crop=crop, dev=dev,
                           name_dev=name_dev, records={}, trained={}, shipped_as={})
    for plan in plans:
        try:
            train_one(plan, call)
        except Exception as e:   # one failing plan (a package missing there, say) must not waste the others
            print(f"plan {plan} failed, the others go on: {e.__class__.__name__}: {e}", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.benchmark = False
    return call.records


def train_one(plan, call):
    """Train one plan, export its fp16 weights and tables to call.out, add its record."""
    from ..models import registry
    from . import export, trainer
    data_root, out, batch, crop, dev = call.data_root, call.out, call.batch, call.crop, call.dev
    records, trained, shipped_as = call.records, call.trained, call.shipped_as
    name, quality, minutes, stage = parse_plan(plan)
    data_dir, val_dir = data_dirs(data_root, name)
    crop_q = crop if registry.model_spec(name)["modality"] == "image" else None  # audio: the model's default
    try:
        entry = registry.weights_entry(name, quality)
    except Exception:
        entry = None
    init = start_weights(name, quality, stage, trained)
    run_dir = os.path.join("/tmp/lcodec-runs", f"{name}-q{quality}" + (f"-{stage}" if stage else ""))
    lr = STAGE_LR[stage] if init else None
    t = time.time()
    # an mgm level trains on the index choice its encoder makes; a clc level on references cut
    # from each crop's own photo (docs/clc/same_photo_training.md)
    family = registry.model_spec(name)["family"]
    family_options = {}
    if family == "mgm":
        family_options["prior_weight"] = registry.quality_spec(name, quality).get("rate_weight", 0.0)
    elif family == "clc":
        family_options["same_photo_refs"] = True
    rec, state = trainer(name).run(name, quality, data_dir, val_dir, minutes, False, dev, run_dir,
                                   batch=batch, crop=crop_q, init_from=init, val_every=10 ** 9,
                                   **({"lr": lr} if lr else {}), **({"stage": stage} if stage else {}),
                                   **family_options)
    version = (entry["version"] if entry else 0) + 1
    stem = f"{name}-q{quality}-v{version}"
    started_from = shipped_as.get(init, os.path.basename(init) if init else None)
    trained[name] = os.path.join(run_dir, "last.pt")
    shipped_as[trained[name]] = f"{stem}.pt"   # what a later stage starts from, as the ledger names it
    half, tables, dictionary = export.shipped_state(name, quality, run_dir, data_dir)
    export.save_files(half, tables, out, stem, dictionary)   # a later stage of the same level replaces them
    step = {"plan": plan, "steps": state.step, "peak_lr": lr, "wall_minutes": round((time.time() - t) / 60, 1),
            "started_from": started_from, "device_val": rec, **family_options}
    earlier = records.get(stem, {}).get("stages", [])
    records[stem] = {"model": name, "quality": quality, "version": version,
                     "steps": sum(s["steps"] for s in earlier) + state.step,
                     "batch": batch, "crop": crop_q, "device": f"cuda ({call.name_dev})" if dev.type == "cuda" else "cpu",
                     "wall_minutes": round(sum(s["wall_minutes"] for s in earlier) + step["wall_minutes"], 1),
                     "stages": earlier + [step],
                     "data": str(data_dir), "val_data": str(val_dir), "device_val": rec,
                     "commands": [f"python -m lcodec.train.device train {' '.join('--plan ' + p for p in call.plans)} "
                                  f"--batch {batch} --crop {crop} --data-root {data_root}"]}
    with open(os.path.join(out, "records.json"), "w") as f:
        json.dump(records, f, indent=1)


def _val_inputs(modality, val_dir):
    """(name, encode kwargs) of every validation file of a modality."""
    if modality == "image":
        from ..io.images import read_image
        from .data import image_files
        return [(p.name, {"src": read_image(p)[0]}) for p in image_files(val_dir)]
    from .data import audio_files
    return [(p.name, {"src": p}) for p in audio_files(val_dir)]


def _max_diff(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def loadable_levels(skipped):
    """(model info, quality) of every installed level that loads here; the others (a family
    whose package the device lacks, such as compressai) go into `skipped` with the reason."""
    from .. import api
    from ..models.registry import list_models
    levels = []
    for m in list_models():
        for q in m["qualities"]:
            if not m["levels"][str(q)]["installed"]:
                continue
            try:
                api.get_codec(m["name"], q, "cpu")
                levels.append((m, q))
            except Exception as e:   # noqa: BLE001 (reported, not hidden)
                skipped.append(f"{m['name']} q{q}: {type(e).__name__}: {e}")
    return levels


def check_identity(data_root, out):
    """GPU-encoded files must equal CPU-encoded ones byte for byte and decode on the CPU."""
    from .. import api
    result = {"cuda": torch.cuda.is_available(), "checks": [], "skipped": []}
    if not torch.cuda.is_available():
        result["note"] = "no CUDA device: nothing to compare"
    else:
        levels = loadable_levels(result["skipped"])
        for m, q in levels:
            val_dir = os.path.join(data_root, FOLDER[m["modality"]], "val")
            if os.path.isdir(val_dir):
                for name, kw in _val_inputs(m["modality"], val_dir):
                    t = time.time()
                    gpu = api.encode(**kw, model=m["name"], quality=q, device="cuda")
                    t_gpu = time.time() - t
                    t = time.time()
                    cpu = api.encode(**kw, model=m["name"], quality=q, device="cpu")
                    t_cpu = time.time() - t
                    a, b = api.decode(gpu, device="cpu"), api.decode(gpu, device="cuda")
                    f = api.open(gpu)
                    same = all(np.array_equal(f.latents("cpu", tile=i).cpu().numpy(),
                                              f.latents("cuda", tile=i).cpu().numpy()) for i in range(f.header["tiles"]))
                    result["checks"].append({"model": m["name"], "quality": q, "file": name,
                                             "symbols_identical_cpu_vs_gpu_decode": same,
                                             "bytes_identical": gpu == cpu, "encode_s_gpu": t_gpu,
                                             "encode_s_cpu": t_cpu, "max_diff_cpu_vs_gpu_decode": _max_diff(a, b)})
    # what must hold: a GPU-written file decodes to the same symbols on the CPU. Equal bytes from
    # GPU and CPU encoders is reported too, but float analysis transforms (TF32 on the GPU) may
    # round a latent differently: both files are then valid, and each decodes exactly anywhere.
        result["batched"] = check_batched(data_root, levels)
    result["all_decode_identically"] = all(c["symbols_identical_cpu_vs_gpu_decode"] for c in result["checks"])
    result["all_bytes_identical"] = all(c["bytes_identical"] for c in result["checks"])
    with open(os.path.join(out, "device_check.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "checks"}))
    return result


def check_batched(data_root, levels, batch=16, device="cuda"):
    """`lcodec encode DIR --batch-size`: the val photos through api.encode_images on the GPU
    (tiles of one shape share network passes) against one at a time: same bytes, and the time."""
    from .. import api
    from ..io.images import read_image
    from .data import image_files
    val_dir = os.path.join(data_root, "images", "val")
    images = [read_image(p)[0] for p in image_files(val_dir)] if os.path.isdir(val_dir) else []
    rows = []
    for m, q in levels:
        if images and m["modality"] == "image" and hasattr(api.get_codec(m["name"], q, device), "encode_tiles"):
            api.encode_images(images[:1], m["name"], q, device, batch=batch)   # warm-up
            t = time.time()
            alone = [api.encode(x, model=m["name"], quality=q, device=device) for x in images]
            t_alone = time.time() - t
            t = time.time()
            together = api.encode_images(images, m["name"], q, device, batch=batch)
            rows.append({"model": m["name"], "quality": q, "batch": batch, "files": len(images),
                         "seconds_one_at_a_time": t_alone, "seconds_batched": time.time() - t,
                         "bytes_identical": together == alone})
    return rows


def install_returned(folder, data_root):
    from . import export
    records = json.load(open(os.path.join(folder, "records.json")))
    for stem, rec in records.items():
        train_dir, val_dir = data_dirs(data_root, rec["model"])
        rec = dict(rec, data=f"{train_dir} (carried to the device as {rec['data']})", val_data=val_dir)
        wpath = os.path.join(folder, f"{stem}.pt")
        tpath = os.path.join(folder, f"{stem}.tables.npz")
        dpath = os.path.join(folder, f"{stem}.dict.pt")
        meta = {k: v for k, v in rec.items() if k not in ("model", "quality", "version")}
        export.install(rec["model"], rec["quality"], rec["version"], wpath, tpath, meta, val_dir,
                       dpath if os.path.exists(dpath) else None)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lcodec.train.device")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--plan", action="append", required=True, help="MODEL:QUALITY:MINUTES")
    t.add_argument("--data-root", required=True, help="Folder with images/{train,val} and/or audio/{train,val}.")
    t.add_argument("--out", default=os.environ.get("OUT", "device-out"))
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--crop", type=int, default=256, help="Image crop side (audio uses its model's default).")
    i = sub.add_parser("install")
    i.add_argument("folder")
    i.add_argument("--data-root", required=True)
    a = p.parse_args(argv)
    if a.cmd == "train":
        os.makedirs(a.out, exist_ok=True)
        train_on_device(a.plan, a.data_root, a.out, a.batch, a.crop)
        check_identity(a.data_root, a.out)
    else:
        install_returned(a.folder, a.data_root)
    for f in sorted(glob.glob(os.path.join(getattr(a, "out", a.__dict__.get("folder", ".")), "*"))):
        print(f, os.path.getsize(f))


if __name__ == "__main__":
    main()
