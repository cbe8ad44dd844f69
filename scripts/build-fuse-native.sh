#!/usr/bin/env bash
# Applies patches/fuse-native+2.2.6.patch (patch-package) and rebuilds fuse-native from its C
# source so that node-gyp-build loads OUR build: it prefers build/Release/*.node over the
# unpatched prebuilds/ unless PREBUILDS_ONLY or FUSE_NATIVE_PREBUILD is set (both are refused
# here). Installs the system packages it needs when they are missing and we are root.
# Idempotent: a stamp records the patch/source/node hashes; a second run takes well under 1 s.
#   usage: bash scripts/build-fuse-native.sh [--force]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# GFS_FUSE_NATIVE_DIR: where fuse-native is when it is not $ROOT/node_modules (set by `gfs mount`
# in an installed package, in case npm placed it elsewhere).
FN="${GFS_FUSE_NATIVE_DIR:-$ROOT/node_modules/fuse-native}"
PATCH="$ROOT/patches/fuse-native+2.2.6.patch"
STAMP="$FN/build/Release/.gfs-build-stamp"
FORCE=${1:-}

log() { echo "build-fuse-native: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ -d "$FN" ] || die "node_modules/fuse-native is missing; run npm install first"
[ -f "$PATCH" ] || die "missing $PATCH"
if [ -n "${PREBUILDS_ONLY:-}" ] || [ -n "${FUSE_NATIVE_PREBUILD:-}" ]; then
  die "PREBUILDS_ONLY / FUSE_NATIVE_PREBUILD would load the unpatched prebuild; unset them"
fi

# --- system packages -------------------------------------------------------------------------
is_root() { [ "$(id -u)" = 0 ]; }
missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ! pkg-config --exists fuse 2>/dev/null; then missing+=(libfuse-dev); fi
ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2 ' || missing+=(libfuse2)
command -v fusermount >/dev/null 2>&1 || command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v make >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)        # e2e tests use rsync
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux) # e2e tests run as a non-root user
if [ ${#missing[@]} -gt 0 ]; then
  if is_root && command -v apt-get >/dev/null 2>&1; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
      apt-get update >/dev/null 2>&1 || true
      apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    }
  else
    log "warning: missing ${missing[*]} (not root or no apt-get); the build may fail"
  fi
fi

# allow_other for mounts made by a non-root user needs user_allow_other (root needs nothing).
if is_root && [ -w /etc ] && ! grep -qs '^[[:space:]]*user_allow_other' /etc/fuse.conf; then
  echo 'user_allow_other' >>/etc/fuse.conf
fi

# --- patch ------------------------------------------------------------------------------------
# "Applied" means: reversing our patch would succeed, i.e. the sources are exactly patched.
patch_applied() {
  if command -v patch >/dev/null 2>&1; then
    patch -d "$FN" -p3 -R --dry-run -s -f <"$PATCH" >/dev/null 2>&1
  else
    grep -q 'GFS_PATCH_LEVEL' "$FN/fuse-native.c" && grep -q 'gfs patch' "$FN/index.js"
  fi
}
if ! patch_applied; then
  if grep -q 'GFS_PATCH_LEVEL' "$FN/fuse-native.c"; then
    die "node_modules/fuse-native carries a different gfs patch; reinstall it (rm -rf node_modules/fuse-native && npm install) and rerun"
  fi
  if [ -x "$ROOT/node_modules/.bin/patch-package" ] && [ "$FN" = "$ROOT/node_modules/fuse-native" ]; then
    log "applying patches (patch-package)"
    npx --no-install patch-package >&2 || die "patch-package failed"
  else
    # An installed package (npm install -g gfs-*.tgz) has no devDependencies: plain patch(1).
    command -v patch >/dev/null 2>&1 || { is_root && apt-get install -y -qq patch >/dev/null 2>&1; } || true
    log "applying $PATCH (patch)"
    patch -d "$FN" -p3 -N -s <"$PATCH" >&2 || die "patch failed"
  fi
  patch_applied || die "patches/fuse-native+2.2.6.patch did not apply"
fi

# --- build ------------------------------------------------------------------------------------
hash_inputs() {
  { cat "$PATCH" "$FN/fuse-native.c" "$FN/binding.gyp"; [ ! -f "$FN/fuse-ll.c" ] || cat "$FN/fuse-ll.c"; node -p 'process.versions.node + process.arch + process.versions.modules'; } \
    | sha256sum | cut -d' ' -f1
}
want=$(hash_inputs)
if [ "$FORCE" != "--force" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -f "$FN/build/Release/fuse.node" ]; then
  exit 0
fi

NPM_BIN=$(readlink -f "$(command -v npm)")
NODE_GYP="$(dirname "$NPM_BIN")/../node_modules/node-gyp/bin/node-gyp.js"
gyp=()
if [ -f "$NODE_GYP" ]; then gyp=(node "$NODE_GYP"); elif command -v node-gyp >/dev/null 2>&1; then gyp=(node-gyp); else gyp=(npx --yes node-gyp); fi
gyp_args=(rebuild)
# Use the installed Node headers when present (no download needed).
NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ -f "$NODE_PREFIX/include/node/node_api.h" ] && [ -f "$NODE_PREFIX/include/node/common.gypi" ]; then
  gyp_args+=("--nodedir=$NODE_PREFIX")
fi
log "compiling fuse-native ($(pkg-config --modversion fuse 2>/dev/null || echo '?'))"
(cd "$FN" && "${gyp[@]}" "${gyp_args[@]}" >/tmp/gfs-build-fuse-native.log 2>&1) || {
  tail -30 /tmp/gfs-build-fuse-native.log >&2
  die "node-gyp rebuild failed (full log: /tmp/gfs-build-fuse-native.log)"
}

# --- verify that the patched build is the one node-gyp-build loads -------------------------------
loaded=$(cd "$ROOT" && node -e '
  const F = require(process.argv[1]);
  if (F.GFS_PATCH_LEVEL === undefined) { console.error("unpatched binding loaded: " + F.GFS_BINDING_PATH); process.exit(1) }
  process.stdout.write(F.GFS_BINDING_PATH + " (patch level " + F.GFS_PATCH_LEVEL + ")")' "$FN") || die "verification failed"
case "$loaded" in
  *build/Release/*) ;;
  *) die "loaded binding is not our build: $loaded" ;;
esac
echo "$want" >"$STAMP"
log "ok: $loaded"
