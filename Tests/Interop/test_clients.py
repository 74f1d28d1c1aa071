"""The command-line clients that ship with ZooKeeper: zkCli.sh (Java client) and cli_mt (C
client), each through CRUD and a watch. Outputs are the clients' own formats."""

import re

from clitools import cli_mt, zkcli, zkcli_interactive

STAT_LINE = re.compile(r"^(\w+) = (.*)$", re.M)


def test_zkcli_crud(server, zk, base):
    path = f"{base}/cli"
    assert zkcli(server.hosts, "create", path, "hello") == (0, ANY_WITH(f"Created {path}"))
    status, out = zkcli(server.hosts, "get", "-s", path)
    assert status == 0
    assert "\nhello\n" in out
    stat = dict(STAT_LINE.findall(out))
    assert stat["dataVersion"] == "0" and stat["dataLength"] == "5"
    assert stat["numChildren"] == "0" and stat["ephemeralOwner"] == "0x0"
    assert int(stat["cZxid"], 16) == zk.exists(path).czxid
    assert zkcli(server.hosts, "set", path, "world")[0] == 0
    assert zk.get(path)[0] == b"world"
    assert zk.exists(path).version == 1
    status, out = zkcli(server.hosts, "create", "-s", f"{path}/s-", "x")
    assert status == 0 and f"Created {path}/s-0000000000" in out
    status, out = zkcli(server.hosts, "ls", path)
    assert status == 0 and "[s-0000000000]" in out
    status, out = zkcli(server.hosts, "create", path, "again")
    assert status == 1 and f"Node already exists: {path}" in out
    assert zkcli(server.hosts, "deleteall", path)[0] == 0
    assert zk.exists(path) is None


def test_zkcli_container_and_ttl(server, zk, base):
    status, out = zkcli(server.hosts, "create", "-c", f"{base}/container", "")
    assert status == 0 and f"Created {base}/container" in out
    status, out = zkcli(server.hosts, "create", "-t", "60000", f"{base}/ttl", "")
    assert status == 0 and f"Created {base}/ttl" in out
    assert zk.exists(f"{base}/container") is not None and zk.exists(f"{base}/ttl") is not None


def test_zkcli_watches(server, zk, base):
    path = f"{base}/w"
    zk.create(path, b"hello")
    cli = zkcli_interactive(server.hosts)
    try:
        cli.command(f"get -w {path}", r"\nhello\n")
        zk.set(path, b"bye")
        cli.expect(rf"WatchedEvent state:SyncConnected type:NodeDataChanged path:{re.escape(path)}\n")
        cli.command(f"ls -w {path}", r"\[\]\n")
        zk.create(f"{path}/kid")
        cli.expect(rf"type:NodeChildrenChanged path:{re.escape(path)}\n")
        # addWatch prints nothing; the next command's output proves it was done.
        cli.send(f"addWatch -m PERSISTENT_RECURSIVE {path}")
        cli.command(f"stat {path}", r"numChildren = 1\n")
        zk.create(f"{path}/kid/grandkid")
        cli.expect(rf"type:NodeCreated path:{re.escape(path)}/kid/grandkid\n")
        zk.set(f"{path}/kid", b"x")
        cli.expect(rf"type:NodeDataChanged path:{re.escape(path)}/kid\n")
    finally:
        cli.close()


def test_cli_mt_crud(server, zk, base):
    cli = cli_mt(server.hosts)
    path = f"{base}/c"
    try:
        # cli_mt's create takes no data: the whole rest of the line is the path, data "new".
        cli.command(f"create {path}", rf"\[{re.escape(path)}\]: rc = 0\n\tname = {re.escape(path)}\n")
        assert zk.get(path)[0] == b"new"
        cli.command(f"set {path} hello", rf"{re.escape(path)}: rc = 0")
        assert zk.get(path)[0] == b"hello"
        match = cli.command(f"get {path}", r"rc = 0\n value_len = (\d+)\n(.*)\nStat:\n(?s:.*?)version=(\d+)")
        assert match.group(1) == "5" and match.group(2) == "hello" and match.group(3) == "1"
        cli.command(f"create +e {path}/eph", rf"name = {re.escape(path)}/eph\n")
        assert zk.exists(f"{path}/eph").ephemeralOwner != 0
        cli.command(f"create +s {path}/s-", rf"name = {re.escape(path)}/s-0000000001\n")
        match = cli.command(f"ls {path}", r"rc = 0\n((?:\t.*\n)*)")
        assert sorted(match.group(1).split()) == ["eph", "s-0000000001"]
        cli.command(f"delete {path}/s-0000000001", rf"{re.escape(path)}/s-0000000001: rc = 0")
        cli.command(f"delete {path}", rf"{re.escape(path)}: rc = -111")  # NotEmpty
        cli.command(f"get {path}/nope", rf"{re.escape(path)}/nope: rc = -101")
    finally:
        cli.close()
    # Closing the C client's session removed its ephemeral.
    assert zk.exists(f"{path}/eph") is None


def test_cli_mt_watches(server, zk, base):
    path = f"{base}/w"
    zk.create(path, b"hello")
    cli = cli_mt(server.hosts)
    try:
        cli.command(f"get {path}", r"value_len = 5\nhello\n")  # get leaves a data watch
        zk.set(path, b"bye")
        cli.expect(rf"Watcher CHANGED_EVENT state = CONNECTED_STATE for path {re.escape(path)}\n")
        cli.command(f"ls {path}", rf"{re.escape(path)}: rc = 0\n")  # ls leaves a child watch
        zk.create(f"{path}/kid")
        cli.expect(rf"Watcher CHILD_EVENT state = CONNECTED_STATE for path {re.escape(path)}\n")
        cli.send(f"wexists {path}/kid")  # prints nothing when the node exists
        # Requests go out in order: once the next one is answered, the watch is registered.
        # (exists prints nothing on success either; get always prints.)
        cli.command(f"get {path}", r"value_len = 3\nbye\n")
        zk.delete(f"{path}/kid")
        cli.expect(rf"Watcher DELETED_EVENT state = CONNECTED_STATE for path {re.escape(path)}/kid\n")
    finally:
        cli.close()


class ANY_WITH:
    """Equal to any string containing ``needle`` (for tuple comparisons)."""

    def __init__(self, needle):
        self.needle = needle

    def __eq__(self, other):
        return isinstance(other, str) and self.needle in other

    def __repr__(self):
        return f"<output containing {self.needle!r}>"
