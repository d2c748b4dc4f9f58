"""The hyperprior peers' coding path (on small untrained ScaleHyperprior and MeanScaleHyperprior
models, so these tests do not depend on shipped weights) and their training loop."""
import numpy as np
import pytest
import torch

from lcodec.errors import FormatError
from lcodec.models import hyperprior
from lcodec.models.state import to_fp16

from .conftest import save_crops, torch_threads


def small_codec(means):
    from compressai.models import MeanScaleHyperprior, ScaleHyperprior
    torch.manual_seed(0)
    model = (MeanScaleHyperprior if means else ScaleHyperprior)(N=16, M=24)
    to_fp16(model)  # fp16-exact weights, as shipped
    return hyperprior.HyperpriorCodec(model, hyperprior.fit_z_tables(model.eval()), torch.device("cpu"), 1024)


@pytest.fixture(scope="module", params=[False, True], ids=["scale", "mean-scale"])
def codec(request):
    return small_codec(request.param)


def analysis(codec, pixels):
    h, w, _ = pixels.shape
    padded = np.pad(pixels, ((0, -h % 64), (0, -w % 64), (0, 0)), mode="edge")
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        return codec.model.g_a(x)[0].double()


def test_symbols_round_trip_exactly_and_decode_to_the_image_shape(codec, crop):
    blob = codec.encode_tile(crop)
    h, w, _ = crop.shape
    y_hat, cond = codec.decode_latent(blob, h, w)
    y = analysis(codec, crop)
    if codec.means:   # y_hat = round(y - mu) + mu, mu from the reference path
        assert torch.max(torch.abs(y_hat.double() - y)) <= 0.5 + 1e-4
        assert not torch.equal(y_hat, torch.round(y_hat))
    else:
        np.testing.assert_array_equal(y_hat.numpy(), torch.round(y).numpy())
    assert cond is None
    out = codec.decode_tile(blob, h, w)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert codec.latents(blob, h, w).shape == (24, -(-h // 16), -(-w // 16))


def test_scale_indices_and_bytes_do_not_depend_on_threads(codec, crop):
    out = []
    for n in (1, 2):
        with torch_threads(n):
            blob = codec.encode_tile(crop)
            z = np.random.default_rng(1).integers(-6, 7, size=(16, 4, 5))
            out.append((blob, codec.entropy_params(z, None)[0]))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_scale_path_is_float64_on_the_cpu_whatever_the_model_device(codec):
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in codec.h_s64.parameters())
    z = np.zeros((16, 2, 2), dtype=np.int64)
    ids, means, _ = codec.entropy_params(z, None)
    assert (means is None) != codec.means
    assert ids.shape == (24, 8, 8) and ids.min() >= 0 and ids.max() < len(codec.gaussian)


def test_latents_do_not_run_the_synthesis_network(codec, crop, monkeypatch):
    blob = codec.encode_tile(crop)

    def boom(*a, **k):
        raise AssertionError("synthesis ran")
    monkeypatch.setattr(codec.model.g_s, "forward", boom)
    codec.latents(blob, *crop.shape[:2])
    with pytest.raises(AssertionError):
        codec.decode_tile(blob, *crop.shape[:2])


def test_damaged_payloads_give_format_errors_or_images(codec, crop):
    blob = codec.encode_tile(crop)
    rng = np.random.default_rng(0)
    for _ in range(30):
        b = bytearray(blob)
        for i in rng.integers(0, len(b), size=3):
            b[i] ^= 1 << int(rng.integers(8))
        try:
            out = codec.decode_tile(bytes(b), *crop.shape[:2])
            assert out.shape == crop.shape
        except FormatError:
            pass
    with pytest.raises(FormatError):
        codec.decode_tile(blob[:-2], *crop.shape[:2])


@pytest.mark.parametrize("name", ["bmshj2018-hyperprior", "mbt2018-mean"])
def test_train_a_few_steps_then_export_tables(tmp_path, photo, name):
    from lcodec.train import export, hyperprior_train
    save_crops(photo, tmp_path, 160, 200)
    torch.set_num_threads(1)
    rec, state = hyperprior_train.run(name, 1, tmp_path, tmp_path, minutes=0.05, resume=False,
                                      device="cpu", run_dir=tmp_path / "run", batch=1, crop=64, val_every=10**6)
    assert state.step > 0 and np.isfinite(rec["val_psnr"]) and rec["val_bpp_est"] > 0
    half, tables = export.hyperprior_fp16(name, 1, tmp_path / "run")
    assert half["g_a.0.weight"].dtype == torch.float16 and half["entropy_bottleneck.quantiles"].dtype == torch.float16
    # constants that fp16 would flush to zero (and a fine-tune would then divide by) keep their value
    assert float(half["gaussian_conditional.likelihood_lower_bound.bound"]) == pytest.approx(1e-9)
    assert len(tables) == 128 and len(tables.extra["medians"]) == 128
    assert sum(v.numel() * v.element_size() for v in half.values()) < 16 * 2 ** 20
