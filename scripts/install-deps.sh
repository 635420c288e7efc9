#!/usr/bin/env bash
# Installs what the given goals need on a fresh Debian machine, and nothing more. Idempotent: a
# second run finds what is there and does nothing. Go binaries land in .deps/bin (build logs in
# .deps/logs); Go's caches are reused.
#
#   scripts/install-deps.sh [SET|TOOL ...]     no argument: all
#   scripts/install-deps.sh --plan SET ...     say what would be installed or built, change nothing
#
#   python  .venv from requirements.lock, our packages (libs/*, services/*, tools/*) editable
#   run     python + rabbitmq-server (Debian) + FerretDB + Jaeger    make run, deps-up, test-e2e, bench, chaos
#   chart   python + helm + kube-score + docker-compose (Debian)     make chart-lint, chart-golden, test-unit
#   test    run + chart + chromium (Debian: the certificate page's tests)   make test
#   k8s     chart + kind                                             make k8s-check
#   all     everything above                                         make setup
# A tool can be named alone (ferretdb, jaeger, helm, kube-score, kind): `run helm` is make
# test-int. The Makefile passes what the goals on its command line need (NEEDS_<goal>).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${CARBON_DEPS_BIN:-$ROOT/.deps/bin}   # another directory: tests of --plan
LOGS=$ROOT/.deps/logs
say() { printf '\033[1m[deps]\033[0m %s\n' "$*"; }

FERRETDB_VERSION=v1.24.2
JAEGER_VERSION=v1.76.0
HELM_VERSION=v3.22.0
KIND_VERSION=v0.33.0          # make k8s-check: a local cluster where a container engine exists
KUBE_SCORE_VERSION=v1.20.0    # make k8s-check / tests/chart: policy checks of the rendered chart
# Wall time of each build on a cold 2-core machine (empty Go caches, kind and kube-score after
# helm, whose compiled packages they reuse), as printed before it starts. The builds run one
# after another: `go build` already keeps both cores busy (the cold run of every tool: 14.7 min
# of CPU in 9.0 min), and FerretDB and Jaeger built side by side took 808 s against 552 s one
# after the other (niced, with other jobs on the machine: no sign of a gain).
declare -A COLD=(
  [ferretdb]="~1.5 min"
  [jaeger]="~4 min"
  [helm]="~3 min"
  [kube-score]="~30 s"
  [kind]="~10 s"
)
ORDER=(ferretdb jaeger helm kube-score kind)

plan=0
if [ "${1:-}" = --plan ]; then plan=1; shift; fi
[ $# -gt 0 ] || set -- all
declare -A want=()
apt_run=0 apt_chart=0 apt_test=0
for arg in "$@"; do
  case $arg in
    python) ;;
    run) want[ferretdb]=1 want[jaeger]=1 apt_run=1 ;;
    chart) want[helm]=1 want[kube-score]=1 apt_chart=1 ;;
    test) want[ferretdb]=1 want[jaeger]=1 want[helm]=1 want[kube-score]=1 apt_run=1 apt_chart=1 apt_test=1 ;;
    k8s) want[helm]=1 want[kube-score]=1 want[kind]=1 apt_chart=1 ;;
    all) for t in "${ORDER[@]}"; do want[$t]=1; done; apt_run=1 apt_chart=1 apt_test=1 ;;
    ferretdb|jaeger|helm|kube-score|kind) want[$arg]=1 ;;
    *) echo "usage: $0 [--plan] [python|run|chart|test|k8s|all|ferretdb|jaeger|helm|kube-score|kind ...]" >&2; exit 2 ;;
  esac
done

# --- Debian packages ------------------------------------------------------------------------------
need_apt=()
if [ $apt_run = 1 ]; then
  command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
  # scripts/deps.sh finds a dependency whose pid file is gone by its port (ss) and records its starter (ps)
  command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
  command -v ps >/dev/null 2>&1 || need_apt+=(procps)
fi
if [ $apt_chart = 1 ]; then  # tests/chart: `docker-compose config` (no engine needed)
  command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
fi
if [ $apt_test = 1 ]; then  # tests/certificate: the verifier's page, headless (skipped without it)
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need_apt+=(chromium)
fi

# --- Go tools -------------------------------------------------------------------------------------
version_of() {
  case $1 in
    ferretdb) echo "$FERRETDB_VERSION-idfix-in" ;;  # the stamp changes when tools/ferretdb's patches do
    jaeger) echo "$JAEGER_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    kube-score) echo "$KUBE_SCORE_VERSION" ;;
    kind) echo "$KIND_VERSION" ;;
  esac
}
present() { [ -x "$BIN/$1" ] && [ -f "$BIN/.$1-$(version_of "$1")" ]; }
build() {  # the build command of one tool, into $BIN
  case $1 in
    # FerretDB from its module source: `go install …@v1.24.2` panics at start (tools/ferretdb/README.md).
    ferretdb) bash "$ROOT/tools/ferretdb/build.sh" "$BIN/ferretdb" ;;
    # Jaeger refuses a plain `go install …@version`; it is a tool of our small module in tools/jaeger.
    jaeger) (cd "$ROOT/tools/jaeger" && go build -o "$BIN/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger) ;;
    helm) go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ;;
    # policy checks and the local cluster: at the lowest priority, as before
    kube-score) nice -n 19 go install "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION" ;;
    kind) nice -n 19 go install "sigs.k8s.io/kind@$KIND_VERSION" ;;
  esac
}
to_build=()
for t in "${ORDER[@]}"; do
  [ -n "${want[$t]:-}" ] || continue
  present "$t" || to_build+=("$t")
done

venv_stale() { [ ! -x .venv/bin/python ] || [ ! -f .venv/.installed ] || [ requirements.lock -nt .venv/.installed ]; }

if [ $plan = 1 ]; then
  wanted=()
  for t in "${ORDER[@]}"; do if [ -n "${want[$t]:-}" ]; then wanted+=("$t"); fi; done
  echo "tools: ${wanted[*]:-none}"
  echo "apt: ${need_apt[*]:-nothing missing}"
  for t in "${to_build[@]}"; do echo "build: $t $(version_of "$t") (${COLD[$t]} on a cold 2-core machine)"; done
  [ ${#to_build[@]} -gt 0 ] || echo "build: nothing"
  if venv_stale; then echo "venv: to create from requirements.lock"; else echo "venv: present"; fi
  exit 0
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt-get install ${need_apt[*]} (first time only)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts the broker as a system service; we run our own on loopback instead.
  (service rabbitmq-server stop || true) >/dev/null 2>&1
fi

if [ ${#to_build[@]} -gt 0 ]; then
  command -v go >/dev/null 2>&1 || { say "go not found: ${to_build[*]} are built with Go (1.26, https://go.dev/dl/)"; exit 1; }
  mkdir -p "$BIN" "$LOGS"
  export GOBIN=$BIN GOFLAGS=-mod=mod
  say "building ${to_build[*]} with Go into ${BIN#"$ROOT"/}, once (Go caches are reused)"
  for t in "${to_build[@]}"; do
    say "building $t $(version_of "$t") (${COLD[$t]} on a cold 2-core machine; log: .deps/logs/$t.log)"
    started=$SECONDS
    if ! build "$t" >"$LOGS/$t.log" 2>&1; then
      say "building $t FAILED; the end of .deps/logs/$t.log:"
      tail -n 30 "$LOGS/$t.log" | sed 's/^/    /'
      exit 1
    fi
    touch "$BIN/.$t-$(version_of "$t")"
    say "$t built in $((SECONDS - started)) s"
  done
fi

if venv_stale; then
  say "python venv (.venv) from requirements.lock"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.lock
  touch .venv/.installed
fi
# Our own packages, editable (re-checked every run: services appear as the project grows).
# What is installed, read once (normalized names): one `pip show` per package took ~1 s each.
installed=" $(.venv/bin/python -c 'import importlib.metadata as m, re
print(" ".join(sorted({re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in m.distributions()})))') "
for pkg in libs/* services/* tools/*; do
  [ -f "$pkg/pyproject.toml" ] || continue
  name=$(sed -n 's/^name = "\(.*\)"/\1/p;T;q' "$pkg/pyproject.toml" | tr 'A-Z_.' 'a-z--')
  case $installed in *" $name "*) ;; *) say "installing $pkg"; .venv/bin/pip install -q --no-deps -e "$pkg" ;; esac
done
say "all dependencies present ($*)"
