"""The fault matrix: every fault-injection case of tests/fault_cases.py over real processes, and
for each party its exit status and seconds from the fault to its exit (the closing note's table).
A party that fails before starting marks the fault itself (its "cannot start" log line); the
`local` column is a `veil local` run (its parties are its children).

    python programs/fault_matrix.py [--workers N] [--show]      (--show: each party's last line)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fault_cases import PARTIES, build_all, cases, problems, run_cases  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4, help="cases run at the same time")
    ap.add_argument("--show", action="store_true", help="print each party's last stderr line")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="veil-faults-") as tmp:
        root = Path(tmp)
        builds = build_all(root)
        t0 = time.monotonic()
        chosen = cases()
        runs = run_cases(root, builds, chosen, workers=args.workers)
        total = time.monotonic() - t0
        columns = PARTIES + sorted({k for r in runs.values() for k in r.ends} - set(PARTIES))  # + veil local
        print(f"{'case':<38}" + "".join(f"{p:>14}" for p in columns) + "  verdict")
        bad = 0
        for case in chosen:
            run = runs[case.name]
            cells = []
            for p in columns:
                end = run.ends.get(p)
                cells.append("-" if end is None else f"{end.code:>3} {end.after:6.2f} s")
            found = problems(case, run)
            bad += bool(found)
            print(f"{case.name:<38}" + "".join(f"{c:>14}" for c in cells) + ("  ok" if not found else "  FAIL"))
            for line in found:
                print(f"    {line}")
            if args.show:
                for p, end in run.ends.items():
                    last = [ln for ln in end.err.strip().splitlines() if ln.startswith("error")] or [""]
                    print(f"    {p}: {last[-1][:150]}")
        print(f"(exit status and seconds from the fault to the exit; {len(chosen)} cases in {total:.1f} s, "
              f"{args.workers} at a time)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
