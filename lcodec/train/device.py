"""Turn a lent GPU's minutes into better shipped weights, then bring them home.

On the device (scripts/device_run.sh wraps this with the carried wheels and data):

    python -m lcodec.train.device train --plan walloc-rgb:2:4 --plan walloc-rgb:3:4 \\
        --data .data/images/train --val .data/images/val --out $OUT

fine-tunes each MODEL:QUALITY:MINUTES from its shipped weights (PCA init if none ship), writes
fp16 weights + frozen tables + one records.json to $OUT (2 files per model, < 16 MiB each), and
checks that files encoded on the GPU are byte-identical to CPU-encoded ones and decode on the
CPU (device_check.json). Back here:

    python -m lcodec.train.device install /work/.device/.../files --val ../shared/data/images/val

ships each returned pair as the next version, with its ledger record.
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import torch


def train_on_device(plans, data_dir, val_dir, out, batch, crop):
    from ..models import registry
    from . import export, walloc_train
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name_dev = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    records = {}
    for plan in plans:
        name, quality, minutes = plan.split(":")
        quality, minutes = int(quality), float(minutes)
        try:
            entry = registry.weights_entry(name, quality)
            init = registry.verified_path(entry, "weights_file")
        except Exception:
            entry, init = None, None
        run_dir = os.path.join("/tmp/lcodec-runs", f"{name}-q{quality}")
        t = time.time()
        rec, state = walloc_train.run(name, quality, data_dir, val_dir, minutes, False, dev, run_dir,
                                      batch=batch, crop=crop, lr=2e-4 if init else 5e-4,
                                      init_from=init, val_every=10 ** 9)
        model, half = export.fp16_model(name, quality, run_dir)
        tables = export.fit_tables(model, name, data_dir)
        version = (entry["version"] if entry else 0) + 1
        stem = f"{name}-q{quality}-v{version}"
        export.save_files(half, tables, out, stem)
        records[stem] = {"model": name, "quality": quality, "version": version, "steps": state.step,
                         "batch": batch, "crop": crop, "device": f"cuda ({name_dev})" if dev.type == "cuda" else "cpu",
                         "wall_minutes": round((time.time() - t) / 60, 1), "finetuned_from": entry and entry["version"],
                         "data": str(data_dir), "val_data": str(val_dir), "device_val": rec,
                         "commands": [f"python -m lcodec.train.device train --plan {plan} --batch {batch} --crop {crop}"]}
        with open(os.path.join(out, "records.json"), "w") as f:
            json.dump(records, f, indent=1)
    return records


def check_identity(val_dir, out):
    """GPU-encoded files must equal CPU-encoded ones byte for byte and decode on the CPU."""
    from .. import api
    from ..io.images import read_image
    from ..models.registry import list_models
    from .data import image_files
    result = {"cuda": torch.cuda.is_available(), "checks": []}
    if not torch.cuda.is_available():
        result["note"] = "no CUDA device: nothing to compare"
    else:
        for m in list_models():
            for q in m["qualities"]:
                if not m["levels"][str(q)]["installed"] or m["modality"] != "image":
                    continue
                for path in image_files(val_dir):
                    px, _ = read_image(path)
                    t = time.time()
                    gpu = api.encode(px, model=m["name"], quality=q, device="cuda")
                    t_gpu = time.time() - t
                    t = time.time()
                    cpu = api.encode(px, model=m["name"], quality=q, device="cpu")
                    t_cpu = time.time() - t
                    a, b = api.decode(gpu, device="cpu"), api.decode(gpu, device="cuda")
                    result["checks"].append({"model": m["name"], "quality": q, "file": path.name,
                                             "bytes_identical": gpu == cpu, "encode_s_gpu": t_gpu,
                                             "encode_s_cpu": t_cpu,
                                             "max_pixel_diff_cpu_vs_gpu_decode": int(np.abs(
                                                 a.astype(int) - b.astype(int)).max())})
    result["all_identical"] = all(c["bytes_identical"] for c in result["checks"])
    with open(os.path.join(out, "device_check.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "checks"}))
    return result


def install_returned(folder, val_dir):
    from . import export
    records = json.load(open(os.path.join(folder, "records.json")))
    for stem, rec in records.items():
        wpath = os.path.join(folder, f"{stem}.pt")
        tpath = os.path.join(folder, f"{stem}.tables.npz")
        meta = {k: v for k, v in rec.items() if k not in ("model", "quality", "version")}
        export.install(rec["model"], rec["quality"], rec["version"], wpath, tpath, meta, val_dir)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lcodec.train.device")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--plan", action="append", required=True, help="MODEL:QUALITY:MINUTES")
    t.add_argument("--data", required=True)
    t.add_argument("--val", required=True)
    t.add_argument("--out", default=os.environ.get("OUT", "device-out"))
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--crop", type=int, default=256)
    i = sub.add_parser("install")
    i.add_argument("folder")
    i.add_argument("--val", required=True)
    a = p.parse_args(argv)
    if a.cmd == "train":
        os.makedirs(a.out, exist_ok=True)
        train_on_device(a.plan, a.data, a.val, a.out, a.batch, a.crop)
        check_identity(a.val, a.out)
    else:
        install_returned(a.folder, a.val)
    for f in sorted(glob.glob(os.path.join(getattr(a, "out", a.__dict__.get("folder", ".")), "*"))):
        print(f, os.path.getsize(f))


if __name__ == "__main__":
    main()
