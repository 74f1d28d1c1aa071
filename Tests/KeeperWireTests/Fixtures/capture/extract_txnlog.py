#!/usr/bin/env python3
"""Extracts the txns of ZooKeeper transaction logs (dataDir/version-2/log.*) as hex lines.

A log is FileHeader{int magic 'ZKLG'; int version 2; long dbid} then, per txn, long checksum
(Adler-32 of the bytes), int length, the bytes (TxnHeader + record + TxnDigest), and 'B'. The
preallocated tail is zeros. Each txn becomes one line `T <hex>`.
Usage: extract_txnlog.py OUTPUT LOG...
"""
import struct
import sys
import zlib

out, logs = sys.argv[1], sys.argv[2:]
lines = ["# txns from an Apache ZooKeeper transaction log: TxnHeader + record + TxnDigest"]
for path in sorted(logs):
    with open(path, "rb") as f:
        blob = f.read()
    magic, version, _dbid = struct.unpack(">iiq", blob[:16])
    assert magic == int.from_bytes(b"ZKLG", "big") and version == 2, path
    pos = 16
    while pos + 12 <= len(blob):
        checksum, length = struct.unpack(">qi", blob[pos:pos + 12])
        if length <= 0:
            break
        entry = blob[pos + 12:pos + 12 + length]
        assert zlib.adler32(entry) == checksum, f"bad checksum at {pos} in {path}"
        assert blob[pos + 12 + length] == ord("B"), f"missing end marker at {pos} in {path}"
        lines.append("T " + entry.hex())
        pos += 12 + length + 1
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"{len(lines) - 1} txns")
