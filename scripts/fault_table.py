"""Prints the fault suite's table (the rows the fault tests wrote, one per case and backend).

    fault_table.py target/fault-table.tsv
"""
import sys

HEAD = ["fault", "backend", "path", "runs", "lost", "duplicated", "outcome", "time"]
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
print("| " + " | ".join(HEAD) + " |")
print("|" + "---|" * len(HEAD))
for row in rows:
    print("| " + " | ".join(row) + " |")
