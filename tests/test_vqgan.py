import numpy as np
import pytest
import torch
from PIL import Image

from lcodec.errors import FormatError
from lcodec.formats import container
from lcodec.models import vqgan
from lcodec.models.state import to_fp16

from .conftest import save_crops


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = vqgan.VQGAN(K=64).eval()
    to_fp16(m)
    return m


@pytest.fixture(scope="module")
def codec(model, photo):
    maps = [vqgan.image_indices(model, photo[:256, :256])]
    return vqgan.VqganCodec(model, vqgan.fit_tables(maps, model.quantizer.codes(), 256), "cpu", tile=256)


def test_windows_give_the_single_pass_result(model):
    torch.manual_seed(1)
    q = model.quantizer.lookup(torch.randint(0, 64, (1, 20, 27)))
    with torch.no_grad():
        whole = model.decode_codes(q)
        parts = vqgan.windowed(model.decode_codes, q, vqgan.FACTOR, core=8, margin=vqgan.MARGIN)
        x = torch.rand(1, 3, 160, 208)
        z_whole = model.encode_latents(x)
        z_parts = vqgan.windowed(model.encode_latents, x, 1 / 16, core=64, margin=128)
    assert parts.shape == whole.shape and z_parts.shape == z_whole.shape
    torch.testing.assert_close(parts, whole, atol=1e-4, rtol=0)
    torch.testing.assert_close(z_parts, z_whole, atol=1e-4, rtol=0)


def test_nearest_codeword_is_the_largest_cosine(model):
    z = torch.nn.functional.normalize(torch.randn(1, vqgan.EMBED, 3, 5), dim=1)
    idx = model.quantizer.indices(z)
    sims = torch.einsum("dhw,kd->khw", z[0], model.quantizer.codes())
    assert torch.equal(idx[0], sims.argmax(0))
    assert torch.allclose(model.quantizer.lookup(idx)[0].norm(dim=0), torch.ones(3, 5))


def test_indices_round_trip_exactly_through_the_coder(codec, model, crop):
    h, w, _ = crop.shape
    payloads = codec.encode_image(crop)
    assert len(payloads) == 1
    idx, lost, lost_tiles = codec.index_map(dict(enumerate(payloads)), h, w)
    assert not lost.any() and lost_tiles == [] and np.array_equal(idx, vqgan.image_indices(model, crop))
    pixels, filled, _ = codec.decode_image(dict(enumerate(payloads)), h, w)
    assert pixels.shape == crop.shape and pixels.dtype == np.uint8 and filled == 0


def test_tiles_split_the_index_map_and_a_lost_tile_is_filled_only_with_conceal(codec, photo):
    img = photo[:300, :530]                      # 2 x 3 tiles of 256 px
    payloads = codec.encode_image(img)
    assert len(payloads) == 6
    tiles = dict(enumerate(payloads))
    del tiles[4]
    with pytest.raises(FormatError, match="tile 4"):
        codec.decode_image(tiles, 300, 530)
    pixels, filled, lost = codec.decode_image(tiles, 300, 530, conceal=True)
    assert pixels.shape == img.shape and filled == (19 - 16) * 16 and lost == [4]  # rows 16..18, columns 16..31
    tiles[1] = b"\x00\x01"                        # a payload that passed its CRC but is garbage
    _, filled, lost = codec.decode_image(tiles, 300, 530, conceal=True)   # concealed, not fatal
    assert lost == [1, 4] and filled == 16 * 16 + (19 - 16) * 16


def test_restore_changes_only_lost_positions(model):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 64, (21, 37))
    lost = rng.random(idx.shape) < 0.2
    out, vectors = vqgan.restore(model, idx, lost)
    assert np.array_equal(out[~lost], idx[~lost]) and out.min() >= 0 and out.max() < 64
    kept = model.quantizer.lookup(torch.from_numpy(idx)[None])
    assert torch.equal(vectors[0][:, torch.from_numpy(~lost)], kept[0][:, torch.from_numpy(~lost)])
    # a lost position holds the mean codeword under the restorer: inside the ball, not on the sphere
    norms = vectors[0].norm(dim=0)[torch.from_numpy(lost)]
    assert (norms < 1 - 1e-4).all() and (norms > 0).all()
    same, unchanged = vqgan.restore(model, idx, np.zeros_like(lost))
    assert np.array_equal(same, idx) and torch.equal(unchanged, kept)


def test_context_tables_learn_what_follows_a_neighbour_and_save_bits(model):
    # rows alternate between two codewords: the index above predicts the next one exactly
    a = np.where(np.arange(32)[:, None] % 2 == 0, 7, 3) * np.ones((1, 32), np.int64)
    t = vqgan.fit_tables([a], model.quantizer.codes(), 256, clusters=16)
    cl = t.extra["clusters"]
    n = int(cl.max()) + 1
    assert len(t) == (n + 1) ** 2 and cl[7] != cl[3]
    assert t.frequencies(cl[7] * (n + 1) + n).argmax() == 3         # below a 7 (left: none) comes a 3
    codec = vqgan.VqganCodec(model, t, "cpu", tile=256)
    block = a[:16, :16]
    payload = _encoded(codec, block)
    assert len(payload) * 8 < 256 * 6 / 4                  # far below the fixed-length log2(64) bits
    assert np.array_equal(codec.tile_indices(payload, block.shape), block)


def _encoded(codec, block):
    from lcodec.codec.coder import Encoder
    enc = Encoder()
    ctx = vqgan.context_ids(block, codec.clusters)
    for d in vqgan.diagonals(block.shape):
        enc.encode_indexed(block[d], codec.tables, ctx[d])
    return enc.finish()


def test_diagonals_visit_every_position_after_its_upper_and_left_neighbours():
    seen = np.zeros((5, 7), bool)
    for ys, xs in vqgan.diagonals((5, 7)):
        assert all((y == 0 or seen[y - 1, x]) and (x == 0 or seen[y, x - 1]) for y, x in zip(ys, xs))
        seen[ys, xs] = True
    assert seen.all()


def test_spherical_kmeans_finds_weighted_clusters():
    from lcodec.models.vqgan import spherical_kmeans
    torch.manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    v = centres.repeat_interleave(50, 0) + 0.02 * torch.randn(200, 8)
    c = spherical_kmeans(v, torch.ones(200), 4)
    assert torch.allclose(c.norm(dim=1), torch.ones(4), atol=1e-5)
    assert (centres @ c.t()).max(1).values.min() > 0.99


def test_restorer_masks_hide_the_centre_tile_or_random_positions():
    from lcodec.train.vqgan_train import masks
    masked, outside = masks(64, np.random.default_rng(0))
    b = (vqgan.WINDOW - vqgan.FACTOR) // 2
    centre = masked[:, b:b + vqgan.FACTOR, b:b + vqgan.FACTOR] | outside[:, b:b + vqgan.FACTOR, b:b + vqgan.FACTOR]
    assert centre.all(axis=(1, 2)).sum() >= 16 and not (masked & outside).any()
    assert 0.02 < masked.mean() < 0.5


def test_all_three_stages_train_a_few_steps_then_export(tmp_path, photo):
    from lcodec.train import export, vqgan_train
    save_crops(photo, tmp_path, 400, 420)
    torch.set_num_threads(1)
    rec, state = vqgan_train.run("vqgan", 3, tmp_path, tmp_path, minutes=0.03, resume=False, device="cpu",
                                 run_dir=tmp_path / "ae", batch=1, crop=192, val_every=10**6)
    assert state.step > 0 and np.isfinite(rec["val_psnr"]) and 0 < rec["used"] <= 1024
    half, table = export.vqgan_fp16("vqgan", 3, tmp_path / "ae", tmp_path)
    assert sum(v.numel() * v.element_size() for v in half.values()) < 16 * 2 ** 20
    torch.save(half, tmp_path / "q3.pt")
    rec, state = vqgan_train.run("vqgan", 1, tmp_path, tmp_path, minutes=0.02, resume=False, device="cpu",
                                 run_dir=tmp_path / "cb", batch=1, crop=192, init_from=tmp_path / "q3.pt",
                                 val_every=10**6)
    child = export.load_checkpoint(vqgan.build("vqgan", 1), tmp_path / "cb")
    assert child.quantizer.k == 64 and torch.equal(child.decoder[0].weight, half["decoder.0.weight"].float())
    rec, state = vqgan_train.run("vqgan", 3, tmp_path, tmp_path, minutes=0.02, resume=False, device="cpu",
                                 run_dir=tmp_path / "rs", init_from=tmp_path / "q3.pt", stage="restorer",
                                 val_every=10**6)
    assert state.step > 0 and 0 <= rec["acc20_k1024"] <= 1
    restored = export.load_checkpoint(vqgan.build("vqgan", 3), tmp_path / "rs")
    assert torch.equal(restored.encoder[0].weight, half["encoder.0.weight"].float())
    rec, state = vqgan_train.run("vqgan", 3, tmp_path, None, minutes=0.01, resume=False, device="cpu",
                                 run_dir=tmp_path / "ft", batch=1, crop=192, init_from=tmp_path / "q3.pt")
    tuned = export.load_checkpoint(vqgan.build("vqgan", 3), tmp_path / "ft")   # a fine-tune keeps its codebook
    cos = (tuned.quantizer.codes() * torch.nn.functional.normalize(half["quantizer.codebook"].float(), dim=1)).sum(1)
    assert (cos > 0.9).float().mean() > 0.9   # (a fresh start would put them at random latents)


# --- the shipped models ---------------------------------------------------------------------

def msssim(a, b):
    from pytorch_msssim import ms_ssim
    t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    return ms_ssim(t(a), t(b), data_range=1.0).item()


FLOOR = {1: 0.79, 2: 0.81, 3: 0.83}   # MS-SSIM on the example photo, measured 0.825 / 0.848 / 0.869


@pytest.mark.parametrize("quality", [1, 2, 3])
def test_shipped_levels_stay_below_005_bpp_above_a_quality_floor(photo, quality):
    import lcodec
    blob = lcodec.encode(photo, model="vqgan", quality=quality, device="cpu")
    h, w, _ = photo.shape
    assert len(blob) * 8 / (h * w) < 0.05
    assert msssim(photo, lcodec.decode(blob, device="cpu")) > FLOOR[quality]


def test_decode_conceal_fills_a_damaged_tile_and_says_so(tmp_path, photo):
    import lcodec
    from click.testing import CliRunner
    from lcodec.cli.main import cli
    img = np.ascontiguousarray(photo[:300, :530])
    blob = lcodec.encode(img, model="vqgan", quality=3, device="cpu")
    clean = lcodec.decode(blob, device="cpu")
    src, out = tmp_path / "d.lcf", tmp_path / "d.png"
    src.write_bytes(container.damage_tile(blob, 1))
    r = CliRunner().invoke(cli, ["decode", str(src), "-o", str(out)])
    assert r.exit_code == 1 and "checksum" in r.output and not out.exists()
    r = CliRunner().invoke(cli, ["decode", str(src), "-o", str(out), "--conceal"])
    assert r.exit_code == 0 and "concealed 256 indices of 1 damaged tile(s) [1]" in r.output, r.output
    filled = np.asarray(Image.open(out))
    codec = lcodec.open(blob).codec("cpu")
    idx = codec.index_map(lcodec.open(blob).container.tiles, 300, 530)[0]
    common = idx.copy()
    common[:16, 16:32] = np.bincount(idx.ravel()).argmax()                # the same tile, filled blindly
    blind = vqgan.decode_pixels(codec.model, common, 300, 530)
    assert filled.shape == img.shape and msssim(clean, filled) > msssim(clean, blind) + 0.02
    keep = np.ones(img.shape[:2], bool)
    keep[:256 + 128, 256 - 128:512 + 128] = False      # tile 1 and the decoder's reach: only there it differs
    assert np.abs(filled[keep].astype(int) - clean[keep]).max() <= 1
