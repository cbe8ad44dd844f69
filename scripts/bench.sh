#!/usr/bin/env bash
# `npm run bench [-- OPTIONS]`: the benchmark suite of issue 6 (arguments go to `gfs bench`;
# `npm run bench -- --help` lists them). Installs the tools it needs when run as root and they
# are missing (fio dbench jq; MooseFS from Debian's packages only with --peer moosefs), builds
# gfs (scripts/setup.sh) and runs `node dist/cli/main.js bench`. Results: ./bench-results/<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."

peer=0
prev=
for a in "$@"; do
  case $a in
    --peer=moosefs) peer=1 ;;
    moosefs) [ "$prev" = --peer ] && peer=1 ;;
  esac
  prev=$a
done

# command -> Debian package
need=(fio:fio dbench:dbench jq:jq)
if [ $peer = 1 ]; then
  need+=(mfsmaster:moosefs-master mfschunkserver:moosefs-chunkserver mfsmount:moosefs-client)
fi
missing=()
for x in "${need[@]}"; do
  cmd=${x%%:*} pkg=${x#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "gfs bench: installing ${missing[*]}" >&2
    apt-get update -qq
    # moosefs-client pulls in fuse3 (replacing Debian's fuse 2.9; libfuse2 stays).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "gfs bench: missing packages ${missing[*]} (run as root to install them, or: apt-get install ${missing[*]})" >&2
  fi
fi

bash scripts/setup.sh >/dev/null
exec node --expose-gc dist/cli/main.js bench "$@"
