"""Every kind of watch: data, exists, child (one-shot), setWatches on reconnect, addWatch
(persistent and persistent-recursive), removeWatches and checkWatches.

Facts of Apache ZooKeeper 3.8 asserted here (raw-protocol tests see exactly what the server
sends; kazoo adds its own client-side dispatch):
- One-shot watches fire once. A session that holds a data watch (getData or exists) and a
  child watch on the same path gets ONE NodeDeleted when the node goes, and one
  NodeDataChanged when its data changes (the child watch stays). A persistent watch plus a
  one-shot data watch on the same path also yield one event per change.
- A child watch fires NodeChildrenChanged on child create/delete, never on a child's data
  change. Persistent-recursive watches never get NodeChildrenChanged; they get NodeCreated,
  NodeDeleted and NodeDataChanged for the path and every descendant. addWatch on a path where
  the session already has a persistent watch replaces its mode (the last mode wins); one-shot
  watches are separate and fire next to it.
- setWatches / setWatches2 with relativeZxid: a data watch fires NodeDataChanged at once if the
  node's mzxid > relativeZxid, NodeDeleted if the node is gone; a child watch fires
  NodeChildrenChanged if pzxid > relativeZxid, NodeDeleted if gone; an exist watch on a node
  that exists fires NodeCreated at once (whatever its zxids), and is simply registered if
  the node is missing. Persistent watches in setWatches2 never fire at once.
- removeWatches answers NoWatcher (-121) when the session has no such watch; checkWatches
  answers NoWatcher only when NO session has such a watch on the path (3.8 ignores the session);
  type Any/Data/Children also match (and remove) persistent watches; a watcher type outside
  1..3 (including Persistent 4 / PersistentRecursive 5) is MarshallingError (-5). The server
  sends no event for a removed watch (DataWatchRemoved etc. are made up by the client).
"""

from kazoo.protocol.states import KazooState

import jute
from support import Events, event_fence, wait_connected, wait_for_state

E = jute.WatchEvent
S = jute.STATE_SYNC_CONNECTED


# --- kazoo: one-shot watches -------------------------------------------------------------

def test_data_watch_fires_once(zk, zk_factory, base):
    writer = zk_factory()
    path = f"{base}/d"
    zk.create(path, b"0")
    events = Events()
    zk.get(path, watch=events)
    writer.set(path, b"1")
    event = events.next()
    assert (event.type, event.state, event.path) == ("CHANGED", "CONNECTED", path)
    writer.set(path, b"2")  # the watch is used up: no second event
    event_fence(zk, base)
    assert events.pending() == []


def test_data_watch_sees_delete(zk, zk_factory, base):
    writer = zk_factory()
    zk.create(f"{base}/d")
    events = Events()
    zk.get(f"{base}/d", watch=events)
    writer.delete(f"{base}/d")
    assert (events.next().type, events.pending()) == ("DELETED", [])


def test_exists_watch_on_missing_node_sees_create(zk, zk_factory, base):
    writer = zk_factory()
    events = Events()
    assert zk.exists(f"{base}/later", watch=events) is None
    writer.create(f"{base}/later", b"x")
    event = events.next()
    assert (event.type, event.path) == ("CREATED", f"{base}/later")


def test_exists_watch_on_present_node(zk, zk_factory, base):
    writer = zk_factory()
    zk.create(f"{base}/e")
    changed, deleted = Events(), Events()
    zk.exists(f"{base}/e", watch=changed)
    writer.set(f"{base}/e", b"v")
    assert changed.next().type == "CHANGED"
    zk.exists(f"{base}/e", watch=deleted)
    writer.delete(f"{base}/e")
    assert deleted.next().type == "DELETED"


def test_child_watch(zk, zk_factory, base):
    writer = zk_factory()
    parent = f"{base}/p"
    zk.create(parent)
    zk.create(f"{parent}/existing")
    events = Events()
    zk.get_children(parent, watch=events)
    writer.set(f"{parent}/existing", b"data")  # a child's data change: no child event
    writer.create(f"{parent}/new")
    event = events.next()
    assert (event.type, event.path) == ("CHILD", parent)
    zk.get_children(parent, watch=events)
    writer.delete(f"{parent}/new")
    assert events.next().type == "CHILD"
    zk.get_children(parent, watch=events)
    writer.delete(f"{parent}/existing")
    writer.delete(parent)
    assert events.next().type == "CHILD"  # the last child's delete, then the watch is spent
    event_fence(zk, base)
    assert events.pending() == []


def test_child_watch_sees_parent_delete(zk, zk_factory, base):
    writer = zk_factory()
    zk.create(f"{base}/p")
    events = Events()
    zk.get_children(f"{base}/p", watch=events)
    writer.delete(f"{base}/p")
    assert events.next().type == "DELETED"


def test_kazoo_watch_fires_after_reconnect_without_changes(proxy, zk_factory, base):
    # kazoo drops its watchers when the connection drops (it sends no setWatches); a watch set
    # after the reconnect works as usual on the revived session.
    zk = zk_factory(hosts=proxy.hosts)
    writer = zk_factory()
    session = zk.client_id
    zk.create(f"{base}/d", b"0")
    proxy.cut()
    wait_for_state(zk, KazooState.SUSPENDED)
    proxy.restore()
    wait_connected(zk)
    assert zk.client_id == session
    events = Events()
    zk.get(f"{base}/d", watch=events)
    writer.set(f"{base}/d", b"1")
    assert events.next().type == "CHANGED"


# --- raw protocol: exactly what the server sends ------------------------------------------

def test_one_event_per_change_for_one_session(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    d = f"{base}/d"
    a.create(d, b"1")
    a.get_data(d, watch=True)
    a.exists(d, watch=True)
    a.get_children2(d, watch=True)
    b.set_data(d, b"2")
    assert a.drain_events() == [E(jute.EV_DATA_CHANGED, S, d)]
    a.get_data(d, watch=True)  # the child watch from above is still registered
    b.delete(d)
    assert a.drain_events() == [E(jute.EV_DELETED, S, d)]
    a.exists(d, watch=True)
    a.exists(d, watch=True)
    b.create(d)
    assert a.drain_events() == [E(jute.EV_CREATED, S, d)]


def test_set_watches_on_reconnect(raw_factory, base):
    # What the Java and C clients do after a connection loss: reattach the session with the
    # last zxid seen, then setWatches (101) with every watch still wanted.
    a, b = raw_factory(), raw_factory()
    a.create(f"{base}/d", b"0")
    a.create(f"{base}/p")
    a.get_data(f"{base}/d", watch=True)
    a.exists(f"{base}/later", watch=True)
    a.get_children2(f"{base}/p", watch=True)
    a.sock.close()  # the connection drops; the session lives on
    b.set_data(f"{base}/d", b"1")
    b.create(f"{base}/later")
    b.create(f"{base}/p/kid")
    relative = a.last_zxid
    response = a.reconnect()
    assert response.session_id == a.session_id != 0
    assert a.set_watches(relative, data=[f"{base}/d"], exist=[f"{base}/later"],
                         child=[f"{base}/p"]) == jute.OK
    assert a.drain_events() == [
        E(jute.EV_DATA_CHANGED, S, f"{base}/d"),
        E(jute.EV_CREATED, S, f"{base}/later"),
        E(jute.EV_CHILDREN_CHANGED, S, f"{base}/p"),
    ]


def test_set_watches_without_changes_registers_them(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    a.create(f"{base}/d", b"0")
    a.get_data(f"{base}/d", watch=True)
    a.sock.close()
    a.reconnect()
    assert a.set_watches(a.last_zxid, data=[f"{base}/d"], exist=[f"{base}/absent"]) == jute.OK
    assert a.drain_events() == []
    b.set_data(f"{base}/d", b"1")
    b.create(f"{base}/absent")
    assert a.drain_events() == [E(jute.EV_DATA_CHANGED, S, f"{base}/d"),
                                E(jute.EV_CREATED, S, f"{base}/absent")]


def test_set_watches2_fires_for_what_changed(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    a.create(f"{base}/d", b"1")
    a.create(f"{base}/c")
    relative = a.last_zxid
    b.set_data(f"{base}/d", b"2")
    b.create(f"{base}/new")
    b.create(f"{base}/c/kid")
    b.delete(f"{base}/c/kid")
    err = a.set_watches2(relative,
                         data=[f"{base}/d", f"{base}/gone"],
                         exist=[f"{base}/new", f"{base}/absent", base],
                         child=[f"{base}/c", f"{base}/none"],
                         persistent=[base], persistent_recursive=[f"{base}/c"])
    assert err == jute.OK
    assert a.drain_events() == [
        E(jute.EV_DATA_CHANGED, S, f"{base}/d"),
        E(jute.EV_DELETED, S, f"{base}/gone"),
        E(jute.EV_CREATED, S, f"{base}/new"),
        E(jute.EV_CREATED, S, base),  # an exist watch on a present node fires at once
        E(jute.EV_CHILDREN_CHANGED, S, f"{base}/c"),
        E(jute.EV_DELETED, S, f"{base}/none"),
    ]
    # Nothing changed since: registering fires nothing, later changes fire.
    b.exists("/")
    assert a.set_watches2(b.last_zxid, data=[f"{base}/d"], exist=[f"{base}/absent"]) == jute.OK
    assert a.drain_events() == []
    b.set_data(f"{base}/d", b"3")
    b.create(f"{base}/absent")
    b.create(f"{base}/c/k2")
    assert a.drain_events() == [
        E(jute.EV_DATA_CHANGED, S, f"{base}/d"),
        E(jute.EV_CREATED, S, f"{base}/absent"),
        E(jute.EV_CHILDREN_CHANGED, S, base),  # persistent watch on base
        E(jute.EV_CREATED, S, f"{base}/c/k2"),  # recursive watch on base/c
    ]


def test_persistent_watch(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    p = f"{base}/p"
    assert a.add_watch(p, jute.ADD_WATCH_PERSISTENT) == jute.OK  # the node need not exist
    b.create(p, b"0")
    b.set_data(p, b"1")
    b.set_data(p, b"2")
    b.create(f"{p}/kid")
    b.set_data(f"{p}/kid", b"x")  # a child's data: not for a (non-recursive) persistent watch
    b.create(f"{p}/kid/grandkid")  # nor a grandchild
    b.delete(f"{p}/kid/grandkid")
    b.delete(f"{p}/kid")
    b.delete(p)
    b.create(p)
    assert a.drain_events() == [
        E(jute.EV_CREATED, S, p),
        E(jute.EV_DATA_CHANGED, S, p),
        E(jute.EV_DATA_CHANGED, S, p),
        E(jute.EV_CHILDREN_CHANGED, S, p),
        E(jute.EV_CHILDREN_CHANGED, S, p),
        E(jute.EV_DELETED, S, p),
        E(jute.EV_CREATED, S, p),  # still there after the node was deleted
    ]


def test_persistent_recursive_watch(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    r = f"{base}/r"
    assert a.add_watch(r, jute.ADD_WATCH_PERSISTENT_RECURSIVE) == jute.OK
    b.create(r)
    b.create(f"{r}/a")
    b.create(f"{r}/a/b", b"1")
    b.set_data(f"{r}/a/b", b"2")
    b.delete(f"{r}/a/b")
    b.create(f"{base}/r-sibling")  # shares the prefix, not the subtree
    b.set_data(r, b"x")
    assert a.drain_events() == [
        E(jute.EV_CREATED, S, r),
        E(jute.EV_CREATED, S, f"{r}/a"),
        E(jute.EV_CREATED, S, f"{r}/a/b"),
        E(jute.EV_DATA_CHANGED, S, f"{r}/a/b"),
        E(jute.EV_DELETED, S, f"{r}/a/b"),
        E(jute.EV_DATA_CHANGED, S, r),
    ]


def test_persistent_and_one_shot_watch_on_one_path(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    a.add_watch(base, jute.ADD_WATCH_PERSISTENT)
    a.get_data(base, watch=True)
    b.set_data(base, b"x")
    assert a.drain_events() == [E(jute.EV_DATA_CHANGED, S, base)]
    # addWatch on a path where the session already has a persistent watch REPLACES its mode:
    # now only recursive, so the child create is NodeCreated /k and no NodeChildrenChanged.
    a.add_watch(base, jute.ADD_WATCH_PERSISTENT_RECURSIVE)
    b.set_data(base, b"y")
    b.create(f"{base}/k")
    assert a.drain_events() == [E(jute.EV_DATA_CHANGED, S, base),
                                E(jute.EV_CREATED, S, f"{base}/k")]


def test_add_watch_replaces_the_mode_of_the_same_path(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    a.add_watch(base, jute.ADD_WATCH_PERSISTENT_RECURSIVE)
    a.add_watch(base, jute.ADD_WATCH_PERSISTENT)  # last one wins: plain persistent
    b.create(f"{base}/x")
    b.set_data(f"{base}/x", b"1")  # a child's data: not seen any more
    b.set_data(base, b"1")
    assert a.drain_events() == [E(jute.EV_CHILDREN_CHANGED, S, base),
                                E(jute.EV_DATA_CHANGED, S, base)]
    a.add_watch(base, jute.ADD_WATCH_PERSISTENT_RECURSIVE)
    b.create(f"{base}/y")
    b.set_data(f"{base}/y", b"1")
    assert a.drain_events() == [E(jute.EV_CREATED, S, f"{base}/y"),
                                E(jute.EV_DATA_CHANGED, S, f"{base}/y")]
    # A one-shot child watch is separate and fires next to the recursive one.
    a.get_children2(base, watch=True)
    b.create(f"{base}/z")
    assert a.drain_events() == [E(jute.EV_CREATED, S, f"{base}/z"),
                                E(jute.EV_CHILDREN_CHANGED, S, base)]


def test_check_and_remove_watches(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    d = f"{base}/d"
    a.create(d)
    assert a.check_watches(d, jute.WATCHER_DATA) == jute.NO_WATCHER
    assert a.check_watches(d, jute.WATCHER_ANY) == jute.NO_WATCHER
    assert a.remove_watches(d, jute.WATCHER_DATA) == jute.NO_WATCHER

    a.get_data(d, watch=True)
    assert a.check_watches(d, jute.WATCHER_DATA) == jute.OK
    assert a.check_watches(d, jute.WATCHER_CHILDREN) == jute.NO_WATCHER
    assert a.check_watches(d, jute.WATCHER_ANY) == jute.OK
    # ZooKeeper 3.8 answers checkWatches OK when ANY session watches the path, but
    # removeWatches only removes the asking session's own watches.
    assert b.check_watches(d, jute.WATCHER_DATA) == jute.OK
    assert b.remove_watches(d, jute.WATCHER_DATA) == jute.NO_WATCHER
    assert a.remove_watches(d, jute.WATCHER_DATA) == jute.OK
    assert a.check_watches(d, jute.WATCHER_DATA) == jute.NO_WATCHER
    b.set_data(d, b"x")
    assert a.drain_events() == []  # removed: no event, and no "watch removed" event either

    a.get_children2(d, watch=True)
    assert a.remove_watches(d, jute.WATCHER_DATA) == jute.NO_WATCHER
    assert a.remove_watches(d, jute.WATCHER_CHILDREN) == jute.OK
    assert a.remove_watches(d, jute.WATCHER_CHILDREN) == jute.NO_WATCHER

    a.get_data(d, watch=True)
    assert a.remove_watches(d, 9) == jute.MARSHALLING_ERROR
    assert a.check_watches(d, 0) == jute.MARSHALLING_ERROR
    assert a.check_watches(d, jute.WATCHER_PERSISTENT) == jute.MARSHALLING_ERROR


def test_remove_persistent_watches(raw_factory, base):
    a, b = raw_factory(), raw_factory()
    a.add_watch(base, jute.ADD_WATCH_PERSISTENT)
    a.add_watch(f"{base}/r", jute.ADD_WATCH_PERSISTENT_RECURSIVE)
    assert a.check_watches(base, jute.WATCHER_ANY) == jute.OK
    assert a.check_watches(base, jute.WATCHER_DATA) == jute.OK
    assert a.check_watches(base, jute.WATCHER_CHILDREN) == jute.OK
    assert a.remove_watches(base, jute.WATCHER_PERSISTENT) == jute.MARSHALLING_ERROR
    assert a.remove_watches(base, jute.WATCHER_ANY) == jute.OK
    assert a.remove_watches(f"{base}/r", jute.WATCHER_DATA) == jute.OK
    b.set_data(base, b"x")
    b.create(f"{base}/r")
    assert a.drain_events() == []
