"""The admin `restore` command (POST /commands/restore), in the spirit of ZooKeeper 3.9's: a
snapshot streamed by `GET /commands/snapshot` is put back into a running standalone server,
which then serves exactly the snapshot's tree; a damaged upload changes nothing.

ZooKeeper 3.8 has neither command, so these tests skip for SK_SERVER=zookeeper.
"""

import base64
import json
import os
import urllib.error
import urllib.request

import pytest

import serverctl
from serverctl import SUPER_PASSWORD, SUPER_USER

pytestmark = pytest.mark.skipif(
    os.environ.get("SK_SERVER", "swiftkeeper") == "zookeeper",
    reason="ZooKeeper 3.8 has no snapshot or restore admin command")

ADMIN_DEADLINE_S = 60.0
AUTH = {"Authorization": f"digest {SUPER_USER}:{SUPER_PASSWORD}"}
SNAPSHOT_HEADERS = ("X-SwiftKeeper-Digest", "X-SwiftKeeper-Node-Count", "X-SwiftKeeper-Zxid")


def snapshot(srv):
    request = urllib.request.Request(f"{srv.admin_url}/commands/snapshot", headers=AUTH)
    with urllib.request.urlopen(request, timeout=ADMIN_DEADLINE_S) as response:
        return response.read(), {name: response.headers[name] for name in SNAPSHOT_HEADERS}


def restore(srv, body, headers):
    request = urllib.request.Request(f"{srv.admin_url}/commands/restore", data=body, method="POST",
                                     headers={**AUTH, **headers, "Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=ADMIN_DEADLINE_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def tree(zk, path="/app"):
    """Every znode under `path` with its data, as a dict."""
    out = {path: zk.get(path)[0]}
    for child in zk.get_children(path):
        out.update(tree(zk, f"{path}/{child}"))
    return out


def test_restore_puts_a_snapshot_back_into_a_running_server(server_factory, zk_factory):
    srv = server_factory()
    zk = zk_factory(hosts=srv.hosts)
    zk.create("/app/config", b"v1", makepath=True)
    for i in range(50):
        zk.create(f"/app/items/n{i:03}", str(i).encode(), makepath=True)
    before = tree(zk)
    body, headers = snapshot(srv)

    # The accident: a recursive delete and an overwrite after the snapshot.
    zk.delete("/app/items", recursive=True)
    zk.set("/app/config", b"v2")
    zk.create("/app/later", b"x")

    status, answer = restore(srv, body, headers)
    assert status == 200, answer
    assert answer["error"] is None and answer["zxid"] == headers["X-SwiftKeeper-Zxid"], answer
    assert answer["digest"] == headers["X-SwiftKeeper-Digest"], answer

    # Clients were disconnected; a new one sees exactly the snapshot's tree, and writes go on.
    zk2 = zk_factory(hosts=srv.hosts)
    assert tree(zk2) == before
    zk2.create("/app/after-restore", b"ok")
    assert zk2.get("/app/after-restore")[0] == b"ok"


def test_a_damaged_or_unauthenticated_restore_changes_nothing(server_factory, zk_factory):
    srv = server_factory()
    zk = zk_factory(hosts=srv.hosts)
    zk.create("/app/keep", b"1", makepath=True)
    body, headers = snapshot(srv)
    zk.create("/app/newer", b"2")
    expected = tree(zk)

    damaged = bytearray(body)
    damaged[len(damaged) // 2] ^= 0xFF
    status, answer = restore(srv, bytes(damaged), headers)
    assert status == 422, answer
    assert "offset" in answer["error"] or "CRC" in answer["error"], answer

    status, answer = restore(srv, body[: len(body) // 2], headers)
    assert status == 422, answer
    assert "end" in answer["error"], answer

    request = urllib.request.Request(f"{srv.admin_url}/commands/restore", data=body, method="POST")
    try:
        urllib.request.urlopen(request, timeout=ADMIN_DEADLINE_S)
        pytest.fail("a restore without credentials was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 401

    zk2 = zk_factory(hosts=srv.hosts)
    assert tree(zk2) == expected
