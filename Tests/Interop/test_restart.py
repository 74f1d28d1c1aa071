"""Restarts and connection limits, each on a server of the test's own.

Facts of Apache ZooKeeper 3.8 asserted here:
- Sessions are part of the replicated state: after a graceful restart AND after SIGKILL, a
  client reattaches to its session (same id and password) within the session timeout, and
  the session's ephemeral nodes are still there.
- zxids keep increasing across restarts. (A standalone ZooKeeper keeps epoch 0 and continues
  the counter; an ensemble starts a new epoch. The tests only assert that zxids never go back.)
- maxClientCnxns limits concurrent connections per client IP; the connection over the limit
  is closed at once, four-letter-word connections included.
"""

from kazoo.protocol.states import KazooState

import jute
from serverctl import wait_until
from support import StateLog, wait_connected


def test_sessions_and_ephemerals_survive_restarts(server_factory, zk_factory):
    server = server_factory()
    kazoo = zk_factory(hosts=server.hosts)
    states = StateLog(kazoo)
    session = kazoo.client_id
    kazoo.create("/k-eph", b"k", ephemeral=True)
    raw = jute.RawClient(server.host, server.port, timeout_ms=15000)
    raw.create("/r-eph", b"r", mode=jute.EPHEMERAL)
    raw.sock.close()  # keep the session; this connection dies with the server anyway
    last_zxid = raw.last_zxid

    for kill in (False, True):
        server.restart(kill=kill)
        wait_connected(kazoo)
        assert kazoo.client_id == session, "kazoo got a new session"
        assert kazoo.exists("/k-eph").ephemeralOwner == session[0]
        revived = jute.RawClient(server.host, server.port, timeout_ms=15000,
                                 session_id=raw.session_id, passwd=raw.passwd,
                                 last_zxid=last_zxid)
        assert revived.connect_response.session_id == raw.session_id
        err, stat = revived.exists("/r-eph")
        assert err == jute.OK and stat.ephemeralOwner == raw.session_id
        err, path, created = revived.create("/after-restart-%d" % kill)
        assert err == jute.OK and created.czxid > last_zxid
        last_zxid = revived.last_zxid
        revived.sock.close()
    assert not states.seen(KazooState.LOST)

    closer = jute.RawClient(server.host, server.port, session_id=raw.session_id,
                            passwd=raw.passwd, last_zxid=last_zxid)
    closer.close()  # closeSession
    assert kazoo.exists("/r-eph") is None


def test_max_client_connections_per_ip(server_factory):
    server = server_factory(extra_config={"maxClientCnxns": 3})
    clients = [jute.RawClient(server.host, server.port) for _ in range(3)]
    try:
        try:
            extra = jute.RawClient(server.host, server.port)
        except (jute.ConnectionClosed, ConnectionResetError):
            extra = None
        assert extra is None, "a fourth connection from one IP was accepted"
        # A four-letter word is a connection too: refused (ZooKeeper closes it cleanly and
        # answers nothing; a reset is an equally clear refusal).
        try:
            answer = server.four_letter("ruok")
        except ConnectionResetError:
            answer = ""
        assert answer == ""
    finally:
        for c in clients:
            c.close()
    # Once the connections are gone, new ones are accepted again.
    wait_until(lambda: server.four_letter("ruok") == "imok", 10, "the limit to free up")
