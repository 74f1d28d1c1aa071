"""Wire-level behaviour: the connect handshake, session revival, zxids in reply headers, special
xids, unknown opcodes, malformed requests and oversize frames (jute.maxbuffer).

Facts of Apache ZooKeeper 3.8 asserted here:
- The negotiated session timeout is the requested one clamped to [minSessionTimeout,
  maxSessionTimeout] (here [400, 20000] ms); 0 and negative requests get the minimum.
- The ConnectResponse is 37 bytes with the trailing readOnly byte if the request carried one,
  36 without.
- Reattaching a session with a wrong password, or a closed or unknown session, is answered
  timeOut 0, sessionId 0, 16 zero bytes of password, then the connection is closed.
- Reattaching a live session closes the connection that held it before.
- A client whose lastZxidSeen is ahead of the server is refused: the connection is closed
  without a ConnectResponse.
- Every failed write consumes a zxid (the reply header carries it); a read answers the last
  committed zxid; a ping is answered with xid -2 whatever xid it was sent with.
- An unknown opcode is answered Unimplemented (-6) with zxid -1 in the header, then the server
  closes the connection (without waiting for another request).
- A request whose body is truncated or missing is answered MarshallingError (-5) and the
  connection stays open; for a write opcode (create, setData, delete, multi) that error
  consumes a zxid like any failed write, for a read it does not.
- A frame longer than jute.maxbuffer (1,048,575 bytes) closes the connection; exactly
  1,048,575 is accepted. A negative frame length closes the connection.
- A client asking for a read-only session on a read-write server gets readOnly false and a
  normal session. reconfig (16) is ReconfigDisabled (-123); /zookeeper/config is empty.
"""

import struct

import pytest
from kazoo.exceptions import ConnectionLoss

import jute
from support import wait_connected

MAX_BUFFER = 0xFFFFF  # jute.maxbuffer default: 1,048,575


@pytest.mark.parametrize("requested,negotiated", [
    (1, 400), (399, 400), (400, 400), (5000, 5000), (20000, 20000), (30000, 20000), (0, 400),
    (-5, 400)])
def test_session_timeout_is_clamped(server, requested, negotiated):
    c = jute.RawClient(server.host, server.port, timeout_ms=requested)
    try:
        assert c.connect_response.timeout == negotiated
        assert c.connect_response.session_id != 0
    finally:
        c.close()


def test_connect_response_read_only_byte(server):
    with_flag = jute.RawClient(server.host, server.port, send_read_only=True)
    without = jute.RawClient(server.host, server.port, send_read_only=False)
    try:
        assert with_flag.connect_response.length == 37
        assert with_flag.connect_response.read_only is False
        assert without.connect_response.length == 36
        assert without.connect_response.read_only is None
        assert len(with_flag.connect_response.passwd) == 16
        assert with_flag.connect_response.protocol_version == 0
    finally:
        with_flag.close()
        without.close()


def assert_refused(response):
    assert (response.timeout, response.session_id, response.passwd) == (0, 0, bytes(16))


def test_session_revival_rules(server):
    first = jute.RawClient(server.host, server.port)
    sid, pw = first.session_id, first.passwd

    wrong = jute.RawClient(server.host, server.port, session_id=sid, passwd=b"x" * 16)
    assert_refused(wrong.connect_response)
    with pytest.raises(jute.ConnectionClosed):
        wrong.exists("/")
    wrong.close(close_session=False)

    again = jute.RawClient(server.host, server.port, session_id=sid, passwd=pw)
    assert again.connect_response.session_id == sid
    assert again.connect_response.passwd == pw
    with pytest.raises(jute.ConnectionClosed):
        first.exists("/")  # the server closed the session's previous connection
    first.close(close_session=False)
    assert again.exists("/")[0] == jute.OK
    again.close()  # closeSession

    closed = jute.RawClient(server.host, server.port, session_id=sid, passwd=pw)
    assert_refused(closed.connect_response)
    closed.close(close_session=False)

    unknown = jute.RawClient(server.host, server.port, session_id=0x7ABCDEF012345, passwd=pw)
    assert_refused(unknown.connect_response)
    unknown.close(close_session=False)


def test_client_ahead_of_server_is_refused(server):
    with pytest.raises(jute.ConnectionClosed):
        jute.RawClient(server.host, server.port, last_zxid=1 << 40)


def test_zxids_in_reply_headers(raw, base):
    raw.create(f"{base}/z")
    before = raw.last_zxid
    failed_create = raw.request(jute.CREATE, jute.op_create(f"{base}/z")[1])
    assert failed_create.err == jute.NODE_EXISTS and failed_create.zxid == before + 1
    failed_set = raw.request(jute.SET_DATA, jute.op_set_data(f"{base}/z", b"", 7)[1])
    assert failed_set.err == jute.BAD_VERSION and failed_set.zxid == before + 2
    read = raw.request(jute.GET_DATA, jute.op_get_data(f"{base}/z")[1])
    assert read.err == jute.OK and read.zxid == before + 2
    failed_read = raw.request(jute.GET_DATA, jute.op_get_data(f"{base}/nope")[1])
    assert failed_read.err == jute.NO_NODE and failed_read.zxid == before + 2
    _, _, stat = raw.create(f"{base}/y")
    assert stat.czxid == before + 3


def test_sync_answers_the_path_even_if_missing(raw, base):
    reply = raw.request(jute.SYNC, jute.Writer().string(f"{base}/missing").bytes())
    assert reply.err == jute.OK and reply.body.string() == f"{base}/missing"


def test_ping_reply_uses_xid_minus_two(raw, base):
    raw.create(f"{base}/p")
    before = raw.last_zxid
    raw.send_raw(jute.Writer().int(77).int(jute.PING).bytes())
    reply = raw._read_reply()
    assert (reply.xid, reply.err) == (jute.XID_PING, jute.OK)
    # The header carries the server's last zxid, like any reply.
    assert reply.zxid >= before > 0


def test_unknown_opcode_and_malformed_bodies(raw_factory, base):
    unknown = raw_factory()
    reply = unknown.request(999)
    assert (reply.err, reply.zxid) == (jute.UNIMPLEMENTED, -1)
    with pytest.raises(jute.ConnectionClosed):
        unknown._read_reply()

    c = raw_factory()

    truncated = c.request(jute.GET_DATA, jute.Writer().string(base).bytes())  # no watch flag
    assert truncated.err == jute.MARSHALLING_ERROR
    assert c.exists("/")[0] == jute.OK, "the connection survives a truncated body"

    zxid = c.last_zxid
    for opcode, consumes in [(jute.GET_DATA, 0), (jute.CREATE, 1), (jute.SET_DATA, 1),
                             (jute.DELETE, 1), (jute.EXISTS, 0), (jute.MULTI, 1),
                             (jute.ADD_WATCH, 0)]:
        reply = c.request(opcode)  # header only, no body
        assert reply.err == jute.MARSHALLING_ERROR, opcode
        assert reply.zxid == zxid + consumes, opcode
        zxid = reply.zxid
    assert c.exists("/")[0] == jute.OK


def frame_for_set_data(path, total):
    """A setData request whose frame payload is exactly ``total`` bytes."""
    fixed = 8 + 4 + len(path.encode()) + 4 + 4
    return jute.Writer().int(1).int(jute.SET_DATA).string(path).buffer(b"y" * (total - fixed)).int(-1).bytes()


def test_frame_length_limit_is_jute_maxbuffer(raw_factory, base):
    ok = raw_factory()
    ok.create(f"{base}/b")
    payload = frame_for_set_data(f"{base}/b", MAX_BUFFER)
    assert len(payload) == MAX_BUFFER
    ok.send_raw(payload)
    reply = ok._await(1)
    assert reply.err == jute.OK

    too_big = raw_factory()
    try:
        too_big.send_raw(frame_for_set_data(f"{base}/b", MAX_BUFFER + 1))
    except (ConnectionResetError, BrokenPipeError):
        # The server refuses the frame from its length prefix and closes while the rest is
        # still being sent: the client sees the connection reset under its send.
        pass
    else:
        with pytest.raises(jute.ConnectionClosed):
            too_big._read_reply()

    negative = raw_factory()
    negative.sock.sendall(struct.pack("!i", -1))
    with pytest.raises(jute.ConnectionClosed):
        negative._read_reply()

    huge = raw_factory()
    huge.sock.sendall(struct.pack("!i", 0x7FFFFFFF))
    with pytest.raises(jute.ConnectionClosed):
        huge._read_reply()

    # The server survives and serves the next client.
    after = raw_factory()
    err, data, stat = after.get_data(f"{base}/b")
    assert err == jute.OK and stat.dataLength == MAX_BUFFER - (8 + 4 + len(f"{base}/b") + 4 + 4)


def test_kazoo_oversize_write_loses_connection_then_recovers(zk, zk_factory, base):
    zk.create(f"{base}/x", b"small")
    with pytest.raises(ConnectionLoss):
        zk.set(f"{base}/x", b"z" * (2 * MAX_BUFFER))
    # kazoo reconnects with the same session; the node is unchanged.
    wait_connected(zk)
    assert zk.get(f"{base}/x")[0] == b"small"
    other = zk_factory()
    assert other.get(f"{base}/x")[0] == b"small"


def test_read_only_request_on_a_read_write_server(server):
    c = jute.RawClient(server.host, server.port, read_only=True)
    try:
        assert c.connect_response.read_only is False
        assert c.create("/ro-probe-" + str(c.session_id))[0] == jute.OK
        assert c.delete("/ro-probe-" + str(c.session_id)) == jute.OK
    finally:
        c.close()


def test_reconfig_is_disabled_and_config_node_empty(raw):
    body = jute.Writer().string("").string("").string("").long(-1).bytes()
    assert raw.request(16, body).err == -123  # ReconfigDisabled
    assert raw.get_data("/zookeeper/config")[:2] == (jute.OK, b"")
