# syntax=docker/dockerfile:1
# sidecar-injector image: `docker build -t sidecar-injector:dev .`
#
# Both stages use the same pinned Python base, so the virtualenv built in the first
# stage (whose interpreter links to /usr/local/bin/python3.11) runs unchanged in the
# second. For reproducible production builds, also pin the base by digest
# (python:3.11.10-slim-bookworm@sha256:...); tests/test_dockerfile.py accepts that.

# ---------------------------------------------------------------- builder
FROM python:3.11.10-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
# Only what the wheel is built from (see .dockerignore: no certs, keys, tests, .git).
COPY pyproject.toml README.md ./
COPY webhook/ webhook/
COPY manifests/ manifests/
# Smoke test: the console script the ENTRYPOINT runs is installed and imports.
RUN pip install --no-cache-dir . \
    && sidecar-injector --help > /dev/null

# ---------------------------------------------------------------- runtime
FROM python:3.11.10-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="sidecar-injector" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that injects sidecars" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Numeric, non-root (matches runAsUser/runAsGroup in manifests/base/deployment.yaml);
# the root filesystem can be mounted read-only (the Deployment adds a writable /tmp).
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["sidecar-injector", "serve"]
