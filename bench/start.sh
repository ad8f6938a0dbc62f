#!/usr/bin/env bash
# Container start time and memory: berth vs bare runc vs podman, side by
# side in one run.
#
#   bench/start.sh [RUNS] [CONCURRENT] [IDLE]     (defaults: 30 50 100)
#
# 1. Median wall time of `run --rm IMAGE true`: berth; bare `runc run` on an
#    equivalent bundle (busybox rootfs, runc's default spec); `podman run
#    --rm` on the same image (with the ulimits this environment needs).
# 2. CONCURRENT containers started at once (`run -d ... sleep`): containers
#    per second, berth vs podman.
# 3. Resident memory of the berth daemon with IDLE running containers, and of
#    one shim.
# Needs root; builds berth in release mode; installs podman if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}; CONC=${2:-50}; IDLE=${3:-100}

[[ $(id -u) -eq 0 ]] || { echo "bench/start.sh: run as root" >&2; exit 2; }
command -v podman >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null; }
command -v docker-registry >/dev/null || bash scripts/deps.sh
cargo build --release --locked -q
BERTH=$PWD/target/release/berth

work=$(mktemp -d /tmp/berth-bench-start.XXXXXX)
# Run roots on tmpfs, as /run/berth and /run/containers are in production.
runroot=$(mktemp -d /run/berth-bench.XXXXXX)
daemon=""
podman_root=$work/podman-root
podman_run=$runroot/podman
P() { podman --root "$podman_root" --runroot "$podman_run" --storage-driver overlay --cgroup-manager cgroupfs --events-backend none "$@"; }
cleanup() {
  set +e
  if [[ -n $daemon ]]; then
    for id in $(BERTH_SOCKET=$runroot/berth/berth.sock "$BERTH" ps -a -q 2>/dev/null); do BERTH_SOCKET=$runroot/berth/berth.sock "$BERTH" rm -f "$id" >/dev/null 2>&1; done
    kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
  fi
  P rm -af >/dev/null 2>&1
  P system reset -f >/dev/null 2>&1
  grep -o "\($work\|$runroot\)[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for d in /sys/fs/cgroup/*/berth-bench /sys/fs/cgroup/berth-bench; do rmdir "$d" 2>/dev/null; done
  rm -rf "$work" "$runroot"
}
trap cleanup EXIT

python3 scripts/mkimages.py "$work/images" >/dev/null
export BERTH_SOCKET=$runroot/berth/berth.sock
cat >"$work/config.toml" <<TOML
[containers]
cgroup_parent = "berth-bench"
[network]
prefix = "bbench"
default_subnet = "10.250.0.0/23"
subnet_pool = "10.250.64.0/18"
service_cidr = "10.250.8.0/24"
TOML
"$BERTH" daemon --root "$work/root" --run-root "$runroot/berth" --config "$work/config.toml" >"$work/daemon.log" 2>&1 & daemon=$!
for _ in $(seq 100); do "$BERTH" version >/dev/null 2>&1 && break; sleep 0.05; done
"$BERTH" image import "$work/images/single" --tag bench/busybox:1 >/dev/null
skopeo copy -q "oci:$work/images/single:single" "containers-storage:[overlay@$podman_root+$podman_run]localhost/bench/busybox:1"

# Bare runc bundles on the same rootfs: "equivalent" uses the very spec
# berth generates for this image (seccomp, masked paths, capabilities), so
# the ratio is berth's own overhead; "defaults" is `runc spec` (no seccomp).
"$BERTH" create --name spec-source --network none bench/busybox:1 true >/dev/null
spec_id=$("$BERTH" inspect spec-source | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for kind in equivalent defaults; do
  mkdir -p "$work/$kind/rootfs"
  cp -a "$work/images/rootfs/." "$work/$kind/rootfs/"
done
cp "$work/root/containers/$spec_id/config.json" "$work/equivalent/config.json"
"$BERTH" rm spec-source >/dev/null
(cd "$work/defaults" && runc spec)
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
for kind in ("equivalent", "defaults"):
    path = f"{work}/{kind}/config.json"
    s = json.load(open(path))
    s["root"] = {"path": f"{work}/{kind}/rootfs", "readonly": kind == "defaults"}
    s["process"]["terminal"] = False
    s["process"]["args"] = ["/bin/true"]
    s["linux"]["cgroupsPath"] = f"/berth-bench/runc-{kind}"
    for r in s["process"].get("rlimits", []):
        if r["type"] == "RLIMIT_NOFILE":
            r["hard"] = r["soft"] = 1024
    json.dump(s, open(path, "w"))
PY

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_it() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; t1=$(now); echo "$t1 - $t0" | bc; }

for i in $(seq "$RUNS"); do
  # --network none, like podman's below and bare runc: start cost only.
  time_it "$BERTH" run --rm --network none bench/busybox:1 true >>"$work/berth.t"
  time_it "$BERTH" run --rm bench/busybox:1 true >>"$work/berth-net.t"
  time_it runc --root "$runroot/runc" run --bundle "$work/equivalent" "bench-$i" >>"$work/runc.t"
  time_it runc --root "$runroot/runc" run --bundle "$work/defaults" "bench-d$i" >>"$work/runc-defaults.t"
  time_it P run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/bench/busybox:1 true >>"$work/podman.t"
done
b=$(median <"$work/berth.t"); r=$(median <"$work/runc.t"); p=$(median <"$work/podman.t"); rd=$(median <"$work/runc-defaults.t"); bn=$(median <"$work/berth-net.t")

# Concurrent starts.
t0=$(now)
jobs=()
for i in $(seq "$CONC"); do "$BERTH" run -d --network none --name "conc$i" bench/busybox:1 sleep 600 >/dev/null & jobs+=($!); done
wait "${jobs[@]}"
t1=$(now); bc_rate=$(echo "$CONC / ($t1 - $t0)" | bc -l)
for i in $(seq "$CONC"); do "$BERTH" rm -f "conc$i" >/dev/null; done
t0=$(now)
jobs=()
for i in $(seq "$CONC"); do P run -d --name "conc$i" --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/bench/busybox:1 sleep 600 >/dev/null & jobs+=($!); done
wait "${jobs[@]}"
t1=$(now); pc_rate=$(echo "$CONC / ($t1 - $t0)" | bc -l)
P rm -af -t 0 >/dev/null 2>&1

# Memory with IDLE running containers.
for i in $(seq "$IDLE"); do "$BERTH" run -d --name "idle$i" bench/busybox:1 sleep 600 >/dev/null; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
daemon_kb=$(rss "$daemon")
shim_pid=$(cat "$runroot/berth/containers/$("$BERTH" inspect idle1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')/shim.pid")
shim_kb=$(rss "$shim_pid")
shim_pss=$(awk '/^Pss:/ {s+=$2} END {print s}' "/proc/$shim_pid/smaps" 2>/dev/null || echo "?")

printf 'run --rm IMAGE true, %d runs, medians\n' "$RUNS"
printf '  %-44s %8.3f s\n' "berth run --rm --network none" "$b" "berth run --rm (default network: netns, veth, DNS, rules)" "$bn" \
  "runc run (equivalent bundle: berth's spec)" "$r" \
  "runc run (runc spec defaults, no seccomp)" "$rd" "podman run --rm" "$p"
printf '  ratio berth/runc: %.2f   podman/berth: %.2f\n' "$(echo "$b / $r" | bc -l)" "$(echo "$p / $b" | bc -l)"
printf '%d containers started at once\n' "$CONC"
printf '  berth %.1f/s   podman %.1f/s   ratio %.2f\n' "$bc_rate" "$pc_rate" "$(echo "$bc_rate / $pc_rate" | bc -l)"
printf 'memory with %d running containers\n' "$IDLE"
printf '  berth daemon RSS %.1f MB; one shim RSS %.1f MB (PSS %.1f MB)\n' "$(echo "$daemon_kb / 1024" | bc -l)" "$(echo "$shim_kb / 1024" | bc -l)" "$(echo "${shim_pss:-0} / 1024" | bc -l)"
