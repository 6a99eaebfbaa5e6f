#!/usr/bin/env bash
# Build the Kubernetes binaries the local cluster runs, once, into the version-keyed cache.
#
# Usage: build.sh CACHE_DIR   (called by scripts/local-cluster.sh; CACHE_DIR/bin gets the binaries)
#
# Kubernetes 1.20.2 is the newest full source any registry reachable here ships (Debian
# bookworm's source package `kubernetes`). Three fixes make it build with bookworm's Go 1.19:
# GOPATH mode (its vendor tree predates Go modules' -mod=vendor checks), reflect2 1.0.2 from
# Debian in place of the vendored 1.0.1 (which crashes on Go >= 1.18 whenever a map is JSON
# encoded), and the generated OpenAPI definitions the tarball omits. The source and Go cache
# are removed after a successful build: only bin/ is kept (about 400 MB instead of 2.5 GB).
set -euo pipefail

CACHE=${1:?usage: build.sh CACHE_DIR}
K8S_VERSION=1.20.2
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { echo "local-cluster: build: $*" >&2; }

all_built() {
  local b
  for b in "${BINARIES[@]}" pause; do [[ -x $CACHE/bin/$b ]] || return 1; done
}
if all_built; then
  exit 0
fi

WORK=$CACHE/build
mkdir -p "$WORK" "$CACHE/bin"
APT="$WORK/apt"

# A private apt configuration for the deb-src line: the machine's own sources stay untouched.
fetch_source() {
  [[ -d $WORK/kubernetes-$K8S_VERSION/vendor ]] && return 0
  mkdir -p "$APT/lists/partial"
  local mirror
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  if [[ -z $mirror ]]; then
    mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  fi
  [[ -n $mirror ]] || { log "no Debian mirror found in the apt sources"; exit 1; }
  echo "deb-src $mirror bookworm main" >"$APT/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$APT/lists")
  log "fetching the kubernetes source package from $mirror"
  apt-get "${opts[@]}" -o APT::Sandbox::User=root -qq update
  (cd "$WORK" && apt-get "${opts[@]}" -o APT::Sandbox::User=root -qq source --download-only kubernetes)
  local orig
  local origs=("$WORK"/kubernetes_*.orig.tar.gz)
  orig=${origs[0]}
  tar -xzf "$orig" -C "$WORK"
  [[ -d $WORK/kubernetes-$K8S_VERSION/vendor ]] || { log "unexpected source layout in $orig"; exit 1; }
}

fix_reflect2() {
  local debs=$WORK/debs
  mkdir -p "$debs"
  if [[ ! -d $debs/reflect2 ]]; then
    (cd "$debs" && apt-get -o APT::Sandbox::User=root -qq download golang-github-modern-go-reflect2-dev &&
      dpkg-deb -x golang-github-modern-go-reflect2-dev_*.deb reflect2)
  fi
  local vendored=$SRC/vendor/github.com/modern-go/reflect2
  local fixed=$debs/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2
  rm -f "$vendored"/*.go "$vendored"/*.s
  cp "$fixed"/*.go "$fixed"/*.s "$vendored"/
}

generate_openapi() {
  local out=pkg/generated/openapi/zz_generated.openapi.go
  [[ -f $out ]] && return 0
  log "generating the OpenAPI definitions"
  go build -o "$WORK/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  local dirs
  dirs=$(find -H . -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) -type f -name '*.go' -print0 |
    xargs -0 grep -l '^// *+k8s:' | xargs grep -l '+k8s:openapi-gen=' |
    sed 's|^./staging/src|vendor|; s|^./||; s|/[^/]*$||' | LC_ALL=C sort -u |
    grep -v '^vendor/k8s.io/code-generator/\|^vendor/k8s.io/sample-apiserver/' | sed 's|^|k8s.io/kubernetes/|' | paste -sd,)
  "$WORK/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    -r "$WORK/openapi-violations.report"
}

command -v go >/dev/null 2>&1 || { log "go is not installed (apt-get install golang-go)"; exit 1; }
fetch_source
SRC=$WORK/kubernetes-$K8S_VERSION
export GOPATH=$WORK/gopath GOCACHE=$WORK/gocache GO111MODULE=off GOFLAGS='' CGO_ENABLED=0
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$SRC" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
[[ -f $WORK/reflect2.done ]] || { fix_reflect2 && touch "$WORK/reflect2.done"; }
generate_openapi

ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
  ldflags+=" -X $pkg.gitCommit=$K8S_COMMIT -X $pkg.gitTreeState=clean"
done
for binary in "${BINARIES[@]}"; do
  [[ -x $CACHE/bin/$binary ]] && continue
  log "go build $binary (the first build takes minutes)"
  go build -tags selinux,notest -trimpath -ldflags "$ldflags" -o "$CACHE/bin/$binary.tmp" "./cmd/$binary"
  mv "$CACHE/bin/$binary.tmp" "$CACHE/bin/$binary"
done
# The pause binary (PID 1 of every Pod sandbox) from the same tree, built as its Makefile does.
if [[ ! -x $CACHE/bin/pause ]]; then
  gcc -Os -Wall -Werror -static -DVERSION="v3.4-local-cluster" -o "$CACHE/bin/pause.tmp" build/pause/linux/pause.c
  strip "$CACHE/bin/pause.tmp"
  mv "$CACHE/bin/pause.tmp" "$CACHE/bin/pause"
fi
echo "$K8S_VERSION" >"$CACHE/bin/VERSION"
cd /
chmod -R u+w "$WORK" 2>/dev/null || true
rm -rf "$WORK"
log "built ${BINARIES[*]} pause into $CACHE/bin"
