#!/usr/bin/env bash
# Updating a web service under load: berth's rolling update of a 4-replica
# Deployment behind a Service VIP, against the way a Podman user updates
# (stop the old container, run the new one on the same published port),
# side by side in one run, under the same load.
#
#   bench/rollout.sh [SECONDS]      (default 30: the load window per case)
#
# Load: hey at 200 requests per second (4 workers x 50), a new connection
# per request, for SECONDS; the update starts 5 s into the window. Printed
# per case: failed requests (errors and non-200 answers), p99 latency over
# the window, and the update time (from the update command until the new
# version is fully rolled out).
#
# The same 4-replica service is then updated as an Argo Rollout: canary
# (20 % for 3 s, 50 % for 3 s, then all) and blue-green (green comes up
# behind the preview Service; promote switches the active one). For
# blue-green the switch time is printed too: from the promote command to the
# first request answered by green, seen by a client sending a request (new
# connection each) every few hundred microseconds.
# Needs root; builds berth in release mode; installs podman and hey if
# missing. Cleans up everything it started, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}

[[ $(id -u) -eq 0 ]] || { echo "bench/rollout.sh: run as root" >&2; exit 2; }
command -v podman >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null; }
command -v hey >/dev/null && command -v docker-registry >/dev/null || bash scripts/deps.sh
cargo build --release --locked -q
BERTH=$PWD/target/release/berth

work=$(mktemp -d /tmp/berth-bench-rollout.XXXXXX)
runroot=$(mktemp -d /run/berth-bench.XXXXXX)
daemon=""
podman_root=$work/podman-root
podman_run=$runroot/podman
tables_before=$(nft list tables)
links_before=$(ip -o link show | awk -F': ' '{print $2}')
cni_state_before=$([[ -d /var/lib/cni/networks/podman ]] && echo yes || echo no)
P() { podman --root "$podman_root" --runroot "$podman_run" --storage-driver overlay --cgroup-manager cgroupfs --events-backend none "$@"; }
cleanup() {
  set +e
  if [[ -n $daemon ]]; then
    for f in v1 canary-v1 bg-v1; do "$BERTH" delete -f "$work/$f.yaml" --ignore-not-found >/dev/null 2>&1; done
    for _ in $(seq 100); do [[ -z $("$BERTH" get pods -o name 2>/dev/null) ]] && break; sleep 0.2; done
    for id in $("$BERTH" ps -a -q 2>/dev/null); do "$BERTH" rm -f "$id" >/dev/null 2>&1; done
    kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
  fi
  P rm -af >/dev/null 2>&1
  P system reset -f >/dev/null 2>&1
  # Podman's network backend (CNI or netavark) leaves its iptables-nft
  # tables and bridge behind; remove them only if this run created them and
  # they hold nothing but its plumbing chains.
  while read -r _ family table; do
    [[ -n $table ]] || continue
    grep -qx "table $family $table" <<<"$tables_before" && continue
    [[ $table == nat || $table == filter ]] || continue
    if ! nft list table "$family" "$table" 2>/dev/null | grep -E '^\s*chain ' |
      grep -vqE 'chain ((NETAVARK|CNI)[-_A-Za-z0-9]*|PREROUTING|POSTROUTING|OUTPUT|INPUT|FORWARD) '; then
      nft delete table "$family" "$table"
    fi
  done < <(nft list tables)
  [[ $cni_state_before == no ]] && rm -rf /var/lib/cni/networks/podman
  for link in cni-podman0 podman0; do
    if ! grep -qx "$link" <<<"$links_before" && ip link show "$link" >/dev/null 2>&1; then
      ip link delete "$link"
    fi
  done
  grep -o "\($work\|$runroot\)[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for d in /sys/fs/cgroup/*/berth-bench-rollout /sys/fs/cgroup/berth-bench-rollout; do rmdir "$d" 2>/dev/null; done
  rm -rf "$work" "$runroot"
}
trap cleanup EXIT

python3 scripts/mkimages.py "$work/images" >/dev/null
export BERTH_SOCKET=$runroot/berth/berth.sock
cat >"$work/config.toml" <<TOML
[containers]
cgroup_parent = "berth-bench-rollout"
[network]
prefix = "bbroll"
default_subnet = "10.251.0.0/23"
subnet_pool = "10.251.64.0/18"
service_cidr = "10.251.8.0/24"
[services]
drain_timeout_seconds = 10
TOML
"$BERTH" daemon --root "$work/root" --run-root "$runroot/berth" --config "$work/config.toml" >"$work/daemon.log" 2>&1 & daemon=$!
for _ in $(seq 100); do "$BERTH" version >/dev/null 2>&1 && break; sleep 0.05; done
"$BERTH" image import "$work/images/single" --tag bench/busybox:1 >/dev/null
skopeo copy -q "oci:$work/images/single:single" "containers-storage:[overlay@$podman_root+$podman_run]localhost/bench/busybox:1"

serve() { echo "mkdir -p /w && echo $1 > /w/index.html && exec httpd -f -p 8080 -h /w"; }

manifest() {
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: web
          image: bench/busybox:1
          command: [sh, -c, "$(serve "$1")"]
          ports: [{containerPort: 8080, name: http}]
          readinessProbe: {tcpSocket: {port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
YAML
}

# Runs hey against $1 for SECS in the background (its PID in $load_pid);
# its summary goes to $2.
load() {
  hey -z "${SECS}s" -c 4 -q 50 -t 5 -disable-keepalive "$1" >"$2" 2>&1 &
  load_pid=$!
}

# "failed p99_ms" from a hey summary.
summarize() {
  local f=$1 errors non200 p99
  errors=$(awk '/Error distribution:/{e=1;next} e && /\[[0-9]+\]/{gsub(/[\[\]]/,"",$1); s+=$1} END{print s+0}' "$f")
  non200=$(awk '/Status code distribution:/{c=1;next} /Error distribution:/{c=0} c && /\[[0-9]+\]/{code=$1; gsub(/[\[\]]/,"",code); if (code!="200") s+=$2} END{print s+0}' "$f")
  p99=$(awk '/ 99% in /{print $3*1000; exit}' "$f")
  echo "$((errors + non200)) ${p99:-nan}"
}

now() { date +%s.%N; }

# 1. berth: rolling update of 4 replicas behind the Service VIP.
manifest v1 >"$work/v1.yaml"
manifest v2 >"$work/v2.yaml"
"$BERTH" apply -f "$work/v1.yaml" >/dev/null
"$BERTH" rollout status deployment/web --timeout 120s >/dev/null
vip=$("$BERTH" get service web -o json | jq -r .spec.clusterIP)
load "http://$vip/" "$work/berth.hey"
sleep 5
t0=$(now)
"$BERTH" apply -f "$work/v2.yaml" >/dev/null
"$BERTH" rollout status deployment/web --timeout 120s >/dev/null
berth_update=$(echo "$(now) - $t0" | bc -l)
wait "$load_pid" || true
read -r berth_failed berth_p99 <<<"$(summarize "$work/berth.hey")"

# The same Deployment, having served that traffic, deleted: the time until
# its last pod is gone (closing connections must not hold a pod; preStop
# and the grace period still run).
t0=$(now)
"$BERTH" delete deployment web >/dev/null
for _ in $(seq 1 600); do
  [[ $("$BERTH" get pods -l app=web -o json | jq '.items | length') == 0 ]] && break
  sleep 0.05
done
delete_s=$(echo "$(now) - $t0" | bc -l)

# 2. podman: stop the old container, run the new one on the same port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_podman() {
  P run -d --name "$1" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -p "127.0.0.1:$port:8080" \
    localhost/bench/busybox:1 sh -c "$(serve "$1")" >/dev/null
}
run_podman v1
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
load "http://127.0.0.1:$port/" "$work/podman.hey"
sleep 5
t0=$(now)
P stop -t 5 v1 >/dev/null
P rm v1 >/dev/null
run_podman v2
for _ in $(seq 200); do [[ $(curl -fs "http://127.0.0.1:$port/" 2>/dev/null) == v2 ]] && break; sleep 0.05; done
podman_update=$(echo "$(now) - $t0" | bc -l)
wait "$load_pid" || true
read -r podman_failed podman_p99 <<<"$(summarize "$work/podman.hey")"

# Argo Rollouts through the API (curl on the daemon's socket).
api() { curl -s --unix-socket "$BERTH_SOCKET" "$@"; }
rollout_manifest() { # name version strategy-yaml
  cat <<YAML
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: $1}
spec:
  replicas: 4
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: web
          image: bench/busybox:1
          command: [sh, -c, "$(serve "$2")"]
          ports: [{containerPort: 8080, name: http}]
          readinessProbe: {tcpSocket: {port: http}, periodSeconds: 1}
  strategy:
$3
---
apiVersion: v1
kind: Service
metadata: {name: $1}
spec:
  selector: {app: $1}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: $1-preview}
spec:
  selector: {app: $1}
  ports: [{port: 80, targetPort: http}]
YAML
}
phase() { api "http://berth/v1/objects/rollouts/default/$1" | jq -r '.status.phase // ""'; }
wait_phase() { # name phase
  for _ in $(seq 1200); do [[ $(phase "$1") == "$2" ]] && return 0; sleep 0.1; done
  echo "bench/rollout.sh: rollout $1 never reached $2" >&2; return 1
}
rollout_case() { # name strategy-yaml -> "failed p99 update"
  rollout_manifest "$1" v1 "$2" >"$work/$3-v1.yaml"
  rollout_manifest "$1" v2 "$2" >"$work/$3-v2.yaml"
  "$BERTH" apply -f "$work/$3-v1.yaml" >/dev/null
  wait_phase "$1" Healthy
  sleep 2
  local ip
  ip=$("$BERTH" get service "$1" -o json | jq -r .spec.clusterIP)
  load "http://$ip/" "$work/$3.hey"
  sleep 5
  t0=$(now)
  "$BERTH" apply -f "$work/$3-v2.yaml" >/dev/null
}

# 3. berth canary.
rollout_case webc "    canary:
      steps: [{setWeight: 20}, {pause: {duration: 3s}}, {setWeight: 50}, {pause: {duration: 3s}}]" canary
sleep 1
wait_phase webc Healthy
canary_update=$(echo "$(now) - $t0" | bc -l)
wait "$load_pid" || true
read -r canary_failed canary_p99 <<<"$(summarize "$work/canary.hey")"

# 4. berth blue-green, promoted by hand once the preview is ready.
rollout_case webbg "    blueGreen: {activeService: webbg, previewService: webbg-preview, autoPromotionEnabled: false, scaleDownDelaySeconds: 3}" bg
wait_phase webbg Paused
bg_ip=$("$BERTH" get service webbg -o json | jq -r .spec.clusterIP)
python3 - "$bg_ip" >"$work/switch.txt" <<'PY' &
import socket, sys, time
ip, deadline = sys.argv[1], time.time() + 20
while time.time() < deadline:
    try:
        s = socket.create_connection((ip, 80), timeout=1)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        if data.rstrip().endswith(b"v2"):
            print(f"{time.time():.6f}")
            break
    except OSError:
        pass
    time.sleep(0.0002)
PY
probe_pid=$!
sleep 1
t_switch=$(now)
api -X POST -H 'content-type: application/json' -d '{"action":"promote"}' "http://berth/v1/objects/rollouts/default/webbg/rollout" >/dev/null
wait "$probe_pid" || true
switch_ms=$(echo "($(cat "$work/switch.txt") - $t_switch) * 1000" | bc -l)
wait_phase webbg Healthy
bg_update=$(echo "$(now) - $t0" | bc -l)
wait "$load_pid" || true
read -r bg_failed bg_p99 <<<"$(summarize "$work/bg.hey")"

printf '\nupdate under 200 requests/s for %s s (new connection per request)\n\n' "$SECS"
printf '%-34s %16s %10s %12s\n' "strategy" "failed requests" "p99 (ms)" "update (s)"
printf '%-34s %16s %10s %12.2f\n' "berth rolling (4 replicas, VIP)" "$berth_failed" "$berth_p99" "$berth_update"
printf '%-34s %16s %10s %12.2f\n' "podman stop old + run new" "$podman_failed" "$podman_p99" "$podman_update"
printf '%-34s %16s %10s %12.2f\n' "berth canary 20/50/100 %" "$canary_failed" "$canary_p99" "$canary_update"
printf '%-34s %16s %10s %12.2f\n' "berth blue-green (manual promote)" "$bg_failed" "$bg_p99" "$bg_update"
printf '\nblue-green switch, promote to first answer from green: %.1f ms\n' "$switch_ms"
printf 'delete of the 4-replica Deployment after the load, to its last pod gone: %.2f s\n' "$delete_s"
for f in berth podman canary bg; do
  if grep -q "Error distribution" "$work/$f.hey"; then
    printf '\n%s errors:\n' "$f"
    sed -n '/Error distribution:/,$p' "$work/$f.hey" | tail -n +2 | head -5
  fi
done
