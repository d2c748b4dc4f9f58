"""Folder jobs at scale (issue 9), on crops of real photos:

    python scripts/batch_report.py ../shared/data/images/train -o docs/batch [-n 500] [-m walloc-rgb -q 2]

Cuts N crops (seeded, 160-640 px sides) from the photos of a folder into OUT/work/in, then
times `lcodec encode IN -o ... ` with --jobs 1, --jobs 2, --batch-size 8 and --engine ray
(when Ray is installed): files/s, the speed-up of 2 jobs over 1, whether every run wrote the
same bytes as --jobs 1, and peak memory per worker. Then interrupts a --jobs 2 run at a
random moment (SIGINT, SIGTERM and SIGKILL in turn), reruns it, and checks that nothing was
lost, nothing encoded twice and no partial or temporary file was left. Writes
OUT/results.json and OUT/report.md."""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def make_inputs(folder, dst, n, seed=0):
    import numpy as np
    from PIL import Image
    from lcodec.train.data import image_files
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in image_files(folder)]
    rng = random.Random(seed)
    dst.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = rng.randint(160, min(640, img.shape[0])), rng.randint(160, min(640, img.shape[1]))
        y, x = rng.randint(0, img.shape[0] - h), rng.randint(0, img.shape[1] - w)
        sub = dst / f"d{i % 10}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(img[y:y + h, x:x + w]).save(sub / f"crop{i:04d}.png")


def timed_run(src, out, model, quality, **kw):
    from lcodec import batch
    shutil.rmtree(out, ignore_errors=True)
    t = time.time()
    s = batch.run(src, out, "encode", model=model, quality=quality, device="cpu", echo=lambda *_: None, **kw)
    return s, time.time() - t


def same_tree(a, b):
    files = sorted(p.relative_to(a) for p in a.rglob("*.lcf"))
    return len(files) > 0 and all((b / f).is_file() and (b / f).read_bytes() == (a / f).read_bytes() for f in files) \
        and len(list(b.rglob("*.lcf"))) == len(files)


def interrupted(src, out, ref, model, quality, how, rng, run_s):
    """Start a --jobs 2 run, interrupt it at a random moment of the `run_s` seconds it takes
    (plus start-up), rerun; what survived."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "lcodec.cli", "encode", str(src), "-o", str(out), "-m", model, "-q", str(quality),
           "--jobs", "2", "--device", "cpu"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    delay = 4 + rng.uniform(0.2, 0.8) * run_s
    time.sleep(delay)
    sig = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}[how]
    # Ctrl-C reaches the whole process group; kill and kill -9 reach the main process only
    os.killpg(p.pid, sig) if how == "SIGINT" else p.send_signal(sig)
    p.wait()
    time.sleep(2)   # anything still running after its parent died would show up here
    done = len(list(out.rglob("*.lcf")))
    leftovers = [str(f) for f in out.rglob("*") if f.is_file() and f.suffix != ".lcf"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return {"signal": how, "after_s": round(delay, 1), "finished_before": done, "rerun_exit": r.returncode,
            "rerun_summary": r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr.strip()[-200:],
            "temporary_files_left": leftovers, "identical_to_reference": same_tree(ref, out)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("-o", "--out", default="docs/batch")
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("-m", "--model", default="walloc-rgb")
    ap.add_argument("-q", "--quality", type=int, default=2)
    a = ap.parse_args()
    out = Path(a.out)
    work = out / "work"
    src = work / "in"
    shutil.rmtree(work, ignore_errors=True)
    make_inputs(a.folder, src, a.n)
    runs = {}
    ref = work / "jobs1"
    for name, kw in (("jobs 1", {"jobs": 1}), ("jobs 2", {"jobs": 2}), ("jobs 1, batch 8", {"batch_size": 8}),
                     ("ray, 2 CPUs", {"jobs": 2, "engine": "ray"})):
        if kw.get("engine") == "ray":
            from lcodec import ray_engine
            if not ray_engine.available():
                continue
        dst = work / name.replace(" ", "").replace(",", "_")
        s, secs = timed_run(src, dst, a.model, a.quality, **kw)
        runs[name] = {"files": s.files, "failures": len(s.failures), "seconds": round(secs, 1),
                      "files_per_s": round(s.files / secs, 2), "peak_worker_mib": round(s.worker_rss_mib),
                      "mean_bpp": round(s.image_bytes * 8 / max(s.pixels, 1), 4),
                      "same_bytes_as_jobs_1": name == "jobs 1" or same_tree(dst if name != "jobs 1" else ref, ref)}
        if name == "jobs 1":
            ref = dst
        print(name, runs[name], flush=True)
    rng = random.Random(1)
    cuts = [interrupted(src, work / f"cut_{how}", ref, a.model, a.quality, how, rng, runs["jobs 2"]["seconds"])
            for how in ("SIGINT", "SIGTERM", "SIGKILL")]
    for c in cuts:
        print(c, flush=True)
    result = {"folder": a.folder, "files": a.n, "model": a.model, "quality": a.quality, "cpus": os.cpu_count(),
              "runs": runs, "interrupted": cuts,
              "speedup_jobs2": round(runs["jobs 2"]["files_per_s"] / runs["jobs 1"]["files_per_s"], 2)}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Folder jobs: {a.n} crops of the photos in {a.folder}\n",
             f"Command: `python scripts/batch_report.py {a.folder} -o {a.out} -n {a.n} -m {a.model} -q {a.quality}` "
             f"({os.cpu_count()} CPUs, device cpu). {a.model} q{a.quality}.\n",
             "| run | files | s | files/s | peak memory per worker MiB | mean bpp | same bytes as --jobs 1 |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {k} | {r['files']} | {r['seconds']} | {r['files_per_s']} | {r['peak_worker_mib']} | {r['mean_bpp']} | "
              f"{'yes' if r['same_bytes_as_jobs_1'] else 'NO'} |" for k, r in runs.items()]
    lines += [f"\n--jobs 2 over --jobs 1: **{result['speedup_jobs2']}x** files/s.\n",
              "## Interrupted and rerun\n",
              "A `--jobs 2` run stopped after a random delay, then the same command again.\n",
              "| signal | after s | finished before | rerun exit | temporary files left | all outputs identical to --jobs 1 |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {c['signal']} | {c['after_s']} | {c['finished_before']} | {c['rerun_exit']} | "
              f"{len(c['temporary_files_left'])} | {'yes' if c['identical_to_reference'] else 'NO'} |" for c in cuts]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print((out / "report.md").read_text())


if __name__ == "__main__":
    main()
