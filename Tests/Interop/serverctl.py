"""Start, stop, kill and restart the server under test.

The interop suite runs the same tests against either server:

- ``SK_SERVER=swiftkeeper`` (the default): the ``swiftkeeper`` binary (``SK_BINARY``, default
  ``<package>/.build/release/swiftkeeper``), run as ``swiftkeeper serve --config <zoo.cfg>``.
- ``SK_SERVER=zookeeper``: Apache ZooKeeper 3.8 as Debian packages it (jars in /usr/share/java,
  configuration in /etc/zookeeper/conf), run as QuorumPeerMain with the same zoo.cfg.

Both get one generated zoo.cfg (see ``ServerConfig.render``). Readiness is polled with a deadline
(``ruok`` answers ``imok`` and ``srvr`` says the server is serving); nothing sleeps a fixed time.
"""

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

PACKAGE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Debian's layout of the zookeeper package; CI installs the same package (.ci/run).
ZOOKEEPER_CLASSPATH = "/usr/share/java/*:/etc/zookeeper/conf"
ZOOKEEPER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"

# Limits of the harness, named in one place.
START_DEADLINE_S = 60.0  # a cold JVM on a busy 2-core machine can take a while
STOP_DEADLINE_S = 20.0
FOUR_LETTER_TIMEOUT_S = 5.0

# The tick is short so session expiry tests finish fast: the minimum session timeout is
# 2 * tickTime unless minSessionTimeout says otherwise.
TICK_TIME_MS = 200
MIN_SESSION_TIMEOUT_MS = 400
MAX_SESSION_TIMEOUT_MS = 20000
MAX_CLIENT_CNXNS = 200
# How often containers and TTL nodes are checked for deletion (ZooKeeper: the Java system
# property znode.container.checkIntervalMs; default one minute, far too slow for a test).
CONTAINER_CHECK_INTERVAL_MS = 100

# The super user, configured with DigestAuthenticationProvider.superDigest.
SUPER_USER = "super"
SUPER_PASSWORD = "super-secret"


def digest_of(user, password):
    """ZooKeeper's digest ACL id for user:password: ``user:base64(sha1("user:password"))``."""
    raw = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(raw).decode()}"


class ServerError(Exception):
    """The server under test could not be started, reached or stopped; the message says why."""


def wait_until(condition, timeout, what="condition", interval=0.01):
    """Poll ``condition()`` until it returns a truthy value and return that value.

    Raises AssertionError naming ``what`` when ``timeout`` seconds pass first. This is the suite's
    only way to wait: no test sleeps a fixed time hoping a condition holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, command, host="127.0.0.1", timeout=FOUR_LETTER_TIMEOUT_S):
    """Send a four-letter word and return everything the server writes before it closes."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(command.encode("ascii"))
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", errors="replace")


class ServerConfig:
    """The keys of the generated zoo.cfg; both servers read the same file."""

    def __init__(self, data_dir, client_port, admin_port, extra=None):
        self.data_dir = data_dir
        self.log_dir = os.path.join(data_dir, "log")
        self.client_port = client_port
        self.admin_port = admin_port
        self.extra = dict(extra or {})

    def entries(self):
        entries = {
            "tickTime": TICK_TIME_MS,
            "initLimit": 10,
            "syncLimit": 5,
            "dataDir": os.path.join(self.data_dir, "data"),
            "dataLogDir": self.log_dir,
            "clientPort": self.client_port,
            "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "true",
            "admin.serverAddress": "127.0.0.1",
            "admin.serverPort": self.admin_port,
            "extendedTypesEnabled": "true",
            "maxClientCnxns": MAX_CLIENT_CNXNS,
            "minSessionTimeout": MIN_SESSION_TIMEOUT_MS,
            "maxSessionTimeout": MAX_SESSION_TIMEOUT_MS,
            # ZooKeeper turns an unknown key k into the system property zookeeper.k, which is
            # where DigestAuthenticationProvider reads the super digest from.
            "DigestAuthenticationProvider.superDigest": digest_of(SUPER_USER, SUPER_PASSWORD),
            # Not a zoo.cfg key for ZooKeeper (a plain system property there, passed with -D);
            # SwiftKeeper reads it from the file.
            "znode.container.checkIntervalMs": CONTAINER_CHECK_INTERVAL_MS,
        }
        entries.update(self.extra)
        return entries

    def render(self):
        return "".join(f"{k}={v}\n" for k, v in self.entries().items())


class Server:
    """One server process under test, restartable on the same data directory."""

    def __init__(self, kind=None, binary=None, extra_config=None, workdir=None):
        self.kind = kind or os.environ.get("SK_SERVER", "swiftkeeper")
        if self.kind not in ("swiftkeeper", "zookeeper"):
            raise ServerError(f"SK_SERVER={self.kind!r}: expected 'swiftkeeper' or 'zookeeper'")
        self.binary = binary or os.environ.get(
            "SK_BINARY", os.path.join(PACKAGE_ROOT, ".build", "release", "swiftkeeper"))
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"interop-{self.kind}-")
        self.config = ServerConfig(self.workdir, free_port(), free_port(), extra_config)
        self.config_path = os.path.join(self.workdir, "zoo.cfg")
        self.output_path = os.path.join(self.workdir, "server.out")
        self.process = None
        self.starts = 0

    # -- addresses -------------------------------------------------------------------------

    @property
    def host(self):
        return "127.0.0.1"

    @property
    def port(self):
        return self.config.client_port

    @property
    def hosts(self):
        """The connection string clients take."""
        return f"{self.host}:{self.port}"

    @property
    def admin_url(self):
        return f"http://{self.host}:{self.config.admin_port}"

    @property
    def data_dir(self):
        return self.config.entries()["dataDir"]

    # -- lifecycle -------------------------------------------------------------------------

    def command(self):
        if self.kind == "zookeeper":
            return [
                "java",
                "-Xmx512m",
                f"-Dznode.container.checkIntervalMs={CONTAINER_CHECK_INTERVAL_MS}",
                "-Dzookeeper.root.logger=INFO,CONSOLE",
                "-Dzookeeper.console.threshold=INFO",
                f"-Dzookeeper.log.dir={self.workdir}",
                "-cp", ZOOKEEPER_CLASSPATH,
                ZOOKEEPER_MAIN,
                self.config_path,
            ]
        if not os.access(self.binary, os.X_OK):
            raise ServerError(
                f"the swiftkeeper binary {self.binary} is missing or not executable: build it with "
                "`swift build -c release --product swiftkeeper` (Tests/Interop/run.sh does), set "
                "SK_BINARY, or run against ZooKeeper with SK_SERVER=zookeeper")
        return [self.binary, "serve", "--config", self.config_path]

    def start(self):
        """Start the server and wait until it serves clients."""
        if self.process is not None and self.process.poll() is None:
            raise ServerError(f"{self.kind} is already running (pid {self.process.pid})")
        os.makedirs(self.config.log_dir, exist_ok=True)
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(self.config.render())
        out = open(self.output_path, "ab")
        out.write(f"\n===== start #{self.starts + 1}: {' '.join(self.command())}\n".encode())
        out.flush()
        try:
            self.process = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.workdir, start_new_session=True)
        finally:
            out.close()
        self.starts += 1
        self.wait_serving()

    def wait_serving(self, timeout=START_DEADLINE_S):
        def serving():
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.kind} exited with status {self.process.returncode} while starting; "
                    f"its output:\n{self.output_tail()}")
            try:
                if four_letter(self.port, "ruok").strip() != "imok":
                    return False
                # ruok answers before the server is ready; srvr says whether it serves.
                return "not currently serving" not in four_letter(self.port, "srvr")
            except OSError:
                return False

        try:
            wait_until(serving, timeout, f"{self.kind} to serve on {self.hosts}", interval=0.05)
        except AssertionError as e:
            raise ServerError(f"{e}; its output:\n{self.output_tail()}") from None

    def output_tail(self, lines=40):
        try:
            with open(self.output_path, "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, sig):
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, sig)

    def stop(self):
        """Stop gracefully (SIGTERM) and wait for the process to exit."""
        self._signal(signal.SIGTERM)
        self._reap()

    def kill(self):
        """Crash the server (SIGKILL): what was acknowledged must survive, nothing else may."""
        self._signal(signal.SIGKILL)
        self._reap()

    def _reap(self):
        if self.process is None:
            return
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_DEADLINE_S)
            raise ServerError(f"{self.kind} ignored SIGTERM for {STOP_DEADLINE_S}s; killed it")
        # The JVM (or the server) may have left children in its process group.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait_port_closed()

    def wait_port_closed(self):
        def closed():
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return False
            except OSError:
                return True

        wait_until(closed, STOP_DEADLINE_S, f"port {self.port} to close")

    def restart(self, kill=False):
        """Stop (or kill) and start again on the same data directory and ports."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def is_running(self):
        return self.process is not None and self.process.poll() is None

    def cleanup(self):
        self.stop()
        if self._own_workdir and not os.environ.get("SK_KEEP_DATA"):
            shutil.rmtree(self.workdir)

    # -- probes ----------------------------------------------------------------------------

    def four_letter(self, command):
        return four_letter(self.port, command)

    def admin_get(self, command, timeout=FOUR_LETTER_TIMEOUT_S):
        """GET /commands/<command> from the admin server; returns (status, body text)."""
        url = f"{self.admin_url}/commands/{command}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
