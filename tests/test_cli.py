"""The lcodec command: real subprocesses, real files, one-line errors, no partial outputs."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image



def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lcodec.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def one_line_error(r):
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lcodec: error:"), r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, crop):
    d = tmp_path_factory.mktemp("cli")
    src = d / "photo.png"
    Image.fromarray(crop).save(src)
    r = run("encode", src)
    assert r.returncode == 0, r.stderr
    assert "bpp" in r.stdout and "peak memory" in r.stdout
    return d, src, d / "photo.lcf"


def test_encode_decode_info(encoded, crop):
    d, src, lcf = encoded
    r = run("decode", lcf, "-o", d / "back.png")
    assert r.returncode == 0, r.stderr
    back = np.asarray(Image.open(d / "back.png"))
    assert back.shape == crop.shape and Image.open(d / "back.png").mode == "RGB"
    info = json.loads(run("info", lcf, "--json").stdout)
    assert info["model"] == "walloc-rgb" and info["width"] == crop.shape[1] and info["format_version"] == "1.0"
    assert abs(info["bpp"] - lcf.stat().st_size * 8 / (crop.shape[0] * crop.shape[1])) < 1e-3


def test_models_json_is_fast_and_complete():
    t = time.time()
    r = run("models", "--json")
    assert time.time() - t < 3.0  # no torch import (a cold python start is most of this)
    models = json.loads(r.stdout)
    m = next(m for m in models if m["name"] == "walloc-rgb")
    assert m["modality"] == "image" and m["qualities"] == sorted(m["qualities"]) and m["version"] >= 1
    assert all(len(s) == 64 for s in m["sha256"].values() if s)


def test_models_info_and_help_do_not_import_torch(encoded):
    code = ("import sys; from click.testing import CliRunner; from lcodec.cli.main import cli; "
            f"r = CliRunner().invoke(cli, ['info', r'{encoded[2]}']); assert r.exit_code == 0, r.output; "
            "CliRunner().invoke(cli, ['models']); CliRunner().invoke(cli, ['--help']); "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_folder_jobs_pick_the_cpu_without_importing_torch():
    """Where the machine has no GPU driver, a folder job's main process names the device without
    torch (its workers import it; importing it twice would delay every --jobs N run by ~2 s)."""
    code = ("import sys; from lcodec.cli.devices import device_name, no_gpu_driver; "
            "print(no_gpu_driver(), device_name('auto'), device_name('cpu'), 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    no_driver, auto, cpu, imported = r.stdout.split()
    assert cpu == "cpu"
    if no_driver == "True":
        assert (auto, imported) == ("cpu", "False"), r.stderr


def test_refuses_to_overwrite_without_force(encoded):
    d, src, lcf = encoded
    before = lcf.read_bytes()
    one_line_error(run("encode", src, "-o", lcf))
    assert lcf.read_bytes() == before
    assert run("encode", src, "-o", lcf, "--force").returncode == 0


@pytest.mark.parametrize("case", ["missing", "directory", "not-image", "truncated", "flipped", "major", "text",
                                  "output-is-input", "empty-folder"])
def test_bad_input_gets_one_line_and_no_output(encoded, case, tmp_path):
    d, src, lcf = encoded
    data = lcf.read_bytes()
    out = tmp_path / "out.png"
    if case == "output-is-input":   # even --force never writes over the file being read
        mine = tmp_path / "mine.png"
        mine.write_bytes(src.read_bytes())
        r = run("encode", mine, "-o", tmp_path / "." / "mine.png", "--force")
        assert mine.read_bytes() == src.read_bytes()
    elif case == "empty-folder":    # a folder (even one named like an image) with nothing to code
        (tmp_path / "x.png").mkdir()
        r = run("encode", tmp_path / "x.png", "-o", tmp_path / "o.lcf")
    elif case == "missing":
        r = run("encode", tmp_path / "nope.png", "-o", tmp_path / "o.lcf")
    elif case == "directory":  # a folder where a file is expected
        r = run("info", tmp_path)
    elif case == "not-image":
        (tmp_path / "t.png").write_text("hello")
        r = run("encode", tmp_path / "t.png", "-o", tmp_path / "o.lcf")
    else:
        bad = {"truncated": data[: len(data) // 2],
               "flipped": data[:200] + bytes([data[200] ^ 0x10]) + data[201:],
               "major": data[:8] + b"\x09" + data[9:],
               "text": data.replace(b"\r\n", b"\n")}[case]
        (tmp_path / "bad.lcf").write_bytes(bad)
        r = run("decode", tmp_path / "bad.lcf", "-o", out)
    one_line_error(r)
    assert not out.exists() and not (tmp_path / "o.lcf").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_train_refuses_bad_options_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    one_line_error(run("train", "mgm", "-q", "1", "--data", tmp_path, "--no-pca", "--run-dir", run_dir))
    one_line_error(run("train", "walloc-rgb", "-q", "1", "--data", tmp_path, "--init-from", __file__,
                       "--run-dir", run_dir))
    one_line_error(run("train", "walloc-rgb", "-q", "9", "--data", tmp_path, "--run-dir", run_dir))
    one_line_error(run("train", "no-such-model", "-q", "1", "--data", tmp_path, "--run-dir", run_dir))
    assert not run_dir.exists()  # refused before anything was written


def _disk_full(real_open):
    """builtins.open whose files refuse writes (ENOSPC) under lcodec's temporary names."""
    import errno

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, k):
            return getattr(self.f, k)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def fake(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return Full(f) if "w" in mode and ".lcodec-" in str(path) else f
    return fake


@pytest.mark.parametrize("fault", ["disk-full", "read-only-dir"])
def test_disk_full_or_unwritable_folder_is_one_line_and_leaves_nothing(tmp_path, crop, monkeypatch, fault):
    """Simulated (the tests run as root, whom a read-only folder does not stop): a full disk
    during the write, or a folder that refuses new files. The command fails with one line, no
    partial or temporary file appears, and an existing output (with --force) stays as it was."""
    import builtins
    import errno
    import tempfile
    from click.testing import CliRunner
    from lcodec.cli.main import cli
    src = tmp_path / "photo.png"
    Image.fromarray(crop).save(src)
    original = src.read_bytes()
    out = tmp_path / "photo.lcf"
    out.write_bytes(b"the user's old file")
    if fault == "disk-full":
        monkeypatch.setattr(builtins, "open", _disk_full(builtins.open))
    else:
        def refuse(*a, **k):
            raise PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    r = CliRunner().invoke(cli, ["encode", str(src), "-o", str(out), "--force", "--device", "cpu"])
    monkeypatch.undo()
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert lines == [f"lcodec: error: {out}: cannot write "
                     f"({'No space left on device' if fault == 'disk-full' else 'Permission denied'})"]
    assert out.read_bytes() == b"the user's old file" and src.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.lcf", "photo.png"]
