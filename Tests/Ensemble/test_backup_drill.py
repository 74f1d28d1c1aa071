"""Disaster drill 1 of the backup issue on a running ensemble: writes keep flowing through every
server; an online full backup of the leader mid-stream; more writes; incrementals; every data
directory of the ensemble destroyed; one server restored to the latest point with keeperctl,
the others started empty; every acknowledged write is back on every server, and all trees agree.
This is also the README's whole-ensemble restore runbook, carried out.

ZooKeeper 3.8 has no online backup, so the drill skips for SK_SERVER=zookeeper.
"""

import base64
import hashlib
import os
import shutil
import subprocess
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

from ensemble import Ensemble, allocate_port, server_kind

pytestmark = pytest.mark.skipif(server_kind() == "zookeeper", reason="ZooKeeper 3.8 has no online backups")

SUPER = ("super", "drill-secret")
KEEPERCTL_DEADLINE_S = 120.0
CLIENT_TIMEOUT_S = 15.0
WRITES_BEFORE_FULL = 150
WRITES_BETWEEN_STEPS = 150


def super_digest():
    raw = hashlib.sha1(f"{SUPER[0]}:{SUPER[1]}".encode()).digest()
    return f"{SUPER[0]}:{base64.b64encode(raw).decode()}"


def keeperctl(ensemble, *args):
    path = os.environ.get("SK_KEEPERCTL", os.path.join(os.path.dirname(ensemble.binary), "keeperctl"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"keeperctl {path} is missing: `swift build --product keeperctl` or set SK_KEEPERCTL",
                    pytrace=False)
    result = subprocess.run([path, *args], capture_output=True, text=True, timeout=KEEPERCTL_DEADLINE_S)
    if result.returncode != 0:
        pytest.fail(f"keeperctl {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}",
                    pytrace=False)
    return result.stdout


class Writers:
    """One writer thread per server, each creating znodes under /drill through its own
    server (followers forward to the leader) and recording what was acknowledged."""

    def __init__(self, ensemble):
        self.acked = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors = []
        self.clients = []
        self.threads = []
        for node in ensemble.voters:
            client = KazooClient(hosts=node.hosts, timeout=CLIENT_TIMEOUT_S)
            client.start(timeout=CLIENT_TIMEOUT_S)
            self.clients.append(client)
            self.threads.append(threading.Thread(target=self.run, args=(client, node.sid), daemon=True))
        self.clients[0].ensure_path("/drill")
        for thread in self.threads:
            thread.start()

    def run(self, client, sid):
        i = 0
        while not self.stop.is_set():
            path, data = f"/drill/s{sid}-{i:06}", f"{sid}:{i}".encode()
            try:
                client.create(path, data)
            except KazooException as error:
                self.errors.append(f"{path}: {error!r}")
                return
            with self.lock:
                self.acked[path] = data
            i += 1

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_for(self, n, deadline_s=120.0):
        end = time.monotonic() + deadline_s
        while self.count() < n:
            assert not self.errors, self.errors
            assert time.monotonic() < end, f"only {self.count()} of {n} writes acknowledged"
            time.sleep(0.01)  # the poll interval of a wait bounded by its deadline

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=CLIENT_TIMEOUT_S)
        for client in self.clients:
            client.stop()
            client.close()
        assert not self.errors, self.errors
        return dict(self.acked)


def answers_ruok(node):
    try:
        return node.four_letter("ruok") == "imok"
    except OSError:
        return False


def tree(client):
    client.sync("/drill")
    return {name: client.get(f"/drill/{name}")[0] for name in client.get_children("/drill")}


def test_drill1_an_ensemble_destroyed_and_restored_from_online_backups(tmp_path):
    admin_ports = {}

    def node_config(node):
        admin_ports.setdefault(node.sid, allocate_port())
        return ["admin.enableServer=true", "admin.serverAddress=127.0.0.1",
                f"admin.serverPort={admin_ports[node.sid]}",
                f"DigestAuthenticationProvider.superDigest={super_digest()}"]

    backups = str(tmp_path / "backups")
    auth = f"{SUPER[0]}:{SUPER[1]}"
    with Ensemble(voters=3, proxied=False, node_config=node_config) as ensemble:
        ensemble.start()
        ensemble.wait_healthy()
        leader = ensemble.wait_leader()
        url = f"http://127.0.0.1:{admin_ports[leader.sid]}"
        writers = Writers(ensemble)
        writers.wait_for(WRITES_BEFORE_FULL)
        keeperctl(ensemble, "backup", "full", "--server", url, "--auth", auth, "--to", backups)
        writers.wait_for(writers.count() + WRITES_BETWEEN_STEPS)
        keeperctl(ensemble, "backup", "incremental", "--server", url, "--auth", auth, "--to", backups)
        writers.wait_for(writers.count() + WRITES_BETWEEN_STEPS)
        acked = writers.finish()
        # Every acknowledged write is committed, so the leader's store has it: one last
        # incremental takes the backup chain up to it.
        keeperctl(ensemble, "backup", "incremental", "--server", url, "--auth", auth, "--to", backups)
        keeperctl(ensemble, "verify", backups)

        # The disaster: every server stops and loses its data directory.
        for node in ensemble.nodes:
            node.stop()
        for node in ensemble.nodes:
            node.wipe()

        # The runbook: restore one server, leave the others empty, start them all.
        restored = ensemble.node(1)
        shutil.rmtree(restored.data_dir)
        keeperctl(ensemble, "restore", "--from", backups, "--data-dir", restored.data_dir)
        restored.write_files()  # myid back
        # The restored server first, and up (voting) before the empty ones start: two empty
        # servers are a quorum of three and would otherwise elect one of themselves.
        restored.launch()
        end = time.monotonic() + 60.0
        while not answers_ruok(restored):
            assert time.monotonic() < end, "the restored server did not come up"
            time.sleep(0.01)  # the poll interval of a wait bounded by its deadline
        for node in ensemble.nodes:
            if node is not restored:
                node.launch()
        ensemble.wait_healthy()

        trees = []
        for node in ensemble.nodes:
            client = KazooClient(hosts=node.hosts, timeout=CLIENT_TIMEOUT_S)
            client.start(timeout=CLIENT_TIMEOUT_S)
            trees.append(tree(client))
            client.stop()
            client.close()
        expected = {path.rsplit("/", 1)[1]: data for path, data in acked.items()}
        missing = [name for name in expected if trees[0].get(name) != expected[name]]
        assert not missing, f"{len(missing)} acknowledged writes missing after the restore, e.g. {missing[:5]}"
        assert all(t == trees[0] for t in trees), "the servers disagree after synchronizing from the restored one"
