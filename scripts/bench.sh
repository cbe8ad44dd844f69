#!/usr/bin/env bash
# `npm run bench`: builds if needed and runs the benchmark (arguments go to `gfs bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
exec node --expose-gc dist/cli/main.js bench "$@"
