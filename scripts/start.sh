#!/usr/bin/env bash
# `npm start`: install what is missing, build, and bring up a master, three chunkservers and
# the mount at ./mnt in the foreground (data in ./.gfs survives restarts). Extra arguments go
# to `gfs up` (see `node dist/cli/main.js up --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/cli/main.js up "$@"
