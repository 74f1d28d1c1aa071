#!/usr/bin/env bash
# Re-captures the golden fixtures: starts a private Apache ZooKeeper (extendedTypesEnabled=true,
# so TTL nodes work), puts the recording proxy in front of it, drives kazoo, zkCli.sh, the C
# client's cli_mt and the Java client API through it, and writes one .frames file per
# connection into the folder above this one. Needs: java, zookeeper (Debian package), kazoo.
#
#   Tests/KeeperWireTests/Fixtures/capture/capture.sh [BASE_PORT]   (default 22181)
#
# The ports BASE_PORT..BASE_PORT+4 must be free. The ZooKeeper it starts is stopped at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="$(dirname "$here")"
port="${1:-22181}"
classpath="/usr/share/java/*:/etc/zookeeper/conf"
zkcli="${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}"
climt="${CLI_MT:-/usr/lib/zookeeper/bin/cli_mt}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/data" "$work/out"
cat > "$work/zoo.cfg" <<CFG
tickTime=2000
dataDir=$work/data
clientPort=$port
admin.enableServer=false
4lw.commands.whitelist=*
CFG
java -Dzookeeper.extendedTypesEnabled=true -cp "$classpath" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zoo.cfg" > "$work/zk.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port)); s.sendall(b'ruok'); sys.exit(0 if s.recv(4)==b'imok' else 1)" 2>/dev/null; then break; fi
    sleep 0.2
done
version="$(python3 -c "import socket; s=socket.create_connection(('127.0.0.1',$port)); s.sendall(b'srvr'); print(s.recv(4096).decode().splitlines()[0])")"
echo "server: $version"

run() {  # run LABEL LISTEN_PORT COMMAND...
    local label="$1" listen="$2"; shift 2
    python3 "$here/record_proxy.py" --listen "$listen" --upstream "$port" --out "$work/out" \
        --label "$label" --comment "server: $version" &
    local proxy=$!
    sleep 0.5
    "$@" "$proxy"
    sleep 1
    kill -TERM "$proxy"
    wait "$proxy" 2>/dev/null || true
}

run kazoo $((port + 1)) bash -c 'python3 "$0" "127.0.0.1:$1"' "$here/kazoo_driver.py" "$((port + 1))"
run zkcli $((port + 2)) python3 "$here/zkcli_driver.py" "$zkcli" "127.0.0.1:$((port + 2))"
run climt $((port + 3)) python3 "$here/climt_driver.py" "$climt" "127.0.0.1:$((port + 3))"
run javaapi $((port + 4)) bash -c 'java -cp "$0" "$1" "127.0.0.1:$2" 2>&1 | grep -v SLF4J' "$classpath" "$here/JavaApiDriver.java" "$((port + 4))"

kill -TERM "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
python3 "$here/extract_txnlog.py" "$work/out/zookeeper-txnlog.txns" "$work"/data/version-2/log.*

rm -f "$fixtures"/*.frames "$fixtures"/*.txns
cp "$work"/out/*.frames "$work"/out/*.txns "$fixtures"/
ls "$fixtures"/*.frames "$fixtures"/*.txns | wc -l
