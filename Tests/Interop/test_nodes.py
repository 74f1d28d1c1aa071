"""Sequential, ephemeral, container and TTL znodes."""

from kazoo.exceptions import NoNodeError

import jute
from serverctl import CONTAINER_CHECK_INTERVAL_MS, wait_until
from support import Events

# Containers and TTL nodes are removed by a periodic sweep (every CONTAINER_CHECK_INTERVAL_MS);
# give it many periods on a loaded machine.
SWEEP_DEADLINE_S = 15.0 + 50 * CONTAINER_CHECK_INTERVAL_MS / 1000


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
    # cversion > 0); the sweep that removed `used` also looked at it.
    assert zk.exists(never_used) is not None


def test_container_with_children_is_kept(zk, raw, base):
    _, container, _ = raw.create(f"{base}/c", mode=jute.CONTAINER)
    zk.create(f"{container}/a")
    zk.create(f"{container}/b")
    zk.delete(f"{container}/a")
    # A second container emptied after this one was modified: once the sweep removes it, the
    # sweep has also seen `container` with a child left.
    _, probe, _ = raw.create(f"{base}/probe", mode=jute.CONTAINER)
    zk.create(f"{probe}/x")
    zk.delete(f"{probe}/x")
    wait_until(lambda: zk.exists(probe) is None, SWEEP_DEADLINE_S, "the probe container to go")
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
