#!/usr/bin/env bash
# `npm test`: install what is missing, build, run every test (unit, integration with real
# processes on loopback, end-to-end on a real FUSE mount). FUSE tests need root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx vitest run --config test/vitest.config.ts "$@"
