"""Backup drills against a running swiftkeeper (issue 7's disaster drill 1, and the server's own
scheduled backups).

Drill 1: writes keep flowing; an online full backup mid-stream (``keeperctl backup full
--server``); more writes; incrementals; the data directory destroyed; ``keeperctl restore`` to
the latest point: every acknowledged write is there, and the restored tree's digest matched the
backups' on the way (restore checks it at every backup boundary, verify too).

ZooKeeper has no such thing (3.8 no backup at all), so these tests skip for SK_SERVER=zookeeper.
keeperctl is ``SK_KEEPERCTL``, else the ``keeperctl`` beside the server binary (``swift test``
and ``swift build`` put both in the same build directory).
"""

import json
import os
import shutil
import subprocess
import threading
import urllib.request

import pytest

import serverctl
from serverctl import SUPER_PASSWORD, SUPER_USER, wait_until

pytestmark = pytest.mark.skipif(
    os.environ.get("SK_SERVER", "swiftkeeper") == "zookeeper",
    reason="ZooKeeper has no online or incremental backups to drill")

# Limits of the drills, named in one place.
KEEPERCTL_DEADLINE_S = 120.0
BACKUP_STATE_DEADLINE_S = 60.0
WRITES_BEFORE_FULL = 300
WRITES_BETWEEN_STEPS = 200


def keeperctl_path():
    path = os.environ.get("SK_KEEPERCTL")
    if path is None:
        binary = os.environ.get(
            "SK_BINARY", os.path.join(serverctl.PACKAGE_ROOT, ".build", "release", "swiftkeeper"))
        path = os.path.join(os.path.dirname(binary), "keeperctl")
    if not os.access(path, os.X_OK):
        pytest.fail(f"keeperctl {path} is missing: build it (`swift build --product keeperctl`) "
                    "or set SK_KEEPERCTL", pytrace=False)
    return path


def keeperctl(*args):
    """Runs keeperctl; returns its output, failing the test with it on a non-zero exit."""
    result = subprocess.run([keeperctl_path(), *args], capture_output=True, text=True,
                            timeout=KEEPERCTL_DEADLINE_S)
    if result.returncode != 0:
        pytest.fail(f"keeperctl {' '.join(args)} exited {result.returncode}:\n"
                    f"{result.stdout}\n{result.stderr}", pytrace=False)
    return result.stdout


def admin_json(srv, command):
    status, body = srv.admin_get(command)
    assert status == 200, f"/commands/{command}: HTTP {status}: {body}"
    return json.loads(body)


class Writer:
    """Creates znodes under /drill from a thread of its own, recording each one the server
    acknowledged (create returned) with its data."""

    def __init__(self, zk):
        self.zk = zk
        self.acked = {}
        self.stop = threading.Event()
        self.error = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        try:
            while not self.stop.is_set():
                path = f"/drill/n{i:07d}"
                data = f"value-{i}".encode()
                self.zk.create(path, data)
                with self.lock:
                    self.acked[path] = data
                i += 1
        except Exception as e:  # reported by finish(), in the test's thread
            self.error = e

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_for(self, n):
        wait_until(lambda: self.error is not None or self.count() >= n, BACKUP_STATE_DEADLINE_S,
                   f"{n} acknowledged writes")
        assert self.error is None, f"the writer failed: {self.error!r}"

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=BACKUP_STATE_DEADLINE_S)
        assert not self.thread.is_alive(), "the writer did not stop"
        assert self.error is None, f"the writer failed: {self.error!r}"
        return dict(self.acked)


def test_drill1_online_backup_under_writes_then_restore_after_losing_the_data(server_factory, zk_factory, tmp_path):
    srv = server_factory()
    backups = str(tmp_path / "backups")
    auth = f"{SUPER_USER}:{SUPER_PASSWORD}"
    zk = zk_factory(hosts=srv.hosts)
    zk.ensure_path("/drill")
    zk.create("/drill-meta", b"before the backups")

    writer = Writer(zk)
    writer.thread.start()
    writer.wait_for(WRITES_BEFORE_FULL)
    out = keeperctl("backup", "full", "--server", srv.admin_url, "--auth", auth, "--to", backups)
    assert "full backup" in out
    for step in range(2):
        writer.wait_for(writer.count() + WRITES_BETWEEN_STEPS)
        out = keeperctl("backup", "incremental", "--server", srv.admin_url, "--auth", auth, "--to", backups)
        assert "incremental backup" in out, out
    acked = writer.finish()
    zk.set("/drill-meta", b"after the last write")
    # The last incremental, after the writes stopped: every acknowledged write is in the chain.
    out = keeperctl("backup", "incremental", "--server", srv.admin_url, "--auth", auth, "--to", backups)
    assert "incremental backup" in out, out
    expected_children = sorted(zk.get_children("/drill"))
    assert len(expected_children) == len(acked)

    status = admin_json(srv, "backup")
    assert status["online"]["snapshots_served"] == 1
    assert status["online"]["txn_streams_served"] == 3

    # Disaster: the server and its data are gone.
    zk.stop()
    srv.stop()
    shutil.rmtree(srv.data_dir)
    shutil.rmtree(srv.config.log_dir)
    os.makedirs(srv.config.log_dir)

    out = keeperctl("verify", backups)
    assert "verify: OK" in out, out
    out = keeperctl("restore", "--from", backups, "--data-dir", srv.data_dir,
                    "--data-log-dir", srv.config.log_dir)
    assert "restored" in out and "digests verified" in out, out

    srv.start()
    zk = zk_factory(hosts=srv.hosts)
    children = sorted(zk.get_children("/drill"))
    missing = sorted(set(acked) - {f"/drill/{c}" for c in children})
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    assert children == expected_children
    for path, data in acked.items():
        value, _ = zk.get(path)
        assert value == data, f"{path}: {value!r} != {data!r}"
    assert zk.get("/drill-meta")[0] == b"after the last write"


def test_online_commands_refuse_without_credentials(server_factory):
    srv = server_factory()
    status, body = srv.admin_get("snapshot")
    assert status == 401, body
    assert json.loads(body)["error"].startswith("Auth info is missing")
    request = urllib.request.Request(f"{srv.admin_url}/commands/snapshot",
                                     headers={"Authorization": "digest bob:secret"})
    try:
        urllib.request.urlopen(request, timeout=serverctl.FOUR_LETTER_TIMEOUT_S)
        pytest.fail("a snapshot was served to a user without ALL on /")
    except urllib.error.HTTPError as e:
        assert e.code == 403
        assert "Not authorized" in json.loads(e.read())["error"]


def test_scheduled_backups_archive_the_log_and_purge_it(server_factory, zk_factory, tmp_path):
    backups = str(tmp_path / "scheduled")
    srv = server_factory(extra_config={
        "backup.dir": backups,
        "backup.fullIntervalSeconds": 3600,
        "backup.incrementalIntervalSeconds": 0,
        "backup.archiveLog": "true",
        "backup.archiveCheckIntervalMs": 100,
        "snapCount": 50,  # log segments roll every 50 txns
        "autopurge.purgeIntervalSeconds": 1,
        "autopurge.snapRetainCount": 3,
    })
    zk = zk_factory(hosts=srv.hosts)
    zk.ensure_path("/sched")
    for i in range(600):
        zk.create(f"/sched/n{i}", str(i).encode())
    last_zxid = zk.get("/sched/n599")[1].mzxid
    # Archiving carries what is committed when a segment closes: more writes than a segment
    # holds make sure one closes after n599 is committed (the active segment is never
    # archived, as PostgreSQL never archives the WAL file it is writing).
    for i in range(60):
        zk.create(f"/sched/pad{i}", b"")

    def archived_and_purged():
        status = admin_json(srv, "backup")
        chain = int(status["chain_zxid"], 16) if status["chain_zxid"] else 0
        return chain >= last_zxid and status["log_purge"]["purged_segments"] > 0 and status

    status = wait_until(archived_and_purged, BACKUP_STATE_DEADLINE_S,
                        "the closed segments archived and the log purged")
    assert status["failure_count"] == 0, status["last_failure"]
    assert status["chains"] == 1
    mntr = dict(line.split("\t", 1) for line in srv.four_letter("mntr").splitlines() if "\t" in line)
    assert int(mntr["zk_backup_success_count"]) >= 2
    assert int(mntr["zk_log_purged_segments"]) > 0
    with urllib.request.urlopen(f"{srv.admin_url}/metrics", timeout=serverctl.FOUR_LETTER_TIMEOUT_S) as r:
        assert "backup_success_count" in r.read().decode()

    out = keeperctl("verify", backups)
    assert "verify: OK" in out, out
    restored = str(tmp_path / "restored")
    keeperctl("restore", "--from", backups, "--to-zxid", hex(last_zxid), "--data-dir", restored)
    srv.stop()
    # The restored directory serves every node created up to the archived zxid.
    other = server_factory(workdir=str(tmp_path / "other"))
    other.stop()
    shutil.rmtree(other.data_dir)
    shutil.copytree(restored, other.data_dir)
    shutil.rmtree(other.config.log_dir)
    os.makedirs(other.config.log_dir)
    other.start()
    zk2 = zk_factory(hosts=other.hosts)
    assert len(zk2.get_children("/sched")) == 600
    assert zk2.get("/sched/n599")[0] == b"599"
