#!/usr/bin/env bash
# Reproduce the vendored SM2/SM3 code and the page from the npm registry:
#   1. npm pack sm-crypto@0.5.8 into a temporary folder (npm checks the tarball against the
#      registry's sha512 integrity) and unpack it;
#   2. check its browser bundles dist/sm2.js and dist/sm3.js against vendor/.../SHA256SUMS
#      (the pinned bytes: a different file under the same version is refused, not vendored);
#   3. copy them and the licence into vendor/sm-crypto-0.5.8/;
#   4. node assemble.js: index.html = page.template.html with the bundles and certificate.js
#      inlined unchanged.
# Needs node and npm. `node assemble.js` alone redoes step 4 offline (after editing
# certificate.js or the template); `node assemble.js --check` says whether index.html is current.
set -euo pipefail
cd "$(dirname "$0")"

VERSION=0.5.8
VENDOR="vendor/sm-crypto-$VERSION"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "sm-crypto@$VERSION" >/dev/null && tar -xzf "sm-crypto-$VERSION.tgz")
node -e 'const p = require(process.argv[1]); if (p.version !== process.argv[2] || p.license !== "MIT") { console.error("unexpected package:", p.name, p.version, p.license); process.exit(1); }' \
  "$tmp/package/package.json" "$VERSION"
(cd "$tmp/package/dist" && sha256sum --check --strict "$OLDPWD/$VENDOR/SHA256SUMS")

cp "$tmp/package/dist/sm2.js" "$tmp/package/dist/sm3.js" "$tmp/package/LICENCE_MIT" "$VENDOR/"
node assemble.js
