"""Compares `check --python --json` (python-<stack>.json) with a row of compatibility.json,
check by check: `python evidence/check/compare.py <stack> <cell>` from the repository root."""

import json
import sys
from pathlib import Path

stack, cell = sys.argv[1:3]
found = json.loads(Path(f"evidence/check/python-{stack}.json").read_text())
(row,) = [
    r for r in json.loads(Path("compatibility.json").read_text())["rows"] if r["cell"] == cell
]
print(f"{stack} against {cell} (run {row['run']})")
print(f"{'check':18} {'row raw/compat':44} {'check raw/compat':44} agree")
for mine in found["checks"]:
    theirs = row["checks"][mine["check"]]
    raw, compat = theirs["raw"], theirs["compat"]
    sig = raw["signature"] or (compat or {}).get("signature")
    was = f"{raw['status']}/{compat['status'] if compat else '-'} {sig or ''}"
    now = f"{mine['raw']}/{mine['compat'] or '-'} {mine['signature'] or ''}"
    same = (raw["status"], compat and compat["status"], sig) == (
        mine["raw"], mine["compat"], mine["signature"])  # fmt: skip
    print(f"{mine['check']:18} {was:44} {now:44} {'yes' if same else 'NO'}")
