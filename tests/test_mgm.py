"""MGM's quantizers, coding path and training loop, on a small untrained model (independent of
the shipped weights)."""
import numpy as np
import pytest
import torch

from lcodec.errors import FormatError
from lcodec.models import mgm

from .conftest import save_crops


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return mgm.MGM(N=16, C=32, m1=4, k1=16, m2=2, k2=8).eval()


@pytest.fixture(scope="module")
def codec(model, photo):
    maps = [mgm.tile_indices(model, photo[:128, :160])]
    return mgm.MgmCodec(model, mgm.fit_tables(maps, model), torch.device("cpu"), 1024)


def test_quantizer_picks_the_nearest_codeword_and_looks_it_up():
    torch.manual_seed(1)
    q = mgm.Quantizer(channels=6, m=3, k=5)
    x = torch.randn(2, 6, 4, 3)
    idx = q.indices(x)
    assert idx.shape == (2, 3, 4, 3)
    v = q.split(x)
    brute = torch.stack([((v[..., j, None, :] - q.codebooks[j]) ** 2).sum(-1).argmin(-1) for j in range(3)], 1)
    assert torch.equal(idx, brute)
    vec = q.lookup(idx)
    assert vec.shape == x.shape
    assert torch.equal(q.split(vec)[0, 1, 2, 0], q.codebooks[0, idx[0, 0, 1, 2]])


def test_training_codes_are_one_hot_forward_and_carry_gradients():
    torch.manual_seed(2)
    q = mgm.Quantizer(channels=4, m=2, k=8)
    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    with torch.no_grad():
        q.log_temp.fill_(20.0)  # so sharp that the Gumbel sample is the argmin
        vec, bits, hard = q(x)
        assert torch.all(hard.sum(-1) == 1)
        assert torch.isclose(bits, (hard * q.neg_log2_prior()).sum(), rtol=1e-5)
        assert torch.allclose(vec, q.lookup(q.indices(x)))
        q.log_temp.fill_(0.0)
    vec, bits, _ = q(x)
    (vec.sum() + bits).backward()
    assert x.grad.abs().sum() > 0 and q.codebooks.grad.abs().sum() > 0 and q.prior_logits.grad.abs().sum() > 0


def test_training_with_the_prior_samples_the_encoders_rate_weighted_choice():
    torch.manual_seed(5)
    q = mgm.Quantizer(channels=4, m=2, k=8)
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        q.prior_logits.copy_(torch.randn(2, 8) * 3)
        q.log_temp.fill_(2.0)
        pen = q.prior_penalty(0.7)
        assert torch.allclose(pen, -0.7 * torch.log_softmax(q.prior_logits, -1))
        chosen = q.indices(x, pen)
        assert not torch.equal(chosen, q.indices(x))          # the prior moves some choices
        q.log_temp.add_(20.0)
        pen = q.prior_penalty(0.7 * torch.e ** 20)             # the same ratio at a sharp temperature:
        _, _, hard = q(x, prior_weight=0.7 * torch.e ** 20)    # the Gumbel sample is the choice
        assert torch.equal(hard.argmax(-1).permute(0, 3, 1, 2), chosen)
    _, bits, _ = q(x, prior_weight=1.0)
    bits.backward()
    assert q.prior_logits.grad.abs().sum() > 0                 # still fitted by the rate term
    assert q.prior_penalty(0) is None


def test_dead_codewords_are_reseeded_from_the_batch():
    torch.manual_seed(3)
    q = mgm.Quantizer(channels=4, m=2, k=8)
    q.usage.zero_()
    q.usage[:, 0] = 1.0
    x = torch.randn(1, 4, 5, 5) + 100.0  # far from every codeword
    assert q.track_and_reseed(x, torch.zeros(1, 5, 5, 2, 8)) == 2 * 7
    assert q.codebooks[:, 1:].mean() > 50 and q.codebooks[:, 0].abs().max() < 10


def test_indices_round_trip_exactly_through_the_coder(codec, model, crop):
    blob = codec.encode_tile(crop)
    h, w, _ = crop.shape
    i1, i2 = codec.decode_symbols(blob, h, w)
    r1, r2 = mgm.tile_indices(model, crop)
    np.testing.assert_array_equal(i1, r1)
    np.testing.assert_array_equal(i2, r2)
    out = codec.decode_tile(blob, h, w)
    assert out.shape == crop.shape and out.dtype == np.uint8
    # the coded size is the indices' code length under the frozen tables (plus the coder's
    # flush), and below the fixed-length bound of log2(k) bits per index
    ideal = sum(-np.log2(codec.tables.frequencies(t)[i] / 2 ** 16).sum()
                for (_, idx), (_, _, ids) in zip(model.in_table_order((i1, i2)), codec._layout(h, w))
                for i, t in zip(idx.ravel(), ids.ravel())) / 8
    assert ideal - 1 <= len(blob) <= ideal + 8
    assert len(blob) <= (i1.size * np.log2(16) + i2.size * np.log2(8)) / 8 + 8


def test_latents_are_code_vectors_without_the_synthesis_network(codec, crop, monkeypatch):
    blob = codec.encode_tile(crop)
    h, w, _ = crop.shape

    def boom(*a, **k):
        raise AssertionError("synthesis ran")
    for part in ("g_s", "up1", "up2"):
        monkeypatch.setattr(getattr(codec.model, part), "forward", boom)
    z = codec.latents(blob, h, w)
    assert z.shape == (64, -(-h // 16), -(-w // 16))


def test_damaged_payloads_give_format_errors_or_images(codec, crop):
    blob = codec.encode_tile(crop)
    rng = np.random.default_rng(0)
    for _ in range(30):
        b = bytearray(blob)
        b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
        try:
            assert codec.decode_tile(bytes(b), *crop.shape[:2]).shape == crop.shape
        except FormatError:
            pass


def test_tables_follow_the_index_frequencies(model):
    i1 = np.zeros((4, 2, 2), dtype=np.int64)
    i2 = np.full((2, 1, 1), 3, dtype=np.int64)
    t = mgm.fit_tables([(i1, i2)] * 50, model)
    assert len(t) == 2 + 4
    f = t.frequencies(0)
    assert f.argmax() == 3 and f.min() >= 1 and len(f) == 8 + 1
    assert t.frequencies(2).argmax() == 0


def test_train_a_few_steps_then_export(tmp_path, photo):
    from lcodec.train import export, mgm_train
    save_crops(photo, tmp_path, 160, 200)
    torch.set_num_threads(1)
    rec, state = mgm_train.run("mgm", 1, tmp_path, tmp_path, minutes=0.05, resume=False, device="cpu",
                               run_dir=tmp_path / "run", batch=2, crop=64, val_every=10**6)
    assert state.step > 0 and np.isfinite(rec["val_psnr"]) and 0 < rec["fine_used"] <= 1
    rec, state = mgm_train.run("mgm", 1, tmp_path, tmp_path, minutes=0.05, resume=True, device="cpu",
                               run_dir=tmp_path / "run", batch=2, crop=64, val_every=10**6, prior_weight=0.5)
    assert np.isfinite(rec["val_psnr"]) and np.isfinite(rec["val_bpp_est"])
    half, tables = export.mgm_fp16("mgm", 1, tmp_path / "run", tmp_path)
    assert len(tables) == 2 + 4 and sum(v.numel() * 2 for v in half.values()) < 16 * 2 ** 20


def test_a_sibling_level_passes_on_its_transforms_not_its_other_shaped_codebooks(tmp_path):
    from lcodec.models.state import load_matching, load_state, to_fp16
    torch.manual_seed(4)
    parent, child = mgm.MGM(N=8, C=16, m1=2, k1=8, m2=2, k2=8), mgm.MGM(N=8, C=16, m1=4, k1=8, m2=2, k2=8)
    torch.save(to_fp16(parent), tmp_path / "parent.pt")
    loaded = load_matching(child, load_state(tmp_path / "parent.pt"))
    assert "g_a.0.weight" in loaded and "coarse.codebooks" in loaded and "fine.codebooks" not in loaded
    assert torch.equal(child.g_s[1].weight, parent.g_s[1].weight)
    assert child.fine.codebooks.shape == (4, 8, 4)


def test_rate_weighted_choice_trades_distance_for_code_length(model, photo):
    tiles = [photo[:128, :160], photo[100:228, 40:200]]
    plain = mgm.fit_tables([mgm.tile_indices(model, t) for t in tiles], model)
    assert mgm.index_penalties(plain, model, 0) == (None, None)
    i1, i2 = mgm.tile_indices(model, tiles[0], penalties=mgm.index_penalties(plain, model, 1e6))
    for idx, first, q in ((i2, 0, model.coarse), (i1, model.coarse.m, model.fine)):  # code length dominates:
        for j in range(q.m):                                                         # the likeliest codeword
            assert (idx[j] == plain.frequencies(first + j)[:q.k].argmax()).all()
    weighted = mgm.fit_rate_weighted_tables(iter(tiles), model, 1.0)   # a one-pass iterator, read every round
    assert weighted.to_bytes() == mgm.fit_rate_weighted_tables(tiles, model, 1.0).to_bytes() != plain.to_bytes()
    cpu = torch.device("cpu")
    ecvq = mgm.MgmCodec(model, weighted, cpu, 1024, rate_weight=1.0)
    nearest = mgm.MgmCodec(model, plain, cpu, 1024)
    payload = ecvq.encode_tile(tiles[0])
    chosen = mgm.tile_indices(model, tiles[0], penalties=ecvq.penalties)
    assert all(np.array_equal(a, b) for a, b in zip(ecvq.decode_symbols(payload, 128, 160), chosen))
    assert len(payload) < len(nearest.encode_tile(tiles[0]))


def test_a_refine_stage_codes_what_the_fine_level_leaves(crop):
    torch.manual_seed(6)
    model = mgm.MGM(N=16, C=32, m1=4, k1=16, m2=2, k2=8, m3=4, k3=16).eval()
    with torch.no_grad():   # codewords at real leftovers (as training starts them), one of them zero
        f1, f2 = model.features(mgm.tile_tensor(crop))
        i1, i2 = model.quantize(f1, f2)[:2]
        r1 = f1 - model.up2(model.coarse.lookup(i2))
        model.refine.init_from(r1 - model.fine.lookup(i1))
        model.refine.codebooks[:, 0] = 0
    maps = mgm.tile_indices(model, crop)
    assert len(maps) == 3 and maps[2].shape == (4,) + maps[0].shape[1:]
    np.testing.assert_array_equal(maps[0], i1[0].numpy())
    q1, _ = model.code_vectors(*[torch.from_numpy(m)[None] for m in maps])
    q1_plain, _ = model.code_vectors(*[torch.from_numpy(m)[None] for m in maps[:2]])
    assert ((r1 - q1) ** 2).mean() < 0.9 * ((r1 - q1_plain) ** 2).mean()
    codec = mgm.MgmCodec(model, mgm.fit_tables([maps], model), torch.device("cpu"), 1024)
    assert len(codec.tables) == 2 + 4 + 4
    h, w, _ = crop.shape
    blob = codec.encode_tile(crop)
    for got, want in zip(codec.decode_symbols(blob, h, w), maps, strict=True):
        np.testing.assert_array_equal(got, want)
    assert codec.latents(blob, h, w).shape == (64, -(-h // 16), -(-w // 16))
    assert codec.decode_tile(blob, h, w).shape == crop.shape
    plain = mgm.MgmCodec(model, mgm.fit_tables([maps], model), torch.device("cpu"), 1024, rate_weight=1.0)
    assert len(plain.penalties) == 3 and all(p.shape == (q.m, q.k) for p, q in
                                              zip(plain.penalties, (model.fine, model.coarse, model.refine)))


def test_a_refine_level_trains_beside_fixed_coarse_and_fine_levels(tmp_path, photo):
    from lcodec.models.state import load_state, to_fp16
    from lcodec.train import mgm_train
    save_crops(photo, tmp_path, 160, 200)
    torch.manual_seed(7)
    torch.save(to_fp16(mgm.build("mgm", 3)), tmp_path / "q3.pt")
    torch.set_num_threads(1)
    rec, state = mgm_train.run("mgm", 4, tmp_path, tmp_path, minutes=0.05, resume=False, device="cpu",
                               run_dir=tmp_path / "run", batch=2, crop=64, val_every=10**6,
                               init_from=tmp_path / "q3.pt", freeze_encoder=True)
    assert state.step > 0 and 0 < rec["refine_used"] <= 1 and np.isfinite(rec["val_bpp_est"])
    start, end = load_state(tmp_path / "q3.pt"), load_state(tmp_path / "run" / "last.pt")
    for name in ("g_a.0.weight", "down1.weight", "up2.0.weight", "fine.codebooks", "coarse.codebooks",
                 "fine.prior_logits"):
        assert torch.equal(start[name], end[name]), name       # the indices of q3's levels stay
    assert not torch.equal(start["g_s.5.weight"], end["g_s.5.weight"])   # the synthesis trains
    assert "refine.codebooks" in end and "refine.codebooks" not in start
