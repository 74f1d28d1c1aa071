#!/usr/bin/env python3
"""Builds the fuzz seed corpus (Corpus/) from the golden fixtures of KeeperWireTests.

Each input is: one selector byte (which decoder, see WireFuzz.swift), one parameter byte, then
the bytes to decode. Re-run after recapturing the fixtures."""
import glob
import hashlib
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "KeeperWireTests", "Fixtures")
corpus = os.path.join(here, "Corpus")
os.makedirs(corpus, exist_ok=True)
for old in glob.glob(os.path.join(corpus, "*")):
    os.remove(old)

# OpCode.allCases order in KeeperModel.
OPCODES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101, 102,
           103, 104, 105, 106, 107, -10, -11, -1]
SPECIAL = {-1: 0, -2: 11, -4: 100, -8: 101}
inputs = set()


def add(selector, parameter, data):
    inputs.add(bytes([selector, parameter]) + data)


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


txns = []
for path in sorted(glob.glob(os.path.join(fixtures, "*.frames"))):
    client, server = [], []
    for line in open(path):
        kind, _, hexdata = line.strip().partition(" ")
        if kind == "C":
            client.append(bytes.fromhex(hexdata))
        elif kind == "S":
            server.append(bytes.fromhex(hexdata))
        elif kind == "C4":
            add(0, 0, bytes.fromhex(hexdata))
    if not client:
        continue
    add(0, 0, b"".join(frame(c) for c in client))
    add(6, 0, client[0])
    add(7, 1, server[0])
    xid_op = {}
    for c in client[1:]:
        add(1, 0, c)
        xid, op = struct.unpack(">ii", c[:8])
        xid_op[xid] = op
    for s in server[1:]:
        (xid,) = struct.unpack(">i", s[:4])
        op = SPECIAL.get(xid, xid_op.get(xid))
        if op is None:
            continue
        add(2, OPCODES.index(op), s)
        if xid == -1:
            add(7, 0, s[16:])  # the WatcherEvent alone

for path in glob.glob(os.path.join(fixtures, "*.txns")):
    for line in open(path):
        if line.startswith("T "):
            t = bytes.fromhex(line[2:].strip())
            txns.append(t)
            add(3, 0, t)

# Peer streams of a real ensemble.
for path in sorted(glob.glob(os.path.join(fixtures, "*.stream"))):
    sides = {"I": b"", "A": b""}
    for line in open(path):
        kind, _, hexdata = line.strip().partition(" ")
        if kind in sides:
            sides[kind] += bytes.fromhex(hexdata)
    name = os.path.basename(path)
    if name.startswith("quorum"):
        for side in sides.values():
            if side:
                add(4, 0, side[:4096])
    else:
        initiator = sides["I"]
        (length,) = struct.unpack(">i", initiator[16:20])
        add(7, 9, initiator[:20 + length])
        for side in (initiator[20 + length:], sides["A"]):
            if side:
                add(8, 0, side)

# Quorum packets built from the txns above.
def packet(ptype, zxid, data, auth=None):
    out = struct.pack(">iq", ptype, zxid)
    out += struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data
    if auth is None:
        out += struct.pack(">i", -1)
    else:
        out += struct.pack(">i", len(auth))
        for scheme, ident in auth:
            out += struct.pack(">i", len(scheme)) + scheme + struct.pack(">i", len(ident)) + ident
    return out


learner = struct.pack(">qiq", 2, 0x10000, 0x100000000)
stream = packet(11, 0x100000000, learner) + packet(17, 0x200000000, struct.pack(">i", 0x10000))
stream += packet(18, 0x100000005, struct.pack(">i", 1)) + packet(13, 0x100000005, None)
for t in txns[:8]:
    (zxid,) = struct.unpack(">q", t[12:20])
    stream += packet(2, zxid, t) + packet(3, zxid, None) + packet(4, zxid, None)
stream += packet(5, 0, None, [(b"digest", b"user:hash"), (b"ip", b"127.0.0.1")]) + packet(12, 0x100000009, None)
add(4, 0, stream)
add(4, 0, packet(1, 0, struct.pack(">qii", 0x1000001, 7, 5) + client[1][8:]))

# Election notifications: version 2 with config, the 40-byte and the 28-byte layouts.
config = b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000000"
v2 = struct.pack(">iqqqqi", 0, 1, 0x100000003, 2, 1, 2) + struct.pack(">i", len(config)) + config
add(5, 0, v2)
add(5, 0, struct.pack(">iqqqqi", 1, 3, 0x100000003, 2, 1, 1))
add(5, 0, struct.pack(">iqqq", 2, 3, 0x100000003, 2))
add(8, 0, frame(v2) + frame(struct.pack(">iqqqqi", 0, 2, 5, 1, 0, 1)))
add(7, 9, struct.pack(">qq", -65535, 3) + struct.pack(">i", 29) + b"127.0.0.1:3888|127.0.0.2:3888")

for data in inputs:
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(corpus, name), "wb") as f:
        f.write(data)
print(f"{len(inputs)} corpus inputs")
