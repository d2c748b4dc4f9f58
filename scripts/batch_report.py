"""Folder jobs at scale (issue 9), on crops of real photos:

    python scripts/batch_report.py ../shared/data/images/train -o docs/batch [-n 500] [-m walloc-rgb -q 2]

Cuts N crops (seeded, from 384 px sides up to the whole photo) from the photos of a folder into OUT/work/in, then
times `lcodec encode IN -o ...` with --jobs 1, --jobs 2, the default jobs, --jobs 1 --threads 2
(one process on every core through torch threads), --batch-size 8 and --engine ray (when Ray is
installed), each in a fresh process as a user runs it (start-up included):
files/s, the speed-up of 2 jobs over 1, whether every run wrote the same bytes as --jobs 1,
and peak memory per worker. Then interrupts a --jobs 2 run at a
random moment (SIGINT, SIGTERM and SIGKILL in turn), reruns it, and checks that nothing was
lost, nothing encoded twice and no partial or temporary file was left. The machine's own
ceiling comes first: how much more work two busy pure-Python processes do than one (under 2x
where a VM's two CPUs share a physical core or a busy host). Writes OUT/results.json and
OUT/report.md."""
import argparse
import json
import os
import random
import re
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
        h, w = (rng.randint(min(384, n), n) for n in img.shape[:2])
        y, x = rng.randint(0, img.shape[0] - h), rng.randint(0, img.shape[1] - w)
        sub = dst / f"d{i % 10}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(img[y:y + h, x:x + w]).save(sub / f"crop{i:04d}.png")


def cli(src, out, model, quality, *extra):
    return [sys.executable, "-m", "lcodec.cli", "encode", str(src), "-o", str(out), "-m", model, "-q", str(quality),
            "--device", "cpu", *extra]


def timed_run(src, out, model, quality, *extra):
    """One `lcodec encode DIR` in a fresh process (start-up included, as a user sees it):
    (summary line, seconds)."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.time()
    r = subprocess.run(cli(src, out, model, quality, *extra), capture_output=True, text=True)
    secs = time.time() - t
    if r.returncode:
        raise SystemExit(f"{' '.join(extra)}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    return r.stdout.strip().splitlines()[-1], secs


def same_tree(a, b):
    files = sorted(p.relative_to(a) for p in a.rglob("*.lcf"))
    return len(files) > 0 and all((b / f).is_file() and (b / f).read_bytes() == (a / f).read_bytes() for f in files) \
        and len(list(b.rglob("*.lcf"))) == len(files)


def interrupted(src, out, ref, model, quality, how, rng, run_s):
    """Start a --jobs 2 run, interrupt it at a random moment of the `run_s` seconds it takes
    (plus start-up), rerun; what survived."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = cli(src, out, model, quality, "--jobs", "2")
    # a background shell job starts with SIGINT ignored, and that is inherited: restore it, as a
    # terminal has it, or Ctrl-C would be tested against a process that cannot receive it
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    delay = 4 + rng.uniform(0.2, 0.8) * run_s
    time.sleep(delay)
    sig = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}[how]
    # Ctrl-C reaches the whole process group; kill and kill -9 reach the main process only
    if how == "SIGINT":
        os.killpg(p.pid, sig)
    else:
        p.send_signal(sig)
    t = time.time()
    code = p.wait()
    stopped_in = time.time() - t
    time.sleep(2)   # anything still running after its parent died would show up here
    done = len(list(out.rglob("*.lcf")))
    leftovers = [str(f) for f in out.rglob("*") if f.is_file() and f.suffix != ".lcf"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return {"signal": how, "after_s": round(delay, 1), "exit": code, "stopped_in_s": round(stopped_in, 1),
            "finished_before": done, "rerun_exit": r.returncode,
            "rerun_summary": r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr.strip()[-200:],
            "temporary_files_left": leftovers, "identical_to_reference": same_tree(ref, out)}


BUSY = "sum(i * i for i in range(25_000_000))"   # ~1.5 s of pure-Python work, no I/O


def machine_scaling(repeats=5):
    """Work done per second by two busy processes at once over one alone, from the fastest of
    `repeats` alternating runs of each (a VM's speed drifts: the minimum is its least-disturbed)."""
    def wall(n):
        t = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]
        for p in procs:
            p.wait()
        return time.perf_counter() - t
    one, two = zip(*((wall(1), wall(2)) for _ in range(repeats)))
    return round(2 * min(one) / min(two), 2)


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
    ceiling = machine_scaling()
    print("two busy processes do", ceiling, "x the work of one", flush=True)
    runs = {}
    ref = work / "jobs1"
    for name, extra in (("jobs 1", ("--jobs", "1")), ("jobs 2", ("--jobs", "2")), ("default jobs", ()),
                        ("jobs 1, 2 threads", ("--jobs", "1", "--threads", "2")),
                        ("jobs 1, batch 8", ("--jobs", "1", "--batch-size", "8")),
                        ("ray, 2 CPUs", ("--jobs", "2", "--engine", "ray"))):
        if "ray" in extra:
            from lcodec import ray_engine
            if not ray_engine.available():
                continue
        dst = work / name.replace(" ", "").replace(",", "_")
        line, secs = timed_run(src, dst, a.model, a.quality, *extra)
        files = len(list(dst.rglob("*.lcf")))
        runs[name] = {"files": files, "seconds": round(secs, 1), "files_per_s": round(files / secs, 2),
                      "peak_worker_mib": int(re.search(r"peak worker memory (\d+) MiB", line).group(1)),
                      "mean_bpp": float(re.search(r"images ([0-9.]+) bpp", line).group(1)),
                      "same_bytes_as_jobs_1": name == "jobs 1" or same_tree(ref, dst), "summary": line}
        if name == "jobs 1":
            ref = dst
        print(name, runs[name], flush=True)
    rng = random.Random(1)
    cuts = [interrupted(src, work / f"cut_{how}", ref, a.model, a.quality, how, rng, runs["jobs 2"]["seconds"])
            for how in ("SIGINT", "SIGTERM", "SIGKILL")]
    for c in cuts:
        print(c, flush=True)
    result = {"folder": a.folder, "files": a.n, "model": a.model, "quality": a.quality, "cpus": os.cpu_count(),
              "runs": runs, "interrupted": cuts, "machine_scaling_2_processes": ceiling,
              "speedup_jobs2": round(runs["jobs 2"]["files_per_s"] / runs["jobs 1"]["files_per_s"], 2),
              "speedup_jobs2_over_two_threads": round(runs["jobs 2"]["files_per_s"]
                                                      / runs["jobs 1, 2 threads"]["files_per_s"], 2)}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Folder jobs: {a.n} crops of the photos in {a.folder}\n",
             f"Command: `python scripts/batch_report.py {a.folder} -o {a.out} -n {a.n} -m {a.model} -q {a.quality}` "
             f"({os.cpu_count()} CPUs, device cpu). {a.model} q{a.quality}; each run is `lcodec encode` in a "
             "fresh process, start-up included.\n",
             "| run | files | s | files/s | peak memory per worker MiB | mean bpp | same bytes as --jobs 1 |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {k} | {r['files']} | {r['seconds']} | {r['files_per_s']} | {r['peak_worker_mib']} | {r['mean_bpp']} | "
              f"{'yes' if r['same_bytes_as_jobs_1'] else 'NO'} |" for k, r in runs.items()]
    lines += [f"\n--jobs 2 over --jobs 1: **{result['speedup_jobs2']}x** files/s (each worker one core, one torch "
              f"thread). Over one process running the networks on two cores through torch threads (--jobs 1 "
              f"--threads 2), --jobs 2 is **{result['speedup_jobs2_over_two_threads']}x**: two processes use two cores "
              f"{'better' if result['speedup_jobs2_over_two_threads'] > 1 else 'no better'} than two threads do. The default jobs: one worker per core (here {os.cpu_count()} CPUs). "
              f"The machine's own ceiling: two busy pure-Python processes do **{ceiling}x** the work of one (fastest "
              "of 5 runs each).\n",
              "## Interrupted and rerun\n",
              "A `--jobs 2` run stopped after a random delay, then the same command again.\n",
              "| signal | after s | exit | stopped within s | files finished | rerun exit | temporary files left | "
              "all outputs identical to --jobs 1 |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c['signal']} | {c['after_s']} | {c['exit']} | {c['stopped_in_s']} | {c['finished_before']} | "
              f"{c['rerun_exit']} | "
              f"{len(c['temporary_files_left'])} | {'yes' if c['identical_to_reference'] else 'NO'} |" for c in cuts]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print((out / "report.md").read_text())


if __name__ == "__main__":
    main()
