#!/usr/bin/env bash
# Captures peer traffic of a real 3-node Apache ZooKeeper ensemble: every server reaches the
# other two through recording proxies (raw mode), so the fixtures hold the election connections
# (InitialMessage + FastLeaderElection notifications) and the leader-learner connections
# (QuorumPackets: FOLLOWERINFO, LEADERINFO, ACKEPOCH, DIFF, NEWLEADER, UPTODATE, PROPOSAL, ACK,
# COMMIT, REQUEST, PING...). A kazoo client writes through a follower meanwhile.
#
#   Tests/KeeperWireTests/Fixtures/capture/capture_quorum.sh [BASE_PORT]   (default 23100)
#
# Uses BASE_PORT+1..3 (client), +101..103 (quorum), +201..203 (election), +301..303 and
# +401..403 (proxies). The servers it starts are stopped at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="$(dirname "$here")"
base="${1:-23100}"
classpath="/usr/share/java/*:/etc/zookeeper/conf"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/out"

for n in 1 2 3; do
    mkdir -p "$work/data$n"
    echo "$n" > "$work/data$n/myid"
    {
        echo "tickTime=500"
        echo "initLimit=10"
        echo "syncLimit=5"
        echo "dataDir=$work/data$n"
        echo "clientPort=$((base + n))"
        echo "admin.enableServer=false"
        echo "4lw.commands.whitelist=*"
        for m in 1 2 3; do
            if [ "$m" = "$n" ]; then
                echo "server.$m=127.0.0.1:$((base + 100 + m)):$((base + 200 + m))"
            else
                echo "server.$m=127.0.0.1:$((base + 300 + m)):$((base + 400 + m))"
            fi
        done
    } > "$work/zoo$n.cfg"
done
for m in 1 2 3; do
    python3 "$here/record_proxy.py" --raw --listen $((base + 300 + m)) --upstream $((base + 100 + m)) \
        --out "$work/out" --label "quorum-to-$m" &
    pids+=($!)
    python3 "$here/record_proxy.py" --raw --listen $((base + 400 + m)) --upstream $((base + 200 + m)) \
        --out "$work/out" --label "election-to-$m" &
    pids+=($!)
done
sleep 1
for n in 1 2 3; do
    java -cp "$classpath" org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zoo$n.cfg" > "$work/zk$n.log" 2>&1 &
    pids+=($!)
done

mode() { python3 -c "import socket; s=socket.create_connection(('127.0.0.1',$1)); s.sendall(b'srvr'); print([l for l in s.recv(4096).decode().splitlines() if l.startswith('Mode')][0])" 2>/dev/null || true; }
follower=""
for _ in $(seq 1 150); do
    for n in 1 2 3; do
        if [ "$(mode $((base + n)))" = "Mode: follower" ]; then follower=$n; fi
    done
    [ -n "$follower" ] && [ -n "$(mode $((base + 1)))" ] && [ -n "$(mode $((base + 2)))" ] && [ -n "$(mode $((base + 3)))" ] && break
    sleep 0.2
done
echo "follower: $follower"

python3 - "$((base + follower))" <<'PY'
import sys
from kazoo.client import KazooClient
client = KazooClient(hosts=f"127.0.0.1:{sys.argv[1]}", timeout=5.0)
client.start()
client.create("/q", b"quorum")
client.create("/q/e", b"", ephemeral=True)
client.set("/q", b"changed")
tx = client.transaction()
tx.create("/q/m", b"m")
tx.check("/q", 1)
tx.commit()
client.delete("/q/m")
client.stop()
client.close()
PY
sleep 2

for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
rm -f "$fixtures"/*.stream
cp "$work"/out/*.stream "$fixtures"/
ls "$fixtures"/*.stream | wc -l
