"""Latent datasets: lazy, labelled by folder, cropped in latent space, never running synthesis."""
import pytest
import torch
from PIL import Image

import lcodec.learn
from lcodec import api
from lcodec.errors import LcodecError


def test_latent_dataset_from_encoded_folders(tmp_path, photo, monkeypatch):
    for cls, y0 in (("cats", 0), ("dogs", 120)):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(photo[y0 + k * 40:y0 + k * 40 + 96, 100:228]).save(tmp_path / "img" / cls / f"{k}.png")
    s = lcodec.learn.encode_folder(tmp_path / "img", tmp_path / "enc", quality=1, jobs=1)
    assert s.files == 4
    codec = api.get_codec("walloc-rgb", 1, "cpu")
    monkeypatch.setattr(codec.model, "synthesis", lambda *a: pytest.fail("synthesis ran"))
    ds = lcodec.learn.LatentDataset(tmp_path / "enc", labels="folder", crop=8)
    assert len(ds) == 4 and ds.classes == ["cats", "dogs"]
    x, y = lcodec.learn.collate([ds[i] for i in range(4)])
    assert x.shape == (4, 12, 8, 8) and x.dtype == torch.float32 and y.tolist() == [0, 0, 1, 1]
    full = lcodec.learn.LatentDataset(tmp_path / "enc", labels=None)
    assert full[0][0].shape == (12, 12, 16) and full[0][1] == -1
    with pytest.raises(LcodecError):
        lcodec.learn.LatentDataset(tmp_path / "enc", crop=64)[0]


def test_audio_latents_without_synthesis(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf
    rng = np.random.default_rng(0)
    (tmp_path / "wav" / "noise").mkdir(parents=True)
    sf.write(str(tmp_path / "wav" / "noise" / "st.wav"), rng.standard_normal((9000, 2)) * 0.1, 44100)
    sf.write(str(tmp_path / "wav" / "noise" / "mono.flac"), rng.standard_normal((9000,)) * 0.1, 44100)
    assert lcodec.learn.encode_folder(tmp_path / "wav", tmp_path / "enc", quality=1, jobs=1).files == 2
    codec = api.get_codec("walloc-stereo", 1, "cpu")
    monkeypatch.setattr(codec.model, "synthesis", lambda *a: pytest.fail("synthesis ran"))
    c = codec.model.latent
    assert api.open(tmp_path / "enc" / "noise" / "st.lcf").latents().shape == (2 * c, 36)   # mid, then side
    ds = lcodec.learn.LatentDataset(tmp_path / "enc", crop=16)
    shapes = sorted(tuple(ds[i][0].shape) for i in range(2))
    assert shapes == [(c, 16), (2 * c, 16)]


def test_whole_image_latents_of_a_tiled_file_and_crops_inside_one_tile(tmp_path, photo, monkeypatch):
    """latents() of a 2 x 2-tile image is its tiles' latents side by side; a random dataset crop
    decodes one tile only and equals a window of the whole latents."""
    import numpy as np
    big = np.ascontiguousarray(np.tile(photo, (4, 2, 1))[:1100, :1060])
    (tmp_path / "enc" / "a").mkdir(parents=True)
    api.write_atomic(tmp_path / "enc" / "a" / "big.lcf", lcodec.encode(big, model="walloc-rgb", quality=1,
                                                                       device="cpu"))
    f = api.open(tmp_path / "enc" / "a" / "big.lcf")
    whole = f.latents()
    tiles = [f.latents(tile=i) for i in range(4)]
    assert f.header["tiles"] == 4 and whole.shape == (12, 138, 133)          # ceil(1100 / 8), ceil(1060 / 8)
    assert torch.equal(whole[:, :128, :128], tiles[0]) and torch.equal(whole[:, :128, 128:], tiles[1])
    assert torch.equal(whole[:, 128:, :128], tiles[2]) and torch.equal(whole[:, 128:, 128:], tiles[3])
    ds = lcodec.learn.LatentDataset(tmp_path / "enc", crop=16)
    calls = []
    real = api.LcfFile.latents
    monkeypatch.setattr(api.LcfFile, "latents", lambda self, *a, **k: calls.append(k.get("tile")) or real(self, *a, **k))
    z, _ = ds[0]
    assert len(calls) == 1 and calls[0] is not None        # one tile decoded, not the whole image
    windows = whole.unfold(1, 16, 1).unfold(2, 16, 1)       # C x h' x w' x 16 x 16
    assert (windows == z[:, None, None]).flatten(3).all(3).all(0).any()
