"""docs/performance.md's and docs/tabular.md's tables, from the benchmark records.

    python benchmarks/tables.py            # rewrite the tables in both pages
    python benchmarks/tables.py --check    # exit 1 when they differ from the records

For every CPU (its model and archfit's kernel path) the newest record of
``compare.py`` (its newest full run; the newest ``--quick`` one, whose
samples are smaller, only when the CPU has no full run) and of ``layers.py`` under
``benchmarks/results/`` gives a table: samples per second and archfit's
ratio to each peer, with the record's date, commit and command. For
docs/tabular.md, the newest complete ``tabular.py`` run per CPU that holds
every model of ``tabular.MODELS`` gives each data set's mean test metric and
fit time per model, archfit's gap to the best other model and its fit time
÷ RealMLP-TD's and TabM-D's; the newest complete run on the held-out tables
(``--datasets held-out``) that holds archfit gives the same table for the
models it ran; the newest ``tabular.py --cli-diamonds`` run adds the command
line's ratio to LightGBM. The tables sit between two
markers in each page; nothing else there is touched. Records of an older
schema (before ``_record.py``) are skipped.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PAGE = os.path.join(os.path.dirname(HERE), "docs", "performance.md")
TABULAR_PAGE = os.path.join(os.path.dirname(HERE), "docs", "tabular.md")
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


# ---- docs/tabular.md ----------------------------------------------------------------------------
NAMES = {"archfit": "archfit", "archfit-mlp": "archfit MLP", "lightgbm": "LightGBM",
         "realmlp": "RealMLP-TD", "tabm": "TabM-D"}


def _tabular_module():
    sys.path.insert(0, HERE)
    try:
        import tabular
    finally:
        sys.path.remove(HERE)
    return tabular


def _model_on(cell: dict) -> dict | None:
    """A model's figures on one data set: the mean metric of its finished
    seeds, the mean fit seconds over every seed (a timed-out seed counting its
    timeout, so then a lower bound), how many seeds finished of how many."""
    runs = [r for r in cell.values() if "metric" in r]
    late = [r["timed_out"] for r in cell.values() if "timed_out" in r]
    if not runs and not late:
        return None
    return {"metric": sum(r["metric"] for r in runs) / len(runs) if runs else None,
            "seconds": (sum(r["seconds"] for r in runs) + sum(late)) / (len(runs) + len(late)),
            "lower_bound": bool(late), "finished": len(runs), "seeds": len(runs) + len(late)}


def _tabular_table(record: dict, tabular) -> list[str]:
    """Per data set: the mean test metric and fit seconds of every model,
    archfit's gap to the best other model, its fit time ÷ each pytabkit model's."""
    models = list(tabular.MODELS)
    head = [NAMES[m] for m in models]
    metric_lines = ["| data set | metric | " + " | ".join(head) + " | archfit against the best "
                    "other |", "|---|---|" + "---|" * (len(models) + 1)]
    time_lines = ["| data set | " + " | ".join(head) + " | archfit ÷ RealMLP-TD | archfit ÷ "
                  "TabM-D |", "|---|" + "---|" * (len(models) + 2)]
    for name, cells in record["results"].items():
        if name not in tabular.DATASETS:
            continue
        task = tabular.DATASETS[name][1]
        on = {m: _model_on(cells.get(m, {})) for m in models}
        means = {m: f["metric"] for m, f in on.items() if f and f["metric"] is not None}
        # a row's figures to 4 significant digits of its largest
        top = max((abs(v) for v in means.values()), default=1.0) or 1.0
        digits = max(0, 3 - math.floor(math.log10(top)))
        row, times = [], []
        for m in models:
            f = on[m]
            if f is None:
                row.append("—")
                times.append("—")
                continue
            bound = "> " if f["lower_bound"] else ""
            times.append(f"{bound}{f['seconds']:.1f}")
            if f["metric"] is None:
                row.append(f"> {f['seconds']:.0f} s")
            else:
                part = (f" ({f['finished']} of {f['seeds']} seeds)"
                        if f["finished"] < f["seeds"] else "")
                row.append(f"{f['metric']:.{digits}f}{part}")
        others = [v for m, v in means.items() if m != "archfit"]
        gap = "—"
        if "archfit" in means and others:
            if task == "classification":
                gap = f"{100 * (means['archfit'] - max(others)):+.1f} points"
            else:
                gap = f"{100 * (means['archfit'] / min(others) - 1):+.1f}% RMSE"
        ratios = []
        for m in ("realmlp", "tabm"):
            a, f = on["archfit"], on[m]
            if a is None or f is None or a["lower_bound"]:
                ratios.append("—")
            else:
                ratios.append(("< " if f["lower_bound"] else "")
                              + f"{a['seconds'] / f['seconds']:.3f}")
        kind = "accuracy" if task == "classification" else "RMSE"
        metric_lines.append(f"| {name} | {kind} | " + " | ".join(row) + f" | {gap} |")
        time_lines.append(f"| {name} | " + " | ".join(times) + " | " + " | ".join(ratios) + " |")
    ranks = record.get("mean_rank") or {}
    metric_lines.append("| mean rank | | " + " | ".join(
        f"{ranks[m]:.2f}" if ranks.get(m) is not None else "—" for m in models) + " | |")
    return (["Test metric, mean over seeds (RMSE: lower is better; accuracy: higher); "
             "mean rank over the (data set, seed) pairs every model finished:", ""]
            + metric_lines + ["", "Fit seconds, mean over seeds (\"> \": a seed ran out of "
                              "time, its timeout counted):", ""] + time_lines)


def tabular_tables(folder: str = RESULTS) -> str:
    """docs/tabular.md's generated section (without its markers)."""
    tabular = _tabular_module()
    newest: dict[tuple, dict] = {}
    held_out: dict[tuple, dict] = {}
    cli: dict[tuple, dict] = {}
    for record in records(folder):
        if _script(record) != "benchmarks/tabular.py":
            continue
        machine = _machine(record)
        if "--cli-diamonds" in record["command"]:
            cli[machine] = record
            continue
        held = {m for cells in record["results"].values() for m, c in cells.items()
                if _model_on(c)}
        if not record.get("complete"):
            continue
        if set(record["results"]) <= set(tabular.HELD_OUT):
            if "archfit" in held:
                held_out[machine] = record
        elif held >= set(tabular.MODELS):
            newest[machine] = record
    lines = []
    for machine in sorted(set(newest) | set(held_out) | set(cli)):
        model, path = machine
        lines += ["", f"**{model}, kernel path `{path}`** (2 threads every model)", ""]
        record = newest.get(machine)
        if record is not None:
            lines += [f"{record['seeds']} seeds of 64/16/20 splits, {_source(record)}.", ""]
            lines += _tabular_table(record, tabular) + [""]
        record = held_out.get(machine)
        if record is not None:
            lines += [f"Held out (tables never used to choose the defaults): {record['seeds']} "
                      f"seeds of 64/16/20 splits, {_source(record)}.", ""]
            lines += _tabular_table(record, tabular) + [""]
        run = cli.get(machine)
        if run is not None:
            ratios = ", ".join(f"{r['ratio']:.3f}" for r in run["results"].values())
            lines += [f"`archfit train` on the raw diamonds CSV, test RMSE of log price ÷ "
                      f"LightGBM's, per seed: {ratios} ({_source(run)}).", ""]
    return "\n".join(lines)


def page_with_tables(text: str, generated: str, page: str = PAGE) -> str:
    """The page's text with the section between the markers replaced."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{page} has no markers {BEGIN!r} ... {END!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + "\n" + generated + "\n" + END + tail


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the page's tables differ from the records'")
    args = parser.parse_args(argv)
    stale = 0
    for page, generated in ((PAGE, tables), (TABULAR_PAGE, tabular_tables)):
        with open(page) as f:
            text = f.read()
        new = page_with_tables(text, generated(), page)
        if args.check:
            if new != text:
                print(f"{page}: the tables differ from benchmarks/results/; run "
                      "python benchmarks/tables.py", file=sys.stderr)
                stale = 1
        elif new != text:
            with open(page, "w") as f:
                f.write(new)
    return stale


if __name__ == "__main__":
    sys.exit(main())
