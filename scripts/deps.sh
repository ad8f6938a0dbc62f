#!/usr/bin/env bash
# Installs the Debian packages Berth needs to build, run and test.
# Idempotent; needs root.
set -euo pipefail

PACKAGES=(
  runc            # OCI runtime the shim drives
  nftables        # packet filtering, NAT and load balancing
  iproute2        # links, addresses, network namespaces
  conntrack       # connection tracking (draining)
  busybox-static  # test images are built from it
  docker-registry # a real registry for tests and the demo
  skopeo          # peer for benchmarks, and to seed test registries
  apache2-utils   # htpasswd for the registry's basic auth
  zstd            # zstd-compressed test layers
  python3         # scripts/mkimages.py
  procps          # ps, for berth top
  hey             # bounded HTTP load in the services tests and benchmarks
  openssl         # the token-auth test signs its own JWTs
  prometheus      # a real Prometheus for rollout analysis tests (started by the test)
  jq curl bc ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package enables a registry service on :5000; Berth's tests and
# demo start their own on free loopback ports, so it is not needed.
# The same for Prometheus (:9090) and its node exporter.
for unit in docker-registry prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
    systemctl stop "$unit" || true
  fi
done
echo "dependencies installed"
