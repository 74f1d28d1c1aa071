#!/usr/bin/env python3
"""Drives zkCli.sh (the Java client) through every request type its commands produce, and
makes it reconnect once (the proxy drops the connection) so that it re-registers its watches
with SetWatches2. Usage: zkcli_driver.py ZKCLI HOST:PORT PROXY_PID"""
import os
import signal
import subprocess
import sys
import time

zkcli, server, proxy_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])

before_reconnect = """
create /zc rootdata
create /zc/plain hello
create -e /zc/eph e
create -s /zc/seq- s
create -e -s /zc/eseq- es
create -c /zc/cont c
create /zc/cont/child x
create -t 60000 /zc/ttl t
create -s -t 60000 /zc/sttl- t
create /zc/plain again
get /zc/plain
get -s /zc/plain
get -w /zc/plain
set /zc/plain changed
set -v 99 /zc/plain bad
set -s /zc/plain changed2
stat /zc/plain
stat -w /zc/nope
create /zc/nope
ls /zc
ls -s /zc
ls -w /zc
ls -R /zc
getAcl /zc/plain
getAcl -s /zc/plain
setAcl /zc/plain world:anyone:cdrwa
setAcl -s -v 0 /zc/plain world:anyone:cdrwa
sync /zc
getEphemerals /zc
getEphemerals
getAllChildrenNumber /zc
addWatch /zc/plain
addWatch -m PERSISTENT_RECURSIVE /zc
get -w /zc/eph
exists
""".strip().splitlines()

after_reconnect = """
removewatches /zc/plain
removewatches /zc -a
addauth digest user:secret
whoami
create /zc/authed data digest:user:BpZ0B7xgMBkPlnimbk1P0lIQWFk=:cdrwa
get /zc/authed
config
reconfig -remove 3
setquota -n 10 /zc
listquota /zc
delquota /zc
delete -v 7 /zc/plain
delete /zc/nope
deleteall /zc
close
quit
""".strip().splitlines()

proc = subprocess.Popen([zkcli, "-server", server], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)


def send(lines):
    for line in lines:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        time.sleep(0.4)


time.sleep(3)  # JVM start and handshake
send(before_reconnect)
os.kill(proxy_pid, signal.SIGUSR1)  # drop the connection: zkCli reconnects with SetWatches2
time.sleep(4)
send(after_reconnect)
proc.stdin.close()
out = proc.stdout.read()
proc.wait(30)
with open(os.environ.get("ZKCLI_LOG", "/dev/null"), "w") as f:
    f.write(out)
print("zkCli: done, exit", proc.returncode)
