"""Start and stop SwiftKeeper and Apache ZooKeeper servers for the benchmark scripts.

Both kinds run from the same zoo.cfg text (a standalone server, or a 3-node ensemble on
loopback with `server.N=127.0.0.1:quorumPort:electionPort` lines and a `myid` file per data
directory), so a comparison differs only in the server program. Durability is the same for
both: fsync on (neither config sets forceSync=no).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

ZOOKEEPER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
ZOOKEEPER_JARS = "/usr/share/java"
ZOOKEEPER_CONF = "/etc/zookeeper/conf"
# Debian's jar directory holds several SLF4J bindings; leaving these out selects log4j.
UNWANTED_JARS = re.compile(r"^(slf4j-(nop|jcl|jdk14|simple)|maven3-slf4j-provider|log4j-over-slf4j)")
# Heap for each ZooKeeper node: room for 1M znodes without GC thrash.
ZOOKEEPER_HEAP = os.environ.get("ZK_HEAP", "2g")

START_DEADLINE_S = 120.0
STOP_DEADLINE_S = 60.0
PROBE_INTERVAL_S = 0.05
PORT_FLOOR = 12000


class ServerError(Exception):
    pass


def zookeeper_classpath():
    try:
        jars = sorted(j for j in os.listdir(ZOOKEEPER_JARS)
                      if j.endswith(".jar") and not UNWANTED_JARS.match(j))
    except FileNotFoundError:
        raise ServerError(f"{ZOOKEEPER_JARS} does not exist: install Debian's zookeeper package") from None
    return ":".join([ZOOKEEPER_CONF] + [os.path.join(ZOOKEEPER_JARS, j) for j in jars])


_used_ports = set()


def allocate_port():
    """A free loopback port below the ephemeral range, never handed out twice."""
    for port in range(PORT_FLOOR, 32000):
        if port in _used_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise ServerError("no free port between 12000 and 32000")


def four_letter(port, word, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode(errors="replace")
            out += chunk


def read_rss_kib(pid):
    """VmRSS of a process in KiB, from /proc/PID/status."""
    return read_memory_kib(pid)["VmRSS"]


def read_memory_kib(pid):
    """VmRSS and its parts (RssAnon: heap and stacks; RssFile: mapped files such as LMDB's
    data file, pages the kernel can drop and re-read; RssShmem) in KiB, from /proc/PID/status."""
    wanted = ("VmRSS", "RssAnon", "RssFile", "RssShmem")
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in wanted:
                found[key] = int(line.split()[1])
    if "VmRSS" not in found:
        raise ServerError(f"/proc/{pid}/status has no VmRSS line")
    return found


class Node:
    def __init__(self, kind, binary, workdir, sid, ensemble_size):
        self.kind = kind
        self.binary = os.path.abspath(binary) if binary else None
        self.sid = sid
        self.workdir = os.path.join(workdir, f"{kind}-{sid}")
        self.data_dir = os.path.join(self.workdir, "data")
        self.config_path = os.path.join(self.workdir, "zoo.cfg")
        self.output_path = os.path.join(self.workdir, "server.out")
        self.client_port = allocate_port()
        self.quorum_port = allocate_port() if ensemble_size > 1 else None
        self.election_port = allocate_port() if ensemble_size > 1 else None
        self.process = None
        self.started_at = None

    def command(self):
        if self.kind == "zookeeper":
            return ["java", f"-Xmx{ZOOKEEPER_HEAP}",
                    "-Dzookeeper.root.logger=WARN,CONSOLE",
                    "-Dzookeeper.console.threshold=WARN",
                    f"-Dzookeeper.log.dir={self.workdir}",
                    "-cp", zookeeper_classpath(), ZOOKEEPER_MAIN, self.config_path]
        return [self.binary, "serve", "--config", self.config_path]

    def launch(self):
        os.makedirs(self.data_dir, exist_ok=True)
        out = open(self.output_path, "ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.workdir)
        out.close()

    def serving(self):
        """True once srvr reports a mode (standalone, leader or follower)."""
        try:
            return "Mode:" in four_letter(self.client_port, "srvr", timeout=1.0)
        except OSError:
            return False

    def stop(self):
        """SIGTERM, and wait: both servers stop cleanly on it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise ServerError(f"{self.kind} node {self.sid} did not stop within {STOP_DEADLINE_S} s")

    def tail(self, lines=30):
        try:
            with open(self.output_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except FileNotFoundError:
            return ""


class Cluster:
    """One server kind: a standalone server (size 1) or an ensemble of `size` on loopback."""

    def __init__(self, kind, workdir, size=1, binary=None, extra_config=()):
        if kind not in ("swiftkeeper", "zookeeper"):
            raise ServerError(f"unknown server kind {kind!r}")
        if kind == "swiftkeeper" and not (binary and os.access(binary, os.X_OK)):
            raise ServerError(f"swiftkeeper binary {binary!r} is missing: "
                              "swift build -c release --product swiftkeeper")
        self.kind = kind
        self.size = size
        self.extra_config = list(extra_config)
        self.nodes = [Node(kind, binary, workdir, sid, size) for sid in range(1, size + 1)]

    @property
    def hosts(self):
        return ",".join(f"127.0.0.1:{n.client_port}" for n in self.nodes)

    def write_files(self):
        for node in self.nodes:
            # Every start is a fresh server: a data directory left by an earlier run (another
            # topology's, with a later epoch) would keep a node from joining its new ensemble.
            shutil.rmtree(node.data_dir, ignore_errors=True)
            os.makedirs(node.data_dir)
            lines = [
                "tickTime=2000", "initLimit=10", "syncLimit=5",
                f"dataDir={node.data_dir}",
                f"clientPort={node.client_port}",
                "clientPortAddress=127.0.0.1",
                "4lw.commands.whitelist=*",
                "admin.enableServer=false",
                "maxClientCnxns=0",
            ] + self.extra_config
            if self.size > 1:
                with open(os.path.join(node.data_dir, "myid"), "w") as f:
                    f.write(f"{node.sid}\n")
                for other in self.nodes:
                    lines.append(f"server.{other.sid}=127.0.0.1:{other.quorum_port}:{other.election_port}")
            with open(node.config_path, "w") as f:
                f.write("".join(line + "\n" for line in lines))

    def start(self, deadline=START_DEADLINE_S):
        """Starts every node on an empty data directory (`Node.launch` restarts one on its data)."""
        self.write_files()
        for node in self.nodes:
            node.launch()
        self.wait_serving(deadline)

    def wait_serving(self, deadline=START_DEADLINE_S):
        end = time.monotonic() + deadline
        pending = list(self.nodes)
        while pending:
            for node in list(pending):
                if node.process.poll() is not None:
                    raise ServerError(f"{self.kind} node {node.sid} exited with {node.process.returncode}:\n{node.tail()}")
                if node.serving():
                    pending.remove(node)
            if not pending:
                return
            if time.monotonic() > end:
                raise ServerError(f"{self.kind} nodes {[n.sid for n in pending]} not serving after {deadline} s:\n"
                                  + pending[0].tail())
            time.sleep(PROBE_INTERVAL_S)

    def stop(self):
        errors = []
        for node in self.nodes:
            try:
                node.stop()
            except ServerError as e:
                errors.append(str(e))
        if errors:
            raise ServerError("; ".join(errors))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
