#!/usr/bin/env bash
# Generates TypeScript types for proto/gfs.proto into src/generated (not committed: the proto
# is the source of truth). proto-loader-gen-types writes extensionless relative imports, which
# NodeNext resolution rejects, so they are rewritten to .js.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf src/generated
npx proto-loader-gen-types --longs=Number --enums=String --defaults --oneofs \
  --grpcLib=@grpc/grpc-js --outDir=src/generated proto/gfs.proto >/dev/null
find src/generated -name '*.ts' -print0 | xargs -0 sed -i -E "s#from '(\.{1,2}/[^']+)'#from '\1.js'#"
# One module to import every message type from: import type { Attr__Output } from '.../generated/gfs/index.js'
( cd src/generated/gfs && for f in *.ts; do [ "$f" = index.ts ] || echo "export type * from './${f%.ts}.js';"; done > index.ts )
