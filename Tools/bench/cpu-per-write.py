#!/usr/bin/env python3
"""Server CPU and syscalls per write, for one or two swiftkeeper binaries (or ZooKeeper).

    Tools/bench/cpu-per-write.py --keeper-bench .build/release/keeper-bench \
        [--server before=/path/to/old/swiftkeeper] [--server after=.build/release/swiftkeeper] \
        [--zookeeper] [--requests 20000] [--sessions 4] [--outstanding 16] [--rounds 5] \
        [--value-size 100]

Each server runs standalone (fsync on). A round sends exactly sessions x requests setData
(100 B unless --value-size) to each server in turn (keeper-bench --max-requests) and reads,
around it, the server's CPU time (utime + stime of all threads, /proc/PID/stat) and its read and write
syscalls (syscr/syscw, /proc/PID/io, all threads). keeper-bench's own preparation (1,000 keys
created, deleted after) is measured alone first and subtracted. Rounds alternate between the
servers so both see the same machine noise; the medians per write are printed, with the CPU
that keeper-bench itself spent per write (the load generator shares the machine's vCPUs with
the server, so a server's throughput at saturation depends on both).

Why not instructions from callgrind: valgrind 3.19 (Debian bookworm) dies with an internal
SIGSEGV inside the Swift runtime's libdispatch, and this virtual machine exposes no hardware
counters to perf. CPU time has 10 ms ticks, so rounds use enough requests (>= 1 s of CPU).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import Cluster  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def counters(pid):
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command (which may hold spaces) start after the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    io = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            key, value = line.split(":")
            io[key] = int(value)
    return {"cpu": (utime + stime) / CLOCK_TICKS, "syscr": io["syscr"], "syscw": io["syscw"]}


def delta(before, after):
    return {k: after[k] - before[k] for k in before}


def bench(args, port, requests):
    command = [args.keeper_bench, "--hosts", f"127.0.0.1:{port}", "--workload", "set",
               "--value-size", str(args.value_size),
               "--sessions", str(args.sessions), "--outstanding", str(args.outstanding),
               "--max-requests", str(requests), "--duration", "600", "--warmup", "0"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def measure(args, cluster, requests):
    node = cluster.nodes[0]
    before = counters(node.process.pid)
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    bench(args, node.client_port, requests)
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = delta(before, counters(node.process.pid))
    result["client"] = (client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keeper-bench", default=".build/release/keeper-bench")
    parser.add_argument("--server", action="append", default=[], help="LABEL=PATH of a swiftkeeper binary")
    parser.add_argument("--zookeeper", action="store_true", help="measure ZooKeeper 3.8 too")
    parser.add_argument("--requests", type=int, default=20000, help="per session per round")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--outstanding", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--value-size", type=int, default=100, help="bytes per setData")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="keeper-cpu-")
    clusters = []
    for spec in args.server:
        label, _, path = spec.partition("=")
        clusters.append((label, Cluster("swiftkeeper", os.path.join(workdir, label), 1, binary=path)))
    if args.zookeeper:
        clusters.append(("zookeeper", Cluster("zookeeper", os.path.join(workdir, "zk"), 1)))
    if not clusters:
        sys.exit("nothing to measure: give --server LABEL=PATH and/or --zookeeper")
    writes = args.requests * args.sessions
    samples = {label: [] for label, _ in clusters}
    try:
        for _, cluster in clusters:
            cluster.start()
        for label, cluster in clusters:
            # Warm up (ZooKeeper's JIT, the log's preallocation), not recorded.
            bench(args, cluster.nodes[0].client_port, args.requests)
        for r in range(args.rounds):
            for label, cluster in clusters:
                fixed = measure(args, cluster, 1)              # preparation and cleanup alone
                total = measure(args, cluster, args.requests)
                per = {k: (total[k] - fixed[k]) / (writes - args.sessions) for k in total}
                samples[label].append(per)
                print(f"round {r + 1} {label}: {per['cpu'] * 1e6:.1f} us CPU, "
                      f"{per['syscr']:.2f} read + {per['syscw']:.2f} write syscalls per setData, "
                      f"keeper-bench {per['client'] * 1e6:.1f} us", flush=True)
    finally:
        for _, cluster in clusters:
            cluster.stop()
        shutil.rmtree(workdir)
    print(f"\nmedians of {args.rounds} rounds, {writes} setData of {args.value_size} B per round, "
          f"{args.sessions} sessions x {args.outstanding} in flight:")
    print(f"{'server':<12} {'CPU us/write':>13} {'read sys/write':>15} {'write sys/write':>16} {'keeper-bench us':>16}")
    for label, values in samples.items():
        cpu = statistics.median(v["cpu"] for v in values) * 1e6
        r = statistics.median(v["syscr"] for v in values)
        w = statistics.median(v["syscw"] for v in values)
        client = statistics.median(v["client"] for v in values) * 1e6
        print(f"{label:<12} {cpu:>13.1f} {r:>15.2f} {w:>16.2f} {client:>16.1f}")


if __name__ == "__main__":
    main()
