"""Start, stop, crash, pause, wipe and partition a real ensemble on loopback.

The same harness drives either server from the same per-node zoo.cfg files:

- ``SK_SERVER=swiftkeeper`` (the default): ``swiftkeeper serve --config <zoo.cfg>`` (the binary
  is ``SK_BINARY``, default ``<package>/.build/debug/swiftkeeper``).
- ``SK_SERVER=zookeeper``: Apache ZooKeeper 3.8's QuorumPeerMain (Debian's package layout).

Peer links go through ``linkproxy.LinkProxy``: in node i's zoo.cfg, the line of every other
server j names the proxy ports of the directed link i->j (one for j's quorum port, one for its
election port), while node i's own line names its real ports, which it binds. ZooKeeper
connects to the addresses of its own configuration (learners to the leader's quorum address,
the election to the peers' election addresses; with dynamic reconfiguration disabled, the
default, a leader's view is never pushed to its followers), so the differing per-node
addresses are accepted and every connection i opens to j passes through link i->j. The one
address a peer learns from the wire, the election InitialMessage's (used to connect back), is
rewritten by the proxy to the reverse link (see linkproxy). Cutting i->j and j->i then cuts i
from j in both directions.

Every wait has a deadline and polls a condition (``srvr`` over the four-letter-word port);
nothing sleeps a fixed time hoping for the best.
"""

import atexit
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Interop"))

from serverctl import (  # noqa: E402  (Tests/Interop, shared helpers)
    ZOOKEEPER_CLASSPATH, ZOOKEEPER_MAIN, free_port, four_letter, wait_until)

from linkproxy import LinkProxy, LinkState  # noqa: E402

PACKAGE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Timing of the ensemble, named in one place. A short tick makes failure detection quick:
# a follower that hears nothing from its leader for syncLimit ticks gives up on it, and a
# leader without a synced quorum for syncLimit ticks steps down.
TICK_TIME_MS = 200
INIT_LIMIT_TICKS = 15   # 3 s to connect and sync to a leader (a cold JVM is slow)
SYNC_LIMIT_TICKS = 5    # 1 s without a leader's ping (or without a quorum) ends a term
MIN_SESSION_TIMEOUT_MS = 400
MAX_SESSION_TIMEOUT_MS = 30000
MAX_CLIENT_CNXNS = 200

# Deadlines of the harness.
START_DEADLINE_S = 90.0       # up to five cold JVMs starting at once on two busy cores
ELECTION_DEADLINE_S = 60.0    # a leader elected and serving after a fault
STOP_DEADLINE_S = 20.0
PROBE_TIMEOUT_S = 2.0         # one 4lw round trip; a paused node never answers

MODES = ("leader", "follower", "observer", "standalone")


class EnsembleError(Exception):
    """The ensemble could not be started, reached or stopped; the message says which node."""


_live_processes = set()


@atexit.register
def _kill_leftovers():
    # A harness that crashes must not leave servers behind (a stopped one included).
    for process in list(_live_processes):
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def server_kind():
    kind = os.environ.get("SK_SERVER", "swiftkeeper")
    if kind not in ("swiftkeeper", "zookeeper"):
        raise EnsembleError(f"SK_SERVER={kind!r}: expected 'swiftkeeper' or 'zookeeper'")
    return kind


# Debian's /usr/share/java holds several SLF4J bindings; with all of them on the classpath SLF4J
# picks the no-op one and ZooKeeper logs nothing. Leaving these out selects log4j, whose console
# output goes to each node's server.out, where a failing test's report shows its tail.
_UNWANTED_JARS = re.compile(r"^(slf4j-(nop|jcl|jdk14|simple)|maven3-slf4j-provider|log4j-over-slf4j)")


def zookeeper_classpath():
    directory, _, conf = ZOOKEEPER_CLASSPATH.partition("/*:")
    try:
        jars = sorted(j for j in os.listdir(directory)
                      if j.endswith(".jar") and not _UNWANTED_JARS.match(j))
    except FileNotFoundError:
        raise EnsembleError(f"{directory} does not exist: install Debian's zookeeper package "
                            "(Tools/bootstrap.sh --interop)") from None
    return ":".join([conf] + [os.path.join(directory, j) for j in jars])


# Servers' ports come from below the kernel's ephemeral range: a port picked with bind(0) is
# free only until some outgoing connection (a proxy, a client) is given it as its local port,
# and a node restarted after a while would then fail to bind (ZooKeeper exits with code 14).
PORT_FLOOR = 10000
PORT_ATTEMPTS = 200
_allocated_ports = set()


def _ephemeral_floor():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; other systems differ, checked by bind below anyway


def allocate_port():
    """A loopback port outside the ephemeral range that nothing has bound, never handed out
    twice by this process."""
    ceiling = _ephemeral_floor()
    if ceiling - PORT_FLOOR < 1000:
        return free_port()  # no room below the ephemeral range: fall back
    rng = random.SystemRandom()
    for _ in range(PORT_ATTEMPTS):
        port = rng.randrange(PORT_FLOOR, ceiling)
        if port in _allocated_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _allocated_ports.add(port)
        return port
    raise EnsembleError(f"no free port in [{PORT_FLOOR}, {ceiling}) after {PORT_ATTEMPTS} tries")


class Node:
    """One server of the ensemble: its ports, its directories and its process."""

    def __init__(self, ensemble, sid, observer):
        self.ensemble = ensemble
        self.sid = sid
        self.observer = observer
        self.client_port = allocate_port()
        self.quorum_port = allocate_port()
        self.election_port = allocate_port()
        self.workdir = os.path.join(ensemble.workdir, f"node{sid}")
        self.data_dir = os.path.join(self.workdir, "data")
        self.config_path = os.path.join(self.workdir, "zoo.cfg")
        self.output_path = os.path.join(self.workdir, "server.out")
        self.process = None
        self.paused = False
        self.starts = 0

    def __repr__(self):
        role = "observer" if self.observer else "voter"
        return f"node{self.sid}({role} :{self.client_port})"

    @property
    def hosts(self):
        return f"127.0.0.1:{self.client_port}"

    # -- configuration ---------------------------------------------------------------------

    def config_text(self):
        e = self.ensemble
        lines = [
            f"tickTime={TICK_TIME_MS}",
            f"initLimit={INIT_LIMIT_TICKS}",
            f"syncLimit={SYNC_LIMIT_TICKS}",
            f"dataDir={self.data_dir}",
            f"clientPort={self.client_port}",
            "clientPortAddress=127.0.0.1",
            "4lw.commands.whitelist=*",
            f"maxClientCnxns={MAX_CLIENT_CNXNS}",
            f"minSessionTimeout={MIN_SESSION_TIMEOUT_MS}",
            f"maxSessionTimeout={MAX_SESSION_TIMEOUT_MS}",
        ]
        extra = e.node_config(self) if e.node_config else []
        if not any(line.startswith("admin.enableServer=") for line in extra):
            lines.append("admin.enableServer=false")
        lines += extra
        if self.observer:
            lines.append("peerType=observer")
        for other in e.nodes:
            quorum, election = e.peer_ports(self, other)
            suffix = ":observer" if other.observer else ""
            lines.append(f"server.{other.sid}=127.0.0.1:{quorum}:{election}{suffix}")
        return "".join(line + "\n" for line in lines)

    def write_files(self):
        os.makedirs(self.data_dir, exist_ok=True)
        myid = os.path.join(self.data_dir, "myid")
        if not os.path.exists(myid):
            with open(myid, "w") as f:
                f.write(f"{self.sid}\n")
        with open(self.config_path, "w") as f:
            f.write(self.config_text())

    def command(self):
        if self.ensemble.kind == "zookeeper":
            return [
                "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.root.logger=INFO,CONSOLE",
                "-Dzookeeper.console.threshold=INFO",
                f"-Dzookeeper.log.dir={self.workdir}",
                # Election connections are to loopback proxies: never wait long on one, and
                # do not back off re-sending votes for up to a minute after a partition.
                "-Dzookeeper.cnxTimeout=2000",
                "-Dzookeeper.fastleader.maxNotificationInterval=1000",
                "-cp", zookeeper_classpath(), ZOOKEEPER_MAIN, self.config_path,
            ]
        binary = self.ensemble.binary
        if not os.access(binary, os.X_OK):
            raise EnsembleError(
                f"the swiftkeeper binary {binary} is missing or not executable: build it with "
                "`swift build --product swiftkeeper` (Tests/Ensemble/run.sh does), set SK_BINARY, "
                "or run against ZooKeeper with SK_SERVER=zookeeper")
        return [binary, "serve", "--config", self.config_path]

    # -- lifecycle -------------------------------------------------------------------------

    def launch(self):
        """Start the process without waiting for it to serve."""
        if self.is_running():
            raise EnsembleError(f"{self} is already running (pid {self.process.pid})")
        self.write_files()
        command = self.command()
        with open(self.output_path, "ab") as out:
            out.write(f"\n===== start #{self.starts + 1}: {' '.join(command)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.workdir, start_new_session=True)
        _live_processes.add(self.process)
        self.paused = False
        self.starts += 1

    def kill(self):
        """SIGKILL: the process dies at once, with whatever it had not yet made durable."""
        if not self.is_running():
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self):
        """SIGTERM and wait; SIGKILL if it ignores SIGTERM for STOP_DEADLINE_S."""
        if not self.is_running():
            return
        if self.paused:
            self.resume()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def _reap(self):
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            raise EnsembleError(f"{self} (pid {self.process.pid}) survived SIGKILL for "
                                f"{STOP_DEADLINE_S}s") from None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # children left in its group, if any
        except ProcessLookupError:
            pass
        _live_processes.discard(self.process)
        self.paused = False

    def pause(self):
        """SIGSTOP: the process keeps its sockets but does nothing (a long GC pause, a VM freeze)."""
        if not self.is_running():
            raise EnsembleError(f"cannot pause {self}: it is not running")
        os.killpg(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.is_running():
            os.killpg(self.process.pid, signal.SIGCONT)
        self.paused = False

    def wipe(self):
        """Delete the data directory (keeping only myid): a replaced disk. Only while stopped."""
        if self.is_running():
            raise EnsembleError(f"cannot wipe {self} while it runs")
        shutil.rmtree(self.data_dir)
        self.write_files()

    def is_running(self):
        return self.process is not None and self.process.poll() is None

    # -- probes ----------------------------------------------------------------------------

    def four_letter(self, command, timeout=PROBE_TIMEOUT_S):
        return four_letter(self.client_port, command, timeout=timeout)

    def status(self):
        """(mode, zxid) from srvr, or (None, None) if the node does not serve right now."""
        if not self.is_running() or self.paused:
            return None, None
        try:
            text = self.four_letter("srvr")
        except OSError:
            return None, None
        mode = re.search(r"^Mode: (\w+)", text, re.M)
        zxid = re.search(r"^Zxid: (0x[0-9a-fA-F]+)", text, re.M)
        if not mode or mode.group(1) not in MODES:
            return None, None
        return mode.group(1), int(zxid.group(1), 16) if zxid else None

    def mode(self):
        return self.status()[0]

    def check_alive(self):
        if self.process is not None and self.process.poll() is not None and \
                self.process in _live_processes:
            _live_processes.discard(self.process)
            raise EnsembleError(f"{self} exited with status {self.process.returncode}; its "
                                f"output:\n{self.output_tail()}")

    def output_tail(self, lines=40):
        try:
            with open(self.output_path, "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])


class Ensemble:
    """``voters`` participants and ``observers`` observers, sids 1..N, on loopback."""

    def __init__(self, voters=3, observers=0, kind=None, binary=None, proxied=True,
                 workdir=None, node_config=None):
        """``node_config(node)``, when given, returns extra zoo.cfg lines for that node (the
        admin server, say, which is off otherwise)."""
        if voters < 1 or observers < 0:
            raise ValueError(f"voters={voters}, observers={observers}")
        self.kind = kind or server_kind()
        self.binary = binary or os.environ.get(
            "SK_BINARY", os.path.join(PACKAGE_ROOT, ".build", "debug", "swiftkeeper"))
        self.proxied = proxied
        self.node_config = node_config
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"ensemble-{self.kind}-")
        self.nodes = []
        for sid in range(1, voters + observers + 1):
            self.nodes.append(Node(self, sid, observer=sid > voters))
        self.proxy = None
        self.links = {}  # (from sid, to sid) -> (quorum link, election link)
        if proxied:
            self.proxy = LinkProxy()
            self.proxy.start()
            for a in self.nodes:
                for b in self.nodes:
                    if a is not b:
                        self.links[(a.sid, b.sid)] = (
                            self.proxy.add_link(f"{a.sid}->{b.sid}/quorum", b.quorum_port),
                            self.proxy.add_link(f"{a.sid}->{b.sid}/election", b.election_port))
            # What a sends first on an election connection to b advertises a's address; b may
            # connect back to it, so it must name the proxy of the link b->a (see linkproxy).
            # Set before any server starts, so before the proxy thread reads it.
            for (a, b), (_, election) in self.links.items():
                election.advertise = f"127.0.0.1:{self.links[(b, a)][1].port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- addressing ------------------------------------------------------------------------

    def peer_ports(self, viewer, node):
        """The (quorum, election) ports ``viewer``'s zoo.cfg gives for ``node``."""
        if viewer is node or not self.proxied:
            return node.quorum_port, node.election_port
        quorum, election = self.links[(viewer.sid, node.sid)]
        return quorum.port, election.port

    def node(self, sid):
        return self.nodes[sid - 1]

    @property
    def voters(self):
        return [n for n in self.nodes if not n.observer]

    @property
    def observers(self):
        return [n for n in self.nodes if n.observer]

    def hosts(self, nodes=None):
        return ",".join(n.hosts for n in (nodes or self.nodes))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout=START_DEADLINE_S):
        for node in self.nodes:
            node.launch()
        return self.wait_healthy(timeout)

    def close(self):
        errors = []
        for node in self.nodes:
            try:
                node.kill()
            except EnsembleError as e:
                errors.append(str(e))
        if self.proxy is not None:
            self.proxy.close()
        if self._own_workdir and not os.environ.get("SK_KEEP_DATA"):
            shutil.rmtree(self.workdir, ignore_errors=False)
        if errors:
            raise EnsembleError("; ".join(errors))

    def restart(self, node, wipe=False, timeout=ELECTION_DEADLINE_S):
        """Kill ``node`` if it runs, optionally wipe its data, start it and wait until it serves
        (it has found the leader and synced with it, or it leads)."""
        node.kill()
        if wipe:
            node.wipe()
        node.launch()
        self.wait_serving([node], timeout)

    # -- waits -----------------------------------------------------------------------------

    def statuses(self, nodes=None):
        return {n.sid: n.status() for n in (nodes or self.nodes)}

    def _check_processes(self):
        for node in self.nodes:
            node.check_alive()

    def wait_serving(self, nodes, timeout=ELECTION_DEADLINE_S):
        def serving():
            self._check_processes()
            return all(n.mode() is not None for n in nodes)

        self._wait(serving, timeout, f"{nodes} to serve")

    def wait_not_serving(self, nodes, timeout=ELECTION_DEADLINE_S):
        """Wait until none of ``nodes`` serves (srvr has no Mode): a leader cut off from its
        quorum must step down, and its followers stop serving with it."""

        def none_serving():
            self._check_processes()
            return all(n.mode() is None for n in nodes)

        self._wait(none_serving, timeout, f"{nodes} to stop serving")

    def wait_leader(self, among=None, timeout=ELECTION_DEADLINE_S, exclude=()):
        """The one node of ``among`` (default: all) that says ``Mode: leader``, once exactly
        one does and it serves."""
        group = [n for n in (among or self.nodes) if n not in exclude]

        def one_leader():
            self._check_processes()
            leaders = [n for n in group if n.mode() == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        return self._wait(one_leader, timeout, f"one leader among {group}")

    def wait_healthy(self, timeout=ELECTION_DEADLINE_S):
        """Every node runs and serves, one leader, every voter a follower or the leader and
        every observer an observer. Returns the leader."""

        def healthy():
            self._check_processes()
            modes = {n: n.mode() for n in self.nodes}
            leaders = [n for n, m in modes.items() if m == "leader"]
            if len(leaders) != 1:
                return None
            for n, m in modes.items():
                expected = ("observer",) if n.observer else ("leader", "follower")
                if m not in expected:
                    return None
            return leaders[0]

        return self._wait(healthy, timeout, "a healthy ensemble (one leader, all serving)")

    def _wait(self, condition, timeout, what):
        try:
            return wait_until(condition, timeout, what, interval=0.05)
        except AssertionError as e:
            raise EnsembleError(f"{e}; node modes {self.describe()}\n{self.tails()}") from None

    def describe(self):
        return {str(n): (("paused " if n.paused else "") + str(n.mode()) if n.is_running()
                         else "down") for n in self.nodes}

    def tails(self, lines=15):
        return "\n".join(f"--- {n} output:\n{n.output_tail(lines)}" for n in self.nodes)

    # -- network faults --------------------------------------------------------------------

    def _require_proxy(self):
        if self.proxy is None:
            raise EnsembleError("this ensemble was started without link proxies (proxied=False)")

    def partition(self, group_a, group_b, mode=LinkState.BLACKHOLE):
        """Cut every link between ``group_a`` and ``group_b`` (both directions, quorum and
        election). Links inside each group, and client connections, keep working."""
        self._require_proxy()
        links = []
        for a in group_a:
            for b in group_b:
                if a is b:
                    raise ValueError(f"{a} is on both sides of the partition")
                links += self.links[(a.sid, b.sid)] + self.links[(b.sid, a.sid)]
        self.proxy.set_state(links, mode)

    def isolate(self, node, mode=LinkState.BLACKHOLE):
        self.partition([node], [n for n in self.nodes if n is not node], mode)

    def heal(self):
        """Every peer link up again; held connections resume with their bytes in order."""
        self._require_proxy()
        self.proxy.set_state([l for pair in self.links.values() for l in pair], LinkState.UP)

