"""CLC's coding path on a small untrained model and a small dictionary cut from the bundled
photo (so these tests do not depend on shipped weights), and its training loop."""
import numpy as np
import pytest
import torch

from lcodec.models import clc, hyperprior
from lcodec.models.state import to_fp16

from . import test_hyperprior
from .conftest import save_crops, torch_threads

# the hyperprior's damaged-tile test, run here on this module's CLC codec (damaged ids included)
test_damaged_payloads_give_format_errors_or_images = test_hyperprior.test_damaged_payloads_give_format_errors_or_images


def small_dictionary(photo, model, entries=4):
    img = torch.from_numpy(photo.copy()).permute(2, 0, 1).contiguous()
    d = clc.build_dictionary([img, img.flip(-1)], entries, dims=4, count=40, size=64)
    lat = clc.reference_latents(model, d["crops"])
    assert lat.shape == (entries, 24, 4, 4) and lat.dtype == torch.int16
    # an untrained g_a rounds to almost all zeros: distinct references, as a trained one gives
    d["latents"] = torch.randint(-4, 5, lat.shape, generator=torch.Generator().manual_seed(0)).to(torch.int16)
    return clc.load_dictionary_bytes(clc.dictionary_bytes(d))


@pytest.fixture(scope="module")
def codec(photo):
    torch.manual_seed(0)
    model = clc.ClcNet(N=16, M=24, A=8, R=2, moments=True)
    for p in (model.cond.to_params, model.to_synthesis, model.cond.moments):   # as if trained
        torch.nn.init.normal_(p.weight, std=0.05)
    to_fp16(model)  # fp16-exact weights, as shipped
    model.eval()
    return clc.ClcCodec(model, hyperprior.fit_z_tables(model), small_dictionary(photo, model),
                        torch.device("cpu"), 1024, refs=2)


def test_the_dictionary_is_built_on_one_thread_whatever_the_callers(photo, monkeypatch):
    """LAPACK's SVD rounds differently with more threads (57 of 1,024 references changed): the
    build runs on one thread, so a seed names one dictionary, and the caller's threads return."""
    seen, svd = [], torch.linalg.svd
    monkeypatch.setattr(torch.linalg, "svd", lambda *a, **k: seen.append(torch.get_num_threads()) or svd(*a, **k))
    img = torch.from_numpy(photo.copy()).permute(2, 0, 1).contiguous()
    with torch_threads(2):
        d2 = clc.build_dictionary([img, img.flip(-1)], 4, dims=4, count=40, size=64)
        assert torch.get_num_threads() == 2
    with torch_threads(1):
        d1 = clc.build_dictionary([img, img.flip(-1)], 4, dims=4, count=40, size=64)
    assert seen == [1, 1] and all(torch.equal(d1[k], d2[k]) for k in d1)


def test_symbols_round_trip_and_references_are_in_the_stream(codec, crop):
    blob = codec.encode_tile(crop)
    h, w, _ = crop.shape
    y_hat, cond = codec.decode_latent(blob, h, w)
    ids = codec.retrieve(crop)
    assert len(set(ids.tolist())) == 2 and ids.max() < 4
    # the decoder's latent is the encoder's y rounded around the same means
    x = torch.from_numpy(np.pad(crop, ((0, -h % 64), (0, -w % 64), (0, 0)), mode="edge")).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = codec.model.g_a(x.float() / 255)[0].double()
    assert torch.max(torch.abs(y_hat.double() - y)) <= 0.5 + 1e-3
    assert cond.shape == (1, 24, y.shape[1], y.shape[2])
    out = codec.decode_tile(blob, h, w)
    assert out.shape == crop.shape and out.dtype == np.uint8


@pytest.mark.parametrize("shape", [(1, 1), (1, 200), (37, 5)])
def test_tiny_and_thin_tiles_round_trip(codec, photo, shape):
    tile = photo[:shape[0], :shape[1]].copy()
    assert np.isfinite(clc.retrieval_features(torch.from_numpy(tile).permute(2, 0, 1)[None] / 255.0)).all()
    out = codec.decode_tile(codec.encode_tile(tile), *shape)
    assert out.shape == tile.shape


def test_other_references_change_the_entropy_parameters(codec, crop):
    z = np.random.default_rng(0).integers(-3, 4, size=(16, 2, 3))
    a = codec.entropy_params(z, np.array([0, 1]))
    b = codec.entropy_params(z, np.array([2, 3]))
    assert not np.array_equal(a[1], b[1])


def test_an_untrained_conditioner_is_exactly_the_base_codec(photo):
    torch.manual_seed(1)
    model = clc.ClcNet(N=16, M=24, A=8).eval()
    base = hyperprior.build("mbt2018-mean", 1).__class__(N=16, M=24).eval()
    base.load_state_dict({k: v for k, v in model.state_dict().items() if k in base.state_dict()})
    x = torch.rand(1, 3, 64, 64)
    refs = torch.randn(1, 2, 24, 4, 4)
    torch.manual_seed(2)
    a = model(x, refs)
    torch.manual_seed(2)
    b = base(x)
    torch.testing.assert_close(a["x_hat"], b["x_hat"])


def test_the_moments_path_starts_as_the_model_without_it_and_reads_each_references_spread():
    torch.manual_seed(3)
    plain = clc.Conditioner(16, 24, 8).double()
    with_moments = clc.Conditioner(16, 24, 8, R=2, moments=True).double()
    with_moments.load_state_dict(plain.state_dict(), strict=False)
    base = torch.randn(1, 48, 3, 5, dtype=torch.float64)
    refs = torch.randn(1, 2, 24, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(with_moments.condition(base, refs), plain.condition(base, refs), rtol=0, atol=0)
    torch.nn.init.normal_(with_moments.moments.weight, std=0.1)
    # the second reference's spread doubled about its mean: the per-channel means stay, c moves
    mean = refs[:, 1].mean((-2, -1), keepdim=True)
    spread = refs.clone()
    spread[:, 1] = mean + 2 * (refs[:, 1] - mean)
    delta = with_moments.condition(base, spread) - with_moments.condition(base, refs)
    attention_only = plain.condition(base, spread) - plain.condition(base, refs)
    assert not torch.allclose(delta, attention_only)


def test_bytes_and_parameters_do_not_depend_on_threads_or_input_precision(codec, crop):
    z = np.random.default_rng(1).integers(-6, 7, size=(16, 3, 4))
    out = []
    for n in (1, 2):
        with torch_threads(n):
            out.append((codec.encode_tile(crop), codec.entropy_params(z, np.array([1, 3]))))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1][0], out[1][1][0])
    np.testing.assert_array_equal(out[0][1][1], out[1][1][1])
    # the reference path is float64 on the CPU whatever the model's device and precision
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in codec.cond64.parameters())
    assert codec.refs64.dtype == torch.float64


def test_float32_and_float64_encoders_write_the_same_bytes_and_read_each_other(codec, crop):
    import copy
    model64 = copy.deepcopy(codec.model).double()
    codec64 = clc.ClcCodec(model64, codec.z_tables, codec.dictionary, torch.device("cpu"), 1024, refs=2)
    h, w, _ = crop.shape
    a, b = codec.encode_tile(crop), codec64.encode_tile(crop)
    assert a == b
    torch.testing.assert_close(codec.decode_latent(b, h, w)[0], codec64.decode_latent(a, h, w)[0], rtol=0, atol=0)
    assert np.abs(codec.decode_tile(a, h, w).astype(int) - codec64.decode_tile(a, h, w)).max() <= 1


def test_retrieval_never_picks_a_reference_from_the_crops_own_photo():
    d = {"centroids": torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])}
    p = torch.tensor([[0.1, 0.0], [0.1, 0.0]])
    assert clc.nearest(p, d["centroids"], 2).tolist() == [[0, 1], [0, 1]]
    exclude = torch.tensor([[True, False, False], [False, False, False]])
    assert clc.nearest(p, d["centroids"], 2, exclude).tolist() == [[1, 2], [0, 1]]


def test_same_photo_references_are_the_nearest_grid_crops_outside_the_training_crop(photo, monkeypatch):
    from lcodec.train.hyperprior_train import PhotoGrid, overlaps
    monkeypatch.setattr(clc, "REF_SIZE", 64)
    grid = PhotoGrid(torch.from_numpy(photo.copy()).permute(2, 0, 1).contiguous(), clc)
    assert len(grid.boxes) == (photo.shape[0] // 64) * (photo.shape[1] // 64)
    grid.latents = torch.arange(len(grid.boxes), dtype=torch.float32)[:, None, None, None]
    k = grid.boxes.index((64, 128, 64, 64))
    crop = grid.crops[k].double() / 255
    far = (256, 448, 100, 100)    # a training crop elsewhere: the grid crop identical to `crop` comes first
    assert grid.references(crop, far, 1).flatten().tolist() == [k]
    inside = (40, 100, 128, 128)  # a training crop over it: neither it nor any crop it touches
    ids = grid.references(crop, inside, 3).flatten().long().tolist()
    assert k not in ids and not any(overlaps(grid.boxes[i], inside) for i in ids)


def test_training_references_are_re_encoded_on_their_schedule_and_after_a_resume():
    from lcodec.train.hyperprior_train import GRID_REFRESH, REFRESH, References
    refs = References.__new__(References)     # only the schedule: no photos, no dictionary
    done = []
    refs.refresh = lambda model, grids: done.append((model, grids))   # the step stands in for the model
    for every, grids in ((REFRESH, None), (GRID_REFRESH, ["a photo's grid"])):
        refs.every, refs.grids, refs.refreshed_at, done[:] = every, grids, None, []
        for step in range(200, 200 + 2 * every + 1):   # a run resumed at step 200
            refs.refresh_if_due(step, step)
        # same-photo runs re-encode their grids (the dictionary's references only to validate)
        assert done == [(s, grids is not None) for s in (200, 200 + every, 200 + 2 * every)]
    assert GRID_REFRESH > REFRESH


def test_dictionary_references_are_encoded_when_first_retrieved_after_each_refresh(photo, monkeypatch):
    from lcodec.train.hyperprior_train import References
    img = torch.from_numpy(photo.copy()).permute(2, 0, 1).contiguous()
    d = clc.build_dictionary([img, img.flip(-1)], 6, dims=4, count=40, size=64)
    encoded = []

    def fake_latents(model, crops, stride=1):      # distinct per crop, and counts what is encoded
        encoded.append(len(crops))
        return crops[:, :2, ::16 * stride, ::16 * stride].to(torch.int16)
    monkeypatch.setattr(clc, "reference_latents", fake_latents)
    refs = References("clc", 1, lambda: pytest.fail("photos read"), None, dictionary=d)
    refs.stride = 2
    model = torch.nn.Linear(1, 1)
    refs.refresh(model)
    assert encoded == []                            # nothing before a batch asks
    x = img[None, :, :128, :192].float() / 255
    ids = clc.nearest(clc.project(clc.retrieval_features(x), d), d["centroids"], refs.r)
    got = refs.for_batch(x)
    want = d["crops"][ids.flatten()][:, :2, ::32, ::32].float()
    assert torch.equal(got, want.reshape(got.shape)) and len(ids.unique()) == refs.r == 2
    assert encoded == [2]                           # only the retrieved ones
    refs.for_batch(x)
    assert encoded == [2]                           # the same ids again: nothing re-encoded
    refs.refresh(model)
    refs.for_batch(x)
    assert encoded == [2, 2]                        # after a refresh, encoded anew


@pytest.mark.parametrize("same_photo_refs", [False, True])
def test_train_a_few_steps_then_export_with_a_dictionary(tmp_path, photo, monkeypatch, same_photo_refs):
    from lcodec.models import registry
    from lcodec.train import export, hyperprior_train
    save_crops(photo, tmp_path, 160, 200)
    small = dict(registry.MODELS["clc"], arch={"N": 16, "M": 24, "A": 8, "R": 2, "entries": 3,
                                               "dictionary_crops": 30, "ref_stride": 2})
    monkeypatch.setitem(registry.MODELS, "clc", small)
    monkeypatch.setattr(clc, "REF_SIZE", 64)
    torch.set_num_threads(1)
    rec, state = hyperprior_train.run("clc", 1, tmp_path, tmp_path, minutes=0.05, resume=False, device="cpu",
                                      run_dir=tmp_path / "run", batch=2, crop=64, val_every=10 ** 6,
                                      same_photo_refs=same_photo_refs)
    assert state.step > 0 and np.isfinite(rec["val_psnr"]) and rec["val_bpp_est"] > 0
    half, tables, dictionary = export.shipped_state("clc", 1, tmp_path / "run", tmp_path)
    assert half["cond.query.weight"].dtype == torch.float16
    d = clc.load_dictionary_bytes(dictionary)
    assert d["latents"].shape == (3, 24, 2, 2) and d["latents"].dtype == torch.int16   # 4 x 4, stride 2
    # a registry with another dictionary size: the export builds the dictionary anew
    monkeypatch.setitem(registry.MODELS, "clc", dict(small, arch=dict(small["arch"], entries=5)))
    d5 = clc.load_dictionary_bytes(export.shipped_state("clc", 1, tmp_path / "run", tmp_path)[2])
    assert d5["latents"].shape == (5, 24, 2, 2)
    # the same size built from another number of crops: built anew too, not kept for its size
    monkeypatch.setitem(registry.MODELS, "clc", dict(small, arch=dict(small["arch"], entries=5, dictionary_crops=31)))
    d31 = clc.load_dictionary_bytes(export.shipped_state("clc", 1, tmp_path / "run", tmp_path)[2])
    saved = torch.load(tmp_path / "run" / "dictionary.pt", weights_only=True)
    assert saved["params"]["count"] == 31 and not torch.equal(d31["centroids"], d5["centroids"])
    # now the run's dictionary matches: the export reuses it and reads no training photo
    monkeypatch.setattr(export.data, "load_images", lambda path: pytest.fail("training photos read"))
    again = clc.load_dictionary_bytes(export.shipped_state("clc", 1, tmp_path / "run", tmp_path)[2])
    assert torch.equal(again["centroids"], d31["centroids"])


def test_installed_clc_files_name_their_dictionary_and_refuse_another(crop):
    """The shipped model: the header (format 1.1) carries the dictionary's sha256; a file that
    names another dictionary is refused by name, not decoded with the wrong references."""
    import lcodec
    from lcodec.errors import ModelError
    from lcodec.formats import container
    from lcodec.models import registry
    entry = registry.weights_entry("clc", 2)
    blob = lcodec.encode(crop[:40, :60], model="clc", quality=2, device="cpu")
    c = container.read(blob)
    assert c.minor == 1 and c.header["dictionary_sha256"] == entry["dictionary_sha256"]
    assert lcodec.decode(blob, device="cpu").shape == (40, 60, 3)
    other = {k: v for k, v in dict(c.header, dictionary_sha256="0" * 64).items() if k != "format"}
    with pytest.raises(ModelError, match="reference dictionary 000000000000"):
        lcodec.decode(container.write(other, [c.tiles[0]]), device="cpu")
    without = {k: v for k, v in c.header.items() if k not in ("format", "dictionary_sha256")}
    with pytest.raises(ModelError, match="reference dictionary None"):
        lcodec.decode(container.write(without, [c.tiles[0]]), device="cpu")
