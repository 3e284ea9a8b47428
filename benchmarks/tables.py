"""docs/performance.md's tables, from the benchmark records.

    python benchmarks/tables.py            # rewrite the tables in docs/performance.md
    python benchmarks/tables.py --check    # exit 1 when they differ from the records

For every CPU (its model and archfit's kernel path) the newest record of
``compare.py`` (its newest full run; the newest ``--quick`` one, whose
samples are smaller, only when the CPU has no full run) and of ``layers.py`` under
``benchmarks/results/`` gives a table: samples per second and archfit's
ratio to each peer, with the record's date, commit and command. The tables
sit between two markers in docs/performance.md; nothing else there is
touched. Records of an older schema (before ``_record.py``) are skipped.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PAGE = os.path.join(os.path.dirname(HERE), "docs", "performance.md")
BEGIN = "<!-- tables: written by benchmarks/tables.py from benchmarks/results/; do not edit -->"
END = "<!-- end of the tables -->"


def records(folder: str = RESULTS) -> list[dict]:
    """Every record of the current schema, oldest first (by date)."""
    out = []
    for path in glob.glob(os.path.join(folder, "*.json")):
        with open(path) as f:
            record = json.load(f)
        if isinstance(record.get("cpu"), dict) and "results" in record:
            record["file"] = os.path.basename(path)
            out.append(record)
    return sorted(out, key=lambda r: r["date"])


def _script(record) -> str:
    return record["command"].split()[1] if len(record["command"].split()) > 1 else ""


def _machine(record) -> tuple[str, str]:
    return record["cpu"]["model"], record["kernel_path"]


def _rate(value):
    """A figure's samples per second (compare.py keeps more about each)."""
    if isinstance(value, dict):
        return value.get("rate")
    return value


def _table(rows: dict, peers: list[str]) -> list[str]:
    """A markdown table: a row per workload, samples/s per peer and
    archfit ÷ each other peer; a bfloat16 row (``W3-bfloat16``) also ÷ each
    peer of its float32 row (``W3``), archfit's own included."""
    lines = ["| workload | " + " | ".join(peers) + " | archfit ÷ each |",
             "|---|" + "---|" * (len(peers) + 1)]
    for workload, row in rows.items():
        rates = {p: _rate(row.get(p)) for p in peers}
        cells = [f"{rates[p]:,.0f}" if rates[p] else "—" for p in peers]
        ratios = ", ".join(f"{p} {rates['archfit'] / rates[p]:.2f}×" for p in peers[1:]
                           if rates.get(p) and rates.get("archfit"))
        base = rows.get(workload.removesuffix("-bfloat16"))
        if workload.endswith("-bfloat16") and base and rates.get("archfit"):
            against = ", ".join(f"{p} {rates['archfit'] / _rate(base.get(p)):.2f}×"
                                for p in peers if _rate(base.get(p)))
            ratios = "; ".join(r for r in (ratios, f"÷ float32: {against}") if r)
        lines.append(f"| {workload} | " + " | ".join(cells) + f" | {ratios} |")
    return lines


def _source(record) -> str:
    commit = (record.get("commit") or "unknown")[:7]
    return (f"`{record['command']}`, {record['date'][:10]}, commit {commit}, record "
            f"`{record['file']}`")


def tables(folder: str = RESULTS) -> str:
    """The generated section (without its markers)."""
    newest: dict[tuple, dict] = {}
    for record in records(folder):
        script = _script(record)
        key = (_machine(record), script)
        # the newest run per CPU, a full one over a --quick one (smaller samples)
        if script in ("benchmarks/compare.py", "benchmarks/layers.py") and (
                key not in newest or newest[key]["results"].get("quick")
                or not record["results"].get("quick")):
            newest[key] = record
    lines = []
    for machine in sorted({m for m, _ in newest}):
        model, path = machine
        lines += ["", f"**{model}, kernel path `{path}`** (2 threads every peer; samples "
                  "per second, float32 unless said)", ""]
        compare = newest.get((machine, "benchmarks/compare.py"))
        if compare is not None:
            train = compare["results"]["train"]
            peers = ["archfit"] + [p for p in ("jax", "torch", "torch-fused", "torch-compile",
                                               "torch-autocast", "numpy", "sklearn")
                                   if any(_rate((row or {}).get(p)) for row in train.values())]
            lines += [f"Training, {_source(compare)}:", ""]
            lines += _table({w: row or {} for w, row in train.items()}, peers) + [""]
        layers = newest.get((machine, "benchmarks/layers.py"))
        if layers is not None:
            rows = layers["results"]
            peers = ["archfit"] + [p for p in ("jax", "torch", "torch-compile")
                                   if any(_rate((row or {}).get(p)) for row in rows.values())]
            lines += [f"Layers beyond Dense, {_source(layers)}:", ""]
            lines += _table(rows, peers) + [""]
    return "\n".join(lines)


def page_with_tables(text: str, generated: str) -> str:
    """The page's text with the section between the markers replaced."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{PAGE} has no markers {BEGIN!r} ... {END!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + "\n" + generated + "\n" + END + tail


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the page's tables differ from the records'")
    args = parser.parse_args(argv)
    with open(PAGE) as f:
        text = f.read()
    new = page_with_tables(text, tables())
    if args.check:
        if new != text:
            print(f"{PAGE}: the tables differ from benchmarks/results/; run "
                  "python benchmarks/tables.py", file=sys.stderr)
            return 1
        return 0
    with open(PAGE, "w") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
