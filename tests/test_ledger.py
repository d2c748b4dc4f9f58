"""The training ledger: every shipped weight file has its record, TRAINING.md is rendered from
it, and training lineage (what a file started from) adds up steps correctly."""
from lcodec.models import registry
from lcodec.train import ledger


def _rec(model, q, v, steps, cmd, **kw):
    return {"model": model, "quality": q, "version": v, "steps": steps, "commands": [cmd],
            "weights_file": f"{model}-q{q}-v{v}.pt", **kw}


def test_every_installed_weight_file_has_its_ledger_record():
    rows = ledger.records()
    for key, entry in registry.load_index().items():
        match = [r for r in rows if r["weights_file"] == entry["weights_file"]]
        assert len(match) == 1, key
        assert match[0]["weights_sha256"] == entry["weights_sha256"], key


def test_training_md_is_rendered_from_the_ledger(tmp_path, monkeypatch):
    committed = ledger.DOC.read_text()
    monkeypatch.setattr(ledger, "DOC", tmp_path / "TRAINING.md")
    ledger.render()
    assert (tmp_path / "TRAINING.md").read_text() == committed, "run python -m lcodec.train.ledger"


def test_lineage_follows_init_from_and_init_and_sums_steps():
    rows = [_rec("m", 2, 1, 100, "lcodec train m -q 2"),
            _rec("m", 3, 1, 50, "lcodec train m -q 3 --init-from lcodec/models/weights/m-q2-v1.pt"),
            _rec("m", 3, 2, 7, "lcodec train m -q 3 --init --lr 1e-4", shipped=False),
            _rec("m", 3, 3, 20, "lcodec train m -q 3 --init"),      # v2 was never shipped: from v1
            _rec("m", 1, 1, 5, "lcodec train m -q 1 --init-from runs/x/last.pt"),
            _rec("v", 3, 1, "10 + 2", "lcodec train v -q 3"),
            _rec("v", 1, 1, 4, "lcodec train v -q 1 --init-from lcodec/models/weights/v-q3-v1.pt"),
            # a start file copied out of git history: the record names it
            _rec("c", 2, 1, 30, "lcodec train c -q 2 --init-from /tmp/old.pt", started_from="m-q2-v1.pt")]
    m2, m3, _, m3v3, m1, v3, v1, c2 = rows
    assert ledger.parent(m2, rows) is None
    assert ledger.parent(m3, rows) is m2
    assert ledger.parent(m3v3, rows) is m3
    assert ledger.parent(m1, rows) is None            # a checkpoint that was never exported
    assert [ledger.steps_from_scratch(r, rows) for r in (m2, m3, m3v3, m1)] == [100, 150, 170, 5]
    assert ledger.steps_from_scratch(v1, rows) is None  # a parent's count is not a number
    assert ledger.parent(v1, rows) is v3
    assert ledger.parent(c2, rows) is m2 and ledger.steps_from_scratch(c2, rows) == 130
