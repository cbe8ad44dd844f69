#!/usr/bin/env bash
# The end-to-end check of a multi-machine cluster, run on the client VM:
#   vagrant ssh client -c 'sudo bash /vagrant/scripts/provision/cluster-e2e.sh'
# 1. the master sees three live chunkservers (gfs status) and serves its status page;
# 2. ordinary tools through the mount at /mnt/gfs: cp, sha256sum, tar, mv, ls, dd, rm;
# 3. gfs fsck finds every chunk at its goal;
# 4. the project's end-to-end test suite (test/e2e: real FUSE mounts) on this VM.
# Set SKIP_SUITE=1 to stop after step 3.
set -euo pipefail
set -a
. /etc/gfs/client.env
set +a
MNT=${MNT:-/mnt/gfs}
MASTER_HOST=${GFS_MASTER%:*}
say() { echo "cluster-e2e: $*"; }

say "waiting for 3 live chunkservers at $GFS_MASTER"
for i in $(seq 60); do
  alive=$(gfs status --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).servers.filter(v=>v.state==="alive").length))')
  [ "$alive" -ge 3 ] && break
  sleep 2
done
[ "$alive" -ge 3 ] || { gfs status; exit 1; }
curl -fsS "http://$MASTER_HOST:9400/healthz" >/dev/null
curl -fsS "http://$MASTER_HOST:9400/api/status" >/dev/null
curl -fsS "http://$MASTER_HOST:9400/metrics" | grep -q '^gfs_master_chunkservers'

say "shell tools through $MNT"
mountpoint -q "$MNT"
work="$MNT/e2e-$(hostname)-$$"
mkdir -p "$work"
dd if=/dev/urandom of=/tmp/e2e.bin bs=1M count=96 status=none
cp /tmp/e2e.bin "$work/a.bin"
[ "$(sha256sum </tmp/e2e.bin)" = "$(sha256sum <"$work/a.bin")" ]
tar -C /usr/share/doc -cf "$work/doc.tar" .
mkdir "$work/x" && tar -C "$work/x" -xf "$work/doc.tar"
diff -r /usr/share/doc "$work/x" >/dev/null
mv "$work/a.bin" "$work/b.bin"
ls -l "$work" >/dev/null
echo 3 >/proc/sys/vm/drop_caches
[ "$(sha256sum </tmp/e2e.bin)" = "$(sha256sum <"$work/b.bin")" ]
gfs fsck "/${work#"$MNT"/}"
rm -rf "$work" /tmp/e2e.bin

if [ -z "${SKIP_SUITE:-}" ]; then
  say "end-to-end test suite (test/e2e) on this VM"
  cd /vagrant
  npx vitest run --config test/vitest.config.ts test/e2e
fi
say "ok"
