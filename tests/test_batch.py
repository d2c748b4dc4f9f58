"""Folder encode/decode: mirrored tree, resume, bad files reported, workers give the same bytes."""
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
    s = batch.run(src, out, "encode", quality=2, device="cpu", echo=lambda *_: None)
    assert s.files == 2 and len(s.failures) == 1 and "broken.png" in s.failures[0][0]
    assert (out / "a.lcf").read_bytes() == lcodec.encode(src / "a.png", quality=2, device="cpu")
    again = batch.run(src, out, "encode", quality=2, device="cpu", echo=lambda *_: None)
    assert again.files == 0 and again.skipped == 2          # resume: nothing encoded twice
    par = tmp_path / "par"
    batch.run(src, par, "encode", quality=2, device="cpu", jobs=2, echo=lambda *_: None)
    assert (par / "sub" / "b.lcf").read_bytes() == (out / "sub" / "b.lcf").read_bytes()
    dec = tmp_path / "dec"
    d = batch.run(out, dec, "decode", device="cpu", echo=lambda *_: None)
    assert d.files == 2 and Image.open(dec / "sub" / "b.png").size == (130, 90)
    assert not list(tmp_path.rglob("*.tmp"))


def test_name_clashes_keep_their_suffix_and_stale_outputs_are_not_skipped(tmp_path, photo):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo[:64, :64]).save(src / "a.png")
    Image.fromarray(photo[64:128, :64]).save(src / "a.jpg")
    out = tmp_path / "out"
    s = batch.run(src, out, "encode", quality=2, device="cpu", echo=lambda *_: None)
    assert s.files == 2 and sorted(p.name for p in out.iterdir()) == ["a.jpg.lcf", "a.png.lcf"]
    stale = batch.run(src, out, "encode", quality=1, device="cpu", echo=lambda *_: None)
    assert stale.files == 0 and stale.skipped == 0 and len(stale.failures) == 2
