"""Folder jobs on Ray Data (`lcodec encode DIR -o OUT --engine ray`; `pip install lcodec[distributed]`).

The job is a dataset of (input, output) paths; `map_batches` runs a stateful coder actor that
loads the model once per worker and writes its outputs itself (atomically, as the
single-process path does), returning only one small result row per file. GPUs are requested
when the driver sees one. With RAY_ADDRESS set, the job runs on that cluster; otherwise on a
local Ray instance with --jobs CPUs. Every file is coded by the same function as the local
engine (batch._many), so both write identical bytes."""
import os

BATCH = 4   # files per actor call: small, so the progress bar moves and a slow file delays few


class Coder:
    """Ray actor: one per worker, the model loaded once (on the first file)."""

    def __init__(self, opts):
        from . import batch
        self.batch = batch
        batch._init(dict(opts))

    def __call__(self, rows):
        out = {"src": [], "in_bytes": [], "out_bytes": [], "pixels": [], "seconds": [], "error": [], "rss": []}
        from pathlib import Path
        jobs = [(Path(src), Path(dst)) for src, dst in zip(rows["src"], rows["dst"])]
        size = self.batch._worker["batch_size"]
        for chunk in (jobs[k:k + size] for k in range(0, len(jobs), size)):
            self._add(out, self.batch._many(chunk))
        return out

    @staticmethod
    def _add(out, results):
        for path, nin, nout, amount, err, rss in results:
            out["src"].append(path)
            out["in_bytes"].append(nin)
            out["out_bytes"].append(nout)
            out["pixels"].append(0 if isinstance(amount, float) else int(amount))
            out["seconds"].append(float(amount) if isinstance(amount, float) else 0.0)
            out["error"].append(err or "")
            out["rss"].append(float(rss))


def available():
    import importlib.util
    try:
        return importlib.util.find_spec("ray.data") is not None
    except ImportError:   # no ray at all
        return False


def run(todo, opts, jobs):
    """Yield batch._one's tuples (input, in_bytes, out_bytes, pixels or seconds, error, rss MiB)."""
    from .errors import InputError
    if not available():
        raise InputError("--engine ray needs Ray Data: pip install 'lcodec[distributed]'")
    import ray
    if not todo:
        return
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, jobs), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False   # lcodec's own bar counts the files
        use_gpu = str(opts.get("device", "cpu")).startswith("cuda")
        workers = max(1, jobs)
        ds = ray.data.from_items([{"src": str(a), "dst": str(b)} for a, b in todo],
                                 override_num_blocks=min(len(todo), 4 * workers))
        results = ds.map_batches(Coder, fn_constructor_kwargs={"opts": opts}, batch_size=max(BATCH, opts["batch_size"]),
                                 concurrency=workers, num_cpus=1, num_gpus=1 if use_gpu else 0,
                                 batch_format="numpy")
        for row in results.iter_rows():
            amount = float(row["seconds"]) if row["seconds"] else int(row["pixels"])
            yield (str(row["src"]), int(row["in_bytes"]), int(row["out_bytes"]), amount, str(row["error"]) or None,
                   float(row["rss"]))
    finally:
        if started:
            ray.shutdown()
