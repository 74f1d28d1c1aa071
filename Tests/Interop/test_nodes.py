"""Sequential, ephemeral, container and TTL znodes."""

import itertools

from kazoo.exceptions import NoNodeError

import jute
from serverctl import CONTAINER_CHECK_INTERVAL_MS, wait_until
from support import Events

# Containers and TTL nodes are removed by a periodic sweep (every CONTAINER_CHECK_INTERVAL_MS);
# give it many periods on a loaded machine.
SWEEP_DEADLINE_S = 15.0 + 50 * CONTAINER_CHECK_INTERVAL_MS / 1000
_probe_numbers = itertools.count()


def sweep_fence(zk, raw, base):
    """Return once every container or TTL node that was due when this was called is gone.

    A sweep collects its candidates first and then deletes them one by one (ZooKeeper paces
    the deletes), so a probe container emptied now may go before an older candidate of the
    same sweep. A second probe, emptied after the first is gone, can only go in a later sweep,
    whose deletes are ordered after every delete of the earlier one.
    """
    for _ in range(2):
        probe = f"{base}/sweep-probe-{next(_probe_numbers)}"
        assert raw.create(probe, mode=jute.CONTAINER)[0] == jute.OK
        zk.create(f"{probe}/kid")
        zk.delete(f"{probe}/kid")
        wait_until(lambda: zk.exists(probe) is None, SWEEP_DEADLINE_S,
                   f"sweep probe {probe} to go")


def test_sequential_suffix_counts_child_creates_only(raw, base):
    # The suffix is the parent's count of child creates (ZooKeeper's stored cversion), formatted
    # %010d. The cversion clients see is 2 * creates - numChildren, i.e. creates + deletes.
    assert raw.create(f"{base}/s-", mode=jute.PERSISTENT_SEQUENTIAL)[1] == f"{base}/s-0000000000"
    raw.create(f"{base}/plain")
    assert raw.delete(f"{base}/plain") == jute.OK
    _, stat = raw.exists(base)
    assert stat.cversion == 3 and stat.numChildren == 1  # 2 creates + 1 delete
    # Two creates so far, so the next suffix is 2 although cversion is 3.
    assert raw.create(f"{base}/s-", mode=jute.EPHEMERAL_SEQUENTIAL)[1] == f"{base}/s-0000000002"
    # A failed create does not consume a number.
    assert raw.create(f"{base}/s-0000000000")[0] == jute.NODE_EXISTS
    assert raw.create(f"{base}/x", mode=jute.PERSISTENT_SEQUENTIAL)[1] == f"{base}/x0000000003"


def test_sequential_names_are_unique_under_concurrency(zk_factory, base):
    clients = [zk_factory() for _ in range(4)]
    pending = [c.create_async(f"{base}/q-", sequence=True) for c in clients for _ in range(25)]
    names = [p.get(timeout=30) for p in pending]
    assert len(set(names)) == 100
    suffixes = sorted(int(n.rsplit("-", 1)[1]) for n in names)
    assert suffixes == list(range(100))


def test_ephemeral_owner_and_removal_on_close(zk_factory, base):
    owner = zk_factory()
    watcher = zk_factory()
    path = owner.create(f"{base}/eph", b"x", ephemeral=True)
    stat = owner.exists(path)
    assert stat.ephemeralOwner == owner.client_id[0] != 0
    seq = owner.create(f"{base}/eseq-", ephemeral=True, sequence=True)
    events = Events()
    assert watcher.exists(path, watch=events) is not None
    owner.stop()  # closeSession: ephemerals go at once, not at session timeout
    event = events.next()
    assert (event.type, event.path) == ("DELETED", path)
    assert watcher.exists(path) is None and watcher.exists(seq) is None


def test_container_deleted_after_last_child_goes(zk, raw, base):
    err, used, stat = raw.create(f"{base}/used", mode=jute.CONTAINER)
    assert err == jute.OK
    # A container is reported as an ordinary node: ephemeralOwner 0.
    assert stat.ephemeralOwner == 0
    err, never_used, _ = raw.create(f"{base}/never-used", mode=jute.CONTAINER)
    assert err == jute.OK
    zk.create(f"{used}/child")
    zk.delete(f"{used}/child")
    wait_until(lambda: zk.exists(used) is None, SWEEP_DEADLINE_S, "the emptied container to go")
    # A container that never had a child is kept (ZooKeeper only deletes containers whose
    # cversion > 0).
    sweep_fence(zk, raw, base)
    assert zk.exists(never_used) is not None


def test_container_with_children_is_kept(zk, raw, base):
    _, container, _ = raw.create(f"{base}/c", mode=jute.CONTAINER)
    zk.create(f"{container}/a")
    zk.create(f"{container}/b")
    zk.delete(f"{container}/a")
    sweep_fence(zk, raw, base)
    assert zk.get_children(container) == ["b"]


def test_ttl_node_expires(zk, raw, base):
    err, path, stat = raw.create(f"{base}/ttl", b"d", mode=jute.PERSISTENT_WITH_TTL, ttl=300)
    assert err == jute.OK
    assert stat.ephemeralOwner == 0  # the TTL is not visible in the Stat
    err, seq, _ = raw.create(f"{base}/ttls-", mode=jute.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=300)
    assert err == jute.OK and seq == f"{base}/ttls-0000000001"
    wait_until(lambda: zk.exists(path) is None and zk.exists(seq) is None, SWEEP_DEADLINE_S,
               "TTL nodes to expire")


def test_ttl_node_with_children_is_kept(zk, raw, base):
    _, parent, _ = raw.create(f"{base}/ttl-parent", mode=jute.PERSISTENT_WITH_TTL, ttl=200)
    zk.create(f"{parent}/child")
    _, probe, _ = raw.create(f"{base}/ttl-probe", mode=jute.PERSISTENT_WITH_TTL, ttl=200)
    wait_until(lambda: zk.exists(probe) is None, SWEEP_DEADLINE_S, "the probe TTL node to go")
    sweep_fence(zk, raw, base)  # the parent's TTL has passed too by now
    assert zk.exists(parent) is not None
    zk.delete(f"{parent}/child")
    wait_until(lambda: zk.exists(parent) is None, SWEEP_DEADLINE_S, "the emptied TTL node to go")


def test_ttl_argument_checks(raw, base):
    # createTTL (21) with a TTL outside [1, 2^40 - 1] or a non-TTL mode, and create2 with a TTL
    # mode, are BadArguments (with extendedTypesEnabled=true; without it, every TTL create is
    # Unimplemented).
    p = f"{base}/t"
    assert raw.create(p, mode=jute.PERSISTENT_WITH_TTL, ttl=0)[0] == jute.BAD_ARGUMENTS
    assert raw.create(p, mode=jute.PERSISTENT_WITH_TTL, ttl=-1)[0] == jute.BAD_ARGUMENTS
    assert raw.create(p, mode=jute.PERSISTENT_WITH_TTL, ttl=1 << 62)[0] == jute.BAD_ARGUMENTS
    assert raw.create(p, mode=jute.PERSISTENT_WITH_TTL, ttl=1 << 40)[0] == jute.BAD_ARGUMENTS
    assert raw.create(f"{p}-max", mode=jute.PERSISTENT_WITH_TTL, ttl=(1 << 40) - 1)[0] == jute.OK
    assert raw.create(p, mode=jute.EPHEMERAL, ttl=1000, opcode=jute.CREATE_TTL)[0] == jute.BAD_ARGUMENTS
    assert raw.create(p, mode=jute.PERSISTENT_WITH_TTL, opcode=jute.CREATE2)[0] == jute.BAD_ARGUMENTS
    assert raw.exists(p)[0] == jute.NO_NODE


def test_deleted_node_is_gone_for_every_read(zk, base):
    zk.create(f"{base}/gone", b"x")
    zk.delete(f"{base}/gone")
    assert zk.exists(f"{base}/gone") is None
    for read in (zk.get, zk.get_children, zk.get_acls):
        try:
            read(f"{base}/gone")
        except NoNodeError:
            continue
        raise AssertionError(f"{read.__name__} of a deleted node did not raise NoNode")


def test_container_is_decided_by_the_opcode_not_the_mode(raw_factory, zk, base):
    # ZooKeeper 3.8: create/create2 with mode CONTAINER (4) make a plain persistent node;
    # createContainer (19) makes a container whatever mode it carries (even EPHEMERAL).
    owner = raw_factory()
    assert owner.create(f"{base}/by-mode", mode=jute.CONTAINER, opcode=jute.CREATE)[0] == jute.OK
    assert owner.create(f"{base}/by-mode2", mode=jute.CONTAINER, opcode=jute.CREATE2)[0] == jute.OK
    assert owner.create(f"{base}/by-op", mode=jute.PERSISTENT,
                        opcode=jute.CREATE_CONTAINER)[0] == jute.OK
    err, _, stat = owner.create(f"{base}/by-op-eph", mode=jute.EPHEMERAL,
                                opcode=jute.CREATE_CONTAINER)
    assert err == jute.OK and stat.ephemeralOwner == 0
    for name in ("by-mode", "by-mode2", "by-op"):
        zk.create(f"{base}/{name}/kid")
        zk.delete(f"{base}/{name}/kid")
    sweep_fence(zk, owner, base)
    assert zk.exists(f"{base}/by-op") is None
    assert zk.exists(f"{base}/by-mode") is not None and zk.exists(f"{base}/by-mode2") is not None
    owner.close()
    assert zk.exists(f"{base}/by-op-eph") is not None  # a container, not an ephemeral
    # Clients may not send deleteContainer (20) themselves.
    other = raw_factory()
    reply = other.request(jute.DELETE_CONTAINER, jute.Writer().string(f"{base}/by-op-eph").bytes())
    assert reply.err == jute.BAD_ARGUMENTS


def test_invalid_create_modes(raw, base):
    for mode in (7, 8, 100, -1):
        for opcode in (jute.CREATE, jute.CREATE2):
            assert raw.create(f"{base}/m", mode=mode, opcode=opcode)[0] == jute.BAD_ARGUMENTS
    # TTL modes need createTTL (21).
    for mode in (jute.PERSISTENT_WITH_TTL, jute.PERSISTENT_SEQUENTIAL_WITH_TTL):
        for opcode in (jute.CREATE, jute.CREATE2):
            assert raw.create(f"{base}/m", mode=mode, opcode=opcode)[0] == jute.BAD_ARGUMENTS
