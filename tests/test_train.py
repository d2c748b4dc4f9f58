"""The training loop runs, checkpoints and resumes (a few steps of the real model, tiny data)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from lcodec.train import walloc_train


@pytest.mark.parametrize("quality", [1, 2])  # 1 = rate-aware (learned step + rate term)
def test_train_a_few_steps_then_resume(tmp_path, photo, quality):
    for i in range(2):
        Image.fromarray(photo[i * 100:i * 100 + 160, :200]).save(tmp_path / f"img{i}.png")
    run_dir = tmp_path / "run"
    torch.set_num_threads(1)
    rec, state = walloc_train.run("walloc-rgb", quality, tmp_path, tmp_path, minutes=0.05, resume=False,
                                  device="cpu", run_dir=run_dir, batch=2, crop=32, val_every=10**6)
    assert state.step > 0 and (run_dir / "last.pt").exists()
    assert rec["val_psnr"] > 20  # the PCA initialisation alone reconstructs the photo
    first = state.step
    _, state2 = walloc_train.run("walloc-rgb", quality, tmp_path, tmp_path, minutes=0.02, resume=True,
                                 device="cpu", run_dir=run_dir, batch=2, crop=32, val_every=10**6)
    assert state2.step > first
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and np.isfinite(lines[-1]["val_psnr"])
    # an export-only call (no minutes) on other threads leaves the checkpoint, and the training's
    # thread count the ledger records from it, as trained
    before = (run_dir / "last.pt").read_bytes()
    torch.set_num_threads(2)
    try:
        _, state3 = walloc_train.run("walloc-rgb", quality, tmp_path, tmp_path, minutes=0, resume=True,
                                     device="cpu", run_dir=run_dir, batch=2, crop=32, val_every=10**6)
    finally:
        torch.set_num_threads(1)
    assert state3.step == state2.step and (run_dir / "last.pt").read_bytes() == before


def test_device_script_trains_exports_and_checks_on_cpu(tmp_path, photo):
    """The GPU script's whole path, on the CPU for a few seconds: weights, tables, records."""
    from lcodec.train import device
    root = tmp_path / "data"
    for part in ("train", "val"):
        (root / "images" / part).mkdir(parents=True)
        Image.fromarray(photo[:200, :240]).save(root / "images" / part / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    torch.set_num_threads(1)
    # a plan that fails (no quality 9) is reported and skipped; the next one still trains
    recs = device.train_on_device(["walloc-rgb:9:0.03", "walloc-rgb:2:0.03"], str(root), str(out), batch=2, crop=32)
    assert len(recs) == 1
    stem = next(iter(recs))
    assert (out / f"{stem}.pt").stat().st_size < 16 * 2**20 and (out / f"{stem}.tables.npz").exists()
    assert json.loads((out / "records.json").read_text())[stem]["version"] >= 2
    check = device.check_identity(str(root), str(out))
    assert check["cuda"] == torch.cuda.is_available()


def test_device_script_trains_mgm_on_the_choice_its_encoder_makes(tmp_path, photo):
    from lcodec.train import device
    root = tmp_path / "data"
    for part in ("train", "val"):
        (root / "images" / part).mkdir(parents=True)
        Image.fromarray(photo[:128, :160]).save(root / "images" / part / "a.png")
    torch.set_num_threads(1)
    recs = device.train_on_device(["mgm:1:0.02"], str(root), str(tmp_path), batch=2, crop=64)
    stage = json.loads((tmp_path / "records.json").read_text())[next(iter(recs))]["stages"][0]
    assert stage["prior_weight"] == 0.5 and stage["steps"] > 0   # q1's rate_weight


def test_device_plans_chain_the_stages_of_one_model():
    """vqgan's restorer and codebook plans start from the checkpoint trained earlier in the same
    device call; a plain plan, or a stage with nothing before it, from the shipped weights."""
    from lcodec.models import registry
    from lcodec.train import device
    assert device.parse_plan("vqgan:2:0.7:codebook") == ("vqgan", 2, 0.7, "codebook")
    assert device.parse_plan("walloc-rgb:2:4") == ("walloc-rgb", 2, 4.0, None)
    shipped = {q: registry.verified_path(registry.weights_entry("vqgan", q), "weights_file") for q in (1, 3)}
    assert device.start_weights("vqgan", 1, "codebook", {"vqgan": "/run/last.pt"}) == "/run/last.pt"
    assert device.start_weights("vqgan", 3, "restorer", {"vqgan": "/run/last.pt"}) == "/run/last.pt"
    assert device.start_weights("vqgan", 1, "codebook", {}) == shipped[3]   # the largest codebook's
    assert device.start_weights("vqgan", 1, None, {"vqgan": "/run/last.pt"}) == shipped[1]


def test_device_check_skips_the_levels_a_device_cannot_load(monkeypatch):
    """The device lacks compressai: its families are listed as skipped, the others checked."""
    from lcodec import api
    from lcodec.models.registry import model_spec
    from lcodec.train import device
    real = api.get_codec

    def get_codec(name, quality, dev):
        if model_spec(name)["family"] in ("mgm", "hyperprior", "clc"):
            raise ModuleNotFoundError("No module named 'compressai'")
        return real(name, quality, dev)
    monkeypatch.setattr(api, "get_codec", get_codec)
    skipped = []
    levels = {(m["name"], q) for m, q in device.loadable_levels(skipped)}
    assert {("walloc-rgb", 2), ("vqgan", 3)} <= levels and not any(n == "mgm" for n, _ in levels)
    assert any(s.startswith("mgm q2: ModuleNotFoundError") for s in skipped)


def test_audio_training_runs_and_its_tables_fit(tmp_path):
    """walloc-stereo: a few steps on two short real-ish signals, then the export's table fit."""
    import soundfile as sf
    from lcodec.codec.signal_context import SignalCoder
    from lcodec.models.walloc_audio import group_symbols, normalize, to_mid_side
    from lcodec.train import export
    rng = np.random.default_rng(0)
    t = np.arange(30000) / 44100
    sf.write(str(tmp_path / "a.wav"), np.stack([np.sin(2 * np.pi * 330 * t), np.sin(2 * np.pi * 331 * t)], 1) * 0.3,
             44100)
    sf.write(str(tmp_path / "b.flac"), rng.standard_normal(20000) * 0.05, 44100)
    torch.set_num_threads(1)
    rec, state = walloc_train.run("walloc-stereo", 1, tmp_path, tmp_path, minutes=0.05, resume=False, device="cpu",
                                  run_dir=tmp_path / "run", batch=2, crop=4096, val_every=10**6)
    assert state.step > 0 and rec["val_snr"] > 3 and rec["val_kbps_h0"] > 0
    model, half = export.fp16_model("walloc-stereo", 1, tmp_path / "run")
    tables = export.fit_tables(model, "walloc-stereo", tmp_path)
    coder = SignalCoder(tables)
    x = np.stack([np.sin(2 * np.pi * 330 * t), np.cos(2 * np.pi * 330 * t)], 1)[:5000] * 0.3
    sym = group_symbols(model, model.thresholds(), normalize(to_mid_side(x))[0])
    assert sym.shape[0] == 2 * model.latent
    np.testing.assert_array_equal(coder.decode(coder.encode(sym), sym.shape), sym)


def test_freeze_encoder_trains_the_decoder_only_at_a_scaled_step(tmp_path, photo):
    Image.fromarray(photo[:160, :200]).save(tmp_path / "a.png")
    torch.set_num_threads(1)
    from lcodec.train.data import CropSampler
    torch.manual_seed(0)
    ref = walloc_train.build("walloc-rgb", 2)
    walloc_train.pca_init(ref, CropSampler([torch.from_numpy(photo[:160, :200].copy()).permute(2, 0, 1).contiguous()]),
                          0.15, n_crops=8, crop=32)
    init = tmp_path / "init.pt"
    torch.save({k: v.half() for k, v in ref.state_dict().items()}, init)
    _, state = walloc_train.run("walloc-rgb", 2, tmp_path, None, minutes=0.03, resume=False, device="cpu",
                                run_dir=tmp_path / "run", batch=2, crop=32, init_from=init, step_scale=2.0,
                                freeze_encoder=True, val_every=10**6)
    assert state.step > 0
    trained = state.model["codec"]
    start = {k: v.half().float() for k, v in ref.state_dict().items()}
    assert torch.equal(trained.encoder.weight, start["encoder.weight"])
    assert torch.allclose(trained.log_scale, start["log_scale"] + np.log(2.0))
    assert not torch.equal(trained.skip.weight, start["skip.weight"])      # the decoder trained


@pytest.mark.parametrize("model", ["walloc-rgb", "mgm"])
def test_torchrun_two_ranks_train_on_their_own_data_and_end_identical(tmp_path, photo, model):
    """`lcodec train` under torchrun (2 CPU processes, gloo): both ranks step together and end
    with the same weights; only rank 0 writes the checkpoint and the log."""
    import os
    import subprocess
    import sys
    for i in range(3):
        Image.fromarray(photo[i * 80:i * 80 + 128, i * 60:i * 60 + 160]).save(tmp_path / f"img{i}.png")
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "-m", "lcodec.cli", "train", model, "-q", "1", "--data", str(tmp_path),
                          "--minutes", "0.1", "--threads", "1", "--batch", "2", "--crop", "64",
                          "--run-dir", str(run)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    hashes = [(run / f"rank{r}.sha256").read_text() for r in range(2)]
    assert hashes[0] == hashes[1]
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert state["step"] > 0
    assert (run / "commands.txt").read_text().startswith("torchrun --nproc_per_node 2")


def test_teacher_is_the_installed_codec_and_distillation_trains(tmp_path, photo):
    """--teacher: the frozen teacher decodes as the installed walloc-rgb q2 does, and a student
    trains a few steps with its output as half of the distortion target."""
    import lcodec
    torch.set_num_threads(1)
    crop = np.ascontiguousarray(photo[:128, :128])
    teacher = walloc_train._teacher("walloc-rgb", 2, "cpu")
    assert not any(p.requires_grad for p in teacher.parameters())
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255 - 0.5
    taught = torch.round((teacher(x, noise=False)[0].clamp(-0.5, 0.5)[0].permute(1, 2, 0) + 0.5) * 255)
    decoded = torch.from_numpy(lcodec.decode(lcodec.encode(crop, model="walloc-rgb", quality=2, device="cpu"),
                                             device="cpu").astype(np.float32))
    assert torch.mean((taught - decoded) ** 2) < 1.0      # the same image, up to a rounding step
    Image.fromarray(crop).save(tmp_path / "a.png")
    rec, state = walloc_train.run("walloc-rgb", 1, tmp_path, tmp_path, minutes=0.03, resume=False, device="cpu",
                                  run_dir=tmp_path / "run", batch=2, crop=32, teacher=2, val_every=10**6)
    assert state.step > 0 and np.isfinite(rec["val_psnr"])


def test_family_options_are_refused_elsewhere(tmp_path, photo):
    from click.testing import CliRunner
    from lcodec.cli.main import cli
    Image.fromarray(photo[:64, :64]).save(tmp_path / "a.png")
    r = CliRunner().invoke(cli, ["train", "mgm", "-q", "1", "--data", str(tmp_path), "--minutes", "0",
                                 "--teacher", "2", "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 1 and "--teacher" in r.output
    r = CliRunner().invoke(cli, ["train", "walloc-rgb", "-q", "1", "--data", str(tmp_path), "--minutes", "0",
                                 "--prior-weight", "0.5", "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 1 and "--prior-weight is an mgm option" in r.output
    r = CliRunner().invoke(cli, ["train", "mbt2018-mean", "-q", "1", "--data", str(tmp_path), "--minutes", "0",
                                 "--same-photo-refs", "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 1 and "--same-photo-refs is a clc option" in r.output


@pytest.mark.parametrize("schedule", [True, False])
def test_learning_rate_schedule_warms_up_and_decays_or_stays_constant(tmp_path, schedule):
    from lcodec.train.loop import Run, train
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters())
    rates = []
    train(Run(tmp_path, model, opt, False), lambda step, lr: rates.append(lr) or {}, lambda: {}, minutes=0.01,
          peak_lr=1e-3, steps_per_minute_guess=60, warmup=5, schedule=schedule)
    assert len(rates) > 20
    if schedule:
        assert rates[0] == pytest.approx(2e-4) and rates[4] == pytest.approx(1e-3) and rates[-1] < 0.5e-3
    else:
        assert set(rates) == {1e-3}


def test_prefetched_batches_are_the_samplers_own_in_order(photo):
    from lcodec.train.data import CropSampler, Prefetcher
    images = [torch.from_numpy(photo[:160, :200].copy()).permute(2, 0, 1).contiguous(),
              torch.from_numpy(photo[:40, :50].copy()).permute(2, 0, 1).contiguous()]  # smaller than the crop
    plain, ahead = CropSampler(images, seed=3), Prefetcher(CropSampler(images, seed=3), 4, 64)
    for _ in range(5):
        a, b = plain.batch(4, 64), ahead.batch()
        assert a.dtype == torch.float32 and a.shape == (4, 3, 64, 64) and torch.equal(a, b)
        assert a.min() >= -0.5 and a.max() <= 0.5
    crops = CropSampler(images[:1], seed=1).draw(2, 32)
    assert crops.dtype == torch.uint8 and torch.equal(CropSampler(images[:1], seed=1).batch(2, 32), crops.float() / 255 - 0.5)


def test_sampler_records_where_each_crop_was_cut(photo):
    from lcodec.train.data import CropSampler
    image = torch.from_numpy(photo[:160, :200].copy()).permute(2, 0, 1).contiguous()
    sampler = CropSampler([image, image.flip(-1)], seed=5)
    crops = sampler.draw(6, 48)
    assert len(sampler.boxes) == len(sampler.sources) == 6
    for crop, source, (y, x, h, w) in zip(crops, sampler.sources, sampler.boxes):
        cut = [image, image.flip(-1)][source][:, y:y + h, x:x + w]
        assert h == w == 48 and any(torch.equal(crop, cut.flip(dims)) if dims else torch.equal(crop, cut)
                                  for dims in ((), (-1,), (-2,), (-1, -2)))
