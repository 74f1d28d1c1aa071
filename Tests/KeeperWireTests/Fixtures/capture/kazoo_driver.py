#!/usr/bin/env python3
"""Drives kazoo through every request type it can produce (see capture.sh)."""
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError, NotEmptyError, ZookeeperError
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE

hosts = sys.argv[1]
client = KazooClient(hosts=hosts, timeout=4.0)
client.start()

events = []
client.create("/kz", b"root of the kazoo run")
client.create("/kz/plain", b"hello")
client.create("/kz/null")  # kazoo sends b"" for no value
client.create("/kz/eph", b"e", ephemeral=True)
client.create("/kz/seq-", b"s", sequence=True)
client.create("/kz/eseq-", b"es", ephemeral=True, sequence=True)
client.create("/kz/withstat", b"c2", include_data=True)  # create2
client.create("/kz/utf8-\u00e9\u4e2d", "\u00e9\u4e2d".encode())
client.create("/kz/big", bytes(range(256)) * 64)
client.create("/kz/acl", b"a", acl=[make_digest_acl("user", "secret", all=True)])
try:
    client.create("/kz/plain", b"again")
except NodeExistsError:
    pass

data, stat = client.get("/kz/plain", watch=lambda e: events.append(e))
client.set("/kz/plain", b"changed")  # fires NodeDataChanged
client.exists("/kz/missing", watch=lambda e: events.append(e))
client.create("/kz/missing", b"")  # fires NodeCreated
client.exists("/kz/plain")
client.get_children("/kz", watch=lambda e: events.append(e))
client.create("/kz/child", b"")  # fires NodeChildrenChanged
client.get_children("/kz", include_data=True)  # getChildren2
try:
    client.get("/kz/nothing")
except NoNodeError:
    pass
try:
    client.set("/kz/plain", b"x", version=99)
except BadVersionError:
    pass
try:
    client.delete("/kz")
except NotEmptyError:
    pass
client.get_acls("/kz/plain")
client.set_acls("/kz/plain", OPEN_ACL_UNSAFE)
client.sync("/kz")
client.add_auth("digest", "user:secret")
client.get("/kz/acl")

tx = client.transaction()
tx.create("/kz/tx", b"t")
tx.set_data("/kz/tx", b"u")
tx.check("/kz/tx", 1)
tx.delete("/kz/tx")
tx.create("/kz/tx2", b"t2", ephemeral=True)
tx.commit()

tx = client.transaction()
tx.create("/kz/tx3", b"t")
tx.check("/kz/plain", 42)  # fails: BadVersion, everything rolls back
tx.delete("/kz/child")
tx.commit()

try:
    client.reconfig(joining=None, leaving="3", new_members=None)
except ZookeeperError:
    pass  # reconfig is off on a standalone server

time.sleep(4)  # let kazoo send at least one ping

# Four-letter words through the same proxy, one connection each.
for word in [b"ruok", b"srvr", b"stat", b"mntr", b"isro"]:  # not conf or envi: they print local paths
    client.command(word)

for path in ["/kz/plain", "/kz/null", "/kz/withstat", "/kz/missing", "/kz/child"]:
    client.delete(path, version=-1)
client.delete("/kz", recursive=True)
client.stop()
client.close()

print("kazoo: done, %d watch events" % len(events))
