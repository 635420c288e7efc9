#!/usr/bin/env bash
# Builds FerretDB v1.24.2 from its module source (Go module proxy) into .deps/bin/ferretdb.
#
# Why not plain `go install …@v1.24.2`: the module zip lacks build/version/version.txt, and the
# binary it produces panics at start ("Invalid build/version/version.txt file content").
# We also apply one documented one-line fix (tools/ferretdb/README.md): the SQLite backend
# queries `_id` as `_ferretdb_sjson->'$._id'` while its unique `_id` index is on
# `_ferretdb_sjson->"_id"`, so SQLite never uses the index and every `_id` lookup scans the
# collection (≈150 ms at 40k documents; ≈0.5 ms with the fix).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VERSION=v1.24.2
SRC=$ROOT/.deps/src/ferretdb-$VERSION
OUT=${1:-$ROOT/.deps/bin/ferretdb}
export GOFLAGS=-mod=mod

dir=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
rm -rf "$SRC" && mkdir -p "$(dirname "$SRC")" && cp -r "$dir" "$SRC" && chmod -R u+w "$SRC"
echo "$VERSION" > "$SRC/build/version/version.txt"
meta=$SRC/internal/backends/sqlite/metadata/metadata.go
grep -q "IDColumn = DefaultColumn + \"->'\$._id'\"" "$meta" || { echo "FerretDB source changed: patch does not apply" >&2; exit 1; }
sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" "$meta"
# Second fix (tools/ferretdb/README.md): push `_id: {$in: [...]}` down to the same index, so the
# services' batched point reads are one indexed query, not a collection scan.
patch -s -d "$SRC" -p1 < "$ROOT/tools/ferretdb/id-in-pushdown.patch"
(cd "$SRC" && go build -trimpath -o "$OUT" ./cmd/ferretdb)
# First line only, read without closing the pipe early: under pipefail `| head -1` can kill the
# writer with SIGPIPE and fail a build that succeeded.
version=$("$OUT" --version); echo "${version%%$'\n'*}"
