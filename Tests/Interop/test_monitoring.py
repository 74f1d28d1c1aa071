"""Four-letter words and the admin HTTP server: the shapes Apache ZooKeeper 3.8 prints.

These tests run on a server of their own, so counts (znodes, sessions, watches) are exact.

Facts of Apache ZooKeeper 3.8 asserted here:
- ruok answers "imok" with no newline; isro "rw" with no newline; unknown words get an empty
  answer and the connection is closed.
- srvr / stat: "Zookeeper version: <v>", "Latency min/avg/max: a/b/c", Received, Sent,
  Connections, Outstanding, "Zxid: 0x<hex>", "Mode: standalone", "Node count: N"; stat adds a
  "Clients:" block of " /ip:port[interest](queued=,recved=,sent=)" lines and a blank line.
- Node count (and mntr zk_znode_count) counts the root twice (ZooKeeper keys it by "" and
  "/"): a fresh server reports 5 (/, /zookeeper, /zookeeper/quota, /zookeeper/config, +1).
- Zxid on a fresh server is 0x0 (epoch 0 in standalone); each new session takes one zxid.
- wchs/wchc/wchp cover data watches only (getData/exists, and persistent ones), not child
  watches; mntr zk_watch_count counts both.
- mntr: "key<TAB>value" lines, keys zk_*, about 500 of them in 3.8; the tests check the core
  ones (listed in MNTR_KEYS).
- srst / crst answer "Server stats reset.\\n" / "Connection stats reset.\\n".
- The admin server answers GET /commands/<name> with JSON carrying "command" (the canonical
  name, e.g. srvr -> "server_stats", conf -> "configuration") and "error": null; an unknown
  command is HTTP 200 with "error": "Unknown command: <name>".
"""

import json
import re
import socket

import pytest

import jute
import serverctl
from serverctl import MAX_CLIENT_CNXNS, MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS, TICK_TIME_MS
from serverctl import wait_until

FRESH_NODE_COUNT = 5

MNTR_KEYS = [
    "zk_version", "zk_server_state", "zk_avg_latency", "zk_max_latency", "zk_min_latency",
    "zk_packets_received", "zk_packets_sent", "zk_num_alive_connections",
    "zk_outstanding_requests", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
    "zk_approximate_data_size", "zk_open_file_descriptor_count",
    "zk_max_file_descriptor_count", "zk_global_sessions", "zk_uptime",
]


@pytest.fixture(scope="module")
def own_server():
    srv = serverctl.Server()
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


def srvr_fields(text):
    fields = {}
    for line in text.splitlines():
        if ": " in line:
            key, value = line.split(": ", 1)
            fields[key] = value
    return fields


def mntr(server):
    out = {}
    for line in server.four_letter("mntr").splitlines():
        key, value = line.split("\t", 1)
        out[key] = value
    return out


def test_a_fresh_server(own_server):
    # Runs first in this module: nothing has touched the server yet.
    # Only the counter (low 32 bits) of a zxid is compared: a standalone ZooKeeper runs in
    # epoch 0, an ensemble (and SwiftKeeper, an ensemble of one) in epoch 1 or later.
    fields = srvr_fields(own_server.four_letter("srvr"))
    assert int(fields["Zxid"], 16) & 0xFFFFFFFF == 0
    assert fields["Node count"] == str(FRESH_NODE_COUNT)
    assert fields["Mode"] == "standalone"
    c = jute.RawClient(own_server.host, own_server.port)
    try:
        # The root: cversion -1 (stored creates 0, numChildren 1: 2*0-1), all zxids 0.
        err, stat = c.exists("/")
        assert err == jute.OK
        assert stat == jute.Stat(0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0)
        err, children, zk_stat = c.get_children2("/zookeeper")
        assert sorted(children) == ["config", "quota"]
        assert zk_stat.cversion == -2 and zk_stat.numChildren == 2
        err, config = c.exists("/zookeeper/config")
        assert config.aversion == -1
        # The session took zxid 1; the first create gets 2; the first sequential child of the
        # root is numbered 0 (the root's stored create count), after which cversion is 0.
        err, path, stat = c.create("/", mode=jute.PERSISTENT_SEQUENTIAL)
        assert (err, path, stat.czxid & 0xFFFFFFFF) == (jute.OK, "/0000000000", 2)
        assert c.exists("/")[1].cversion == 0
        assert c.delete(path) == jute.OK
    finally:
        c.close()


def test_ruok_isro_and_unknown_words(own_server):
    assert own_server.four_letter("ruok") == "imok"
    assert own_server.four_letter("isro") == "rw"
    assert own_server.four_letter("xyzw") == ""
    assert own_server.four_letter("kill") == ""


SRVR_PATTERN = re.compile(
    r"Zookeeper version: .+\n"
    r"Latency min/avg/max: \d+/\d+(\.\d+)?/\d+\n"
    r"Received: \d+\n"
    r"Sent: \d+\n"
    r"Connections: \d+\n"
    r"Outstanding: \d+\n"
    r"Zxid: 0x[0-9a-f]+\n"
    r"Mode: standalone\n"
    r"Node count: \d+\n")

CLIENT_LINE = re.compile(r" /127\.0\.0\.1:\d+\[\d\]\(queued=\d+,recved=\d+,sent=\d+\)")
CONS_SESSION_LINE = re.compile(
    r" /127\.0\.0\.1:\d+\[\d\]\(queued=\d+,recved=\d+,sent=\d+,sid=0x[0-9a-f]+,lop=\w+,"
    r"est=\d+,to=\d+,(lcxid=0x[0-9a-f]+,)?lzxid=0x[0-9a-f]+,lresp=\d+,llat=\d+,minlat=\d+,"
    r"avglat=\d+,maxlat=\d+\)")


def test_srvr_and_stat_shapes(own_server):
    c = jute.RawClient(own_server.host, own_server.port)
    try:
        c.create("/srvr-node", b"x")
        srvr = own_server.four_letter("srvr")
        assert SRVR_PATTERN.fullmatch(srvr), srvr
        fields = srvr_fields(srvr)
        assert int(fields["Zxid"], 16) == c.last_zxid
        assert int(fields["Node count"]) == FRESH_NODE_COUNT + 1
        assert int(fields["Connections"]) >= 2  # this client and the 4lw connection

        stat = own_server.four_letter("stat")
        head, clients_and_rest = stat.split("Clients:\n", 1)
        assert re.fullmatch(r"Zookeeper version: .+\n", head)
        clients, rest = clients_and_rest.split("\n\n", 1)
        lines = clients.splitlines()
        assert len(lines) >= 2 and all(CLIENT_LINE.fullmatch(l) for l in lines), clients
        assert SRVR_PATTERN.fullmatch("Zookeeper version: x\n" + rest), rest
    finally:
        c.delete("/srvr-node")
        c.close()


def test_conf(own_server):
    conf = dict(line.split("=", 1) for line in own_server.four_letter("conf").splitlines())
    assert conf["clientPort"] == str(own_server.port)
    assert conf["tickTime"] == str(TICK_TIME_MS)
    assert conf["maxClientCnxns"] == str(MAX_CLIENT_CNXNS)
    assert conf["minSessionTimeout"] == str(MIN_SESSION_TIMEOUT_MS)
    assert conf["maxSessionTimeout"] == str(MAX_SESSION_TIMEOUT_MS)
    assert conf["serverId"] == "0"
    # ZooKeeper prints its data directories with the "version-2" layout directory appended.
    for key in ("dataDir", "dataLogDir", "dataDirSize", "dataLogSize", "secureClientPort",
                "clientPortListenBacklog"):
        assert key in conf, key


def test_sessions_watches_and_ephemerals(own_server):
    wait_until(lambda: own_server.four_letter("wchs").startswith("0 connections"), 10,
               "earlier sessions' watches to go")
    a = jute.RawClient(own_server.host, own_server.port)
    b = jute.RawClient(own_server.host, own_server.port)
    try:
        a.create("/w", b"12345")
        a.create("/w/e", mode=jute.EPHEMERAL)
        a.get_data("/w", watch=True)
        a.get_children2("/w", watch=True)  # a child watch: not in wchs/wchc/wchp
        b.exists("/w/e", watch=True)
        sa, sb = f"0x{a.session_id:x}", f"0x{b.session_id:x}"

        assert own_server.four_letter("wchs") == "2 connections watching 2 paths\nTotal watches:2\n"
        assert parse_grouped(own_server.four_letter("wchc")) == {sa: ("/w",), sb: ("/w/e",)}
        assert parse_grouped(own_server.four_letter("wchp")) == {"/w": (sa,), "/w/e": (sb,)}

        dump = own_server.four_letter("dump")
        assert dump.startswith("SessionTracker dump:\n")
        assert "ephemeral nodes dump:\nSessions with Ephemerals (1):\n" f"{sa}:\n\t/w/e\n" in dump
        assert sa in dump and sb in dump

        cons = own_server.four_letter("cons")
        session_lines = [l for l in cons.splitlines() if "sid=" in l]
        assert len(session_lines) == 2, cons
        assert all(CONS_SESSION_LINE.fullmatch(l) for l in session_lines), cons
        assert {re.search(r"sid=(0x[0-9a-f]+)", l).group(1) for l in session_lines} == {sa, sb}

        m = mntr(own_server)
        assert m["zk_ephemerals_count"] == "1"
        assert m["zk_watch_count"] == "3"  # data + child + exists
        assert m["zk_znode_count"] == str(FRESH_NODE_COUNT + 2)
        assert m["zk_global_sessions"] == "2"
    finally:
        a.close()
        b.close()
        # Leave the server as found even when an assertion failed: later tests count znodes.
        cleaner = jute.RawClient(own_server.host, own_server.port)
        cleaner.delete("/w/e")
        cleaner.delete("/w")
        cleaner.close()
    assert mntr(own_server)["zk_ephemerals_count"] == "0"


def parse_grouped(text):
    """wchc / wchp: a key line, then tab-indented value lines; a blank line at the end."""
    groups, key = {}, None
    assert text.endswith("\n\n") or text == "\n", repr(text)
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("\t"):
            groups[key] = tuple(sorted(groups[key] + (line[1:],)))
        else:
            key = line
            groups[key] = ()
    return groups


def test_mntr_keys(own_server):
    m = mntr(own_server)
    for key in MNTR_KEYS:
        assert key in m, key
    assert all(re.fullmatch(r"zk_\S+", k) for k in m), [k for k in m if not re.fullmatch(r"zk_\S+", k)]
    assert m["zk_server_state"] == "standalone"
    for key in MNTR_KEYS[2:]:
        float(m[key])  # numeric


def test_envi_dirs(own_server):
    envi = own_server.four_letter("envi").splitlines()
    assert envi[0] == "Environment:"
    keys = dict(line.split("=", 1) for line in envi[1:])
    for key in ("zookeeper.version", "host.name", "os.name", "os.arch", "os.version",
                "user.name", "user.home", "user.dir"):
        assert key in keys, key
    dirs = own_server.four_letter("dirs")
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", dirs), dirs


def test_srst_crst(own_server):
    c = jute.RawClient(own_server.host, own_server.port)
    try:
        c.exists("/")
        assert own_server.four_letter("srst") == "Server stats reset.\n"
        fields = srvr_fields(own_server.four_letter("srvr"))
        # Only the srvr request itself counts after the reset.
        assert int(fields["Received"]) <= 1 and fields["Latency min/avg/max"] == "0/0.0/0"
        assert own_server.four_letter("crst") == "Connection stats reset.\n"
        line = [l for l in own_server.four_letter("cons").splitlines() if "sid=" in l][0]
        assert "recved=0,sent=0" in line and "lop=NA" in line
    finally:
        c.close()


# --- the admin HTTP server ----------------------------------------------------------------

def admin_json(server, command):
    try:
        status, body = server.admin_get(command)
    except (OSError, socket.timeout) as e:
        pytest.skip(f"the admin server on {server.admin_url} is unavailable: {e}")
    assert status == 200, (status, body)
    return json.loads(body)


ADMIN_COMMANDS = {
    # requested name -> canonical "command" in the reply
    "ruok": "ruok",
    "srvr": "server_stats",
    "stat": "stats",
    "conf": "configuration",
    "cons": "connections",
    "dirs": "dirs",
    "envi": "environment",
    "isro": "is_read_only",
    "wchs": "watch_summary",
    "wchc": "watches",
    "wchp": "watches_by_path",
    "dump": "dump",
    "monitor": None,  # monitor has no "command" key
    "srst": "stat_reset",
    "crst": "connection_stat_reset",
}


@pytest.mark.parametrize("name,canonical", sorted(ADMIN_COMMANDS.items()))
def test_admin_commands(own_server, name, canonical):
    reply = admin_json(own_server, name)
    if canonical is not None:
        assert reply["command"] == canonical
        assert reply["error"] is None
    else:
        assert reply["server_state"] == "standalone"


def test_admin_contents(own_server):
    c = jute.RawClient(own_server.host, own_server.port)
    try:
        c.create("/adm", b"")
        c.get_data("/adm", watch=True)
        monitor = admin_json(own_server, "monitor")
        for key in ("version", "server_state", "znode_count", "watch_count", "ephemerals_count",
                    "num_alive_connections", "outstanding_requests", "avg_latency",
                    "packets_sent", "packets_received", "approximate_data_size"):
            assert key in monitor, key
        assert monitor["server_state"] == "standalone"
        assert monitor["znode_count"] == FRESH_NODE_COUNT + 1
        srvr = admin_json(own_server, "srvr")
        assert srvr["server_stats"]["server_state"] == "standalone"
        assert srvr["server_stats"]["last_processed_zxid"] == c.last_zxid
        assert srvr["node_count"] == FRESH_NODE_COUNT + 1
        assert srvr["read_only"] is False
        conf = admin_json(own_server, "conf")
        assert conf["client_port"] == own_server.port
        assert conf["tick_time"] == TICK_TIME_MS
        assert conf["min_session_timeout"] == MIN_SESSION_TIMEOUT_MS
        assert conf["max_session_timeout"] == MAX_SESSION_TIMEOUT_MS
        watches = admin_json(own_server, "watches")
        assert watches["session_id_to_watched_paths"] == {str(c.session_id): ["/adm"]}
        by_path = admin_json(own_server, "watches_by_path")
        assert by_path["path_to_session_ids"] == {"/adm": [c.session_id]}
        assert admin_json(own_server, "wchs")["num_total_watches"] == 1
        assert admin_json(own_server, "isro")["read_only"] is False
        assert admin_json(own_server, "ruok")["error"] is None
        unknown = admin_json(own_server, "no_such_command")
        assert unknown["error"] == "Unknown command: no_such_command"
    finally:
        c.delete("/adm")
        c.close()
