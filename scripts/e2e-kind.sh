#!/usr/bin/env bash
# End-to-end tests on a kind cluster: build the image, load it into kind, install the
# webhook from the rendered manifests, wait for the rollout, run `pytest -m e2e`.
#
# Usage: scripts/e2e-kind.sh [extra pytest arguments]
#
# Environment:
#   KIND_CLUSTER     kind cluster name (default: sidecar-injector-e2e); reused if it exists
#   KIND_NODE_IMAGE  node image for a new cluster, e.g. kindest/node:v1.31.0 (default: kind's)
#   E2E_IMAGE        webhook image tag to build and load (default: sidecar-injector:e2e)
#   KEEP_CLUSTER=1   keep a cluster this script created (default: delete it at the end)
#   PYTHON           interpreter with the project and its test extras (default: .venv/bin/python)
#
# The install is the one README documents: `sidecar-injector certs` for the TLS pair and
# caBundle, then `sidecar-injector manifests --cert-dir DIR` (the manifests/ base with the
# Secret and caBundle filled in) piped to kubectl, here with --image, the e2e config and
# --kubernetes-version of the kind node (so older node images install too).
set -euo pipefail

cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-sidecar-injector-e2e}
IMAGE=${E2E_IMAGE:-sidecar-injector:e2e}
APP_IMAGE=busybox:1.36 # the e2e sidecar and application image (tests/e2e/config.yaml, cluster.py)
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

die() {
  echo "e2e-kind: $*" >&2
  exit 1
}
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed; $2"
}

need kind "install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need docker "kind runs its nodes as docker containers: https://docs.docker.com/engine/install/"
need kubectl "install it: https://kubernetes.io/docs/tasks/tools/"
docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer (is it running? can you use it?)"
"$PYTHON" -c 'import webhook, pytest' 2>/dev/null ||
  die "$PYTHON cannot import the project and pytest; install it with: pip install -e '.[test]'"

WORK=$(mktemp -d)
CREATED=0
INSTALLED=0
export KUBECONFIG="$WORK/kubeconfig" # never touch the user's own kubeconfig

cleanup() {
  local status=$?
  if [[ $CREATED == 1 && ${KEEP_CLUSTER:-0} != 1 ]]; then
    echo "e2e-kind: deleting kind cluster $CLUSTER" >&2
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  elif [[ $INSTALLED == 1 ]]; then
    # The webhook configuration first: with failurePolicy Fail it would block Pod creation
    # in labelled namespaces once its Service is gone.
    kubectl delete mutatingwebhookconfiguration sidecar-injector --ignore-not-found >/dev/null 2>&1 || true
    kubectl delete -f "$WORK/install.yaml" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  if [[ $CREATED == 1 && ${KEEP_CLUSTER:-0} == 1 ]]; then
    echo "e2e-kind: kept cluster $CLUSTER (kind get kubeconfig --name $CLUSTER)" >&2
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "e2e-kind: using existing kind cluster $CLUSTER" >&2
  kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG"
else
  echo "e2e-kind: creating kind cluster $CLUSTER" >&2
  CREATED=1
  kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi

echo "e2e-kind: building $IMAGE" >&2
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"
# Best effort: pre-load the test image so the nodes need no registry access for it.
if docker pull "$APP_IMAGE" >/dev/null; then
  kind load docker-image "$APP_IMAGE" --name "$CLUSTER"
else
  echo "e2e-kind: warning: could not pull $APP_IMAGE; the nodes will pull it themselves" >&2
fi

# The injection config must target the server's own version (native sidecars from 1.29).
SERVER_VERSION=$(kubectl version -o json | "$PYTHON" -c '
import json, re, sys
v = json.load(sys.stdin)["serverVersion"]
print(re.sub(r"\D", "", v["major"]) + "." + re.sub(r"\D", "", v["minor"]))')
echo "e2e-kind: API server $SERVER_VERSION" >&2
sed "s/^kubernetesVersion: .*/kubernetesVersion: \"$SERVER_VERSION\"/" tests/e2e/config.yaml >"$WORK/config.yaml"

"$PYTHON" -m webhook certs --out "$WORK/certs" >/dev/null
"$PYTHON" -m webhook manifests --cert-dir "$WORK/certs" --config "$WORK/config.yaml" --image "$IMAGE" \
  --kubernetes-version "$SERVER_VERSION" >"$WORK/install.yaml"
INSTALLED=1
kubectl apply -f "$WORK/install.yaml"
kubectl -n sidecar-injector rollout status deployment/sidecar-injector --timeout=180s

echo "e2e-kind: running pytest -m e2e" >&2
E2E_MODE=in-cluster "$PYTHON" -m pytest -m e2e tests/e2e "$@"
