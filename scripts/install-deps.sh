#!/usr/bin/env bash
# Installs everything the platform needs on a fresh Debian machine. Idempotent: a second run
# finds what is there and does nothing. Go binaries land in .deps/bin; Go's caches are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.deps/bin
mkdir -p "$BIN"
say() { printf '\033[1m[deps]\033[0m %s\n' "$*"; }

FERRETDB_VERSION=v1.24.2
JAEGER_VERSION=v1.76.0
HELM_VERSION=v3.22.0
KIND_VERSION=v0.33.0          # make k8s-check: a local cluster where a container engine exists
KUBE_SCORE_VERSION=v1.20.0    # make k8s-check / tests/chart: policy checks of the rendered chart

need_apt=()
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
# scripts/deps.sh finds a dependency whose pid file is gone by its port (ss) and records its starter (ps)
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
command -v ps >/dev/null 2>&1 || need_apt+=(procps)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt-get install ${need_apt[*]} (first time only)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts the broker as a system service; we run our own on loopback instead.
  (service rabbitmq-server stop || true) >/dev/null 2>&1
fi

build_go() {  # name, version-check-string, command...
  local name=$1 stamp=$BIN/.$1-$2; shift 2
  if [ -x "$BIN/$name" ] && [ -f "$stamp" ]; then return; fi
  say "building $name (first build takes minutes; Go caches are reused)"
  "$@"
  touch "$stamp"
}
export GOBIN=$BIN GOFLAGS=-mod=mod
# FerretDB from its module source: `go install …@v1.24.2` panics at start (tools/ferretdb/README.md).
build_go ferretdb $FERRETDB_VERSION-idfix-in bash "$ROOT/tools/ferretdb/build.sh"
build_go helm $HELM_VERSION go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION
build_go kind $KIND_VERSION nice -n 19 go install sigs.k8s.io/kind@$KIND_VERSION
build_go kube-score $KUBE_SCORE_VERSION nice -n 19 go install github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION
# Jaeger refuses a plain `go install …@version`; it is a tool of our small module in tools/jaeger.
build_go jaeger $JAEGER_VERSION bash -c "cd '$ROOT/tools/jaeger' && go build -o '$BIN/jaeger' github.com/jaegertracing/jaeger/cmd/jaeger"

if [ ! -x .venv/bin/python ] || [ requirements.lock -nt .venv/.installed ] || [ ! -f .venv/.installed ]; then
  say "python venv (.venv) from requirements.lock"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.lock
  touch .venv/.installed
fi
# Our own packages, editable (re-checked every run: services appear as the project grows).
for pkg in libs/* services/*; do
  [ -f "$pkg/pyproject.toml" ] || continue
  name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$pkg/pyproject.toml" | head -1)
  .venv/bin/pip show -q "$name" >/dev/null 2>&1 || { say "installing $pkg"; .venv/bin/pip install -q --no-deps -e "$pkg"; }
done
say "all dependencies present"
