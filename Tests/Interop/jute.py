"""A minimal ZooKeeper wire-protocol client for what kazoo does not expose.

kazoo normalizes paths before sending them (so it cannot send a malformed path) and has no
container or TTL creates, no addWatch / removeWatches / checkWatches, no multiRead, no
getEphemerals, no getAllChildrenNumber. This client sends exactly the bytes the protocol
(zookeeper.jute) describes, one request at a time, and reads replies synchronously; watch
notifications that arrive meanwhile are queued for ``next_event``.

Record layouts follow zookeeper-jute/src/main/resources/zookeeper.jute; every integer is
big-endian; a ustring or buffer is an int length (-1 for null) followed by the bytes.
"""

import socket
import struct
import time
from collections import namedtuple

# Opcodes (ZooDefs.OpCode).
CREATE, DELETE, EXISTS, GET_DATA, SET_DATA, GET_ACL, SET_ACL, GET_CHILDREN = 1, 2, 3, 4, 5, 6, 7, 8
SYNC, PING, GET_CHILDREN2, CHECK, MULTI, CREATE2 = 9, 11, 12, 13, 14, 15
CHECK_WATCHES, REMOVE_WATCHES, CREATE_CONTAINER, DELETE_CONTAINER, CREATE_TTL, MULTI_READ = (
    17, 18, 19, 20, 21, 22)
AUTH, SET_WATCHES, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER, SET_WATCHES2, ADD_WATCH = (
    100, 101, 103, 104, 105, 106)
CLOSE_SESSION = -11
ERROR = -1

# Special xids.
XID_NOTIFICATION, XID_PING, XID_AUTH, XID_SET_WATCHES = -1, -2, -4, -8

# Create modes.
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL = 0, 1, 2, 3
CONTAINER, PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 4, 5, 6

# addWatch modes and watcher types (removeWatches / checkWatches).
ADD_WATCH_PERSISTENT, ADD_WATCH_PERSISTENT_RECURSIVE = 0, 1
WATCHER_CHILDREN, WATCHER_DATA, WATCHER_ANY = 1, 2, 3
WATCHER_PERSISTENT, WATCHER_PERSISTENT_RECURSIVE = 4, 5

# Event types and states.
EV_NONE, EV_CREATED, EV_DELETED, EV_DATA_CHANGED, EV_CHILDREN_CHANGED = -1, 1, 2, 3, 4
EV_DATA_WATCH_REMOVED, EV_CHILD_WATCH_REMOVED, EV_PERSISTENT_WATCH_REMOVED = 5, 6, 7
STATE_SYNC_CONNECTED = 3

# Error codes (KeeperException.Code).
OK = 0
RUNTIME_INCONSISTENCY = -2
MARSHALLING_ERROR = -5
UNIMPLEMENTED = -6
BAD_ARGUMENTS = -8
NO_NODE = -101
NO_AUTH = -102
BAD_VERSION = -103
NO_CHILDREN_FOR_EPHEMERALS = -108
NODE_EXISTS = -110
NOT_EMPTY = -111
INVALID_ACL = -114
NO_WATCHER = -121

OPEN_ACL_UNSAFE = [(31, "world", "anyone")]

Stat = namedtuple("Stat", "czxid mzxid ctime mtime version cversion aversion ephemeralOwner "
                          "dataLength numChildren pzxid")
ConnectResponse = namedtuple("ConnectResponse",
                             "protocol_version timeout session_id passwd read_only length")
Reply = namedtuple("Reply", "xid zxid err body")
WatchEvent = namedtuple("WatchEvent", "type state path")

_STAT = struct.Struct("!qqqqiiiqiiq")

# Limits of this client.
MAX_FRAME = 64 * 1024 * 1024  # refuse to allocate more for one reply
DEFAULT_IO_TIMEOUT_S = 10.0


class ConnectionClosed(Exception):
    """The server closed the connection (or it broke) while the client waited for a reply."""


class Writer:
    def __init__(self):
        self.buf = bytearray()

    def int(self, v):
        self.buf += struct.pack("!i", v)
        return self

    def long(self, v):
        self.buf += struct.pack("!q", v)
        return self

    def bool(self, v):
        self.buf += struct.pack("!B", 1 if v else 0)
        return self

    def buffer(self, b):
        if b is None:
            return self.int(-1)
        self.int(len(b))
        self.buf += b
        return self

    def string(self, s):
        if s is None:
            return self.int(-1)
        if isinstance(s, str):
            s = s.encode("utf-8")
        return self.buffer(s)

    def strings(self, items):
        self.int(len(items))
        for s in items:
            self.string(s)
        return self

    def acls(self, acls):
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).string(scheme).string(ident)
        return self

    def bytes(self):
        return bytes(self.buf)


class Reader:
    def __init__(self, data, offset=0):
        self.data = data
        self.offset = offset

    def int(self):
        (v,) = struct.unpack_from("!i", self.data, self.offset)
        self.offset += 4
        return v

    def long(self):
        (v,) = struct.unpack_from("!q", self.data, self.offset)
        self.offset += 8
        return v

    def bool(self):
        v = self.data[self.offset]
        self.offset += 1
        return v != 0

    def buffer(self):
        n = self.int()
        if n < 0:
            return None
        v = self.data[self.offset:self.offset + n]
        if len(v) != n:
            raise ValueError(f"truncated buffer: want {n} bytes, have {len(v)}")
        self.offset += n
        return bytes(v)

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def strings(self):
        return [self.string() for _ in range(self.int())]

    def stat(self):
        v = Stat._make(_STAT.unpack_from(self.data, self.offset))
        self.offset += _STAT.size
        return v

    def acls(self):
        return [(self.int(), self.string(), self.string()) for _ in range(self.int())]

    def remaining(self):
        return len(self.data) - self.offset


class RawClient:
    """One session over one TCP connection; requests are sent and answered one at a time."""

    def __init__(self, host, port, timeout_ms=10000, session_id=0, passwd=b"\0" * 16,
                 last_zxid=0, read_only=False, send_read_only=True, io_timeout=DEFAULT_IO_TIMEOUT_S):
        self.host, self.port = host, port
        self.timeout_ms = timeout_ms
        self.read_only, self.send_read_only = read_only, send_read_only
        self.io_timeout = io_timeout
        self.xid = 0
        self.events = []
        self.last_zxid = last_zxid
        self._connect(session_id, passwd)

    def _connect(self, session_id, passwd):
        self.sock = socket.create_connection((self.host, self.port), timeout=self.io_timeout)
        w = Writer().int(0).long(self.last_zxid).int(self.timeout_ms).long(session_id)
        w.buffer(passwd)
        if self.send_read_only:
            w.bool(self.read_only)
        self._send_frame(w.bytes())
        payload = self._read_frame()
        r = Reader(payload)
        proto, timeout, sid, pw = r.int(), r.int(), r.long(), r.buffer()
        ro = r.bool() if r.remaining() >= 1 else None
        self.connect_response = ConnectResponse(proto, timeout, sid, pw, ro, len(payload))
        self.session_id, self.passwd = sid, pw

    def reconnect(self):
        """Drop this TCP connection (without closing the session) and attach the session to a
        new one, carrying the last zxid seen, as a client does after a network failure."""
        self.sock.close()
        self._connect(self.session_id, self.passwd)
        return self.connect_response

    # -- framing ---------------------------------------------------------------------------

    def _send_frame(self, payload):
        self.sock.sendall(struct.pack("!i", len(payload)) + payload)

    def _read_exact(self, n):
        chunks, have = [], 0
        while have < n:
            try:
                data = self.sock.recv(min(n - have, 1 << 20))
            except ConnectionResetError as e:
                raise ConnectionClosed(str(e)) from None
            if not data:
                raise ConnectionClosed(f"server closed the connection ({have} of {n} bytes read)")
            chunks.append(data)
            have += len(data)
        return b"".join(chunks)

    def _read_frame(self):
        (n,) = struct.unpack("!i", self._read_exact(4))
        if n < 0 or n > MAX_FRAME:
            raise ValueError(f"frame length {n} out of range")
        return self._read_exact(n)

    def _read_reply(self):
        payload = self._read_frame()
        r = Reader(payload)
        xid, zxid, err = r.int(), r.long(), r.int()
        if zxid > 0:
            self.last_zxid = max(self.last_zxid, zxid)
        return Reply(xid, zxid, err, Reader(payload, r.offset))

    def _await(self, xid):
        while True:
            reply = self._read_reply()
            if reply.xid == XID_NOTIFICATION:
                r = reply.body
                self.events.append(WatchEvent(r.int(), r.int(), r.string()))
                continue
            if reply.xid == xid:
                return reply
            if reply.xid == XID_PING:
                continue
            raise AssertionError(f"reply for xid {reply.xid} while waiting for xid {xid}")

    def send_raw(self, payload):
        """Send one frame as given (for malformed-request tests)."""
        self._send_frame(payload)

    def request(self, opcode, body=b"", xid=None):
        """Send one request and return its Reply (err, zxid, body reader)."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self._send_frame(Writer().int(xid).int(opcode).bytes() + body)
        return self._await(xid)

    def next_event(self, timeout=5.0):
        """The next watch notification, waiting up to ``timeout`` seconds (pings keep the
        session alive meanwhile); None if none arrives."""
        if self.events:
            return self.events.pop(0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, min(0.5, deadline - time.monotonic())))
            try:
                reply = self._read_reply()
            except socket.timeout:
                self.ping()
                continue
            finally:
                self.sock.settimeout(self.io_timeout)
            if reply.xid == XID_NOTIFICATION:
                r = reply.body
                return WatchEvent(r.int(), r.int(), r.string())
        return None

    def drain_events(self):
        """Every notification the server sent before answering one more request.

        A server sends a session's notifications in order with its replies, and a write's
        watches are triggered before that write is answered; so once other sessions' writes
        have returned, a round trip on this session collects every event they caused.
        """
        self.exists("/")
        out = list(self.events)
        self.events.clear()
        return out

    def close(self, close_session=True):
        try:
            if close_session:
                try:
                    self.request(CLOSE_SESSION)
                except (ConnectionClosed, OSError):
                    pass
        finally:
            self.sock.close()

    # -- operations ------------------------------------------------------------------------

    def ping(self):
        self._send_frame(Writer().int(XID_PING).int(PING).bytes())

    def create(self, path, data=b"", acl=OPEN_ACL_UNSAFE, mode=PERSISTENT, ttl=None, opcode=None):
        """create / create2 / createContainer / createTTL; returns (err, path, stat)."""
        if opcode is None:
            if mode == CONTAINER:
                opcode = CREATE_CONTAINER
            elif mode in (PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL):
                opcode = CREATE_TTL
            else:
                opcode = CREATE2
        w = Writer().string(path).buffer(data).acls(acl).int(mode)
        if opcode == CREATE_TTL:
            w.long(ttl if ttl is not None else 0)
        reply = self.request(opcode, w.bytes())
        if reply.err != OK:
            return reply.err, None, None
        created = reply.body.string()
        stat = reply.body.stat() if opcode != CREATE else None
        return OK, created, stat

    def delete(self, path, version=-1):
        return self.request(DELETE, Writer().string(path).int(version).bytes()).err

    def exists(self, path, watch=False):
        reply = self.request(EXISTS, Writer().string(path).bool(watch).bytes())
        return reply.err, (reply.body.stat() if reply.err == OK else None)

    def get_data(self, path, watch=False):
        reply = self.request(GET_DATA, Writer().string(path).bool(watch).bytes())
        if reply.err != OK:
            return reply.err, None, None
        return OK, reply.body.buffer(), reply.body.stat()

    def set_data(self, path, data, version=-1):
        reply = self.request(SET_DATA, Writer().string(path).buffer(data).int(version).bytes())
        return reply.err, (reply.body.stat() if reply.err == OK else None)

    def get_children2(self, path, watch=False):
        reply = self.request(GET_CHILDREN2, Writer().string(path).bool(watch).bytes())
        if reply.err != OK:
            return reply.err, None, None
        return OK, reply.body.strings(), reply.body.stat()

    def add_watch(self, path, mode):
        return self.request(ADD_WATCH, Writer().string(path).int(mode).bytes()).err

    def remove_watches(self, path, watcher_type):
        return self.request(REMOVE_WATCHES, Writer().string(path).int(watcher_type).bytes()).err

    def check_watches(self, path, watcher_type):
        return self.request(CHECK_WATCHES, Writer().string(path).int(watcher_type).bytes()).err

    def get_ephemerals(self, prefix):
        reply = self.request(GET_EPHEMERALS, Writer().string(prefix).bytes())
        return reply.err, (reply.body.strings() if reply.err == OK else None)

    def get_all_children_number(self, path):
        reply = self.request(GET_ALL_CHILDREN_NUMBER, Writer().string(path).bytes())
        return reply.err, (reply.body.int() if reply.err == OK else None)

    def set_watches(self, relative_zxid, data=(), exist=(), child=()):
        """setWatches (101), the form older clients send on reconnect."""
        w = Writer().long(relative_zxid).strings(list(data)).strings(list(exist))
        w.strings(list(child))
        return self.request(SET_WATCHES, w.bytes(), xid=XID_SET_WATCHES).err

    def set_watches2(self, relative_zxid, data=(), exist=(), child=(), persistent=(),
                     persistent_recursive=()):
        w = Writer().long(relative_zxid).strings(list(data)).strings(list(exist))
        w.strings(list(child)).strings(list(persistent)).strings(list(persistent_recursive))
        return self.request(SET_WATCHES2, w.bytes(), xid=XID_SET_WATCHES).err

    def auth(self, scheme, credential):
        w = Writer().int(0).string(scheme).buffer(credential)
        return self.request(AUTH, w.bytes(), xid=XID_AUTH).err

    def multi(self, ops, opcode=MULTI):
        """ops: list of (opcode, body bytes). Returns (err, [(type, err, value)])."""
        w = Writer()
        for op, body in ops:
            w.int(op).bool(False).int(-1)
            w.buf += body
        w.int(-1).bool(True).int(-1)
        reply = self.request(opcode, w.bytes())
        results = []
        r = reply.body
        if r.remaining() == 0:
            return reply.err, results
        while True:
            typ, done, err = r.int(), r.bool(), r.int()
            if done:
                break
            if typ == ERROR:
                results.append((typ, r.int(), None))
            elif typ == CREATE:
                results.append((typ, err, r.string()))
            elif typ == CREATE2:
                results.append((typ, err, (r.string(), r.stat())))
            elif typ in (DELETE, CHECK):
                results.append((typ, err, None))
            elif typ == SET_DATA:
                results.append((typ, err, r.stat()))
            elif typ == GET_DATA:
                results.append((typ, err, (r.buffer(), r.stat())))
            elif typ == GET_CHILDREN:
                results.append((typ, err, r.strings()))
            else:
                raise AssertionError(f"unexpected multi result type {typ}")
        return reply.err, results


# Bodies for multi / multiRead operations.

def op_create(path, data=b"", acl=OPEN_ACL_UNSAFE, mode=PERSISTENT, opcode=CREATE):
    return opcode, Writer().string(path).buffer(data).acls(acl).int(mode).bytes()


def op_delete(path, version=-1):
    return DELETE, Writer().string(path).int(version).bytes()


def op_set_data(path, data, version=-1):
    return SET_DATA, Writer().string(path).buffer(data).int(version).bytes()


def op_check(path, version):
    return CHECK, Writer().string(path).int(version).bytes()


def op_get_data(path):
    return GET_DATA, Writer().string(path).bool(False).bytes()


def op_get_children(path):
    return GET_CHILDREN, Writer().string(path).bool(False).bytes()
