"""Session expiry and reconnect.

Expiry is made deterministic two ways: (1) kazoo's connection goes through a proxy that is cut,
a second connection attaches to the same session (id + password) and closes it, and the proxy
is restored: kazoo's reconnect is then refused and it reports the session LOST; (2) a raw
client with the minimum timeout simply stops talking and the server expires it (polled with
a deadline, never slept on).
"""

import time

from kazoo.protocol.states import KazooState

import jute
from serverctl import MIN_SESSION_TIMEOUT_MS, TICK_TIME_MS, wait_until
from support import Events, StateLog, wait_connected, wait_for_state


def expire_through_proxy(server, proxy, client):
    """Expire ``client``'s session while it is cut off, as kazoo's own test harness does."""
    session_id, password = client.client_id
    proxy.cut()
    wait_for_state(client, KazooState.SUSPENDED)
    thief = jute.RawClient(server.host, server.port, session_id=session_id, passwd=password)
    assert thief.connect_response.session_id == session_id
    thief.close()  # closeSession: the session and its ephemerals are gone now
    proxy.restore()


def test_forced_expiry_removes_ephemerals_and_kazoo_starts_a_new_session(
        server, proxy, zk_factory, base):
    client = zk_factory(hosts=proxy.hosts)
    observer = zk_factory()
    states = StateLog(client)
    old_session = client.client_id[0]
    path = client.create(f"{base}/eph", b"x", ephemeral=True)
    deleted = Events()
    assert observer.exists(path, watch=deleted) is not None

    expire_through_proxy(server, proxy, client)

    event = deleted.next()
    assert (event.type, event.path) == ("DELETED", path)
    wait_until(lambda: states.seen(KazooState.LOST), 30, "kazoo to report the session LOST")
    wait_connected(client)  # kazoo opens a fresh session by itself
    assert client.client_id[0] != old_session
    assert client.exists(path) is None


def test_reconnect_within_timeout_keeps_session_and_ephemerals(proxy, zk_factory, base):
    client = zk_factory(hosts=proxy.hosts)
    session = client.client_id
    path = client.create(f"{base}/eph", ephemeral=True)
    proxy.cut()
    wait_for_state(client, KazooState.SUSPENDED)
    proxy.restore()
    wait_connected(client)
    assert client.client_id == session
    assert client.exists(path).ephemeralOwner == session[0]


def test_idle_session_expires_after_its_timeout(server, zk, base):
    idle = jute.RawClient(server.host, server.port, timeout_ms=MIN_SESSION_TIMEOUT_MS)
    timeout_s = idle.connect_response.timeout / 1000
    assert idle.connect_response.timeout == MIN_SESSION_TIMEOUT_MS
    err, path, _ = idle.create(f"{base}/eph", mode=jute.EPHEMERAL)
    assert err == jute.OK
    last_contact = time.monotonic()
    gone = Events()
    assert zk.exists(path, watch=gone) is not None
    # The idle client sends nothing (not even pings) from here on.
    assert gone.next(30).type == "DELETED"
    elapsed = time.monotonic() - last_contact
    # ZooKeeper never expires a session early; it rounds expiry up to a tick.
    assert elapsed >= timeout_s - TICK_TIME_MS / 1000, f"expired after {elapsed:.3f}s"
    revived = jute.RawClient(server.host, server.port, session_id=idle.session_id,
                             passwd=idle.passwd)
    assert revived.connect_response.session_id == 0  # refused: the session is gone
    revived.close(close_session=False)
    idle.close(close_session=False)


def test_pings_keep_a_session_alive(server, base):
    client = jute.RawClient(server.host, server.port, timeout_ms=1000)
    try:
        client.create(f"{base}/eph", mode=jute.EPHEMERAL)
        deadline = time.monotonic() + 3 * client.connect_response.timeout / 1000
        while time.monotonic() < deadline:
            # next_event pings every 0.5 s while it waits, well inside the 1 s timeout.
            assert client.next_event(0.25) is None
        assert client.exists(f"{base}/eph")[1].ephemeralOwner == client.session_id
    finally:
        client.close()


def test_kazoo_session_events_on_close(zk_factory, base):
    client = zk_factory()
    states = StateLog(client)
    client.create(f"{base}/e", ephemeral=True)
    client.stop()
    assert states.seen(KazooState.LOST)
    observer = zk_factory()
    assert observer.exists(f"{base}/e") is None
