#!/usr/bin/env python3
"""Merges the per-backend tables tests/fidelity.rs writes (target/fidelity-<backend>.md) into the
table of docs/FIDELITY.md, printed on stdout. Run after the suite ran on both backends:

    python3 scripts/fidelity_table.py > /tmp/table.md
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
BACKENDS = [("lite", "Milvus Lite 3.2.2"), ("standalone", "Milvus 2.3.5")]


def read(backend):
    rows, total = {}, ""
    for line in (ROOT / "target" / f"fidelity-{backend}.md").read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and cells[0] not in ("case", "---"):
            # The servers' long lists of what they support add nothing to the reason.
            rows[cells[0]] = (cells[1], re.sub(r"\. Phase 10\.2 supports:.*?\(code", " (code", cells[2]))
        elif line.strip().endswith(f"compared on {backend}."):
            total = line.strip()
    return rows, total


tables = {b: read(b) for b, _ in BACKENDS}
order = []
for b, _ in BACKENDS:
    order += [k for k in tables[b][0] if k not in order]
print("| case | what it covers | " + " | ".join(name for _, name in BACKENDS) + " |")
print("|---|---|" + "---|" * len(BACKENDS))
for key in order:
    covers = next(tables[b][0][key][0] for b, _ in BACKENDS if key in tables[b][0])
    cells = [tables[b][0].get(key, ("", "not run"))[1] for b, _ in BACKENDS]
    print(f"| {key} | {covers} | " + " | ".join(cells) + " |")
print()
for b, name in BACKENDS:
    print(f"- {name}: {tables[b][1]}")
