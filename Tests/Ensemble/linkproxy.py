"""TCP proxies for the peer links of an ensemble, all driven by one selector thread.

Every directed peer link (server i opening a connection to server j, on j's quorum port or on j's
election port) goes through its own listening port here, so the harness can break links one by
one without root, network namespaces or iptables. Each link is in one of three states:

- ``UP``: bytes flow both ways.
- ``BLACKHOLE``: a network partition as TCP sees it. Nothing is read or written on the link's
  connections, so the kernel buffers fill and the senders block or time out, exactly as when
  packets are dropped; new connections are accepted but held without a byte passing (a SYN
  that is never answered looks the same to the peer: no progress until its own timeout).
  Healing resumes the held connections with every byte in order, as TCP retransmission would.
- ``DOWN``: connections are closed at once and new ones are closed as soon as accepted (a
  crashed switch port, or a firewall answering with resets).

All sockets are non-blocking and owned by the one thread; other threads change link states
through ``set_state``, which waits (with a deadline) until the thread has applied the change, so
a test knows that when ``partition()`` returns, the links really are cut.

Election links need one rewrite. The first message on an election connection (ZooKeeper's
``QuorumCnxManager`` InitialMessage: protocol version -65536 or -65535, the sender's sid, then
the sender's own election address as a length-prefixed string) advertises the address the
sender binds. When a lower sid connects to a higher one, the higher side drops that connection
and connects back to the ADVERTISED address, which would bypass the proxy. So an election
link may carry ``advertise``: the proxy replaces the advertised address with the port of the
reverse link, and the connection back passes through the proxy as well. A first message that is
not an InitialMessage is forwarded untouched.
"""

import enum
import errno
import queue
import selectors
import socket
import struct
import threading
import time
import traceback

# Limits of the proxy, named in one place.
BUFFER_LIMIT = 1 << 20       # bytes buffered per direction before the proxy stops reading
RECV_SIZE = 65536            # bytes read per recv()
UPSTREAM_CONNECT_TIMEOUT_S = 2.0  # loopback: a live listener answers at once
# A peer that connects while its target is not listening yet (a leader that has just won its
# election) is held while the proxy retries, instead of being reset at once: with a direct
# connection it would have been refused and would retry its connect, which a reset after a
# successful connect does not make it do. A target still down after this is really down.
UPSTREAM_RETRY_S = 3.0
UPSTREAM_RETRY_INTERVAL_S = 0.02
COMMAND_DEADLINE_S = 10.0    # how long set_state waits for the proxy thread
# ZooKeeper's InitialMessage (QuorumCnxManager): its protocol versions and address size limit.
INITIAL_MESSAGE_VERSIONS = (-65536, -65535)
INITIAL_MESSAGE_MAX_ADDRESS = 2048
LISTEN_BACKLOG = 64


class LinkState(enum.Enum):
    UP = "up"
    BLACKHOLE = "blackhole"
    DOWN = "down"


class ProxyError(Exception):
    """The proxy thread failed or did not answer in time; the message says which link."""


class Link:
    """One directed link: a listening port that forwards to ``target_port``."""

    def __init__(self, name, target_port, listener, advertise=None):
        self.name = name
        self.advertise = advertise
        self.target_port = target_port
        self.listener = listener
        self.port = listener.getsockname()[1]
        self.state = LinkState.UP
        self.held = []       # sockets accepted while blackholed, not yet connected upstream
        self.connecting = []  # (socket, retry deadline): accepted, target not listening yet
        self.pairs = set()
        self.accepted = 0

    def __repr__(self):
        return f"Link({self.name} :{self.port}->:{self.target_port} {self.state.value})"


class _Pair:
    """A proxied connection: ``a`` is the side that connected to us, ``b`` the upstream."""

    def __init__(self, link, a, b):
        self.link = link
        self.a = a
        self.b = b
        self.a_to_b = bytearray()
        # Bytes from a held back until the InitialMessage is rewritten (None: nothing to do).
        self.head = bytearray() if link.advertise is not None else None
        self.b_to_a = bytearray()
        self.a_eof = False
        self.b_eof = False
        self.closed = False


class LinkProxy:
    """All peer-link proxies of one ensemble; start() it, add links, close() at the end."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.links = {}
        self.commands = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._masks = {}  # socket -> registered event mask (absent: not registered)
        self._stopping = False
        self.failure = None
        self.failure_trace = ""
        self.thread = threading.Thread(target=self._run, name="link-proxy", daemon=True)

    # -- API (any thread) ------------------------------------------------------------------

    def start(self):
        self.thread.start()

    def add_link(self, name, target_port, advertise=None):
        """A new link to 127.0.0.1:target_port; returns it (its ``port`` is where to connect).
        ``advertise``: for an election link, the "host:port" written over the address in the
        connection's InitialMessage (see the module's doc)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(LISTEN_BACKLOG)
        listener.setblocking(False)
        link = Link(name, target_port, listener, advertise)
        self._call(lambda: self._add(link))
        return link

    def set_state(self, links, state):
        """Put every link of ``links`` in ``state``; returns once the proxy thread applied it."""
        links = list(links)
        self._call(lambda: [self._apply_state(link, state) for link in links])

    def close(self):
        if not self.thread.is_alive():
            return
        self._call(self._shutdown)
        self.thread.join(COMMAND_DEADLINE_S)

    def stats(self):
        """Per link: (state, live connections, connections accepted so far)."""
        result = {}
        self._call(lambda: result.update(
            {name: (l.state.value, len(l.pairs), l.accepted) for name, l in self.links.items()}))
        return result

    def _call(self, fn):
        if self.failure is not None:
            raise ProxyError(f"the link proxy thread failed earlier: {self.failure!r}\n{self.failure_trace}")
        done = threading.Event()
        box = {}

        def run():
            try:
                fn()
            except BaseException as e:  # handed back to the caller below
                box["error"] = e
            finally:
                done.set()

        self.commands.put(run)
        try:
            self._wake_w.send(b"x")
        except BlockingIOError:
            pass  # the wake-up pipe is full: the thread is going to wake anyway
        except OSError as e:
            # The thread closed its wake-up socket on its way out: it failed just now (an
            # exception in it between the check above and this send).
            self.thread.join(COMMAND_DEADLINE_S)
            raise ProxyError(f"the link proxy thread stopped: {self.failure!r}\n{self.failure_trace}") from e
        if not done.wait(COMMAND_DEADLINE_S):
            raise ProxyError(f"the link proxy thread did not answer within {COMMAND_DEADLINE_S}s "
                             f"(alive: {self.thread.is_alive()}, failure: {self.failure!r})")
        if "error" in box:
            raise box["error"]

    # -- the proxy thread ------------------------------------------------------------------

    def _run(self):
        try:
            while not self._stopping:
                retrying = any(link.connecting for link in self.links.values())
                timeout = UPSTREAM_RETRY_INTERVAL_S if retrying else 1.0
                for key, events in self.selector.select(timeout=timeout):
                    kind, obj = key.data
                    if kind == "wake":
                        self._drain_commands()
                    elif kind == "listener":
                        self._accept(obj)
                    elif kind == "pair":
                        self._pump(obj, key.fileobj, events)
                    if self._stopping:
                        break
                self._drain_commands()
                if retrying:
                    self._retry_connects()
        except BaseException as e:
            self.failure_trace = traceback.format_exc()
            self.failure = e
            raise
        finally:
            self._close_everything()

    def _drain_commands(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            command()

    def _add(self, link):
        self.links[link.name] = link
        self._set_mask(link.listener, selectors.EVENT_READ, ("listener", link))

    def _apply_state(self, link, state):
        previous, link.state = link.state, state
        if state is LinkState.DOWN:
            for pair in list(link.pairs):
                self._close_pair(pair)
            for s in link.held + [s for s, _ in link.connecting]:
                _close(s, reset=True)
            link.held.clear()
            link.connecting.clear()
        elif state is LinkState.BLACKHOLE:
            link.held += [s for s, _ in link.connecting]
            link.connecting.clear()
        elif state is LinkState.UP and previous is LinkState.BLACKHOLE:
            held, link.held = link.held, []
            for s in held:
                self._connect_upstream(link, s)
        for pair in list(link.pairs):
            self._update_pair(pair)

    def _accept(self, link):
        while True:
            try:
                s, _ = link.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise ProxyError(f"{link.name}: accept failed: {e}") from e
                return
            link.accepted += 1
            s.setblocking(False)
            if link.state is LinkState.DOWN:
                _close(s, reset=True)
            elif link.state is LinkState.BLACKHOLE:
                link.held.append(s)
            else:
                self._connect_upstream(link, s)

    def _retry_connects(self):
        now = time.monotonic()
        for link in self.links.values():
            waiting, link.connecting = link.connecting, []
            for a, deadline in waiting:
                self._connect_upstream(link, a, deadline, now)

    def _connect_upstream(self, link, a, deadline=None, now=None):
        now = now if now is not None else time.monotonic()
        try:
            b = socket.create_connection(("127.0.0.1", link.target_port),
                                         timeout=UPSTREAM_CONNECT_TIMEOUT_S)
        except OSError:
            deadline = deadline if deadline is not None else now + UPSTREAM_RETRY_S
            if now < deadline:
                link.connecting.append((a, deadline))
            else:
                # Still not listening (a killed server): the peer sees its connection reset,
                # as it would see a refused connect without the proxy.
                _close(a, reset=True)
            return
        b.setblocking(False)
        for s in (a, b):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = _Pair(link, a, b)
        link.pairs.add(pair)
        self._update_pair(pair)

    def _pump(self, pair, sock, events):
        if pair.closed:
            return
        src_is_a = sock is pair.a
        if events & selectors.EVENT_READ:
            buf = pair.a_to_b if src_is_a else pair.b_to_a
            try:
                data = sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._close_pair(pair)
                return
            if data == b"":
                if src_is_a:
                    pair.a_eof = True
                else:
                    pair.b_eof = True
            elif data:
                if src_is_a and pair.head is not None:
                    pair.head += data
                    _rewrite_initial_message(pair)
                else:
                    buf += data
        if events & selectors.EVENT_WRITE:
            buf = pair.b_to_a if src_is_a else pair.a_to_b
            if buf:
                try:
                    sent = sock.send(buf)
                    del buf[:sent]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self._close_pair(pair)
                    return
        self._update_pair(pair)

    def _update_pair(self, pair):
        if pair.closed:
            return
        # One side closed: deliver what it sent before closing, then close both (a peer whose
        # process died still gets the bytes that process had written, as over a real network).
        if (pair.a_eof and not pair.a_to_b) or (pair.b_eof and not pair.b_to_a):
            self._close_pair(pair)
            return
        flowing = pair.link.state is LinkState.UP
        read = selectors.EVENT_READ
        write = selectors.EVENT_WRITE
        mask_a = 0
        mask_b = 0
        if flowing:
            if not pair.a_eof and len(pair.a_to_b) < BUFFER_LIMIT:
                mask_a |= read
            if not pair.b_eof and len(pair.b_to_a) < BUFFER_LIMIT:
                mask_b |= read
            if pair.b_to_a:
                mask_a |= write
            if pair.a_to_b:
                mask_b |= write
        self._set_mask(pair.a, mask_a, ("pair", pair))
        self._set_mask(pair.b, mask_b, ("pair", pair))

    def _set_mask(self, sock, mask, data):
        current = self._masks.get(sock)
        if mask == 0:
            if current is not None:
                self.selector.unregister(sock)
                del self._masks[sock]
        elif current is None:
            self.selector.register(sock, mask, data)
            self._masks[sock] = mask
        elif current != mask:
            self.selector.modify(sock, mask, data)
            self._masks[sock] = mask

    def _close_pair(self, pair):
        if pair.closed:
            return
        pair.closed = True
        pair.link.pairs.discard(pair)
        for s in (pair.a, pair.b):
            self._set_mask(s, 0, None)
            _close(s, reset=pair.link.state is LinkState.DOWN)

    def _shutdown(self):
        self._stopping = True

    def _close_everything(self):
        for link in self.links.values():
            for pair in list(link.pairs):
                self._close_pair(pair)
            for s in link.held + [s for s, _ in link.connecting]:
                _close(s)
            link.held.clear()
            link.connecting.clear()
            self._set_mask(link.listener, 0, None)
            _close(link.listener)
        self.selector.close()
        _close(self._wake_r)
        _close(self._wake_w)


def _close(s, reset=False):
    try:
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST, as a refusing host would.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def _rewrite_initial_message(pair):
    """Move ``pair.head`` to ``pair.a_to_b`` once it holds a whole InitialMessage, with the
    advertised address replaced; anything else is moved untouched."""
    head = pair.head
    if len(head) < 20:
        if pair.a_eof:
            pair.a_to_b += head
            pair.head = None
        return
    version, sid, length = struct.unpack(">qqi", head[:20])
    if version not in INITIAL_MESSAGE_VERSIONS or not 0 <= length <= INITIAL_MESSAGE_MAX_ADDRESS:
        pair.a_to_b += head
        pair.head = None
        return
    if len(head) < 20 + length:
        return
    address = pair.link.advertise.encode()
    pair.a_to_b += struct.pack(">qqi", version, sid, len(address)) + address + head[20 + length:]
    pair.head = None
