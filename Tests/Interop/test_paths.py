"""Malformed and unusual paths, sent byte for byte with the raw client (kazoo would normalize
them first). Every expected code below is what Apache ZooKeeper 3.8 answered; the pattern:

- writes (create, setData, delete) validate the path (PathUtils) and answer BadArguments,
  except that create/delete look the parent up first, so a malformed path whose parent is
  missing answers NoNode; setData always validates first (BadArguments even for /nope//x);
- reads (getData, exists, getChildren, getACL) never validate: a malformed path is simply a
  node that does not exist (NoNode), and the empty path "" is the root (ZooKeeper keys the
  root by "" internally);
- a sequential create validates the path *with* the suffix appended, so "/p/" "/p/." "/p/.."
  are legal sequential prefixes ("/p/0000000003", "/p/.0000000004");
- a null path (length -1) fails to deserialize: MarshallingError, except setData
  (BadArguments);
- exists on a missing node answers err NoNode (-101) in the reply header (clients map it to
  "no stat"), it is not OK with an empty body;
- addWatch accepts any path, even a null one, and answers OK.
"""

import pytest

import jute

OK, BAD, NONODE, MARSH = jute.OK, jute.BAD_ARGUMENTS, jute.NO_NODE, jute.MARSHALLING_ERROR

OPS = ["create", "create_seq", "get", "exists", "children", "set", "delete", "add_watch", "get_acl"]

# path template ({b} = this test's base node, which has one child "e"):
#   create, create_seq, get, exists, children, set, delete, add_watch, get_acl
TABLE = [
    (None,          [MARSH, MARSH, MARSH, MARSH, MARSH, BAD, MARSH, OK, MARSH]),
    ("",            [BAD, BAD, OK, OK, OK, BAD, BAD, OK, OK]),
    ("e",           [BAD, BAD, NONODE, NONODE, NONODE, BAD, BAD, OK, NONODE]),
    ("{b}/",        [BAD, OK, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("/{b}",        [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}//e",      [NONODE, NONODE, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/./e",     [NONODE, NONODE, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/../e",    [NONODE, NONODE, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/.",       [BAD, OK, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/..",      [BAD, OK, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/e/",      [BAD, OK, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/e\x00",   [BAD, BAD, NONODE, BAD, NONODE, BAD, BAD, OK, NONODE]),
    ("{b}/\x01",    [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/\x1f",    [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/\x7f",    [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/\x9f",    [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/\ud7ff",  [OK, OK, NONODE, NONODE, NONODE, NONODE, NONODE, OK, NONODE]),  # legal
    ("{b}/\uf8ff",  [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/\ufff0",  [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/\ufffe",  [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    # Outside the BMP: Java sees a surrogate pair, and surrogates (U+D800..U+F8FF) are illegal.
    ("{b}/\U0001F600", [BAD, BAD, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("/nope-{n}/x",    [NONODE, NONODE, NONODE, NONODE, NONODE, NONODE, NONODE, OK, NONODE]),
    ("/nope-{n}//x",   [NONODE, NONODE, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("/nope-{n}/.",    [NONODE, NONODE, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
    ("{b}/e/x/",       [NONODE, NONODE, NONODE, NONODE, NONODE, BAD, NONODE, OK, NONODE]),
]


def run_op(client, op, path):
    if op == "create":
        return client.create(path)[0]
    if op == "create_seq":
        return client.create(path, mode=jute.PERSISTENT_SEQUENTIAL)[0]
    if op == "get":
        return client.get_data(path)[0]
    if op == "exists":
        return client.exists(path)[0]
    if op == "children":
        return client.get_children2(path)[0]
    if op == "set":
        return client.set_data(path, b"x")[0]
    if op == "delete":
        return client.delete(path)
    if op == "add_watch":
        return client.add_watch(path, jute.ADD_WATCH_PERSISTENT)
    if op == "get_acl":
        return client.request(jute.GET_ACL, jute.Writer().string(path).bytes()).err
    raise AssertionError(op)


def reset(client, base):
    """Remove whatever an operation created, keeping base and base/e."""
    for parent in (base, f"{base}/e"):
        err, children, _ = client.get_children2(parent)
        assert err == OK
        for child in children:
            if parent == base and child == "e":
                continue
            assert client.delete(f"{parent}/{child}") == OK


@pytest.mark.parametrize("template,expected", TABLE, ids=[repr(t) for t, _ in TABLE])
def test_path_validation_matches_zookeeper(raw_factory, base, template, expected):
    client = raw_factory()
    assert client.create(f"{base}/e")[0] == OK
    path = None if template is None else template.format(b=base, n=base.strip("/"))
    got = {}
    for op in OPS:
        got[op] = run_op(client, op, path)
        reset(client, base)
    assert got == dict(zip(OPS, expected))


def test_sequential_prefixes_that_are_not_plain_paths(raw, base):
    # The suffix is appended before validation: these prefixes are illegal as plain paths and
    # legal as sequential prefixes.
    assert raw.create(f"{base}/", mode=jute.PERSISTENT_SEQUENTIAL)[:2] == (OK, f"{base}/0000000000")
    assert raw.create(f"{base}/.", mode=jute.PERSISTENT_SEQUENTIAL)[:2] == (OK, f"{base}/.0000000001")
    assert raw.create(f"{base}/..", mode=jute.PERSISTENT_SEQUENTIAL)[:2] == (OK, f"{base}/..0000000002")


def test_reserved_zookeeper_subtree(raw, base):
    # /zookeeper, /zookeeper/quota and /zookeeper/config exist on every server; they cannot
    # be deleted (BadArguments), /zookeeper/config is read-only to ordinary users (NoAuth on
    # setData; its aversion is -1), but ordinary children may be created under /zookeeper.
    err, children, _ = raw.get_children2("/zookeeper")
    assert err == OK and sorted(children)[:2] == ["config", "quota"]
    assert raw.delete("/zookeeper") == BAD
    assert raw.delete("/zookeeper/quota") == BAD
    assert raw.delete("/zookeeper/config") == BAD
    assert raw.delete("/") == BAD
    assert raw.set_data("/zookeeper/config", b"x")[0] == jute.NO_AUTH
    assert raw.exists("/zookeeper/config")[1].aversion == -1
    assert raw.create("/zookeeper")[0] == jute.NODE_EXISTS
    assert raw.create("/")[0] == jute.NODE_EXISTS
    name = f"/zookeeper/{base.strip('/')}"
    assert raw.create(name)[0] == OK
    assert raw.delete(name) == OK
