"""Give every vqgan level the restorer of one level (issue 6):

    python scripts/vqgan_share_restorer.py --from 3 --to 1 2 --data-root ../shared/data

One restorer serves every rate (it is trained on the largest codebook and on k-means reductions
of it), and each level's weights file carries a copy. After the restorer alone is retrained at
quality 3, this copies its tensors into the other levels' weights, leaving their encoder,
decoder, codebook and tables as they are (the restorer never changes an index, so the tables
still fit), and ships each as its next version with a ledger record.
"""
import argparse
import os
import tempfile

import torch


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="source", type=int, required=True, help="Quality whose restorer is copied.")
    p.add_argument("--to", type=int, nargs="+", required=True, help="Qualities that receive it.")
    p.add_argument("--data-root", required=True, help="Folder with images/val (validation of the new versions).")
    a = p.parse_args(argv)
    from lcodec.models import registry
    from lcodec.train import export
    from lcodec.train.ledger import records
    src_entry = registry.weights_entry("vqgan", a.source)
    donor = torch.load(registry.verified_path(src_entry, "weights_file"), map_location="cpu", weights_only=True)
    restorer = {k: v for k, v in donor.items() if k.startswith("restorer.")}
    for q in a.to:
        entry = registry.weights_entry("vqgan", q)
        state = torch.load(registry.verified_path(entry, "weights_file"), map_location="cpu", weights_only=True)
        assert set(restorer) <= set(state), "the levels' restorers must have the same tensors"
        state.update(restorer)
        version = entry["version"] + 1
        with tempfile.TemporaryDirectory() as tmp:
            wpath = os.path.join(tmp, "weights.pt")
            torch.save(state, wpath)
            trained = next(r for r in records() if (r["model"], r["quality"], r["version"]) == ("vqgan", q, entry["version"]))
            record = {"steps": 0, "finetuned_from": entry["version"], "batch": trained["batch"], "crop": trained["crop"],
                      "data": trained["data"], "device": "none: tensors copied", "wall_minutes": 0,
                      "commands": [f"python scripts/vqgan_share_restorer.py --from {a.source} --to {q} "
                                   f"--data-root {a.data_root}"],
                      "note": f"q{q} v{entry['version']} with the restorer of q{a.source} "
                              f"v{src_entry['version']} (its tensors copied; encoder, decoder, codebook "
                              f"and tables unchanged)"}
            export.install("vqgan", q, version, wpath, registry.verified_path(entry, "tables_file"), record,
                           os.path.join(a.data_root, "images", "val"))


if __name__ == "__main__":
    main()
