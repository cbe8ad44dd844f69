#!/usr/bin/env bash
# Provisions one machine of a gfs cluster (the Vagrant VMs, or any Debian 12 host): Node.js 20,
# the build/runtime packages (scripts/setup.sh), a `gfs` installed from the packed tarball
# (npm pack + npm install -g: the same path the package test checks), and the systemd units.
#   usage (as root, from a checkout): bash scripts/provision/node.sh
# Then give the machine a role with scripts/provision/role.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ "$(id -u)" = 0 ] || { echo "provision: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  apt-get update -qq
  apt-get install -y -qq ca-certificates curl gnupg >/dev/null
  # Debian 12 ships Node 18; gfs needs 20 (NodeSource's Debian repository).
  curl -fsSL https://deb.nodesource.com/setup_20.x | bash - >/dev/null
  apt-get install -y -qq nodejs >/dev/null
fi

# Packages, npm ci, the patched fuse-native and the TypeScript build of this checkout.
bash scripts/setup.sh

# Install gfs system-wide from the packed tarball, then build its patched fuse-native now
# (instead of on the first mount).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack --pack-destination "$tmp" --loglevel=error >/dev/null
npm install -g --no-audit --no-fund --loglevel=error "$tmp"/gfs-*.tgz
prefix=$(npm prefix -g)
GFS_FUSE_NATIVE_DIR="$prefix/lib/node_modules/gfs/node_modules/fuse-native" bash "$prefix/lib/node_modules/gfs/scripts/build-fuse-native.sh"

install -m 0644 scripts/systemd/*.service /etc/systemd/system/
mkdir -p /etc/gfs /var/lib/gfs
systemctl daemon-reload
echo "provision: gfs $(gfs --version 2>/dev/null || true) installed at $(command -v gfs)"
