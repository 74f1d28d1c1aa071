#!/usr/bin/env python3
"""Restart time and resident memory with 1 million znodes, SwiftKeeper and ZooKeeper alike.

    Tools/bench/million.py --kind swiftkeeper|zookeeper [--swiftkeeper .build/release/swiftkeeper]
                           [--nodes 1000000] [--value-size 100] [--restarts 3] [--cold] [--out FILE.json]

For one server kind (standalone, fsync on):
  1. start a fresh server and load NODES znodes of VALUE-SIZE bytes through the client protocol
     (/million/dNNNN/nNNNNNNN, 1,000 per parent), pipelined creates on 4 connections, each
     reply checked; the load rate is reported;
  2. read VmRSS from /proc/PID/status (after load, and again after a full read of a sample);
  3. stop it cleanly (SIGTERM, wait for exit);
  4. start it again, timing from the process start to the first successful getData of the last
     znode created (connect + session + read: what a client waits for); repeat --restarts times
     and report each time and the median, and the RSS after restart. With --cold, every file
     of the data directory is dropped from the page cache before each restart
     (posix_fadvise DONTNEED), as after a reboot: the server reads what it needs from the disk.

The loader is plain sockets and the wire format of zookeeper.jute: no client library sits in
between, so both servers see the same bytes.
"""

import argparse
import json
import os
import socket
import statistics
import struct
import sys
import tempfile
import time
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import Cluster, read_memory_kib  # noqa: E402

OP_CREATE, OP_GET_DATA = 1, 4
NODES_PER_PARENT = 1000
CONNECTIONS = 4
WINDOW = 200           # creates in flight per connection: 800 in all, under the
                       # servers' 1,000 outstanding-request limit
PROBE_INTERVAL_S = 0.005
FIRST_READ_DEADLINE_S = 300.0
OPEN_ACL = struct.pack(">i", 1) + struct.pack(">i", 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"


def ustring(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


class Connection:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
        self.sock.sendall(frame(struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"))
        reply = self.read_frame()
        _, timeout_ms, session = struct.unpack_from(">iiq", reply)
        if timeout_ms <= 0 or session == 0:
            raise ConnectionError("session refused")
        self.xid = 0

    def read_frame(self):
        while len(self.buffer) < 4:
            self._fill()
        (length,) = struct.unpack_from(">i", self.buffer)
        while len(self.buffer) < 4 + length:
            self._fill()
        payload = self.buffer[4:4 + length]
        self.buffer = self.buffer[4 + length:]
        return payload

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def next_xid(self):
        self.xid += 1
        return self.xid

    def create_frame(self, path, data):
        return frame(struct.pack(">ii", self.next_xid(), OP_CREATE) + ustring(path)
                     + struct.pack(">i", len(data)) + data + OPEN_ACL + struct.pack(">i", 0))

    def reply_error(self):
        payload = self.read_frame()
        xid, _zxid, err = struct.unpack_from(">iqi", payload)
        return xid, err, payload[16:]

    def pipeline(self, frames):
        """Send frames WINDOW at a time; every reply must be OK (-110 NodeExists is an error too)."""
        for start in range(0, len(frames), WINDOW):
            batch = frames[start:start + WINDOW]
            self.sock.sendall(b"".join(batch))
            for _ in batch:
                xid, err, _ = self.reply_error()
                if err != 0:
                    raise RuntimeError(f"create xid {xid} failed with error {err}")

    def get_data(self, path):
        xid = self.next_xid()
        self.sock.sendall(frame(struct.pack(">ii", xid, OP_GET_DATA) + ustring(path) + b"\0"))
        while True:
            rxid, err, body = self.reply_error()
            if rxid == xid:
                return err, body

    def close(self):
        self.sock.close()


def node_path(i):
    return f"/million/d{i // NODES_PER_PARENT:04d}/n{i:07d}"


def load(port, nodes, value_size):
    data = bytes((i * 7) % 251 for i in range(value_size))
    setup = Connection(port)
    parents = (nodes + NODES_PER_PARENT - 1) // NODES_PER_PARENT
    setup.pipeline([setup.create_frame("/million", b"")]
                   + [setup.create_frame(f"/million/d{d:04d}", b"") for d in range(parents)])
    setup.close()
    connections = [Connection(port) for _ in range(CONNECTIONS)]
    started = time.monotonic()
    # Each connection takes whole parents in turn, sending a window and reading it back; the
    # connections interleave window by window so the server sees CONNECTIONS x WINDOW in flight.
    import threading
    errors = []

    def work(index):
        try:
            c = connections[index]
            for d in range(index, parents, CONNECTIONS):
                first = d * NODES_PER_PARENT
                last = min(nodes, first + NODES_PER_PARENT)
                c.pipeline([c.create_frame(node_path(i), data) for i in range(first, last)])
        except Exception as e:  # reported after join
            errors.append(f"connection {index}: {e}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    for c in connections:
        c.close()
    if errors:
        raise RuntimeError("; ".join(errors))
    return elapsed


def first_read(node, path, deadline=FIRST_READ_DEADLINE_S):
    """Seconds from the process start to the first getData(path) that returns OK."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if node.process.poll() is not None:
            raise RuntimeError(f"server exited with {node.process.returncode}:\n{node.tail()}")
        try:
            c = Connection(node.client_port, timeout=5.0)
            err, _ = c.get_data(path)
            c.close()
            if err == 0:
                return time.monotonic() - node.started_at
        except (OSError, ConnectionError, struct.error):
            pass
        time.sleep(PROBE_INTERVAL_S)
    raise RuntimeError(f"no successful read of {path} within {deadline} s")


def drop_page_cache(directory):
    """Drops the cached pages of every file under `directory` (they are clean: the server has
    stopped and synced)."""
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["swiftkeeper", "zookeeper"], required=True)
    parser.add_argument("--swiftkeeper", default=".build/release/swiftkeeper")
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument("--workdir", help="data directory parent; the server's data directory is emptied at start (default: a temporary one, removed after)")
    parser.add_argument("--cold", action="store_true", help="drop the data directory from the page cache before each restart")
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="keeper-million-")
    cluster = Cluster(args.kind, workdir, 1, binary=args.swiftkeeper)
    node = cluster.nodes[0]
    result = {"kind": args.kind, "nodes": args.nodes, "valueSize": args.value_size, "cold": args.cold}
    last = node_path(args.nodes - 1)
    try:
        cluster.start()
        seconds = load(node.client_port, args.nodes, args.value_size)
        result["loadSeconds"] = round(seconds, 2)
        result["loadCreatesPerSecond"] = round(args.nodes / seconds)
        print(f"{args.kind}: loaded {args.nodes} znodes in {seconds:.1f} s ({args.nodes / seconds:,.0f}/s)", flush=True)
        memory = read_memory_kib(node.process.pid)
        result["rssAfterLoadKiB"] = memory["VmRSS"]
        result["memoryAfterLoadKiB"] = memory
        print(f"{args.kind}: after load VmRSS {memory['VmRSS'] / 1024:.0f} MiB "
              f"(RssAnon {memory.get('RssAnon', 0) / 1024:.0f}, RssFile {memory.get('RssFile', 0) / 1024:.0f})", flush=True)
        cluster.stop()
        result["dataDirBytes"] = sum(os.path.getsize(os.path.join(d, f))
                                     for d, _, files in os.walk(node.data_dir) for f in files)
        times, rss = [], []
        for i in range(args.restarts):
            if args.cold:
                drop_page_cache(node.data_dir)
            node.launch()
            t = first_read(node, last)
            times.append(round(t, 3))
            rss.append(read_memory_kib(node.process.pid)["VmRSS"])
            print(f"{args.kind}: restart {i + 1}: first read after {t:.3f} s, VmRSS {rss[-1] / 1024:.0f} MiB", flush=True)
            node.stop()
        result["restartSeconds"] = times
        result["restartMedianSeconds"] = statistics.median(times)
        result["rssAfterRestartKiB"] = rss
    finally:
        cluster.stop()
        if not args.workdir:
            shutil.rmtree(workdir)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
