#!/usr/bin/env bash
# `make k8s-check`: the chart on a real local Kubernetes when one can be had, the offline
# checks always (docs/deploy.md, "Local Kubernetes check").
#
#   scripts/k8s-check.sh                    try a cluster (kind; k3s), then the offline checks
#   scripts/k8s-check.sh kube-score FILE    policy checks of one rendered manifest (tests/chart)
#
# 1. Cluster. kind (built by scripts/install-deps.sh) needs a container engine: docker, or
#    podman when it is installed (KIND_EXPERIMENTAL_PROVIDER=podman); k3s would come from its
#    Go module. When none works the exact errors are printed and the offline checks decide.
#    With a cluster: the chart is installed with examples/dev-sandbox plus in-cluster MongoDB
#    and RabbitMQ (tests/chart/k8s-check/), `helm test` runs, and the cluster is deleted.
# 2. Offline: kube-score over the chart's default values, every example and every golden
#    case, then tests/chart (lint, schema, kubernetes-validate, golden renders, policies).
# Exit 0 only when every check that ran passed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.deps/bin
export PATH=$BIN:$PATH
KUBE_VERSION=1.33.0
CLUSTER=carbon-k8s-check
say() { printf '\033[1m[k8s-check]\033[0m %s\n' "$*"; }
need() { [ -x "$BIN/$1" ] || { say "$1 not found in .deps/bin: run \`make setup\`"; exit 1; }; }

# kube-score over one rendered manifest. Checks left out on purpose, each with its reason:
kube_score() {
  need kube-score
  local file=$1
  local ignores=(
    # images are pinned by tag or digest (container-image-tag still refuses :latest); Always makes
    # every restart depend on the registry. default.image.pullPolicy: Always where pull secrets must be re-validated.
    container-image-pull-policy
    # pods spread over nodes through topologySpreadConstraints (checked by pod-topology-spread-constraints);
    # a required anti-affinity would leave replicas unschedulable on small clusters.
    deployment-has-host-podantiaffinity
    # exchange-bridge (one submission timer) and ingest-relay run one replica by design; tests/chart asserts the rest.
    deployment-replicas
    # exchange-bridge uses Recreate so that two submission timers never run side by side during a rollout.
    deployment-strategy
  )
  # NetworkPolicies are opt-in (networkPolicy.enabled: the peers are site-specific); when they are
  # rendered at all, every pod must be covered, ingress and egress alike.
  grep -q '^kind: NetworkPolicy$' "$file" || ignores+=(pod-networkpolicy)
  # The dev-only exchange registry has one probe endpoint (/health, its database), so it serves
  # liveness and readiness alike; renders without it keep this check for every component.
  grep -q 'app.kubernetes.io/component: exchange-registry$' "$file" && ignores+=(pod-probes-identical)
  local out rc
  # --ignore-container-cpu-limit: no CPU limits on purpose (CFS throttling stalls latency-sensitive
  # paths; requests give the guaranteed share). Memory and ephemeral-storage limits are required.
  out=$(kube-score score --kubernetes-version "v${KUBE_VERSION%.*}" --output-format ci --exit-one-on-warning \
        --ignore-container-cpu-limit \
        --enable-optional-test container-seccomp-profile,container-ports-check \
        --ignore-test "$(IFS=,; echo "${ignores[*]}")" "$file")
  rc=$?
  grep -v -e '^\[OK\]' -e '^\[SKIPPED\]' <<<"$out"
  if [ $rc -eq 0 ]; then
    echo "kube-score: passed ($(grep -c '^\[OK\]' <<<"$out") checks OK; ignored: ${ignores[*]})"
  else
    echo "kube-score: FAILED (exit $rc) on $file"
  fi
  return $rc
}

if [ "${1:-}" = kube-score ]; then
  [ $# -eq 2 ] || { echo "usage: $0 kube-score RENDERED.yaml" >&2; exit 2; }
  kube_score "$2"
  exit $?
fi

need helm
need kind
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- 1. a real cluster -------------------------------------------------------------------
cluster=""
try_kind() {  # provider label, then env assignments for kind
  local label=$1; shift
  say "kind create cluster ($label)"
  if env "$@" timeout 600 kind create cluster --name $CLUSTER --kubeconfig "$WORK/kubeconfig" --wait 180s \
       >"$WORK/kind-$label.log" 2>&1; then
    cluster="kind/$label"
    KIND_ENV=("$@")
    return 0
  fi
  say "no cluster from kind ($label); its exact error:"
  sed 's/^/    /' "$WORK/kind-$label.log"
  env "$@" kind delete cluster --name $CLUSTER >/dev/null 2>&1 || true
  return 1
}
KIND_ENV=()
if ! try_kind docker KIND_EXPERIMENTAL_PROVIDER=docker; then
  if command -v podman >/dev/null 2>&1; then
    try_kind podman KIND_EXPERIMENTAL_PROVIDER=podman || true
  else
    say "podman not installed: kind's podman provider not tried"
  fi
fi

if [ -z "$cluster" ]; then
  say "k3s: its module on the Go proxy (go list -m github.com/k3s-io/k3s@latest)"
  if (cd "$WORK" && timeout 120 go list -m github.com/k3s-io/k3s@latest) >"$WORK/k3s.log" 2>&1; then
    say "k3s is listed ($(cat "$WORK/k3s.log")), but building and running it is not automated here"
  else
    say "no k3s; the exact error:"
    sed 's/^/    /' "$WORK/k3s.log"
  fi
fi

cluster_rc=0
if [ -n "$cluster" ]; then
  say "cluster up ($cluster): installing the chart and running helm test"
  export KUBECONFIG=$WORK/kubeconfig
  bash tests/chart/k8s-check/cluster-install.sh "$CLUSTER" "${KIND_ENV[@]}" || cluster_rc=$?
  env "${KIND_ENV[@]}" kind delete cluster --name $CLUSTER >/dev/null 2>&1 || true
  [ $cluster_rc -eq 0 ] && say "cluster check passed" || say "cluster check FAILED"
else
  say "no local Kubernetes cluster can be had on this machine (errors above): offline checks only"
fi

# --- 2. offline checks --------------------------------------------------------------------
policy_rc=0
render() {  # name, release, values files...
  local name=$1 release=$2; shift 2
  local args=()
  for f in "$@"; do args+=(-f "$f"); done
  helm template "$release" charts/carbon-platform --namespace carbon --kube-version $KUBE_VERSION "${args[@]}" \
    >"$WORK/$name.yaml" || return 1
}
score() {  # name, release, values files...
  local name=$1
  say "kube-score: $name"
  if render "$@"; then kube_score "$WORK/$name.yaml" || policy_rc=1; else policy_rc=1; fi
}
score default-values carbon-platform
for values in charts/carbon-platform/examples/*/values.yaml; do
  e=$(basename "$(dirname "$values")")
  score "example-$e" carbon-platform "$values"
done
for values in tests/chart/golden/*.values.yaml; do
  case_=$(basename "$values" .values.yaml)
  release=$(cd tests/chart && "$ROOT/.venv/bin/python" -c "from golden import GOLDEN; print(GOLDEN['$case_'])")
  score "golden-$case_" "$release" "$values"
done

say "tests/chart (lint, schemas, kubernetes-validate, golden renders, hardening and operational policies)"
tests_rc=0
.venv/bin/python -m pytest -q -p no:cacheprovider tests/chart || tests_rc=$?

say "summary: cluster ${cluster:-none (see the errors above)}${cluster:+ rc=$cluster_rc}; kube-score rc=$policy_rc; tests/chart rc=$tests_rc"
[ $cluster_rc -eq 0 ] && [ $policy_rc -eq 0 ] && [ $tests_rc -eq 0 ]
