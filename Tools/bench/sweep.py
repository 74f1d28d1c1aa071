#!/usr/bin/env python3
"""Latency against throughput, SwiftKeeper beside Apache ZooKeeper, in one run.

    Tools/bench/sweep.py --topology standalone|ensemble --out Benchmarks/results/sweep-standalone.json
                         [--keeper-bench .build/release/keeper-bench] [--swiftkeeper .build/release/swiftkeeper]
                         [--workloads set,get,mixed] [--value-sizes 100,1024]
                         [--loads 1x1,2x8,8x16,8x64,32x64] [--rounds 3] [--duration 2] [--warmup 1]
                         [--rates 2000,5000,10000 [--rate-sessions 8] [--rate-cap 256]]
                         [--baseline OLD/swiftkeeper]

Starts both servers (standalone: one of each; ensemble: three of each on loopback), then for
every workload, value size and offered load (sessions x requests in flight per session) runs
`keeper-bench --compare ZOOKEEPER SWIFTKEEPER`, which alternates the two targets round by round
and reports medians and SwiftKeeper/ZooKeeper ratios. Every point's keeper-bench JSON goes into
one document (--out), which plot.py draws. The servers are stopped at the end, also on error
(and on SIGTERM).

--baseline OLD makes it an A/B of two builds: target A is SwiftKeeper from the binary OLD instead
of ZooKeeper (the same topology, client and alternating rounds), for the figures before and
after a change.

--rates makes it an open-loop sweep: each point offers a fixed number of requests per second
(keeper-bench --rate) to both servers, so latencies compare at the same offered load; a server
that answers less than 95% of it fell behind (plot.py's tables say so).

The machine is shared and noisy: alternating rounds keep both servers under the same noise;
re-run a point that looks off with --workloads/--value-sizes/--loads narrowed to it.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import Cluster, ServerError  # noqa: E402

WORKLOAD_NAMES = {"set": "100% writes (setData)", "get": "100% reads (getData)",
                  "mixed": "90% reads / 10% writes"}


def parse_loads(text):
    loads = []
    for item in text.split(","):
        sessions, _, outstanding = item.partition("x")
        loads.append((int(sessions), int(outstanding)))
    return loads


def run_point(args, a, sk, workload, value_size, sessions, outstanding, scratch, rate=None):
    name = f"{rate}rps" if rate else f"{sessions}x{outstanding}"
    out = os.path.join(scratch, f"{workload}-{value_size}-{name}.json")
    command = [args.keeper_bench, "--compare", a.hosts, sk.hosts,
               "--workload", workload, "--value-size", str(value_size),
               "--sessions", str(sessions), "--outstanding", str(outstanding),
               "--rounds", str(args.rounds), "--duration", str(args.duration),
               "--warmup", str(args.warmup), "--json", out]
    if rate:
        command += ["--rate", str(rate)]
    if workload == "mixed":
        command += ["--read-ratio", "0.9"]
    started = time.monotonic()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Exit status 2: error replies during a measured run. The point is kept (its JSON lists the
    # errors per run and plot.py marks it); anything else stops the sweep.
    if result.returncode not in (0, 2) or not os.path.exists(out):
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    if result.returncode == 2:
        print("    ERROR REPLIES: " + " | ".join(l for l in result.stderr.splitlines() if "error" in l.lower())[-1500:],
              flush=True)
    print(result.stdout.strip(), flush=True)
    print(f"    ({time.monotonic() - started:.0f} s)", flush=True)
    with open(out) as f:
        return json.load(f)


def uptime_load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topology", choices=["standalone", "ensemble"], required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--keeper-bench", default=".build/release/keeper-bench")
    parser.add_argument("--swiftkeeper", default=".build/release/swiftkeeper")
    parser.add_argument("--baseline", help="target A is SwiftKeeper from this binary instead of ZooKeeper (an A/B of two builds)")
    parser.add_argument("--workloads", default="set,get,mixed")
    parser.add_argument("--value-sizes", default="100,1024")
    parser.add_argument("--loads", default="1x1,2x8,8x16,8x64,32x64")
    parser.add_argument("--rates", help="open loop instead of --loads: requests per second offered, e.g. 2000,5000,10000")
    parser.add_argument("--rate-sessions", type=int, default=8, help="sessions of an open-loop point")
    parser.add_argument("--rate-cap", type=int, default=256, help="most requests in flight per session, open loop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--prime", type=float, default=20.0,
                        help="seconds of unrecorded load per server and workload first (ZooKeeper's JIT; "
                             "SwiftKeeper's first few hundred MB of log, written into fresh pages)")
    parser.add_argument("--workdir", help="parent of the servers' directories, whose data directories are emptied at start (default: a fresh temporary directory, removed after)")
    args = parser.parse_args()

    for tool in (args.keeper_bench, args.swiftkeeper) + ((args.baseline,) if args.baseline else ()):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing: swift build -c release --product {os.path.basename(tool)}")
    workdir = args.workdir or tempfile.mkdtemp(prefix="keeper-sweep-")
    size = 3 if args.topology == "ensemble" else 1
    # Target A: ZooKeeper, or the baseline build; target B: this SwiftKeeper.
    if args.baseline:
        a = Cluster("swiftkeeper", os.path.join(workdir, "baseline"), size, binary=args.baseline)
    else:
        a = Cluster("zookeeper", workdir, size)
    sk = Cluster("swiftkeeper", workdir, size, binary=args.swiftkeeper)
    document = {
        "tool": "Tools/bench/sweep.py", "topology": args.topology, "nodes": size,
        "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"kernel": platform.release(), "cpus": os.cpu_count()},
        "rounds": args.rounds, "durationSeconds": args.duration, "warmupSeconds": args.warmup,
        "targets": {"A": "swiftkeeper-baseline" if args.baseline else "zookeeper", "B": "swiftkeeper"},
        "openLoop": bool(args.rates),
        "points": [],
    }
    if args.rates:
        loads = [(args.rate_sessions, args.rate_cap, int(r)) for r in args.rates.split(",")]
    else:
        loads = [(s, o, None) for s, o in parse_loads(args.loads)]
    # A kill (SIGTERM) unwinds like an error, so the servers are stopped below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        a.start()
        sk.start()
        with tempfile.TemporaryDirectory(prefix="keeper-sweep-json-") as scratch:
            # Prime both servers with writes and reads, not recorded: ZooKeeper's JIT, and
            # SwiftKeeper's first few hundred MB of log, which go into fresh pages of memory
            # (a host fault each on a VM) until the pages dropped behind the tail come round.
            for workload in ("set", "get"):
                print(f"== priming with {workload} for {args.prime} s per server (not recorded)", flush=True)
                subprocess.run([args.keeper_bench, "--compare", a.hosts, sk.hosts, "--workload", workload,
                                "--rounds", "1", "--duration", str(args.prime), "--warmup", "0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            for workload in args.workloads.split(","):
                for value_size in (int(v) for v in args.value_sizes.split(",")):
                    for sessions, outstanding, rate in loads:
                        load = uptime_load()
                        what = f"{rate} requests/s over {sessions} sessions" if rate else f"{sessions}x{outstanding}"
                        print(f"== {args.topology} {workload} {value_size} B {what} "
                              f"(load average {load:.1f})", flush=True)
                        report = run_point(args, a, sk, workload, value_size, sessions, outstanding, scratch, rate)
                        point = {"workload": workload, "valueSize": value_size,
                                 "sessions": sessions, "outstanding": outstanding,
                                 "loadAverage": load, "report": report}
                        if rate:
                            point["rate"] = rate
                        document["points"].append(point)
                        # Written after every point, so an interrupted sweep keeps what it measured.
                        with open(args.out, "w") as f:
                            json.dump(document, f, indent=1)
    finally:
        failures = []
        for cluster in (sk, a):
            try:
                cluster.stop()
            except ServerError as e:
                failures.append(str(e))
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=False)
        if failures:
            sys.exit("; ".join(failures))


if __name__ == "__main__":
    main()
