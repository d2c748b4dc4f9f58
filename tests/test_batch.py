"""Folder encode/decode: mirrored tree, resume, bad files reported, workers give the same bytes."""
import subprocess
import sys

from PIL import Image

import lcodec
from lcodec import batch


def test_folder_encode_resume_and_workers(tmp_path, photo):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photo[:120, :150]).save(src / "a.png")
    Image.fromarray(photo[100:190, 200:330]).save(src / "sub" / "b.png")
    (src / "sub" / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    s = batch.run(src, out, "encode", quality=2, device="cpu", jobs=1, echo=lambda *_: None)
    assert s.files == 2 and len(s.failures) == 1 and "broken.png" in s.failures[0][0]
    assert 100 < s.worker_rss_mib < 4096 and "peak worker memory" in s.line("encode")   # torch alone: > 100 MiB
    assert (out / "a.lcf").read_bytes() == lcodec.encode(src / "a.png", quality=2, device="cpu")
    (out / "sub" / ".lcodec-killed.tmp").write_bytes(b"half a file")   # left by a kill -9 mid-write
    again = batch.run(src, out, "encode", quality=2, device="cpu", jobs=1, echo=lambda *_: None)
    assert again.files == 0 and again.skipped == 2          # resume: nothing encoded twice
    assert not (out / "sub" / ".lcodec-killed.tmp").exists()
    par = tmp_path / "par"
    batch.run(src, par, "encode", quality=2, device="cpu", jobs=2, echo=lambda *_: None)
    assert (par / "sub" / "b.lcf").read_bytes() == (out / "sub" / "b.lcf").read_bytes()
    dec = tmp_path / "dec"
    d = batch.run(out, dec, "decode", device="cpu", jobs=1, echo=lambda *_: None)
    assert d.files == 2 and Image.open(dec / "sub" / "b.png").size == (130, 90)
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_parent_of_worker_processes_never_imports_torch(tmp_path, photo):
    # the workers import torch and load the model; a parent doing it too only competes with them
    Image.fromarray(photo[:64, :64]).save(tmp_path / "a.png")
    code = ("import sys; from lcodec import batch; "
            f"s = batch.run(r'{tmp_path}', r'{tmp_path / 'out'}', 'encode', jobs=2, echo=lambda *_: None); "
            "print(s.files, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["1", "False"], r.stderr


def test_name_clashes_keep_their_suffix_and_stale_outputs_are_not_skipped(tmp_path, photo):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo[:64, :64]).save(src / "a.png")
    Image.fromarray(photo[64:128, :64]).save(src / "a.jpg")
    out = tmp_path / "out"
    s = batch.run(src, out, "encode", quality=2, device="cpu", jobs=1, echo=lambda *_: None)
    assert s.files == 2 and sorted(p.name for p in out.iterdir()) == ["a.jpg.lcf", "a.png.lcf"]
    stale = batch.run(src, out, "encode", quality=1, device="cpu", jobs=1, echo=lambda *_: None)
    assert stale.files == 0 and stale.skipped == 0 and len(stale.failures) == 2


def test_ray_engine_writes_the_same_bytes_as_one_process(tmp_path, photo):
    """A few dozen real crops (and one bad file) on a local Ray instance with 2 CPUs: the
    same outputs, byte for byte, as the single-process path; the bad file is reported."""
    import pytest
    pytest.importorskip("ray.data")
    src = tmp_path / "in"
    for i in range(30):
        (src / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        y, x = (i * 37) % (photo.shape[0] - 48), (i * 53) % (photo.shape[1] - 64)
        Image.fromarray(photo[y:y + 40 + i % 9, x:x + 56]).save(src / f"d{i % 3}" / f"img{i}.png")
    (src / "broken.png").write_text("not an image")
    quiet = dict(device="cpu", echo=lambda *_: None)
    local = batch.run(src, tmp_path / "local", "encode", quality=1, jobs=1, **quiet)
    ray_out = tmp_path / "ray"
    s = batch.run(src, ray_out, "encode", quality=1, jobs=2, engine="ray", batch_size=4, **quiet)
    assert s.files == local.files == 30 and len(s.failures) == 1 and "broken.png" in s.failures[0][0]
    assert s.pixels == local.pixels and s.out_bytes == local.out_bytes and s.worker_rss_mib > 100
    for p in (tmp_path / "local").rglob("*.lcf"):
        assert (ray_out / p.relative_to(tmp_path / "local")).read_bytes() == p.read_bytes(), p.name
    again = batch.run(src, ray_out, "encode", quality=1, jobs=2, engine="ray", **quiet)
    assert again.files == 0 and again.skipped == 30       # resume: nothing encoded twice
    assert not list(tmp_path.rglob("*.tmp"))


def test_batched_encoding_gives_the_bytes_of_one_at_a_time(tmp_path, photo):
    """--batch-size: images read together, their equal-shaped tiles sharing network passes;
    every file is byte-identical to encoding it alone, and a bad file still fails alone."""
    from lcodec import api
    images = [photo[:300, :520], photo[40:104, 10:74], photo[50:114, 90:154], photo[:300, :520][::-1].copy()]
    together = api.encode_images(images + [tmp_path / "missing.png"], "walloc-rgb", 1, "cpu", batch=3)
    assert together[:4] == [lcodec.encode(x, model="walloc-rgb", quality=1, device="cpu") for x in images]
    assert isinstance(together[4], lcodec.LcodecError) and "missing.png" in str(together[4])
    src = tmp_path / "in"
    src.mkdir()
    for i, x in enumerate(images):
        Image.fromarray(x).save(src / f"{i}.png")
    (src / "broken.png").write_text("not an image")
    one, many = tmp_path / "one", tmp_path / "many"
    batch.run(src, one, "encode", quality=1, device="cpu", jobs=1, echo=lambda *_: None)
    s = batch.run(src, many, "encode", quality=1, device="cpu", batch_size=3, jobs=1, echo=lambda *_: None)
    assert s.files == 4 and len(s.failures) == 1 and "broken.png" in s.failures[0][0]
    for p in one.glob("*.lcf"):
        assert (many / p.name).read_bytes() == p.read_bytes(), p.name


def test_threads_option_reaches_the_workers_and_single_files(tmp_path, photo, monkeypatch):
    import torch
    from click.testing import CliRunner
    from lcodec.cli.main import cli
    from .conftest import torch_threads
    Image.fromarray(photo[:64, :64]).save(tmp_path / "a.png")
    seen, lines, many = [], [], batch._many

    def spy(chunk):                                  # jobs 1 works in-process: what its worker runs with
        seen.append(torch.get_num_threads())
        return many(chunk)
    monkeypatch.setattr(batch, "_many", spy)
    with torch_threads(1):
        batch.run(tmp_path, tmp_path / "out", "encode", quality=1, device="cpu", jobs=1, threads=2, echo=lines.append)
        assert torch.get_num_threads() == 1          # and the caller's threads come back
    with torch_threads(2):                           # --jobs N given: N cores, one thread each
        batch.run(tmp_path, tmp_path / "again", "encode", quality=1, device="cpu", jobs=1, echo=lambda *_: None)
        assert torch.get_num_threads() == 2
    assert seen == [2, 1] and "1 worker x 2 threads" in lines[0]
    monkeypatch.undo()
    with torch_threads(2):
        r = CliRunner().invoke(cli, ["encode", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.lcf"), "-q", "1",
                                     "--threads", "1", "--device", "cpu"])
        assert r.exit_code == 0 and torch.get_num_threads() == 1, r.output


def test_default_jobs_use_every_core_within_memory_and_files(monkeypatch):
    monkeypatch.setattr(batch, "usable_cores", lambda: 8)
    monkeypatch.setattr(batch, "memory_bytes", lambda: 100 << 30)
    assert batch.default_jobs("cpu", 100) == 8
    assert batch.default_jobs("cpu", 3) == 3             # no idle workers for a few files or chunks...
    assert batch.worker_threads(3, explicit=False) == 2  # ...whose workers share out the cores instead
    assert batch.worker_threads(3, explicit=True) == 1   # --jobs 3 given: three cores
    assert batch.default_jobs("cuda", 100) == 1          # one process feeds the GPU
    monkeypatch.setattr(batch, "memory_bytes", lambda: 3 << 30)
    assert batch.default_jobs("cpu", 100) == 1           # memory for one worker only
    monkeypatch.setattr(batch, "memory_bytes", lambda: None)
    assert batch.default_jobs("cpu", 100) == 8           # memory unknown (Windows): the cores decide
