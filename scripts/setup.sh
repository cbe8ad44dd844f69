#!/usr/bin/env bash
# Installs whatever is missing for gfs to build, run and be tested, then builds it.
# Idempotent and quick when everything is already there. Used by `npm start`, `npm test`,
# the Vagrantfile and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "gfs needs Node.js 20 or newer on PATH (found: $(node -v 2>/dev/null || echo none))" >&2
  exit 1
fi

# System packages: libfuse2 is what fuse-native links; fuse3 provides fusermount3 and
# /etc/fuse.conf (Debian's `fuse` 2.9 package conflicts with fuse3, so it is not used);
# libfuse-dev + pkg-config + a compiler rebuild our patched fuse-native; iproute2 (`ip netns`)
# runs the network-cut test of test/integration/self-healing.test.ts.
APT_PACKAGES=(libfuse2 fuse3 libfuse-dev pkg-config g++ make python3 rsync git iproute2)
if [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "gfs setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  [ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "gfs setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/build-fuse-native.sh
npm run --silent build
