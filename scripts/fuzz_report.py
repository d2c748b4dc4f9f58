"""A longer run of the .lcf fuzz test (tests/test_fuzz.py's mutations of real files), counted:
how many mutated files decoded, how many ended in each kind of LcodecError, and any other
exception (a crash), with the slowest case and the peak memory. Writes docs/fuzz.md.

    python scripts/fuzz_report.py 20000 [--seed 1]
"""
import argparse
import collections
import re
import resource
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--out", default=str(ROOT / "docs" / "fuzz.md"))
    a = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    from hypothesis import HealthCheck, given, seed, settings

    import lcodec
    from lcodec.errors import LcodecError
    from tests import test_fuzz

    outcomes, crashes, slowest = collections.Counter(), [], (0.0, "")

    @seed(a.seed)
    @settings(max_examples=a.cases, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(test_fuzz.mutated())
    def one(data):
        nonlocal slowest
        t = time.perf_counter()
        try:
            lcodec.decode(data, device="cpu")
            outcomes["decoded"] += 1
        except LcodecError as e:
            reason = re.sub(r"\b[0-9a-f]*\d[0-9a-f]*\b", "N", str(e).split("(")[0].split(" at ")[0])
            outcomes[f"{type(e).__name__}: {reason[:60].strip()}"] += 1
        except Exception:   # noqa: BLE001 - what the fuzzer is looking for
            outcomes["CRASH"] += 1
            crashes.append(traceback.format_exc(limit=3))
        took = time.perf_counter() - t
        if took > slowest[0]:
            slowest = (took, f"{len(data)} B")

    t0 = time.time()
    one()
    total = sum(outcomes.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = ["# Fuzzing the .lcf reader and decoder\n",
             f"Command: `python scripts/fuzz_report.py {a.cases} --seed {a.seed}` "
             f"({time.strftime('%Y-%m-%d')}, 1 torch thread, CPU). Mutations of real files, as in "
             "`tests/test_fuzz.py` (CI runs 300 of them): byte flips, insertions, deletions, truncations, "
             "garbage inside chunks with valid CRCs, length fields, huge, zero and odd declared shapes, "
             "reordered and duplicated chunks; seeds: a golden file of every model family and a file of "
             "2 x 2 tiles.\n",
             f"**{total} cases: {outcomes['CRASH']} crashes (exceptions other than LcodecError), "
             f"{outcomes['decoded']} decoded, the rest refused with an LcodecError.** Slowest case "
             f"{slowest[0]:.2f} s ({slowest[1]}); peak memory {rss:.0f} MiB; {time.time() - t0:.0f} s in all.\n",
             "| outcome | cases |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in outcomes.most_common()]
    if crashes:
        lines += ["\n## Crashes\n"] + [f"```\n{c}```" for c in crashes[:10]]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(lines[2])
    sys.exit(1 if crashes else 0)


if __name__ == "__main__":
    main()
