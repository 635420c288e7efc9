#!/usr/bin/env bash
# Called by scripts/k8s-check.sh once `kind create cluster` succeeded (KUBECONFIG set):
# builds the four images with the same engine, loads them into the kind nodes, installs
# throwaway MongoDB/RabbitMQ/Secrets (deps/), then the chart with examples/dev-sandbox (its
# post-install Job onboards the bank at the registry), and runs `helm test`. Args: cluster
# name, then kind's environment (KIND_EXPERIMENTAL_PROVIDER=…).
# Never ran on the project's machines (no container engine there): see docs/deploy.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cluster=$1; shift
engine=docker
for kv in "$@"; do [ "$kv" = KIND_EXPERIMENTAL_PROVIDER=podman ] && engine=podman; done
TAG=k8s-check
for s in ingest calc account exchange-bridge; do
  $engine build -q -f deploy/docker/Dockerfile --build-arg SERVICE=$s -t localhost/carbon-platform/$s:$TAG .
  if [ $engine = docker ]; then
    env "$@" kind load docker-image --name "$cluster" localhost/carbon-platform/$s:$TAG
  else
    podman save -o "/tmp/$s-$TAG.tar" localhost/carbon-platform/$s:$TAG
    env "$@" kind load image-archive --name "$cluster" "/tmp/$s-$TAG.tar"
  fi
done
keys=$(.venv/bin/python - <<'PY'
import json, os
from carbon_common.gm import generate_sm2_keypair
p, b, r = generate_sm2_keypair(), generate_sm2_keypair(), generate_sm2_keypair()
print(json.dumps({"ingestKeys": {"pseudonym-key": os.urandom(32).hex(), "sm2-private-key": p[0],
                                 "sm2-public-key": p[1], "sm4-contact-key": os.urandom(16).hex(),
                                 "admin-token": os.urandom(16).hex()},
                  "bridgeKeys": {"sm2-private-key": b[0], "sm2-public-key": b[1]},
                  "registryKeys": {"admin-token": os.urandom(16).hex(), "sm2-private-key": r[0],
                                   "sm2-public-key": r[1]}}))
PY
)
helm upgrade --install k8s-check-deps tests/chart/k8s-check/deps -n carbon --create-namespace \
  --set-json "ingestKeys=$(.venv/bin/python -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["ingestKeys"]))' <<<"$keys")" \
  --set-json "bridgeKeys=$(.venv/bin/python -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["bridgeKeys"]))' <<<"$keys")" \
  --set-json "registryKeys=$(.venv/bin/python -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["registryKeys"]))' <<<"$keys")" \
  --wait --timeout 10m
helm upgrade --install carbon-platform charts/carbon-platform -n carbon \
  -f charts/carbon-platform/examples/dev-sandbox/values.yaml \
  --set default.image.registry=localhost/carbon-platform --set default.image.tag=$TAG \
  --set default.image.pullPolicy=Never --set otel.enabled=false --wait --timeout 15m
helm test carbon-platform -n carbon --logs --timeout 5m
