#!/usr/bin/env bash
# Rough loopback comparison of ferry against rsync (daemon) behind stunnel, both ends on
# this machine, no proxy or router. Prints wall times; run it on a quiet machine and read
# the ratios, not the absolute numbers. The full harness (proxy, router, CPU, RSS, medians
# of alternating pairs) is the benchmark issue's work.
# Needs: rsync, stunnel4 (apt-get install -y rsync stunnel4), a release build of ferry.
set -euo pipefail
FERRY=${FERRY:-$(cd "$(dirname "$0")/.." && pwd)/target/release/ferry}
WORK=${WORK:-$(mktemp -d /var/tmp/ferry-rough.XXXXXX)}
LARGE_MB=${LARGE_MB:-1024}
SMALL=${SMALL:-20000}
cd "$WORK"
echo "work dir $WORK"

mkdir -p large small
[ -f large/big.bin ] || head -c $((LARGE_MB * 1024 * 1024)) /dev/urandom > large/big.bin
if [ ! -d small/d0 ]; then
  python3 - "$SMALL" <<'PY'
import os, sys, random
n = int(sys.argv[1]); random.seed(7)
for i in range(n):
    d = f"small/d{i % 100}/e{i % 7}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i}", "wb") as f:
        f.write(random.randbytes(random.randint(100, 16000)))
PY
fi

"$FERRY" certs --out certs --server-name localhost >/dev/null 2>&1 || true
# stunnel wants cert and key in one file for the server.
cat certs/server/tls.crt certs/server/tls.key > stunnel-server.pem
cat > rsyncd.conf <<CONF
pid file = $WORK/rsyncd.pid
use chroot = no
[vol]
path = $WORK/rsync-dst
read only = false
uid = root
gid = root
CONF
cat > stunnel-server.conf <<CONF
foreground = no
pid = $WORK/stunnel-server.pid
[rsync]
accept = 127.0.0.1:18730
connect = 127.0.0.1:18731
cert = $WORK/stunnel-server.pem
CONF
cat > stunnel-client.conf <<CONF
foreground = no
pid = $WORK/stunnel-client.pid
[rsync]
client = yes
accept = 127.0.0.1:18732
connect = 127.0.0.1:18730
CONF
rsync --daemon --config=rsyncd.conf --port=18731 --address=127.0.0.1
stunnel4 stunnel-server.conf
stunnel4 stunnel-client.conf
mkdir -p ferry-dst rsync-dst
"$FERRY" serve --listen 127.0.0.1:0 --tls-dir certs/server --volume vol=ferry-dst >serve.out 2>serve.err &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; kill $(cat rsyncd.pid stunnel-server.pid stunnel-client.pid 2>/dev/null) 2>/dev/null' EXIT
for _ in $(seq 50); do [ -s serve.out ] && break; sleep 0.1; done
PORT=$(awk '{print $2}' serve.out | cut -d: -f2)

t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local e=$(date +%s.%N); echo "$e - $s" | bc; }
run_pair() {
  local name=$1 src=$2
  rm -rf rsync-dst ferry-dst; mkdir rsync-dst ferry-dst; sync
  local r f
  r=$(t rsync -aH --delete "$src"/ rsync://127.0.0.1:18732/vol/)
  f=$(t "$FERRY" push "$src" "ferry://localhost:$PORT/vol" --tls-dir certs/client --delete)
  echo "$name initial: rsync+stunnel ${r}s, ferry ${f}s"
  r=$(t rsync -aH --delete "$src"/ rsync://127.0.0.1:18732/vol/)
  f=$(t "$FERRY" push "$src" "ferry://localhost:$PORT/vol" --tls-dir certs/client --delete)
  echo "$name no-change: rsync+stunnel ${r}s, ferry ${f}s"
}
run_pair large large
run_pair small small
diff -r large ferry-dst >/dev/null 2>&1 || true
