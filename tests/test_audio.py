"""Audio: resampling, segmenting, the parallel latent coder, walloc-stereo end to end, bad input."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import lcodec
from lcodec import FormatError, InputError, OutputError, api
from lcodec.codec import segments, signal_context
from lcodec.formats import container
from lcodec.io import audio

from .conftest import ROOT

AMEN = ROOT / "examples" / "loop_amen.flac"


@pytest.fixture(scope="module")
def amen():
    x, rate = sf.read(str(AMEN), dtype="float64", always_2d=True)
    return x, rate


def snr(ref, rec):
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - rec) ** 2))


# ---- resampling and segments (no model) ------------------------------------------------------
@pytest.mark.parametrize("src,dst", [(48000, 44100), (8000, 44100), (44100, 8000), (96000, 44100), (22050, 44100)])
def test_resample_window_equals_whole_signal_resampling(src, dst):
    from scipy.signal import resample_poly
    x = np.random.default_rng(0).standard_normal((5000, 2))
    up, down = audio.ratio(src, dst)
    whole = resample_poly(x, up, down, axis=0)
    n = audio.resampled_length(len(x), up, down)
    assert n == len(whole)
    read = audio.array_reader(x)
    for a, b in [(0, 37), (n // 5, n // 2), (n - 300, n)]:
        np.testing.assert_array_equal(audio.resample_window(read, up, down, a, b), whole[a:b])


def test_segments_cover_the_signal_and_crossfade_identical_segments_exactly():
    n, seg, ov = 10_000, 4096, 256
    x = np.random.default_rng(1).standard_normal((n, 2))
    spans = [segments.segment_span(k, n, seg, ov) for k in range(segments.segment_count(n, seg))]
    assert spans == [(0, 4352), (4096, 8448), (8192, 10000)]
    out = np.concatenate(list(segments.assemble((x[a:b] for a, b in spans), n, seg, ov)))
    np.testing.assert_allclose(out, x, atol=1e-12)
    w = segments.fade_in(ov)
    np.testing.assert_allclose(w + w[::-1], 1.0, atol=1e-12)   # the two fades sum to one
    assert segments.channel_groups(1) == [(0,)]
    assert segments.channel_groups(2) == [(0, 1)]
    assert segments.channel_groups(5) == [(0, 1), (2, 3), (4,)]


# ---- the parallel latent coder -------------------------------------------------------------
def _latents(rng, c, n):
    """Laplacian symbols whose scale falls with the channel index and drifts slowly in time
    (as audio latents do: loud and quiet passages)."""
    drift = np.cumsum(rng.normal(0, 0.15, (c, n)), 1)
    scale = 8 * np.exp(-np.arange(c) / 16.0)[:, None] * np.exp(drift - drift.mean(1, keepdims=True))
    return np.round(rng.laplace(0, 1, (c, n)) * scale).clip(-127, 127)


@pytest.fixture(scope="module")
def signal_tables():
    rng = np.random.default_rng(2)
    return signal_context.fit([_latents(rng, 64, 300) for _ in range(4)], max_symbol=127, classes=8)


@pytest.mark.parametrize("c,n", [(64, 300), (64, 1), (64, 2), (64, 3), (17, 257), (32, 1000)])
def test_signal_coder_round_trips_exactly(signal_tables, c, n):
    coder = signal_context.SignalCoder(signal_tables)
    x = _latents(np.random.default_rng(c * n), c, n).astype(np.int64)
    x[0, 0] = 100_000    # outside every table: escape + raw value
    data = coder.encode(x)
    np.testing.assert_array_equal(coder.decode(data, x.shape), x)


def test_signal_coder_exploits_time_structure_and_refuses_damage(signal_tables):
    coder = signal_context.SignalCoder(signal_tables)
    x = _latents(np.random.default_rng(5), 64, 300).astype(np.int64)
    data = coder.encode(x)
    shuffled = x[:, np.random.default_rng(6).permutation(300)]   # same symbols, no local structure
    assert len(data) < 0.93 * len(coder.encode(shuffled))
    with pytest.raises(FormatError):
        coder.decode(data[:8], x.shape)
    with pytest.raises(FormatError):
        coder.decode(data, (65, 300))   # more channels than the tables cover


# ---- walloc-stereo end to end ----------------------------------------------------------------
def test_stereo_file_round_trip_meets_quality_floors(amen):
    x, rate = amen
    floors = {1: 5.0, 2: 8.0, 3: 12.0}     # SNR dB on this drum loop (measured well above these)
    kbps = []
    for q, floor in floors.items():
        blob = lcodec.encode(AMEN, quality=q, device="cpu")
        f = lcodec.open(blob)
        info = f.info()
        assert (info["sample_rate"], info["channels"], info["frames"]) == (rate, 2, len(x))
        y = lcodec.decode(blob, device="cpu")
        assert y.shape == x.shape and y.dtype == np.float32
        assert snr(x, y) > floor, q
        kbps.append(info["kbps"])
    assert kbps == sorted(kbps)


def test_mono_is_coded_as_mono_and_costs_less_than_stereo(amen):
    x, rate = amen
    mono = x.mean(1)
    blob_m = lcodec.encode(mono, rate=rate, device="cpu")
    blob_s = lcodec.encode(np.stack([mono, mono], 1), rate=rate, device="cpu")
    y = lcodec.decode(blob_m, device="cpu")
    assert y.shape == (len(x), 1)
    assert snr(mono[:, None], y) > 5
    assert lcodec.open(blob_m).header["tiles"] == 1
    assert len(blob_s) < 1.3 * len(blob_m)   # a mono-in-stereo pair's side costs almost nothing


@pytest.mark.parametrize("rate", [8000, 22050, 48000, 96000])
def test_other_rates_are_resampled_and_restored(rate):
    t = np.arange(int(0.4 * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t) * np.minimum(1, t * 20)
    blob = lcodec.encode(tone, rate=rate, quality=2, device="cpu")
    f = lcodec.open(blob)
    assert (f.header["sample_rate"], f.header["frames"], f.header["model_rate"]) == (rate, len(t), 44100)
    y = lcodec.decode(blob, device="cpu")[:, 0]
    assert len(y) == len(t)
    assert snr(tone, y) > 10


def test_three_channels_tiny_and_silent_inputs():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 3)) * 0.1
    blob = lcodec.encode(x, rate=44100, device="cpu")
    assert lcodec.open(blob).header["tiles"] == 2            # a pair and a mono channel
    assert lcodec.decode(blob, device="cpu").shape == (3000, 3)
    for frames in (1, 5, 300):
        y = lcodec.decode(lcodec.encode(rng.standard_normal((frames, 2)) * 0.1, rate=16000, device="cpu"), device="cpu")
        assert y.shape == (frames, 2)
    blob = lcodec.encode(np.zeros((5000, 2)), rate=44100, device="cpu")
    assert not lcodec.decode(blob, device="cpu").any()           # digital silence stays exact
    assert len(lcodec.open(blob).container.tiles[0]) == 1


def test_quiet_audio_keeps_its_quality(amen):
    """Peak normalization per segment: -40 dB of level costs bits, not SNR."""
    x, rate = amen
    loud = snr(x, lcodec.decode(lcodec.encode(x, rate=rate, device="cpu"), device="cpu"))
    quiet = x * 0.01
    assert abs(snr(quiet, lcodec.decode(lcodec.encode(quiet, rate=rate, device="cpu"), device="cpu")) - loud) < 1.0


def test_long_audio_segments_join_without_a_click():
    """7 s of a chord (three segments): the error around each seam is no larger than elsewhere."""
    rate = 44100
    t = np.arange(7 * rate) / rate
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330))[:, None] * np.ones((1, 2))
    blob = lcodec.encode(x, rate=rate, quality=2, device="cpu")
    assert lcodec.open(blob).header["tiles"] == 3
    err = (lcodec.decode(blob, device="cpu") - x)[:, 0] ** 2
    seg = 1 << 17
    typical = np.mean(err)
    for k in (1, 2):
        around = err[k * seg - 2048:k * seg + 3072]
        assert np.mean(around) < 3 * typical, k


def test_encoding_is_deterministic_and_files_name_the_model(amen):
    x, rate = amen
    a = lcodec.encode(AMEN, quality=1, device="cpu")
    assert a == lcodec.encode(AMEN, quality=1, device="cpu")
    h = lcodec.open(a).header
    assert (h["model"], h["modality"], h["subtype"]) == ("walloc-stereo", "audio", "PCM_16")


def test_audio_header_is_validated():
    blob = lcodec.encode(np.zeros((100, 2)), rate=44100, device="cpu")
    c = container.read(blob)
    base = {k: v for k, v in c.header.items() if k != "format"}
    with pytest.raises(FormatError, match="tile count"):
        container.write(dict(base, frames=10 ** 7), [c.tiles[0]])
    with pytest.raises(FormatError, match="sample_rate"):
        container.write(dict(base, sample_rate=1000), [c.tiles[0]])
    with pytest.raises(FormatError, match="segment layout"):
        lcodec.decode(container.write(dict(base, segment=4096), [c.tiles[0]]))


# ---- bad input and outputs (library and CLI) ------------------------------------------------
def test_a_small_file_declaring_hours_is_not_decoded_into_memory():
    """A forged file of silent segments that declares 2 hours: tiny on disk, so decode() into
    one array is refused before any work or allocation (decode_chunks / write_audio stream)."""
    import time
    from lcodec.audio_codec import MAX_ARRAY_SAMPLES
    blob = lcodec.encode(np.zeros((5000, 2)), rate=44100, device="cpu")
    c = container.read(blob)
    h = {k: v for k, v in c.header.items() if k != "format"}
    frames = 2 * 3600 * 44100
    up, down = audio.ratio(h["sample_rate"], h["model_rate"])
    n = segments.segment_count(audio.resampled_length(frames, up, down), h["segment"]) * \
        len(segments.channel_groups(2))
    forged = container.write(dict(h, frames=frames, tiles=n), [c.tiles[0]] * n)
    assert len(forged) < 200_000 and frames * 2 > MAX_ARRAY_SAMPLES
    t = time.perf_counter()
    with pytest.raises(lcodec.LcodecError, match="too much to decode into memory"):
        lcodec.decode(forged, device="cpu")
    assert time.perf_counter() - t < 2
    first = next(lcodec.open(forged).decode_chunks("cpu"))
    assert first.shape[1] == 2 and not first.any()


def test_bad_audio_input_is_refused(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio at all")
    sf.write(str(tmp_path / "zero.wav"), np.zeros((0, 2)), 44100)
    sf.write(str(tmp_path / "nan.wav"), np.array([[0.1], [np.nan], [0.2]], dtype=np.float32), 44100, subtype="FLOAT")
    sf.write(str(tmp_path / "slow.wav"), np.zeros((100, 1)), 4000)
    for name, msg in [("empty.wav", "empty"), ("text.wav", "not a readable audio"), ("zero.wav", "no audio"),
                      ("nan.wav", "NaN"), ("slow.wav", "sample rate")]:
        with pytest.raises(InputError, match=msg):
            lcodec.encode(tmp_path / name, device="cpu")
    with pytest.raises(InputError, match="NaN"):
        lcodec.encode(np.array([[np.inf, 0.0]]), rate=44100)
    with pytest.raises(InputError, match="image model"):
        lcodec.encode(AMEN, model="walloc-rgb")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lcodec.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


def test_cli_audio_round_trip_keeps_rate_channels_length_and_type(tmp_path):
    x = (np.random.default_rng(4).standard_normal((20_000, 2)) * 2000).astype(np.int32) << 8
    sf.write(str(tmp_path / "in.flac"), x, 48000, subtype="PCM_24")
    r = _cli("encode", "in.flac", "-q", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "kbps" in r.stdout and (tmp_path / "in.lcf").exists()
    r = _cli("info", "in.lcf", cwd=tmp_path)
    assert "sample_rate" in r.stdout and "48000" in r.stdout
    r = _cli("decode", "in.lcf", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    i = sf.info(str(tmp_path / "in.wav"))
    assert (i.samplerate, i.channels, i.frames, i.subtype) == (48000, 2, 20_000, "PCM_24")
    r = _cli("decode", "in.lcf", "-o", "back.flac", cwd=tmp_path)
    assert r.returncode == 0 and sf.info(str(tmp_path / "back.flac")).frames == 20_000
    r = _cli("decode", "in.lcf", "-o", "back.mp3", cwd=tmp_path)
    assert r.returncode == 1 and "unsupported output type" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "back.mp3").exists()


def test_cli_refuses_bad_audio_without_leaving_output(tmp_path):
    sf.write(str(tmp_path / "nan.wav"), np.array([[0.1], [np.nan]] * 100, dtype=np.float32), 44100, subtype="FLOAT")
    r = _cli("encode", "nan.wav", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "NaN" in r.stderr
    assert not (tmp_path / "nan.lcf").exists()
    blob = bytearray(lcodec.encode(np.zeros((5000, 2)) + 0.1, rate=44100, device="cpu"))
    blob[-20] ^= 0xFF     # damage the last tile
    (tmp_path / "bad.lcf").write_bytes(bytes(blob))
    r = _cli("decode", "bad.lcf", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "bad.wav").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".lcodec-")] == []


def test_write_audio_refuses_to_overwrite(tmp_path):
    blob = lcodec.encode(np.zeros((500, 1)) + 0.1, rate=44100, device="cpu")
    out = tmp_path / "o.wav"
    out.write_bytes(b"keep")
    with pytest.raises(OutputError, match="already exists"):
        api.write_audio(api.open(blob), out)
    assert out.read_bytes() == b"keep"
    api.write_audio(api.open(blob), out, force=True)
    assert sf.info(str(out)).frames == 500


def test_folder_jobs_mix_images_and_audio(tmp_path, crop):
    from PIL import Image
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(crop).save(src / "pic.png")
    sf.write(str(src / "clip.wav"), np.random.default_rng(7).standard_normal((3000, 2)) * 0.1, 22050)
    r = _cli("encode", "in", "-o", "enc", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert lcodec.open(tmp_path / "enc" / "clip.lcf").header["model"] == "walloc-stereo"
    assert lcodec.open(tmp_path / "enc" / "pic.lcf").header["model"] == "walloc-rgb"
    r = _cli("encode", "in", "-o", "enc", cwd=tmp_path)          # resume: both already done
    assert r.returncode == 0 and "(2 already done)" in r.stdout
    r = _cli("decode", "enc", "-o", "dec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sf.info(str(tmp_path / "dec" / "clip.wav")).frames == 3000
    assert Image.open(tmp_path / "dec" / "pic.png").size == (crop.shape[1], crop.shape[0])


def test_array_inputs_of_every_sample_type_and_bad_rates(amen):
    x, rate = amen
    pcm = np.round(x[:8000] * 32767).astype(np.int16)
    u8 = (np.round(x[:8000] * 127) + 128).astype(np.uint8)        # offset binary, as 8-bit WAV
    for arr in (pcm, u8, x[:8000].astype(np.float32)):
        y = lcodec.decode(lcodec.encode(arr, rate=rate, quality=2, device="cpu"), device="cpu")
        assert snr(x[:8000], y) > 5, arr.dtype
    for bad in (44100.5, "44100"):
        with pytest.raises(InputError, match="rate"):
            lcodec.encode(x[:100], rate=bad)
    with pytest.raises(InputError, match="too large"):
        lcodec.encode(x[:1000] * 1e12, rate=rate)
    with pytest.raises(InputError, match="rate= is for arrays"):
        lcodec.encode(AMEN, rate=rate)


def test_many_channels_cannot_go_to_flac_but_go_to_wav(tmp_path):
    blob = lcodec.encode(np.random.default_rng(8).standard_normal((600, 10)) * 0.1, rate=44100, device="cpu")
    with pytest.raises(OutputError, match="at most 8 channels"):
        api.write_audio(api.open(blob), tmp_path / "ten.flac")
    api.write_audio(api.open(blob), tmp_path / "ten.wav")
    assert sf.info(str(tmp_path / "ten.wav")).channels == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ten.wav"]


def test_array_sample_type_is_recorded_for_the_decoded_file():
    for dtype, subtype in ((np.int16, "PCM_16"), (np.int32, "PCM_32"), (np.float64, "FLOAT"), (np.float32, "FLOAT")):
        blob = lcodec.encode(np.ones((300, 1), dtype=dtype), rate=44100, device="cpu")
        assert lcodec.open(blob).header["subtype"] == subtype


def test_ogg_vorbis_input_is_read(tmp_path, amen):
    x, rate = amen
    sf.write(str(tmp_path / "a.ogg"), x[:20000], rate, format="OGG", subtype="VORBIS")
    f = lcodec.open(lcodec.encode(tmp_path / "a.ogg", quality=1, device="cpu"))
    assert (f.header["frames"], f.header["channels"], f.header["sample_rate"]) == (20000, 2, rate)
