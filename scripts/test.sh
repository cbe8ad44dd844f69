#!/usr/bin/env bash
# `npm test`: install what is missing, build, run every test (unit, integration with real
# processes on loopback, end-to-end on a real FUSE mount). FUSE tests need root and /dev/fuse.
# Ends with one plain summary line: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
report=$(mktemp /tmp/gfs-test-report.XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --config test/vitest.config.ts --reporter=default --reporter=json --outputFile="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" 2>/dev/null || echo "tests: no report (vitest exit $status)"
exit $status
