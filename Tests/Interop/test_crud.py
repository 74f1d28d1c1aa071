"""Create, read, update, delete, and every field of the Stat, as kazoo and the raw protocol see
them. Expected values are what Apache ZooKeeper 3.8 answers."""

import pytest
from kazoo.exceptions import (BadVersionError, NoChildrenForEphemeralsError, NodeExistsError,
                              NoNodeError, NotEmptyError)

import jute


def test_create_get_set_delete_round_trip(zk, base):
    path = f"{base}/node"
    assert zk.create(path, b"hello") == path
    data, stat = zk.get(path)
    assert data == b"hello"
    assert stat.dataLength == 5
    stat2 = zk.set(path, b"world!")
    assert stat2.version == 1 and stat2.dataLength == 6
    assert zk.get(path)[0] == b"world!"
    zk.delete(path)
    assert zk.exists(path) is None
    with pytest.raises(NoNodeError):
        zk.get(path)


def test_stat_fields_on_create_and_set(raw, base):
    # One session, so every zxid below is the zxid the server put in the reply header.
    err, path, created = raw.create(f"{base}/n", b"abc")
    assert err == jute.OK
    create_zxid = raw.last_zxid
    assert created.czxid == created.mzxid == created.pzxid == create_zxid
    assert created.ctime == created.mtime and created.ctime > 0
    assert (created.version, created.cversion, created.aversion) == (0, 0, 0)
    assert created.ephemeralOwner == 0
    assert created.dataLength == 3 and created.numChildren == 0

    err, updated = raw.set_data(path, b"abcdef")
    assert err == jute.OK
    set_reply_zxid = raw.last_zxid
    assert updated.mzxid == set_reply_zxid > create_zxid
    assert updated.czxid == create_zxid and updated.ctime == created.ctime
    assert updated.mtime >= created.mtime
    assert updated.version == 1 and updated.dataLength == 6
    # setData moves neither cversion nor pzxid.
    assert updated.cversion == 0 and updated.pzxid == create_zxid

    err, data, read = raw.get_data(path)
    assert (err, data, read) == (jute.OK, b"abcdef", updated)
    err, exists_stat = raw.exists(path)
    assert exists_stat == updated


def test_parent_stat_tracks_children(raw, base):
    err, parent = raw.exists(base)
    assert err == jute.OK and parent.numChildren == 0 and parent.cversion == 0

    _, child, child_stat = raw.create(f"{base}/c1", b"x")
    _, after_create = raw.exists(base)
    assert after_create.cversion == 1
    assert after_create.numChildren == 1
    assert after_create.pzxid == child_stat.czxid
    # A child create changes neither the parent's data version nor its mzxid.
    assert after_create.version == parent.version and after_create.mzxid == parent.mzxid

    raw.set_data(child, b"changed")
    _, after_child_set = raw.exists(base)
    assert after_child_set == after_create, "a child's data change moves no parent field"

    assert raw.delete(child) == jute.OK
    delete_zxid = raw.last_zxid
    _, after_delete = raw.exists(base)
    assert after_delete.cversion == 2, "cversion counts deletes too"
    assert after_delete.numChildren == 0
    assert after_delete.pzxid == delete_zxid


def test_version_checks(zk, base):
    path = f"{base}/v"
    zk.create(path, b"0")
    with pytest.raises(BadVersionError):
        zk.set(path, b"1", version=5)
    assert zk.set(path, b"1", version=0).version == 1
    assert zk.set(path, b"2", version=-1).version == 2  # -1 matches any version
    with pytest.raises(BadVersionError):
        zk.delete(path, version=1)
    zk.delete(path, version=2)


def test_error_codes_of_plain_operations(zk, base):
    zk.create(f"{base}/a")
    with pytest.raises(NodeExistsError):
        zk.create(f"{base}/a")
    with pytest.raises(NoNodeError):
        zk.create(f"{base}/missing/child")
    zk.create(f"{base}/a/b")
    with pytest.raises(NotEmptyError):
        zk.delete(f"{base}/a")
    with pytest.raises(NoNodeError):
        zk.delete(f"{base}/nope")
    with pytest.raises(NoNodeError):
        zk.set(f"{base}/nope", b"")
    with pytest.raises(NoNodeError):
        zk.get_children(f"{base}/nope")
    assert zk.exists(f"{base}/nope") is None
    zk.create(f"{base}/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(f"{base}/eph/child")


def test_get_children_and_stat(zk, base):
    names = ["b", "a", "c"]
    for n in names:
        zk.create(f"{base}/{n}", n.encode())
    children, stat = zk.get_children(base, include_data=True)
    assert sorted(children) == sorted(names)
    assert stat.numChildren == 3 and stat.cversion == 3


def test_null_and_empty_data(raw, base):
    # A create carrying a null buffer (length -1) stores "no data": getData answers with a
    # null buffer again and dataLength 0 (ZooKeeper 3.8 keeps null distinct from empty).
    body = (jute.Writer().string(f"{base}/null").buffer(None).acls(jute.OPEN_ACL_UNSAFE)
            .int(jute.PERSISTENT).bytes())
    assert raw.request(jute.CREATE, body).err == jute.OK
    err, data, stat = raw.get_data(f"{base}/null")
    assert err == jute.OK and data is None and stat.dataLength == 0

    raw.create(f"{base}/empty", b"")
    err, data, stat = raw.get_data(f"{base}/empty")
    assert err == jute.OK and data == b"" and stat.dataLength == 0


def test_create_reply_shapes(raw, base):
    # create (1) answers only the path; create2 (15) answers path and Stat.
    err, path, stat = raw.create(f"{base}/one", opcode=jute.CREATE)
    assert (err, path, stat) == (jute.OK, f"{base}/one", None)
    err, path, stat = raw.create(f"{base}/two", opcode=jute.CREATE2)
    assert err == jute.OK and path == f"{base}/two" and stat.czxid == raw.last_zxid


def test_large_data_below_limit(zk, base):
    # 1,000,000 bytes of data fit under jute.maxbuffer (1,048,575 bytes per frame).
    payload = bytes(range(256)) * 3906 + bytes(64)
    assert len(payload) == 1_000_000
    zk.create(f"{base}/big", payload)
    data, stat = zk.get(f"{base}/big")
    assert data == payload and stat.dataLength == 1_000_000


def test_unicode_names_and_ordering(zk, base):
    names = ["ünïcødé", "日本語", "a b", "x.y", ".hidden", "..dots"]
    for n in names:
        zk.create(f"{base}/{n}", n.encode())
    assert sorted(zk.get_children(base)) == sorted(names)
    for n in names:
        assert zk.get(f"{base}/{n}")[0] == n.encode()


def test_sync_and_pipelined_writes_of_one_session(zk, base):
    # Writes of one session are applied in order: create a parent and its child without
    # waiting for the first reply (the server must validate the child against the pending
    # parent).
    a = zk.create_async(f"{base}/p")
    b = zk.create_async(f"{base}/p/c")
    c = zk.set_async(f"{base}/p/c", b"v")
    assert a.get(timeout=10) == f"{base}/p"
    assert b.get(timeout=10) == f"{base}/p/c"
    assert c.get(timeout=10).version == 1
    zk.sync(base)
    assert zk.get(f"{base}/p/c")[0] == b"v"


def test_get_ephemerals_and_all_children_number(raw_factory, base):
    owner = raw_factory()
    other = raw_factory()
    owner.create(f"{base}/e1", mode=jute.EPHEMERAL)
    owner.create(f"{base}/sub")
    owner.create(f"{base}/sub/e2", mode=jute.EPHEMERAL)
    other.create(f"{base}/theirs", mode=jute.EPHEMERAL)
    err, mine = owner.get_ephemerals(base)
    assert err == jute.OK and sorted(mine) == [f"{base}/e1", f"{base}/sub/e2"]
    # The prefix is a string prefix of the path, not a subtree root.
    err, mine = owner.get_ephemerals(f"{base}/e")
    assert mine == [f"{base}/e1"]
    # getAllChildrenNumber counts every descendant, not only direct children.
    assert owner.get_all_children_number(base) == (jute.OK, 4)
    assert owner.get_all_children_number(f"{base}/nope") == (jute.NO_NODE, None)
