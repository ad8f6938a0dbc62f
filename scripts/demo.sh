#!/usr/bin/env bash
# Sets up a fresh Debian machine and shows Berth's main job so far:
# installs the packages, builds berth, starts the daemon on its embedded
# defaults (/var/lib/berth, /run/berth), builds a test image, pushes it to
# a local registry, pulls it back, runs containers from it, and applies a
# Kubernetes Deployment with a Service, and a canary update of an Argo
# Rollout. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "scripts/demo.sh: run as root (the daemon owns /var/lib/berth and /run/berth)" >&2; exit 2; }

bash scripts/deps.sh
cargo build --release --locked
install -m 0755 target/release/berth target/release/berth-shim /usr/local/bin/
echo "installed /usr/local/bin/berth and berth-shim"

# The daemon, on its defaults, unless one is already running.
if ! berth version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup berth daemon >>/var/log/berth.log 2>&1 &
  echo $! >/run/berth-daemon.pid
  for _ in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
  echo "berth daemon started (pid $(cat /run/berth-daemon.pid), log /var/log/berth.log)"
fi
berth version

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
registry_pid=""
cleanup() {
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 scripts/mkimages.py "$work/images" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port, secret: berth-demo}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

ref="127.0.0.1:$port/demo/busybox:1"
set -x
berth image import "$work/images/multi" --tag "$ref"
berth push "$ref"
berth rmi "$ref"
berth pull "$ref"
berth images
berth run --rm --name demo "$ref" sh -c 'echo "hello from a berth container: $(hostname), uid $(id -u)"'
web_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
berth run -d --name demo-web --memory 64m -p "$web_port:8080" "$ref" sh -c 'mkdir -p /w; echo "hello from demo-web" >/w/index.html; exec httpd -f -p 8080 -h /w'
berth ps
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$web_port/" && break; sleep 0.1; done
berth run --rm "$ref" sh -c "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc demo-web 8080 | tail -1"
berth stats --no-stream demo-web
berth rm -f demo-web
set +x

# Declared services: a Kubernetes Deployment of 2 web pods behind a Service.
cat >"$work/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo-web}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo-web}}
  template:
    metadata: {labels: {app: demo-web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: httpd
          image: $ref
          command: [sh, -c, 'mkdir -p /w && echo "hello from pod \$POD" > /w/index.html && exec httpd -f -p 8080 -h /w']
          env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
          ports: [{containerPort: 8080, name: http}]
          readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: demo-web}
spec:
  selector: {app: demo-web}
  ports: [{port: 80, targetPort: http}]
YAML
set -x
berth apply -f "$work/web.yaml"
for _ in $(seq 150); do [[ $(berth get deployment demo-web -o json | jq -r '.status.readyReplicas') == 2 ]] && break; sleep 0.2; done
berth get pods -o wide
berth get services
vip=$(berth get service demo-web -o json | jq -r '.spec.clusterIP')
for _ in 1 2 3 4; do curl -fs "http://$vip/"; done
berth delete -f "$work/web.yaml"
set +x

# A hot update: an Argo Rollout moved from v1 to v2 as a canary, 25 % of
# new connections first (an exact weight on the VIP), then all of it after
# 'berth rollout promote'.
rollout() {
  cat <<YAML
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: demo-canary}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo-canary}}
  template:
    metadata: {labels: {app: demo-canary}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: httpd
          image: $ref
          command: [sh, -c, 'mkdir -p /w && echo "$1" > /w/index.html && exec httpd -f -p 8080 -h /w']
          ports: [{containerPort: 8080, name: http}]
          readinessProbe: {tcpSocket: {port: http}, periodSeconds: 1}
  strategy:
    canary:
      steps: [{setWeight: 25}, {pause: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: demo-canary}
spec:
  selector: {app: demo-canary}
  ports: [{port: 80, targetPort: http}]
YAML
}
rollout v1 >"$work/canary-v1.yaml"
rollout v2 >"$work/canary-v2.yaml"
# N requests to the VIP, a new connection each: which version answered.
hits() { for _ in $(seq "$2"); do curl -fs "http://$1/"; done | sort | uniq -c; }
paused() { for _ in $(seq 150); do [[ $(berth get rollout "$1" -o json | jq -r '.status.phase') == Paused ]] && return; sleep 0.2; done; }
set -x
berth apply -f "$work/canary-v1.yaml"
berth rollout status rollout/demo-canary --timeout 60s
berth apply -f "$work/canary-v2.yaml"
{ paused demo-canary; } 2>/dev/null
berth get rollouts -o wide
vip=$(berth get service demo-canary -o json | jq -r '.spec.clusterIP')
{ hits "$vip" 200; } 2>/dev/null
berth rollout promote rollout/demo-canary
berth rollout status rollout/demo-canary --timeout 60s
{ hits "$vip" 20; } 2>/dev/null
berth delete -f "$work/canary-v2.yaml"
berth system df -v
set +x
echo
echo "The daemon keeps running; stop it with: kill \$(cat /run/berth-daemon.pid)"
