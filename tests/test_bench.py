"""lcodec bench on two real crops: every output written, summary consistent with the rows,
BD-rate sign agreeing with a direct comparison."""
import json

import numpy as np
from PIL import Image

from lcodec.bench import run as bench


def test_bench_writes_a_consistent_report(tmp_path, photo):
    src = tmp_path / "imgs"
    src.mkdir()
    Image.fromarray(photo[:200, :240]).save(src / "a.png")
    Image.fromarray(photo[150:360, 300:560]).save(src / "b.png")
    out = tmp_path / "report"
    rows = bench.run(src, out, models=["walloc-rgb"], anchor_names=["jpeg"], device="cpu")
    for f in ("results.json", "results.csv", "summary.md", "rd.png"):
        assert (out / f).stat().st_size > 0
    data = json.loads((out / "results.json").read_text())
    assert len(data["rows"]) == len(rows)
    codecs = {r["codec"] for r in rows}
    assert {"jpeg", "walloc-rgb", "walloc-rgb+webp-mosaic"} <= codecs
    lcf = [r for r in rows if r["codec"] == "walloc-rgb" and r["quality"] == 2]
    assert all(r["psnr"] > 27 and 0 < r["header_bytes"] < r["bytes"] for r in lcf)
    mean_bpp = np.mean([r["bpp"] for r in lcf])
    text = (out / "summary.md").read_text()
    assert f"| walloc-rgb | 2 | {mean_bpp:.4f} |" in text
    from lcodec.models import registry
    version = registry.weights_entry("walloc-rgb", 2)["version"]
    assert f"| walloc-rgb | 2 | {version} | " in text.split("## Training of each measured model")[1]


def test_learned_peers_are_columns_and_rows_of_the_bd_table(tmp_path):
    """A peer (e.g. the CompressAI hyperprior) is measured against the anchors and our models
    against it; nobody against itself."""
    rows = []
    for codec, kind, gain in (("ours", "learned", 2.0), ("peer", "peer", 1.0), ("jpeg", "anchor", 0.0)):
        for q, b in enumerate((0.2, 0.4, 0.8), 1):
            rows.append({"file": "a.png", "codec": codec, "kind": kind, "quality": q, "width": 10, "height": 10,
                         "bytes": 100, "header_bytes": 0, "bpp": b, "psnr": 30 + 5 * np.log2(b) + gain,
                         "ms_ssim": 0.9, "encode_s": 0.1, "decode_s": 0.1})
    bench.write_report(tmp_path, rows, {"device": "cpu", "cpu": "x", "torch_threads": 1, "files": 1,
                                        "folder": "f", "date": "d"})
    text = (tmp_path / "summary.md").read_text()
    assert "| model | jpeg | peer |" in text
    ours, peer = (next(line for line in text.splitlines() if line.startswith(f"| {m} | ") and "%" in line)
                  for m in ("ours", "peer"))
    cells = [c.strip() for c in ours.split("|")[2:4]]
    assert all(c.startswith("-") and c.endswith("%") for c in cells)  # fewer bits than both
    assert peer.split("|")[3].strip() == "-"


def test_bd_rate_sign_matches_direct_comparison():
    anchor = [{"bpp": b, "psnr": 20 + 10 * np.log2(1 + b)} for b in (0.1, 0.2, 0.4, 0.8, 1.6)]
    better = [{"bpp": p["bpp"] * 0.8, "psnr": p["psnr"]} for p in anchor[1:4]]  # 20 % fewer bits
    worse = [{"bpp": p["bpp"] * 1.3, "psnr": p["psnr"]} for p in anchor[1:4]]
    assert -25 < bench.bd_rate(anchor, better) < -15
    assert 25 < bench.bd_rate(anchor, worse) < 35
    assert bench._at(anchor, 0.3) > bench._at(anchor, 0.2)
    assert np.isnan(bench.bd_rate(anchor, better[:1]))
    dipping = anchor + [{"bpp": 0.15, "psnr": anchor[0]["psnr"] - 0.5}]    # more bits, less quality
    assert -25 < bench.bd_rate(dipping, better) < -15


def test_bd_table_says_n_a_where_curves_share_no_quality():
    anchor = [{"bpp": b, "psnr": 30 + 5 * np.log2(b)} for b in (0.2, 0.4, 0.8)]
    low = [{"bpp": b, "psnr": 15 + 5 * np.log2(b)} for b in (0.01, 0.02, 0.04)]   # far below the anchor
    row = bench.bd_table({"jpeg": anchor, "low": low, "mid": anchor[:2]}, ["low", "mid"], ["jpeg"])
    assert row[2] == "| low | n/a |"
    assert row[3].startswith("| mid | ") and row[3].endswith(" % |")


def test_audio_bench_writes_a_consistent_report(tmp_path, monkeypatch):
    import soundfile as sf
    from lcodec.bench import audio_anchors, audio_metrics, audio_run
    from .conftest import ROOT
    x, rate = sf.read(str(ROOT / "examples" / "loop_amen.flac"), always_2d=True)
    src = tmp_path / "audio"
    src.mkdir()
    sf.write(str(src / "a.flac"), x[:30000], rate)
    sf.write(str(src / "b.wav"), x[40000:70000, :1], rate)
    monkeypatch.setitem(audio_anchors.QUALITIES, "opus", [0.98, 0.9])
    monkeypatch.setitem(audio_anchors.QUALITIES, "mp3", [0.9, 0.5])
    out = tmp_path / "report"
    rows = audio_run.run(src, out, models=["walloc-stereo"], anchor_names=["opus", "mp3"], device="cpu")
    for f in ("results.json", "results.csv", "summary.md", "rd.png"):
        assert (out / f).stat().st_size > 0
    assert len(json.loads((out / "results.json").read_text())["rows"]) == len(rows) == 2 * (3 + 2 + 2)
    learned = [r for r in rows if r["codec"] == "walloc-stereo" and r["quality"] == 2]
    assert all(r["snr"] > 5 and 0 < r["header_bytes"] < r["bytes"] for r in learned)
    mean_kbps = np.mean([r["kbps"] for r in learned])
    assert f"| walloc-stereo | 2 | {mean_kbps:.1f} |" in (out / "summary.md").read_text()
    mp3 = [r for r in rows if r["codec"] == "mp3"]
    assert all(r["snr"] > 5 for r in mp3)      # the anchor's delay is aligned before measuring
    # metrics: identical signals are perfect, a half-scale copy is SI-SDR-perfect but not SNR-perfect
    y = x[:20000]
    assert audio_metrics.mel_distance(y, y, rate) == 0.0
    assert audio_metrics.si_sdr(y, 0.5 * y) > 100 and abs(audio_metrics.snr(y, 0.5 * y) - 6.02) < 0.01


def test_readme_bench_table_keeps_models_and_chosen_anchors(tmp_path):
    import importlib.util
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "scripts" / "readme_bench_table.py"
    spec = importlib.util.spec_from_file_location("readme_bench_table", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "summary.md").write_text(
        "# title\n\n| codec | q | bpp | PSNR dB | MS-SSIM | header B | enc MP/s | dec MP/s |\n|---|---|---|---|---|---|---|---|\n"
        "| mgm | 2 | 0.1594 | 31.16 | 0.9227 | 152 | 1.07 | 1.46 |\n"
        "| walloc-rgb+webp-mosaic | 1 | 0.1860 | 31.84 | 0.9411 | 0 | n/a | n/a |\n"
        "| mbt2018-mean | 1 | 0.1030 | 28.70 | 0.8880 | 161 | 0.65 | 0.51 |\n"
        "| jpeg | 5 | 0.0854 | 25.26 | 0.7812 | 0 | 136.93 | 124.80 |\n"
        "| jpeg | 10 | 0.1573 | 28.67 | 0.8757 | 0 | 101.84 | 97.83 |\n\n| codec | other table |\n")
    rows = module.readme_rows(module.summary_rows(tmp_path / "summary.md"))
    assert rows == ["| mgm | 2 | 0.159 | 31.16 | 0.923 | 1.07 | 1.46 |",
                    "| mbt2018-mean (peer) | 1 | 0.103 | 28.70 | 0.888 | 0.65 | 0.51 |",
                    "| jpeg | 5 | 0.085 | 25.26 | 0.781 | 137 | 125 |"]
