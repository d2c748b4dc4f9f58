"""Folder jobs: encode or decode a whole tree into a mirrored tree, with worker processes,
resume (finished outputs are skipped; outputs are written atomically, so none is partial),
a progress bar, and a summary in which one bad file never stops the batch. Images and audio
may be mixed: without a model, each file gets its modality's default model; decoded images
become .png, decoded audio .wav. The same job runs on Ray Data with engine="ray" (ray_engine.py)."""
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .io.audio import AUDIO_SUFFIXES
from .io.images import IMAGE_SUFFIXES


@dataclass
class Summary:
    files: int = 0
    skipped: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    image_bytes: int = 0   # encoded bytes of images and of audio, for bpp and kbps
    audio_bytes: int = 0
    pixels: int = 0
    audio_seconds: float = 0.0
    seconds: float = 0.0
    worker_rss_mib: float = 0.0   # the largest peak resident memory of any worker process
    workers: str = ""             # "2 workers x 1 thread"
    failures: list = field(default_factory=list)

    def line(self, mode):
        bpp = f", images {self.image_bytes * 8 / self.pixels:.4f} bpp" if mode == "encode" and self.pixels else ""
        if mode == "encode" and self.audio_seconds:
            bpp += f", audio {self.audio_bytes * 8 / self.audio_seconds / 1000:.1f} kbps ({self.audio_seconds:.1f} s)"
        fails = f", {len(self.failures)} failed" if self.failures else ""
        return (f"{self.files} files {mode}d ({self.skipped} already done), {self.in_bytes / 1e6:.2f} MB in, "
                f"{self.out_bytes / 1e6:.2f} MB out{bpp}, {self.seconds:.1f} s, {self.workers or '1 worker'}, "
                f"peak worker memory {self.worker_rss_mib:.0f} MiB{fails}")


def plan(src, dst, mode):
    """(input, output) pairs mirroring the tree of src under dst."""
    src, dst = Path(src), Path(dst)
    want = IMAGE_SUFFIXES | AUDIO_SUFFIXES if mode == "encode" else {".lcf"}
    files = [p for p in sorted(src.rglob("*")) if p.is_file() and p.suffix.lower() in want]
    suffixes = [".lcf" if mode == "encode" else _decoded_suffix(p) for p in files]
    targets = [(dst / p.relative_to(src)).with_suffix(sfx) for p, sfx in zip(files, suffixes)]
    clash = {t for t in targets if targets.count(t) > 1}
    # a.png and a.jpg would both become a.lcf: such files keep their suffix (a.png.lcf, a.jpg.lcf)
    return [(p, (dst / p.relative_to(src)).with_name(p.name + sfx) if t in clash else t)
            for p, t, sfx in zip(files, targets, suffixes)]


def _decoded_suffix(path):
    """.wav for an audio .lcf, else .png (an unreadable file fails later, with its reason)."""
    from . import api
    from .errors import LcodecError
    try:
        return ".wav" if api.open(path).header["modality"] == "audio" else ".png"
    except LcodecError:
        return ".png"


_worker = {}


def _init(opts):
    import torch
    torch.set_num_threads(opts.pop("threads"))
    _worker.update(opts)


def peak_rss_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def _one(job):
    """Process one file; returns (input, in_bytes, out_bytes, pixels or audio seconds, error or
    None, the worker's peak memory so far in MiB)."""
    return (*_guarded(job[0], _code, job), peak_rss_mib())


def _many(jobs):
    """_one's tuples for a chunk of files. Encoding, the chunk's images go through the network
    together (api.encode_images: tiles of one shape share passes), the rest one by one."""
    from . import api
    images = [j for j in jobs if _worker["mode"] == "encode" and len(jobs) > 1
              and j[0].suffix.lower() in IMAGE_SUFFIXES]
    out = [_one(j) for j in jobs if j not in images]
    if images:
        model = _worker["model"] or api.DEFAULT_MODEL["image"]
        try:
            coded = api.encode_images([a for a, _ in images], model, _worker["quality"], _worker["device"],
                                      batch=len(jobs))
        except Exception:   # e.g. an audio model asked to code images: each file then says why
            return out + [_one(j) for j in images]
        out += [(*_guarded(job[0], _write_encoded, job, data), peak_rss_mib()) for job, data in zip(images, coded)]
    return out


def _guarded(src, fn, *args):
    """fn(*args), or the failure tuple of src: one bad file never stops the batch."""
    from .errors import LcodecError
    try:
        return fn(*args)
    except LcodecError as e:
        return str(src), _size(src), 0, 0, str(e)
    except Exception as e:  # an unexpected error is reported with its class, not raised
        return str(src), _size(src), 0, 0, f"{e.__class__.__name__}: {e}"


def _write_encoded(job, data):
    """Write one file's .lcf bytes (or raise the error its encoding ended in)."""
    from . import api
    from .errors import LcodecError
    src, dst = job
    if isinstance(data, LcodecError):
        raise data
    os.makedirs(dst.parent, exist_ok=True)
    info = api.open(data).info()
    amount = info["width"] * info["height"] if info["modality"] == "image" else float(info["duration_s"])
    api.write_atomic(dst, data, force=_worker["force"])
    return str(src), os.path.getsize(src), len(data), amount, None


def _code(job):
    from . import api
    src, dst = job
    if _worker["mode"] == "encode":
        return _write_encoded(job, api.encode(src, model=_worker["model"], quality=_worker["quality"],
                                              device=_worker["device"]))
    os.makedirs(dst.parent, exist_ok=True)
    lcf = api.open(src)   # read and verified once, whichever way it decodes
    if lcf.header["modality"] == "audio":
        api.write_audio(lcf, dst, device=_worker["device"], force=_worker["force"])
        return str(src), os.path.getsize(src), os.path.getsize(dst), 0, None
    w, h = api.write_image(lcf, dst, device=_worker["device"], force=_worker["force"])
    return str(src), os.path.getsize(src), os.path.getsize(dst), w * h, None


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


WORKER_MEMORY = 2 << 30   # what one worker may need at most (peak ~1 GiB with walloc-rgb, ~1.9 GiB with clc)


def memory_bytes():
    """The memory this process may use: the machine's, or a container's (cgroup v2) limit when
    lower; None where neither can be read (Windows)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        return min(total, int(limit)) if limit.isdigit() else total
    except OSError:
        return total


def default_jobs(device, chunks):
    """--jobs when not given: on the CPU, one worker per usable core, since here processes scale
    better than torch's threads (docs/batch/report.md), but at most one per 2 GiB of memory and
    one per chunk of work (a file, or --batch-size files); on a GPU one process, which batches."""
    if device != "cpu":
        return 1
    jobs = usable_cores()
    memory = memory_bytes()
    if memory:
        jobs = min(jobs, max(1, memory // WORKER_MEMORY))
    return max(1, min(jobs, chunks))


def worker_threads(jobs, explicit):
    """torch threads per worker: --jobs N given means N cores, one thread each (`make -j`'s
    sense); the default jobs share out every core, so a folder of fewer files than cores (or a
    machine with less memory than cores) still uses them all."""
    return 1 if explicit else max(1, usable_cores() // jobs)


def run(src, dst, mode, model=None, quality=None, device="cpu", jobs=None, force=False, echo=print, engine="local",
        batch_size=1, threads=None):
    """jobs: worker processes (default: default_jobs); threads: torch threads per worker
    (default: worker_threads)."""
    from tqdm import tqdm
    from .errors import InputError
    pairs = plan(src, dst, mode)
    if not pairs:
        kinds = "image or audio files" if mode == "encode" else ".lcf files"
        raise InputError(f"{src}: a folder with no {kinds} in it")
    _remove_stale_temporaries(dst)
    s = Summary()
    todo = []
    for a, b in pairs:
        if not b.exists() or force:
            todo.append((a, b))
        elif mode == "encode" and not _made_with(b, model, quality):
            s.failures.append((str(a), f"{b} exists but was made with another model, quality or "
                                       "weights version (use --force to re-encode)"))
        else:
            s.skipped += 1
    explicit = jobs is not None
    jobs = max(1, jobs) if explicit else default_jobs(device, -(-len(todo) // max(1, batch_size)))
    threads = threads or worker_threads(jobs, explicit)
    if engine == "ray" and device == "cpu":
        threads = 1   # Ray gives each CPU worker one CPU (ray_engine: num_cpus=1)
    opts = {"mode": mode, "model": model, "quality": quality, "device": device, "force": force,
            "threads": threads, "batch_size": batch_size}
    total = sum(a.stat().st_size for a, _ in todo)
    t = time.time()
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"{mode} {len(todo)} files", dynamic_ncols=True)
    if engine == "ray":
        from . import ray_engine
        _collect(ray_engine.run(todo, opts, jobs), s, bar)
    else:
        chunks = [todo[k:k + batch_size] for k in range(0, len(todo), max(1, batch_size))]
        if jobs > 1:
            import multiprocessing as mp
            with mp.get_context("spawn").Pool(jobs, initializer=_init, initargs=(dict(opts),)) as pool:
                _collect(itertools.chain.from_iterable(pool.imap_unordered(_many, chunks)), s, bar)
        else:   # in this process: its torch threads are the caller's again afterwards
            import torch
            before = torch.get_num_threads()
            _init(dict(opts))
            try:
                _collect(itertools.chain.from_iterable(map(_many, chunks)), s, bar)
            finally:
                torch.set_num_threads(before)
    bar.close()
    s.seconds = time.time() - t
    s.workers = f"{jobs} worker{'s' * (jobs > 1)} x {threads} thread{'s' * (threads > 1)}"
    echo(s.line(mode))
    for path, err in s.failures:
        echo(f"failed: {err}" if path in err else f"failed: {path}: {err}")
    return s


def _remove_stale_temporaries(dst):
    """Temporary files of a run that was killed mid-write (kill -9): never outputs, so a rerun
    clears them. Only lcodec's own names (api.atomic_path) are touched."""
    for tmp in Path(dst).rglob(".lcodec-*.tmp") if Path(dst).is_dir() else ():
        try:
            tmp.unlink()
        except OSError:
            pass


def _made_with(path, model, quality):
    """Whether an existing .lcf output matches the requested model (or its modality's default),
    quality and installed weights."""
    from . import api
    from .errors import LcodecError
    from .models import registry
    try:
        h = api.open(path).header
        model = model or api.DEFAULT_MODEL[h["modality"]]
        q = api.resolve_quality(model, quality)
        e = registry.weights_entry(model, q)
    except LcodecError:
        return False
    return (h["model"], h["quality"], h["weights_sha256"]) == (model, q, e["weights_sha256"])


def _collect(results, s, bar):
    for path, nin, nout, pixels, err, rss in results:
        s.worker_rss_mib = max(s.worker_rss_mib, rss)
        if err:
            s.failures.append((path, err))
        else:
            s.files += 1
            s.in_bytes += nin
            s.out_bytes += nout
            if isinstance(pixels, float):
                s.audio_seconds += pixels
                s.audio_bytes += nout
            else:
                s.pixels += pixels
                s.image_bytes += nout
        bar.update(nin)
