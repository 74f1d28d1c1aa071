#!/usr/bin/env python3
"""Draw p99 latency against throughput from sweep.py's JSON, both servers on one chart.

    pip install matplotlib        # only on the machine that draws; never in CI
    Tools/bench/plot.py Benchmarks/results/sweep-standalone.json [more.json ...] --out-dir Benchmarks/results
    Tools/bench/plot.py ... --table      # also print the Markdown tables BENCHMARKS.md carries

One PNG per topology and workload (`<topology>-<workload>.png`), with a panel per value size;
each point is one offered load (sessions x in flight; or, from an open-loop sweep, requests per
second offered: `<topology>-<workload>-open.png`), labelled, at the medians of its rounds.
Files of the same topology (one sweep per value size, say) are merged into one chart. A sweep
run with --baseline (two SwiftKeeper builds) is labelled baseline and SwiftKeeper, and drawn
into `<topology>-<workload>-ab.png`.
"""

import argparse
import json
import os
import sys

TITLES = {"set": "100% writes (setData)", "get": "100% reads (getData)", "mixed": "90% reads / 10% writes"}
# Target A's and B's colour and marker.
STYLE = (("tab:orange", "s"), ("tab:blue", "o"))


def is_baseline(document):
    """True for a `sweep.py --baseline` document: target A is an earlier SwiftKeeper build."""
    return document.get("targets", {}).get("A", "zookeeper") != "zookeeper"


def names(document):
    """Long and short names of targets A and B."""
    if is_baseline(document):
        return ("SwiftKeeper (baseline)", "SwiftKeeper"), ("base", "SK")
    return ("ZooKeeper 3.8", "SwiftKeeper"), ("ZK", "SK")


def medians(point):
    """The medians of targets A and B at one point."""
    targets = point["report"]["targets"]
    return targets[0]["median"], targets[1]["median"]


def load_label(point):
    """A closed-loop point's sessions x in flight, or an open-loop point's offered rate."""
    if "rate" in point:
        return f"{point['rate']:,}/s"
    return f"{point['sessions']}x{point['outstanding']}"


def behind(median, point):
    """An open-loop server that answered under 95% of the offered rate: it fell behind."""
    return "rate" in point and median["opsPerSecond"] < 0.95 * point["rate"]


def size_label(n):
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} B"


def plot(document, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topology = document["topology"]
    points = document["points"]
    written = []
    for workload in dict.fromkeys(p["workload"] for p in points):
        sizes = list(dict.fromkeys(p["valueSize"] for p in points if p["workload"] == workload))
        fig, axes = plt.subplots(1, len(sizes), figsize=(max(9, 6 * len(sizes)), 4.5), squeeze=False)
        for ax, size in zip(axes[0], sizes):
            selected = [p for p in points if p["workload"] == workload and p["valueSize"] == size]
            for target, (label, (color, marker)) in enumerate(zip(names(document)[0], STYLE)):
                xs = [medians(p)[target]["opsPerSecond"] for p in selected]
                ys = [medians(p)[target]["p99Ms"] for p in selected]
                ax.plot(xs, ys, marker=marker, color=color, label=label)
                for p, x, y in zip(selected, xs, ys):
                    ax.annotate(load_label(p), (x, y), fontsize=7,
                                textcoords="offset points", xytext=(4, 4), color=color)
            ax.set_yscale("log")
            ax.set_xlabel("throughput (ops/s, median of rounds)")
            ax.set_ylabel("p99 latency (ms, log scale)")
            ax.set_title(f"{size_label(size)} values")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        nodes = "3-node ensemble on loopback" if topology == "ensemble" else "standalone"
        open_loop = document.get("openLoop", False)
        labels = "labels: offered requests/s (open loop)" if open_loop else "labels: sessions x in flight"
        fig.suptitle(f"{TITLES.get(workload, workload)}, {nodes}, fsync on; {labels}")
        fig.tight_layout()
        ab = "-ab" if is_baseline(document) else ""
        path = os.path.join(out_dir, f"{topology}-{workload}{'-open' if open_loop else ''}{ab}.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def fmt(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}"


def table(document):
    a, b = names(document)[1]
    lines = [f"| workload | value | load | {a} ops/s | {b} ops/s | ratio | {a} p50 | {b} p50 | {a} p99 | {b} p99 | ratio "
             f"| {a} p99.9 | {b} p99.9 |",
             "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for p in document["points"]:
        first, second = medians(p)
        ratio_ops = second["opsPerSecond"] / first["opsPerSecond"] if first["opsPerSecond"] else None
        ratio_p99 = second["p99Ms"] / first["p99Ms"] if first.get("p99Ms") and second.get("p99Ms") else None
        mark = [" (behind)" if behind(m, p) else "" for m in (first, second)]
        lines.append(
            f"| {p['workload']} | {size_label(p['valueSize'])} | {load_label(p)} "
            f"| {first['opsPerSecond']:,.0f}{mark[0]} | {second['opsPerSecond']:,.0f}{mark[1]} | {fmt(ratio_ops)}x "
            f"| {fmt(first.get('p50Ms'))} | {fmt(second.get('p50Ms'))} | {fmt(first.get('p99Ms'))} | {fmt(second.get('p99Ms'))} "
            f"| {fmt(ratio_p99)}x | {fmt(first.get('p999Ms'))} | {fmt(second.get('p999Ms'))} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--out-dir", default="Benchmarks/results")
    parser.add_argument("--table", action="store_true", help="print Markdown tables too")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    # Files of one topology (a sweep run per value size, say) are drawn together: their points
    # are merged, in the order given.
    documents = {}
    for path in args.inputs:
        with open(path) as f:
            document = json.load(f)
        key = (document["topology"], document.get("openLoop", False), is_baseline(document))
        if key in documents:
            documents[key]["points"] += document["points"]
        else:
            documents[key] = document
    for document in documents.values():
        if not args.no_plot:
            try:
                for written in plot(document, args.out_dir):
                    print(written)
            except ImportError:
                sys.exit("matplotlib is missing: pip install matplotlib (on the plotting machine only)")
        if args.table:
            print(f"\n### {document['topology']}\n")
            print(table(document))


if __name__ == "__main__":
    main()
