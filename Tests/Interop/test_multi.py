"""multi (14) and multiRead (22): success, rollback, and the per-op results clients report.

Facts of Apache ZooKeeper 3.8 asserted here:
- A failed multi still answers err 0 in the reply header; the per-op results carry the codes.
  Every result is an error result (type -1): the ops before the failing one report 0 (kazoo:
  RolledBackError), the failing op its own code, the ops after it RuntimeInconsistency (-2).
- A failed multi applies nothing, consumes one zxid (like any failed write), and does not
  consume sequential numbers.
- A multi containing a read op, or a multiRead containing a write op, is answered
  MarshallingError (-5) with no results.
- multiRead never rolls back: each op succeeds or fails on its own (error result -1 + code).
"""

from kazoo.exceptions import (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError,
                              RolledBackError, RuntimeInconsistency)

import jute


def test_kazoo_transaction_success(zk, base):
    t = zk.transaction()
    t.create(f"{base}/a", b"1")
    t.set_data(f"{base}/a", b"2")
    t.check(f"{base}/a", 1)
    t.delete(f"{base}/a")
    t.create(f"{base}/b", ephemeral=True)
    results = t.commit()
    assert results[0] == f"{base}/a"
    assert results[1].version == 1 and results[1].dataLength == 1
    assert results[2:] == [True, True, f"{base}/b"]
    assert zk.exists(f"{base}/a") is None
    assert zk.exists(f"{base}/b").ephemeralOwner == zk.client_id[0]


def test_kazoo_transaction_rollback_results(zk, base):
    zk.create(f"{base}/b")
    t = zk.transaction()
    t.create(f"{base}/c")
    t.check(f"{base}/b", 5)
    t.delete(f"{base}/b")
    results = t.commit()
    assert [type(r) for r in results] == [RolledBackError, BadVersionError, RuntimeInconsistency]
    assert zk.exists(f"{base}/c") is None and zk.exists(f"{base}/b") is not None

    t = zk.transaction()
    t.create(f"{base}/d")
    t.create(f"{base}/d")
    assert [type(r) for r in t.commit()] == [RolledBackError, NodeExistsError]

    t = zk.transaction()
    t.delete(base)
    assert [type(r) for r in t.commit()] == [NotEmptyError]

    t = zk.transaction()
    t.create(f"{base}/e")
    t.create(f"{base}/missing/child")
    assert [type(r) for r in t.commit()] == [RolledBackError, NoNodeError]


def test_rolled_back_multi_consumes_no_sequence_number(zk, base):
    assert zk.create(f"{base}/s-", sequence=True) == f"{base}/s-0000000000"
    t = zk.transaction()
    t.create(f"{base}/s-", sequence=True)
    t.create(f"{base}/nope/x")
    assert [type(r) for r in t.commit()] == [RolledBackError, NoNodeError]
    assert zk.create(f"{base}/s-", sequence=True) == f"{base}/s-0000000001"


def test_ops_in_one_multi_see_each_other(zk, base):
    t = zk.transaction()
    t.create(f"{base}/p")
    t.create(f"{base}/p/q", b"x")
    t.set_data(f"{base}/p/q", b"y", version=0)
    t.create(f"{base}/p/s-", sequence=True)
    t.create(f"{base}/p/s-", sequence=True)
    results = t.commit()
    assert results[3:] == [f"{base}/p/s-0000000001", f"{base}/p/s-0000000002"]
    assert zk.get(f"{base}/p/q")[0] == b"y"


def test_raw_multi_results_and_zxids(raw, base):
    ok = [jute.op_create(f"{base}/a", b"x"), jute.op_create(f"{base}/b", b"y", opcode=jute.CREATE2),
          jute.op_set_data(f"{base}/a", b"z"), jute.op_check(f"{base}/a", 1),
          jute.op_delete(f"{base}/b")]
    err, results = raw.multi(ok)
    zxid = raw.last_zxid
    assert err == jute.OK
    # ZooKeeper 3.8 answers a create2 (15) op inside a multi with a plain create (1) result:
    # the path only, no Stat.
    assert [(t, e) for t, e, _ in results] == [(jute.CREATE, 0), (jute.CREATE, 0),
                                               (jute.SET_DATA, 0), (jute.CHECK, 0),
                                               (jute.DELETE, 0)]
    assert results[0][2] == f"{base}/a" and results[1][2] == f"{base}/b"
    # All ops of a multi share one zxid.
    assert results[2][2].mzxid == zxid and results[2][2].czxid == zxid

    failing = [jute.op_create(f"{base}/c"), jute.op_set_data(f"{base}/a", b"q"),
               jute.op_check(f"{base}/a", 99), jute.op_delete(f"{base}/a"),
               jute.op_create(f"{base}/d")]
    err, results = raw.multi(failing)
    assert err == jute.OK  # the header says OK; the results say what failed
    assert results == [(jute.ERROR, 0, None), (jute.ERROR, 0, None),
                       (jute.ERROR, jute.BAD_VERSION, None),
                       (jute.ERROR, jute.RUNTIME_INCONSISTENCY, None),
                       (jute.ERROR, jute.RUNTIME_INCONSISTENCY, None)]
    assert raw.last_zxid == zxid + 1, "a failed multi consumes one zxid"
    assert raw.exists(f"{base}/c")[0] == jute.NO_NODE
    assert raw.get_data(f"{base}/a")[1] == b"z"

    assert raw.multi([]) == (jute.OK, [])


def test_container_create_in_multi_answers_create2_result(raw, base):
    # ...whereas a createContainer (19) op inside a multi is answered as create2 (15): path
    # and Stat.
    err, results = raw.multi([jute.op_create(f"{base}/c", mode=jute.CONTAINER,
                                             opcode=jute.CREATE_CONTAINER),
                              jute.op_create(f"{base}/e", mode=jute.EPHEMERAL)])
    assert err == jute.OK
    assert results[0][:2] == (jute.CREATE2, 0)
    path, stat = results[0][2]
    assert path == f"{base}/c" and stat.czxid == raw.last_zxid and stat.ephemeralOwner == 0
    assert results[1] == (jute.CREATE, 0, f"{base}/e")


def test_multi_and_multi_read_reject_the_other_kind(raw, base):
    raw.create(f"{base}/a")
    assert raw.multi([jute.op_get_data(f"{base}/a"), jute.op_create(f"{base}/z")]) == (
        jute.MARSHALLING_ERROR, [])
    assert raw.multi([jute.op_get_data(f"{base}/a"), jute.op_create(f"{base}/z")],
                     opcode=jute.MULTI_READ) == (jute.MARSHALLING_ERROR, [])
    assert raw.exists(f"{base}/z")[0] == jute.NO_NODE


def test_multi_read(raw, base):
    raw.create(f"{base}/a", b"data-a")
    err, results = raw.multi([jute.op_get_data(f"{base}/a"), jute.op_get_children(base),
                              jute.op_get_data(f"{base}/nope"), jute.op_get_children("/nope-x"),
                              jute.op_get_data(base)], opcode=jute.MULTI_READ)
    assert err == jute.OK
    assert results[0][:2] == (jute.GET_DATA, 0) and results[0][2][0] == b"data-a"
    assert results[0][2][1].dataLength == 6
    assert results[1] == (jute.GET_CHILDREN, 0, ["a"])
    assert results[2] == (jute.ERROR, jute.NO_NODE, None)
    assert results[3] == (jute.ERROR, jute.NO_NODE, None)
    assert results[4][:2] == (jute.GET_DATA, 0) and results[4][2][1].numChildren == 1
