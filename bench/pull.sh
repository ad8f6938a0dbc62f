#!/usr/bin/env bash
# Pull speed: berth vs skopeo, side by side in one run, from a local
# registry (Debian's docker-registry on loopback).
#
#   bench/pull.sh [RUNS] [LAYERS] [MIB_PER_LAYER]     (defaults: 5 6 16)
#
# Each run starts from an empty store. Compared, per run:
#   berth pull                 download, verify, unpack every layer
#   skopeo -> containers-storage   the same work as podman pull (overlay driver)
#   skopeo -> oci: directory   download and verify only, no unpack
#   berth pull, warm store     every blob already present (manifest round trip)
# Prints medians and the ratios (below 1 means berth is faster). Needs root;
# builds berth in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}; LAYERS=${2:-6}; MIB=${3:-16}

[[ $(id -u) -eq 0 ]] || { echo "bench/pull.sh: run as root" >&2; exit 2; }
command -v skopeo >/dev/null && command -v docker-registry >/dev/null || bash scripts/deps.sh
cargo build --release --locked -q
BERTH=$PWD/target/release/berth

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
pids=()
# containers-storage bind-mounts its overlay directory onto itself.
cs_clean() { umount "$work/cs-root/overlay" 2>/dev/null || true; rm -rf "$work/cs-root" "$work/cs-run"; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  cs_clean
  rm -rf "$work"
}
trap cleanup EXIT

python3 bench/mkbenchimage.py "$work/layout" "$LAYERS" "$MIB" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port, secret: berth-bench}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
ref="127.0.0.1:$port/bench/img:1"
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:bench" "docker://$ref"
bytes=$(du -sb "$work/layout/blobs" | cut -f1)

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

start_daemon() {
  rm -rf "$work/root" "$work/run"
  "$BERTH" daemon --root "$work/root" --run-root "$work/run" >"$work/daemon.log" 2>&1 & DAEMON=$!
  for _ in $(seq 100); do BERTH_SOCKET=$work/run/berth.sock "$BERTH" version >/dev/null 2>&1 && return; sleep 0.05; done
  echo "daemon did not start" >&2; cat "$work/daemon.log" >&2; exit 1
}
stop_daemon() { kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; }

: >"$work/berth.times"; : >"$work/skopeo.times"; : >"$work/warm.times"; : >"$work/cs.times"
for i in $(seq "$RUNS"); do
  start_daemon
  t0=$(now); BERTH_SOCKET=$work/run/berth.sock "$BERTH" pull -q "$ref" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/berth.times"
  BERTH_SOCKET=$work/run/berth.sock "$BERTH" tag "$ref" "127.0.0.1:$port/bench/img:other" >/dev/null
  t0=$(now); BERTH_SOCKET=$work/run/berth.sock "$BERTH" pull -q "$ref" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/warm.times"
  stop_daemon
  rm -rf "$work/skopeo-out"
  t0=$(now); skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/skopeo-out:bench"; t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/skopeo.times"
  cs_clean
  t0=$(now); skopeo copy -q --src-tls-verify=false "docker://$ref" "containers-storage:[overlay@$work/cs-root+$work/cs-run]bench/img:1"; t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/cs.times"
  cs_clean
done

b=$(median <"$work/berth.times"); s=$(median <"$work/skopeo.times"); w=$(median <"$work/warm.times"); c=$(median <"$work/cs.times")
printf 'image: %d layers, %s compressed, from a registry on loopback; %d runs, medians\n' "$LAYERS" "$(numfmt --to=si "$bytes")B" "$RUNS"
printf '%-44s %8.3f s\n' \
  "berth pull (download, verify, unpack)" "$b" \
  "skopeo copy to containers-storage (same)" "$c" \
  "skopeo copy to oci: dir (no unpack)" "$s" \
  "berth pull, warm store" "$w"
printf 'ratio berth / skopeo->containers-storage: %.2f\n' "$(echo "$b / $c" | bc -l)"
printf 'ratio berth / skopeo->oci (berth also unpacks): %.2f\n' "$(echo "$b / $s" | bc -l)"
