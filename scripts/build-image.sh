#!/usr/bin/env bash
# Build the webhook's container image without Docker: a Debian root filesystem made by
# mmdebstrap (python3 and what it needs, no apt), the project's wheel and its dependencies
# from PyPI in /opt/venv, user 65532, written as a `docker save` archive.
#
# Usage: scripts/build-image.sh [OUT.tar]     (default: dist/sidecar-injector-image.tar)
#
# Environment:
#   IMAGE     the reference the archive is tagged with (default: localhost/sidecar-injector:dev)
#   SUITE     the Debian release (default: bookworm, whose python3 is 3.11)
#   MIRROR    the Debian mirror (default: the one this machine's apt uses)
#
# The layout and entrypoint are the Dockerfile's (which stays, for users with Docker):
# /opt/venv on PATH, WORKDIR /app, USER 65532:65532, EXPOSE 8443,
# ENTRYPOINT ["sidecar-injector", "serve"]. Load the archive with standard tools:
#   ctr -n k8s.io images import OUT.tar                      (containerd; scripts/local-cluster.sh load)
#   skopeo copy docker-archive:OUT.tar docker://REGISTRY/sidecar-injector:TAG
#   docker load -i OUT.tar
# Needs root (mmdebstrap's root mode) and the Debian packages mmdebstrap and python3.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-dist/sidecar-injector-image.tar}
IMAGE=${IMAGE:-localhost/sidecar-injector:dev}
SUITE=${SUITE:-bookworm}
PYTHON_VERSION=3.11 # bookworm's python3; the wheels are chosen for it
log() { echo "build-image: $*" >&2; }
die() {
  log "$*"
  exit 1
}

[[ $(id -u) == 0 ]] || die "needs root (mmdebstrap builds the root filesystem in root mode)"
if ! command -v mmdebstrap >/dev/null 2>&1; then
  log "installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi
if [[ -z ${MIRROR:-} ]]; then
  MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [[ -n $MIRROR ]] || MIRROR=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [[ -n $MIRROR ]] || die "no Debian mirror in the apt sources; set MIRROR"
fi
case $(uname -m) in
x86_64) PLATFORM=x86_64 ;;
aarch64) PLATFORM=aarch64 ;;
*) die "unsupported machine $(uname -m)" ;;
esac

began=$(date +%s)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
WHEELS=$WORK/wheels
mkdir -p "$WHEELS"

# The project's wheel, then its dependencies as binary wheels for the image's Python (not
# this machine's), and pip itself, which installs them inside the root filesystem.
log "building the wheel and fetching dependencies for Python $PYTHON_VERSION ($PLATFORM)"
python3 -m pip wheel --quiet --no-deps --wheel-dir "$WHEELS" .
wheel=$(find "$WHEELS" -name 'sidecar_injector-*.whl' | head -1)
[[ -n $wheel ]] || die "no sidecar_injector wheel was built"
# bookworm's glibc is 2.36: every manylinux tag up to it (older pips do not expand the tag).
platforms=()
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_$PLATFORM"); done
platforms+=(--platform "manylinux2014_$PLATFORM")
python3 -m pip download --quiet --dest "$WHEELS" --only-binary=:all: --python-version "$PYTHON_VERSION" \
  --implementation cp --abi "cp${PYTHON_VERSION/./}" --abi abi3 --abi none "${platforms[@]}" "$wheel" pip

pip_wheel=$(cd "$WHEELS" && ls pip-*.whl)
log "building the root filesystem ($SUITE from $MIRROR)"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
# The customize hooks are run by mmdebstrap with $1 the root filesystem: single quotes on purpose.
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=essential --include=python3 \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="mkdir -p \"\$1/tmp/wheels\" && cp $WHEELS/*.whl \"\$1/tmp/wheels/\"" \
  --customize-hook='chroot "$1" python3 -m venv --without-pip /opt/venv' \
  --customize-hook="chroot \"\$1\" /opt/venv/bin/python /tmp/wheels/$pip_wheel/pip install --quiet --no-index \
    --find-links /tmp/wheels --no-warn-script-location /tmp/wheels/$(basename "$wheel")" \
  --customize-hook='rm -rf "$1/tmp/wheels" "$1/var/cache/debconf"/*-old "$1/var/log"/*' \
  --customize-hook='echo "nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin" >> "$1/etc/passwd"' \
  --customize-hook='echo "nonroot:x:65532:" >> "$1/etc/group"' \
  --customize-hook='mkdir -p "$1/app"' \
  --customize-hook='chroot "$1" /opt/venv/bin/sidecar-injector --help > /dev/null' \
  "$SUITE" "$WORK/rootfs.tar" "$MIRROR"

cat >"$WORK/config.json" <<EOF
{"Entrypoint": ["sidecar-injector", "serve"],
 "Env": ["PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"],
 "User": "65532:65532", "WorkingDir": "/app", "ExposedPorts": {"8443/tcp": {}},
 "Labels": {"org.opencontainers.image.title": "sidecar-injector",
            "org.opencontainers.image.description": "Kubernetes mutating admission webhook that injects sidecars",
            "org.opencontainers.image.licenses": "Apache-2.0"}}
EOF
mkdir -p "$(dirname "$OUT")"
id=$(python3 scripts/image_archive.py "$OUT" "$IMAGE" "$WORK/rootfs.tar" "$WORK/config.json")
size=$(stat -c %s "$OUT")
compressed=$(gzip -c "$OUT" | wc -c)
log "$IMAGE ($id): $OUT, $((size / 1048576)) MiB ($((compressed / 1048576)) MiB gzipped), in $(($(date +%s) - began)) s"
