"""ACLs and authentication: world, digest, auth, ip, the super digest, NoAuth cases.

Facts of Apache ZooKeeper 3.8 asserted here:
- exists needs no permission; getData and getChildren need READ; getACL needs READ or ADMIN;
  setData WRITE; create CREATE on the parent; delete DELETE on the parent; setACL ADMIN.
- The "auth" scheme in an ACL (its id is ignored) stands for every digest identity the
  session has added, one ACL entry each; with none it is InvalidACL (-114). The ip identity
  every session has does not count.
- An ACL list that is empty, has an unknown scheme, a digest id without a colon, a malformed
  ip, or world with an id other than "anyone" is InvalidACL. Permission bits outside 0..31
  and 0 itself are accepted (0 locks everyone but super out).
- addAuth with an unknown scheme answers AuthFailed (-115) and the server closes the
  connection. addAuth digest with a credential lacking a colon, or ip, answers OK.
- With the super digest configured, super:<password> may do anything; a wrong super
  password is accepted by addAuth but grants nothing.
- setACL checks the version against aversion and bumps aversion.
- getACL by a session that has READ but not ADMIN on the node shows digest ids redacted to
  "<user>:x".
- whoAmI (107) lists the session's identities: (ip, 127.0.0.1) plus each digest user.
"""

import pytest
from kazoo.exceptions import AuthFailedError, InvalidACLError, NoAuthError
from kazoo.security import make_acl, make_digest_acl

import jute
from serverctl import SUPER_PASSWORD, SUPER_USER, digest_of

READ, WRITE, CREATE, DELETE, ADMIN, ALL = 1, 2, 4, 8, 16, 31


def get_acl(client, path):
    reply = client.request(jute.GET_ACL, jute.Writer().string(path).bytes())
    if reply.err != jute.OK:
        return reply.err, None, None
    return jute.OK, reply.body.acls(), reply.body.stat()


def set_acl(client, path, acls, version=-1):
    reply = client.request(jute.SET_ACL, jute.Writer().string(path).acls(acls).int(version).bytes())
    return reply.err, (reply.body.stat() if reply.err == jute.OK else None)


def operations(client, path):
    """What each operation answers on ``path`` (whose child "kid" does not exist)."""
    return {
        "exists": client.exists(path)[0],
        "get": client.get_data(path)[0],
        "children": client.get_children2(path)[0],
        "get_acl": get_acl(client, path)[0],
        "set": client.set_data(path, b"x")[0],
        "create_child": client.create(f"{path}/kid")[0],
        "delete_child": client.delete(f"{path}/kid"),
        "set_acl": set_acl(client, path, get_acl(client, path)[1] or [(ALL, "world", "anyone")])[0],
    }


OK, NOAUTH, NONODE = jute.OK, jute.NO_AUTH, jute.NO_NODE
ALL_DENIED = dict(exists=OK, get=NOAUTH, children=NOAUTH, get_acl=NOAUTH, set=NOAUTH,
                  create_child=NOAUTH, delete_child=NOAUTH, set_acl=NOAUTH)


@pytest.mark.parametrize("perms,allowed", [
    (0, {}),
    (READ, dict(get=OK, children=OK, get_acl=OK)),
    (WRITE, dict(set=OK)),
    (CREATE, dict(create_child=OK)),
    (DELETE, dict(delete_child=NONODE)),  # allowed, then the child is not there
    (ADMIN, dict(get_acl=OK, set_acl=OK)),
])
def test_permission_bits(raw_factory, base, perms, allowed):
    alice, anonymous, bob = raw_factory(), raw_factory(), raw_factory()
    assert alice.auth("digest", b"alice:pw") == OK
    assert bob.auth("digest", b"bob:pw") == OK
    path = f"{base}/p"
    assert alice.create(path, b"d", acl=[(perms, "digest", digest_of("alice", "pw"))])[0] == OK
    expected = dict(ALL_DENIED, **allowed)
    assert operations(anonymous, path) == ALL_DENIED
    assert operations(bob, path) == ALL_DENIED
    # Last: alice's set_acl/create_child may change the node.
    assert operations(alice, path) == expected


def test_all_permissions_for_the_owner(raw_factory, base):
    alice = raw_factory()
    alice.auth("digest", b"alice:pw")
    path = f"{base}/p"
    alice.create(path, acl=[(ALL, "digest", digest_of("alice", "pw"))])
    ops = operations(alice, path)
    assert ops == dict(exists=OK, get=OK, children=OK, get_acl=OK, set=OK, create_child=OK,
                       delete_child=OK, set_acl=OK)


def test_auth_scheme_expands_to_session_digests(raw_factory, base):
    anonymous = raw_factory()
    assert anonymous.create(f"{base}/a", acl=[(ALL, "auth", "")])[0] == jute.INVALID_ACL
    c = raw_factory()
    c.auth("digest", b"alice:pw")
    assert c.create(f"{base}/a", acl=[(ALL, "auth", "ignored-id")])[0] == OK
    assert get_acl(c, f"{base}/a")[1] == [(ALL, "digest", digest_of("alice", "pw"))]
    c.auth("digest", b"carol:pw")
    c.create(f"{base}/b", acl=[(READ | ADMIN, "auth", "")])
    assert sorted(get_acl(c, f"{base}/b")[1]) == sorted([
        (READ | ADMIN, "digest", digest_of("alice", "pw")),
        (READ | ADMIN, "digest", digest_of("carol", "pw"))])


def test_get_acl_without_admin_redacts_digests(raw, base):
    # A reader that may READ but not ADMIN sees every digest id as "<user>:x".
    raw.auth("digest", b"alice:pw")
    raw.create(f"{base}/r", acl=[(READ | WRITE, "digest", digest_of("alice", "pw")),
                                 (READ, "ip", "127.0.0.1")])
    assert get_acl(raw, f"{base}/r")[1] == [(READ | WRITE, "digest", "alice:x"),
                                            (READ, "ip", "127.0.0.1")]
    raw.create(f"{base}/a", acl=[(READ | ADMIN, "digest", digest_of("alice", "pw"))])
    assert get_acl(raw, f"{base}/a")[1] == [(READ | ADMIN, "digest", digest_of("alice", "pw"))]


@pytest.mark.parametrize("acl", [
    [],
    [(ALL, "nosuch", "x")],
    [(ALL, "digest", "nocolon")],
    [(ALL, "ip", "300.1.1.1")],
    [(ALL, "world", "someone")],
], ids=["empty", "unknown-scheme", "digest-no-colon", "bad-ip", "world-not-anyone"])
def test_invalid_acls(raw, base, acl):
    assert raw.create(f"{base}/x", acl=acl)[0] == jute.INVALID_ACL
    raw.create(f"{base}/y")
    assert set_acl(raw, f"{base}/y", acl)[0] == jute.INVALID_ACL


def test_unusual_permission_bits_are_accepted(raw, base):
    assert raw.create(f"{base}/none", acl=[(0, "world", "anyone")])[0] == OK
    assert raw.get_data(f"{base}/none")[0] == NOAUTH
    assert raw.create(f"{base}/high", acl=[(64, "world", "anyone")])[0] == OK


def test_ip_scheme(raw, base):
    assert raw.create(f"{base}/local", acl=[(ALL, "ip", "127.0.0.1")])[0] == OK
    assert raw.get_data(f"{base}/local")[0] == OK
    assert raw.create(f"{base}/net", acl=[(ALL, "ip", "127.0.0.0/8")])[0] == OK
    assert raw.get_data(f"{base}/net")[0] == OK
    assert raw.create(f"{base}/elsewhere", acl=[(ALL, "ip", "10.1.2.3")])[0] == OK
    assert raw.get_data(f"{base}/elsewhere")[0] == NOAUTH
    assert raw.create(f"{base}/othernet", acl=[(ALL, "ip", "10.0.0.0/8")])[0] == OK
    assert raw.get_data(f"{base}/othernet")[0] == NOAUTH


def test_set_acl_versions(raw, base):
    path = f"{base}/v"
    raw.create(path)
    assert set_acl(raw, path, [(READ, "world", "anyone")], version=5)[0] == jute.BAD_VERSION
    err, stat = set_acl(raw, path, [(READ | ADMIN, "world", "anyone")], version=0)
    assert err == OK and stat.aversion == 1 and stat.version == 0
    err, acls, stat = get_acl(raw, path)
    assert acls == [(READ | ADMIN, "world", "anyone")] and stat.aversion == 1
    assert raw.set_data(path, b"x")[0] == NOAUTH


def test_auth_failures(server, raw_factory):
    c = raw_factory()
    assert c.auth("nosuch", b"x") == jute.AUTH_FAILED
    with pytest.raises((jute.ConnectionClosed, OSError)):
        c.exists("/")
    lenient = raw_factory()
    assert lenient.auth("digest", b"nocolon") == OK
    assert lenient.auth("ip", b"127.0.0.1") == OK
    assert lenient.exists("/")[0] == OK


def test_super_digest(raw_factory, base):
    owner = raw_factory()
    owner.auth("digest", b"alice:pw")
    path = f"{base}/locked"
    owner.create(path, b"secret", acl=[(0, "digest", digest_of("alice", "pw"))])
    wrong = raw_factory()
    assert wrong.auth("digest", f"{SUPER_USER}:wrong".encode()) == OK
    assert wrong.get_data(path)[0] == NOAUTH
    admin = raw_factory()
    assert admin.auth("digest", f"{SUPER_USER}:{SUPER_PASSWORD}".encode()) == OK
    assert admin.get_data(path)[:2] == (OK, b"secret")
    assert admin.set_data(path, b"changed")[0] == OK
    assert admin.create(f"{path}/kid")[0] == OK
    assert admin.delete(f"{path}/kid") == OK
    assert admin.delete(path) == OK


def test_who_am_i(raw_factory):
    c = raw_factory()
    reply = c.request(107)
    assert reply.err == OK
    ids = [(reply.body.string(), reply.body.string()) for _ in range(reply.body.int())]
    assert ids == [("ip", "127.0.0.1")]
    c.auth("digest", b"alice:pw")
    c.auth("digest", b"carol:pw")
    reply = c.request(107)
    ids = [(reply.body.string(), reply.body.string()) for _ in range(reply.body.int())]
    assert sorted(ids) == [("digest", "alice"), ("digest", "carol"), ("ip", "127.0.0.1")]


def test_kazoo_digest_acl(zk_factory, base):
    owner = zk_factory(auth_data=[("digest", "alice:pw")])
    stranger = zk_factory()
    acl = make_digest_acl("alice", "pw", all=True)
    owner.create(f"{base}/k", b"v", acl=[acl])
    assert owner.get(f"{base}/k")[0] == b"v"
    with pytest.raises(NoAuthError):
        stranger.get(f"{base}/k")
    with pytest.raises(NoAuthError):
        stranger.set(f"{base}/k", b"x")
    stranger.add_auth("digest", "alice:pw")
    assert stranger.get(f"{base}/k")[0] == b"v"
    acls, stat = owner.get_acls(f"{base}/k")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(ALL, "digest", digest_of("alice", "pw"))]
    with pytest.raises(InvalidACLError):
        owner.create(f"{base}/bad", acl=[make_acl("world", "someone", read=True)])


def test_kazoo_auth_failure(zk_factory):
    c = zk_factory()
    with pytest.raises(AuthFailedError):
        c.add_auth("nosuch", "credential")
