"""The link proxy on its own, against a local echo server (no ZooKeeper needed): bytes flow
when UP, stop in both directions and resume in order when BLACKHOLE heals, connections are
reset when DOWN, a connection to a target that starts late is held and retried, and the
election InitialMessage's address is rewritten (anything else passes untouched)."""

import socket
import struct
import threading

import pytest

from linkproxy import LinkProxy, LinkState

IO_TIMEOUT_S = 5.0
SILENCE_S = 0.3   # how long "nothing arrives" is watched for in a blackhole


class EchoServer:
    """Echoes every byte back; remembers the first bytes of each connection."""

    def __init__(self, port=0):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.received = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn):
        first = True
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if first:
                    self.received.append(data)
                    first = False
                conn.sendall(data)

    def close(self):
        self.listener.close()


@pytest.fixture
def proxy():
    p = LinkProxy()
    p.start()
    yield p
    p.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


def connect(link):
    return socket.create_connection(("127.0.0.1", link.port), timeout=IO_TIMEOUT_S)


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def test_bytes_flow_when_up(proxy, echo):
    link = proxy.add_link("a->b", echo.port)
    with connect(link) as s:
        s.sendall(b"hello")
        assert recv_exactly(s, 5) == b"hello"


def test_blackhole_stops_both_ways_and_heal_resumes_in_order(proxy, echo):
    link = proxy.add_link("a->b", echo.port)
    with connect(link) as s:
        s.sendall(b"one")
        assert recv_exactly(s, 3) == b"one"
        proxy.set_state([link], LinkState.BLACKHOLE)
        s.sendall(b"two")
        s.settimeout(SILENCE_S)
        with pytest.raises(socket.timeout):
            s.recv(1)
        s.settimeout(IO_TIMEOUT_S)
        proxy.set_state([link], LinkState.UP)
        assert recv_exactly(s, 3) == b"two"


def test_new_connection_during_blackhole_is_held_until_heal(proxy, echo):
    link = proxy.add_link("a->b", echo.port)
    proxy.set_state([link], LinkState.BLACKHOLE)
    with connect(link) as s:
        s.sendall(b"held")
        s.settimeout(SILENCE_S)
        with pytest.raises(socket.timeout):
            s.recv(1)
        s.settimeout(IO_TIMEOUT_S)
        proxy.set_state([link], LinkState.UP)
        assert recv_exactly(s, 4) == b"held"


def test_down_resets_connections_and_refuses_new_ones(proxy, echo):
    link = proxy.add_link("a->b", echo.port)
    with connect(link) as s:
        s.sendall(b"x")
        assert recv_exactly(s, 1) == b"x"
        proxy.set_state([link], LinkState.DOWN)
        with pytest.raises((ConnectionError, OSError)):
            s.sendall(b"y")
            recv_exactly(s, 1)
    with pytest.raises((ConnectionError, OSError)):
        with connect(link) as s2:   # reset at connect or at the first read
            recv_exactly(s2, 1)
    proxy.set_state([link], LinkState.UP)
    with connect(link) as s3:
        s3.sendall(b"z")
        assert recv_exactly(s3, 1) == b"z"


def test_target_that_starts_late_is_retried(proxy):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    link = proxy.add_link("a->b", port)
    with connect(link) as s:
        s.sendall(b"early")
        server = EchoServer(port)   # listening only now
        try:
            assert recv_exactly(s, 5) == b"early"
        finally:
            server.close()


def initial_message(version, sid, address):
    raw = address.encode()
    return struct.pack(">qqi", version, sid, len(raw)) + raw


@pytest.mark.parametrize("version", [-65536, -65535])
def test_initial_message_address_is_rewritten(proxy, echo, version):
    link = proxy.add_link("2->1/election", echo.port, advertise="127.0.0.1:4242")
    message = initial_message(version, 2, "127.0.0.1:39999")
    with connect(link) as s:
        # Split across writes: the proxy must wait for the whole message.
        s.sendall(message[:11])
        s.sendall(message[11:] + b"vote")
        expected = initial_message(version, 2, "127.0.0.1:4242") + b"vote"
        assert recv_exactly(s, len(expected)) == expected


def test_other_first_bytes_pass_untouched(proxy, echo):
    link = proxy.add_link("2->1/quorum", echo.port, advertise="127.0.0.1:4242")
    payload = struct.pack(">qqi", 12345, 2, 3) + b"abcrest-of-stream"
    with connect(link) as s:
        s.sendall(payload)
        assert recv_exactly(s, len(payload)) == payload
