#!/usr/bin/env bash
# Gives a provisioned machine its role in a gfs cluster: writes the environment file of the
# role's systemd unit (/etc/gfs/*.env: GFS_<FLAG>=value lines) and starts the unit.
#   role.sh master      IP                       master on IP:9000, status page on :9400
#   role.sh chunkserver IP MASTER_IP [N]         chunkserver N (default 1) on IP:9100, page :9500
#   role.sh mount       MASTER_IP [DIR]          mount at DIR (default /mnt/gfs), metrics :9600
# The same files drive a multi-host layout on one machine (network namespaces): with
# GFS_ETC=<dir> and GFS_NO_SYSTEMD=1 only the environment file is written, and
#   (set -a; . <dir>/<file>.env; gfs <role> ...)
# runs the role inside `ip netns exec NS`, exactly as the unit would.
set -euo pipefail
ETC=${GFS_ETC:-/etc/gfs}
MASTER_PORT=${GFS_MASTER_PORT:-9000}
role=${1:?usage: role.sh master|chunkserver|mount ...}
shift
mkdir -p "$ETC"

start() { [ -n "${GFS_NO_SYSTEMD:-}" ] || systemctl enable --now "$1"; }

# The cluster secret (64 hex characters, the same on every machine; the Vagrantfile makes one):
# written to $ETC/cluster.secret and named by GFS_SECRET_FILE in every environment file.
secret_line=
if [ -n "${GFS_CLUSTER_SECRET:-}" ]; then
  (umask 077 && printf '%s\n' "$GFS_CLUSTER_SECRET" >"$ETC/cluster.secret")
  secret_line="GFS_SECRET_FILE=$ETC/cluster.secret"
fi

case "$role" in
  master)
    ip=${1:?master IP}
    cat >"$ETC/master.env" <<ENV
GFS_DATA=/var/lib/gfs/master
GFS_HOST=$ip
GFS_PORT=$MASTER_PORT
GFS_HTTP_HOST=0.0.0.0
GFS_HTTP_PORT=9400
GFS_HEARTBEAT_MS=${GFS_HEARTBEAT_MS:-1000}
$secret_line
ENV
    if [ -n "${GFS_CLUSTER_SECRET:-}" ] && [ -z "${GFS_NO_SYSTEMD:-}" ]; then
      # The master keeps its secret in its data directory; give it the cluster's.
      mkdir -p /var/lib/gfs/master && install -m 0600 "$ETC/cluster.secret" /var/lib/gfs/master/cluster.secret
    fi
    start gfs-master
    ;;
  chunkserver)
    ip=${1:?chunkserver IP}
    master=${2:?master IP}
    n=${3:-1}
    cat >"$ETC/chunkserver-$n.env" <<ENV
GFS_MASTER=$master:$MASTER_PORT
GFS_HOST=$ip
GFS_DATA=/var/lib/gfs/chunkserver-$n
GFS_PORT=$((9099 + n))
GFS_HTTP_HOST=0.0.0.0
GFS_HTTP_PORT=$((9499 + n))
$secret_line
ENV
    start "gfs-chunkserver@$n"
    ;;
  mount)
    master=${1:?master IP}
    dir=${2:-/mnt/gfs}
    unit="gfs-mount@$(systemd-escape --path "$dir" 2>/dev/null || echo "${dir#/}" | tr / -)"
    cat >"$ETC/mount-${unit#gfs-mount@}.env" <<ENV
GFS_MASTER=$master:$MASTER_PORT
GFS_METRICS_HOST=0.0.0.0
GFS_METRICS_PORT=9600
$secret_line
ENV
    printf 'GFS_MASTER=%s\n%s\n' "$master:$MASTER_PORT" "$secret_line" >"$ETC/client.env" # for gfs status / fsck here
    start "$unit"
    ;;
  *)
    echo "role.sh: unknown role $role" >&2
    exit 2
    ;;
esac
echo "role.sh: $role configured in $ETC"
