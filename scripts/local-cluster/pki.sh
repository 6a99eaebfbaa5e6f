#!/usr/bin/env bash
# The local cluster's certificates and kubeconfigs, made with openssl (sourced by local-cluster.sh).
#
# One CA signs everything: the API server's serving certificate, a client certificate per
# component, the kubelet's serving certificate, and the API server's client certificate for
# the kubelet API (the kubelet accepts only authenticated, authorized callers). Keys are
# ECDSA P-256 (fast to make; the service-account signing key is RSA, which every client
# library verifies); certificates are SHA-256 signed, as Go's TLS stack requires.

# make_cert NAME SUBJECT USAGE [SAN]: $PKI/NAME.crt and NAME.key signed by the CA.
make_cert() {
  local name=$1 subject=$2 usage=$3 san=${4:-}
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$usage"
  [[ -n $san ]] && ext+="
subjectAltName=$san"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subject" 2>/dev/null
  openssl x509 -req -sha256 -days 365 -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -out "$PKI/$name.crt" -extfile <(printf '%s\n' "$ext") 2>/dev/null
  rm -f "$PKI/$name.csr"
  chmod 600 "$PKI/$name.key"
}

make_pki() {
  mkdir -p "$PKI"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 365 \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=local-cluster-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$PKI/ca.key"
  make_cert apiserver "/CN=kube-apiserver" serverAuth \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP"
  make_cert admin "/O=system:masters/CN=local-cluster-admin" clientAuth
  make_cert controller-manager "/CN=system:kube-controller-manager" clientAuth
  make_cert scheduler "/CN=system:kube-scheduler" clientAuth
  make_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  make_cert kubelet-serving "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP"
  # Bound to the system:kubelet-api-admin ClusterRole once the API server is up (rbac.yaml).
  make_cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  chmod 600 "$PKI/sa.key"
}

# make_kubeconfig FILE CERT_NAME: a kubeconfig for $API_URL with that client certificate embedded.
make_kubeconfig() {
  local file=$1 cert=$2
  umask 077
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local-cluster
  cluster:
    server: $API_URL
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI/$cert.key")
contexts:
- name: local-cluster
  context: {cluster: local-cluster, user: $cert}
current-context: local-cluster
EOF
  umask 022
}
