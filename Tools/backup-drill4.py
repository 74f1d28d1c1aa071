#!/usr/bin/env python3
"""Disaster drill 4, measured: online full backup throughput and restore time for N znodes
(default 1,000,000), plus the time and peak memory (max RSS) of `keeperctl import`, which
loads the tree.

    Tools/backup-drill4.py [--nodes 1000000] [--data-bytes 100] [--bin .build/release]
                           [--seed 4] [--workdir DIR] [--keep]

Steps (each timed):
  1. an export file of N znodes (/drill4/dNNNN/nNNNNNN, DATA-BYTES seeded random bytes each) is
     generated;
  2. a fresh data directory is made by starting and stopping `swiftkeeper serve`;
  3. `keeperctl import` loads the file into it (its peak RSS is reported);
  4. the server starts; `keeperctl backup full --server ... --auth super:...` takes an online
     full backup (throughput: raw store bytes and znodes per second);
  5. the server stops; `keeperctl restore` rebuilds a data directory from the backup;
  6. `keeperctl verify` checks the backup (a second full restore, in a scratch directory).

Needs release binaries of swiftkeeper (with the backup service) and keeperctl in --bin
(`swift build -c release --product swiftkeeper` and `--product keeperctl`: one product per
command).
"""

import argparse
import base64
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import hashlib

SUPER = "super:drill4-secret"
START_DEADLINE_S = 120.0
STEP_DEADLINE_S = 3600.0


def digest_of(user_password):
    user = user_password.split(":", 1)[0]
    raw = hashlib.sha1(user_password.encode()).digest()
    return f"{user}:{base64.b64encode(raw).decode()}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode(errors="replace")
            out += chunk


def write_export(path, nodes, data_bytes, seed):
    """An export file (keeperctl's JSON Lines format) of `nodes` znodes, 1,000 per directory,
    each with `data_bytes` seeded random bytes (random data compresses as little as real data
    can: the stored size and throughput are not flattered)."""
    rng = random.Random(seed)
    stat0 = {"czxid": 0, "mzxid": 0, "ctime": 1_700_000_000_000, "mtime": 1_700_000_000_000, "version": 0,
             "cversion": 0, "aversion": 0, "ephemeralOwner": 0, "dataLength": data_bytes, "numChildren": 0, "pzxid": 0}
    acl = [{"perms": 31, "scheme": "world", "id": "anyone"}]
    per_dir = 1000
    dirs = (nodes + per_dir - 1) // per_dir
    count = 0
    with open(path, "w") as f:
        f.write(json.dumps({"type": "header", "format": "swiftkeeper-export", "version": 1, "root": "/drill4",
                            "zxid": "0x0", "exportedAt": "2026-01-01T00:00:00Z"}) + "\n")

        def node(p, data, children):
            nonlocal count
            f.write(json.dumps({"type": "node", "path": p, "data": data, "kind": "persistent", "acl": acl,
                                "stat": stat0, "childCreates": children}) + "\n")
            count += 1

        node("/drill4", "", dirs)
        for d in range(dirs):
            in_dir = min(per_dir, nodes - d * per_dir)
            node(f"/drill4/d{d:04d}", "", in_dir)
            for n in range(in_dir):
                payload = base64.b64encode(rng.randbytes(data_bytes)).decode()
                node(f"/drill4/d{d:04d}/n{d * per_dir + n:07d}", payload, 0)
        f.write(json.dumps({"type": "end", "nodes": count}) + "\n")
    return count


class Server:
    def __init__(self, binary, workdir, data_dir):
        self.binary = binary
        self.port = free_port()
        self.admin_port = free_port()
        self.config = os.path.join(workdir, "zoo.cfg")
        self.output = os.path.join(workdir, "server.out")
        with open(self.config, "w") as f:
            f.write(f"dataDir={data_dir}\nclientPort={self.port}\nclientPortAddress=127.0.0.1\n"
                    f"admin.serverPort={self.admin_port}\nadmin.serverAddress=127.0.0.1\n"
                    f"4lw.commands.whitelist=*\nDigestAuthenticationProvider.superDigest={digest_of(SUPER)}\n")
        self.process = None

    def start(self):
        out = open(self.output, "ab")
        self.process = subprocess.Popen([self.binary, "serve", "--config", self.config], stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"swiftkeeper exited with {self.process.returncode}; see {self.output}")
            try:
                if four_letter(self.port, "ruok") == "imok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit(f"swiftkeeper did not serve within {START_DEADLINE_S} s; see {self.output}")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=STEP_DEADLINE_S)


def run(step, command, rss=False):
    """Runs a command, returns (seconds, stdout, max RSS in MB of it when `rss`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=STEP_DEADLINE_S)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{step}: {' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of RUSAGE_CHILDREN is the largest of any child so far (KiB on Linux): only a
    # new maximum is this command's; run the measured command first to be sure.
    return seconds, result.stdout, (peak / 1024 if rss and peak > before else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--data-bytes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=4, help="seed of the znodes' random data")
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release"))
    parser.add_argument("--workdir")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    swiftkeeper = os.path.join(args.bin, "swiftkeeper")
    keeperctl = os.path.join(args.bin, "keeperctl")
    for b in (swiftkeeper, keeperctl):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: swift build -c release --product {os.path.basename(b)}")
    work = args.workdir or tempfile.mkdtemp(prefix="backup-drill4-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data")
    backups = os.path.join(work, "backups")
    restored = os.path.join(work, "restored")
    export = os.path.join(work, "tree.jsonl")
    figures = []
    try:
        t = time.monotonic()
        count = write_export(export, args.nodes, args.data_bytes, args.seed)
        figures.append(("export file generated", f"{count} znodes, {os.path.getsize(export) / 1e6:.0f} MB",
                        time.monotonic() - t))

        server = Server(swiftkeeper, work, data)
        server.start()
        server.stop()
        seconds, out, rss = run("import", [keeperctl, "import", "--data-dir", data, "--from", export], rss=True)
        figures.append(("keeperctl import", f"max RSS {rss:.0f} MB" if rss else "max RSS n/a", seconds))

        server.start()
        seconds, out, _ = run("online full backup", [keeperctl, "backup", "full", "--server",
                                                     f"http://127.0.0.1:{server.admin_port}", "--auth", SUPER,
                                                     "--to", backups])
        stored = sum(os.path.getsize(os.path.join(backups, n)) for n in os.listdir(backups))
        raw = re.search(r"\((\d+) raw\)", out)
        raw_bytes = int(raw.group(1)) if raw else 0
        figures.append(("online full backup", f"{raw_bytes / 1e6:.0f} MB raw, {stored / 1e6:.0f} MB stored, "
                        f"{raw_bytes / 1e6 / seconds:.0f} MB/s, {count / seconds:,.0f} znodes/s", seconds))
        server.stop()

        seconds, out, _ = run("restore", [keeperctl, "restore", "--from", backups, "--data-dir", restored])
        figures.append(("restore", out.splitlines()[0][:100], seconds))
        seconds, out, _ = run("verify", [keeperctl, "verify", backups])
        figures.append(("verify", "OK" if "verify: OK" in out else out[-200:], seconds))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"backup drill 4: {args.nodes} znodes of {args.data_bytes} random bytes (seed {args.seed})")
    for name, what, seconds in figures:
        print(f"  {name:24s} {seconds:8.2f} s   {what}")


if __name__ == "__main__":
    main()
