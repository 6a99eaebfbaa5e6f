#!/usr/bin/env bash
# A real single-node Kubernetes 1.20 on this machine, built from Debian packages, for the e2e suite.
#
# Usage: scripts/local-cluster.sh up | down | status | env | load IMAGE.tar...
#
#   up      build once (cached by version), start etcd, kube-apiserver, kube-controller-manager,
#           kube-scheduler, containerd and a kubelet, wait until the node is Ready, print the
#           `export` lines for it. Idempotent: a running healthy cluster is kept; leftovers of
#           a killed run are cleaned up first.
#   down    stop exactly what `up` started (its PID files, each checked against its binary),
#           remove its Pods' containers, mounts, network namespaces, cgroups and bridge, restore
#           the host sysctls the kubelet changed, and delete the runtime directory.
#   status  say what runs (exit 0 when everything is up and healthy, 1 otherwise).
#   env     print the `export` lines again (KUBECONFIG, and the e2e suite's settings).
#   load    import `docker save` archives (scripts/build-image.sh makes one) into the node's
#           containerd, for Pods with imagePullPolicy IfNotPresent or Never.
#
# Exit status 3 means this machine cannot run the cluster at all (not Linux, not root, no
# apt-get to install what is missing...), with the reason on stderr: the e2e suite is then a
# skip on a developer's machine and a failure on CI.
#
# Environment:
#   LOCAL_CLUSTER_CACHE  build cache (default: ${XDG_CACHE_HOME:-~/.cache}/sidecar-injector/local-cluster)
#   LOCAL_CLUSTER_DIR    runtime state: PKI, kubeconfigs, etcd data, logs, PID files
#                        (default: ${TMPDIR:-/tmp}/sidecar-injector-local-cluster)
#   LOCAL_CLUSTER_CONTROLLER_QPS  requests a second the controllers may make (default 20, as
#                        in Kubernetes; the cluster benchmark also runs with 200)
#
# What listens: etcd, kube-apiserver, the controller-manager, the scheduler, the kubelet's
# healthz and containerd's stream server on 127.0.0.1 only; the kubelet API on the node's own
# bridge address (it requires a client certificate and authorizes every call through the API
# server). No /etc/hosts entry is needed: the API server reaches the kubelet at the node's
# InternalIP. Pods get addresses on that bridge and can reach nothing beyond this machine but
# the API server, at the kubernetes Service's address (one DNAT rule; no kube-proxy), and the
# API server calls webhooks behind a Service at its ready endpoints (--enable-aggregator-routing).
# See ../shared/local-cluster/RECIPE.md (beside the project root, where present) for the
# facts this script is built on.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=1.20.2
CACHE_ROOT=${LOCAL_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sidecar-injector/local-cluster}
CACHE=$CACHE_ROOT/k8s-$K8S_VERSION
BIN=$CACHE/bin
RUN=${LOCAL_CLUSTER_DIR:-${TMPDIR:-/tmp}/sidecar-injector-local-cluster}
PKI=$RUN/pki
LOGS=$RUN/logs
PIDS=$RUN/run
NODE_DIR=$RUN/node
SOCK=$RUN/containerd/containerd.sock

NODE_NAME=local-node
BRIDGE=lclust0
NAT_CHAIN=LOCAL-CLUSTER-API
POD_CIDR=10.88.0.0/16
NODE_IP=10.88.0.1
SERVICE_CIDR=10.0.0.0/24
# shellcheck disable=SC2034 # used by pki.sh
SERVICE_IP=10.0.0.1
ETCD_PORT=12379
ETCD_PEER_PORT=12380
API_PORT=16443
API_URL=https://127.0.0.1:$API_PORT
CONTROLLER_MANAGER_PORT=20257
SCHEDULER_PORT=20259
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=20248
CONTROLLER_QPS=${LOCAL_CLUSTER_CONTROLLER_QPS:-20}

BUSYBOX_IMAGE=localhost/local-cluster/busybox:1.35
PAUSE_IMAGE=localhost/local-cluster/pause:3.4
PACKAGES=(golang-go etcd-server containerd runc containernetworking-plugins busybox-static openssl iproute2 curl
  iptables)
# The host settings the kubelet changes at start (container manager kernel tunables).
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet)

# shellcheck source=scripts/local-cluster/pki.sh
source "$HERE/local-cluster/pki.sh"

log() { echo "local-cluster: $*" >&2; }
die() {
  log "$*"
  exit 1
}
unsupported() {
  log "cannot run here: $*"
  exit 3
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

kubectl_() { "$BIN/kubectl" --kubeconfig "$RUN/kubeconfig" "$@"; }
ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# -- preflight and build ---------------------------------------------------------------------------

preflight() {
  [[ $(uname -s) == Linux ]] || unsupported "needs Linux (containerd, runc, cgroups), this is $(uname -s)"
  [[ $(id -u) == 0 ]] || unsupported "needs root (containerd, the kubelet, mounts and network namespaces)"
  [[ -e /dev/kmsg ]] || unsupported "no /dev/kmsg (the kubelet's OOM watcher reads it): a container without it cannot host a kubelet"
  [[ -d /sys/fs/cgroup ]] || unsupported "no /sys/fs/cgroup"
  local missing=() package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null 2>&1 || unsupported "needs the Debian packages ${missing[*]}, and there is no apt-get"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$CACHE_ROOT/apt.log" 2>&1; then
    apt-get update -qq >>"$CACHE_ROOT/apt.log" 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$CACHE_ROOT/apt.log" 2>&1 ||
      die "apt-get install ${missing[*]} failed; see $CACHE_ROOT/apt.log"
  fi
}

build() {
  mkdir -p "$CACHE"
  "$HERE/local-cluster/build.sh" "$CACHE"
  python3 "$HERE/local-cluster/images.py" "$CACHE/images" "$(command -v busybox)" "$BIN/pause" \
    "$BUSYBOX_IMAGE" "$PAUSE_IMAGE"
}

# -- processes --------------------------------------------------------------------------------------

# start NAME BINARY ARGS...: run detached in a session of its own, log to $LOGS/NAME.log, and
# record "PID BINARY" so that stop signals that process only if it still runs that binary.
start() {
  local name=$1 binary=$2
  shift 2
  local pid
  pid=$(python3 - "$LOGS/$name.log" "$binary" "$@" <<'EOF'
import os, subprocess, sys
env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")}
log = open(sys.argv[1], "ab")
print(subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                       start_new_session=True, env=env, close_fds=True).pid)
EOF
  )
  echo "$pid $(readlink -f "$binary")" >"$PIDS/$name.pid"
}

# The PID of NAME if it is alive and still runs the binary recorded for it.
pid_of() {
  local file=$PIDS/$1.pid pid binary
  [[ -f $file ]] || return 1
  read -r pid binary <"$file"
  [[ -n $pid && -e /proc/$pid ]] || return 1
  [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$binary" ]] || return 1
  echo "$pid"
}

stop() {
  local name=$1 wait_s=${2:-15} pid
  if pid=$(pid_of "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + wait_s))
    while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.2; done
    if [[ -e /proc/$pid ]]; then
      log "$name (PID $pid) did not stop in ${wait_s}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while [[ -e /proc/$pid ]]; do sleep 0.1; done
    fi
  fi
  rm -f "$PIDS/$name.pid"
}

# wait_until WHAT SECONDS COMMAND...: poll until COMMAND succeeds; fail with the logs' tails.
wait_until() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${seconds}s waiting for $what"
      local file
      for file in "$LOGS"/*.log; do
        [[ -f $file ]] && { echo "--- $file (last lines)" >&2; tail -n 15 "$file" >&2; }
      done
      exit 1
    fi
    sleep 0.5
  done
}

healthy() {
  case $1 in
  etcd) curl -fsS "http://127.0.0.1:$ETCD_PORT/health" ;;
  kube-apiserver) curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$API_URL/readyz" ;;
  kube-controller-manager) curl -fsSk "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz" ;;
  kube-scheduler) curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz" ;;
  containerd) ctr_ version ;;
  kubelet) curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" ;;
  esac
}

node_ready() {
  [[ $(kubectl_ get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]] &&
    [[ -z $(kubectl_ get node "$NODE_NAME" -o 'jsonpath={.spec.taints}') ]]
}

all_healthy() {
  local component
  for component in "${COMPONENTS[@]}"; do
    pid_of "$component" >/dev/null && healthy "$component" >/dev/null 2>&1 || return 1
  done
  node_ready 2>/dev/null
}

# -- the control plane ------------------------------------------------------------------------------

start_etcd() {
  start etcd "$(command -v etcd)" --name local-cluster --data-dir "$RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local-cluster=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --listen-metrics-urls "" --logger zap --log-outputs stderr
  wait_until etcd 30 healthy etcd
}

start_apiserver() {
  # --endpoint-reconciler-type=none: a loopback address may not be an Endpoints IP, so the
  # `kubernetes` Service has no endpoints (Pods cannot reach the API server; nothing here needs it).
  # --enable-aggregator-routing: webhooks and aggregated APIs behind a Service are called at the
  # Service's ready endpoints (Pod IPs on the bridge), as there is no kube-proxy.
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" --bind-address 127.0.0.1 --secure-port "$API_PORT" \
    --advertise-address 127.0.0.1 --endpoint-reconciler-type none --service-cluster-ip-range "$SERVICE_CIDR" \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --requestheader-client-ca-file "$PKI/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount,NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --enable-aggregator-routing=true --allow-privileged=true --profiling=false --v=1
  wait_until kube-apiserver 60 healthy kube-apiserver
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: local-cluster:kube-apiserver-kubelet-client}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
EOF
}

start_controllers() {
  # The controllers' client makes LOCAL_CLUSTER_CONTROLLER_QPS requests a second (Kubernetes'
  # default, 20, unless set): `python -m bench --cluster` measures at the default and, with 200,
  # with the API server and its webhooks as the limit instead of the controllers' rate limiter.
  local kubeconfig=$RUN/controller-manager.kubeconfig
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$kubeconfig" \
    --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --port 0 \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true --controllers '*' --leader-elect=false --profiling=false --v=1 \
    --kube-api-qps "$CONTROLLER_QPS" --kube-api-burst "$((CONTROLLER_QPS * 3 / 2))"
  kubeconfig=$RUN/scheduler.kubeconfig
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$kubeconfig" \
    --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --port 0 --leader-elect=false --profiling=false --v=1
  wait_until kube-controller-manager 60 healthy kube-controller-manager
  wait_until kube-scheduler 60 healthy kube-scheduler
}

# -- the node --------------------------------------------------------------------------------------

write_node_config() {
  mkdir -p "$NODE_DIR/cni" "$RUN/containerd" "$RUN/kubelet"
  cat >"$NODE_DIR/containerd.toml" <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  enable_selinux = false
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which root in a VM or container may lack.
  restrict_oom_score_adj = true
  # Network namespaces under the state directory, so down finds exactly ours.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
    max_conf_num = 1
EOF
  # A bridge local to this machine: no default route, no masquerading, so Pods reach this host
  # and each other and nothing beyond; the Service range is routed to the host, where the one
  # Service that works, the API server's (10.0.0.1:443), is forwarded to it (api_forward).
  cat >"$NODE_DIR/cni/10-local-cluster.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "local-cluster", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "isDefaultGateway": false, "ipMasq": false,
   "hairpinMode": false,
   "ipam": {"type": "host-local", "dataDir": "$RUN/cni", "routes": [{"dst": "$SERVICE_CIDR", "gw": "$NODE_IP"}],
            "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "10.88.0.10", "gateway": "$NODE_IP"}]]}}]}
EOF
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: /
enforceNodeAllocatable: [pods]
failSwapOn: false
makeIPTablesUtilChains: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
hairpinMode: none
maxPods: 110
serializeImagePulls: false
rotateCertificates: false
runtimeRequestTimeout: 2m
containerLogMaxSize: 10Mi
containerLogMaxFiles: 3
# No registry can give a collected image back.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 95
EOF
}

save_sysctls() {
  [[ -f $RUN/sysctl.orig ]] && return 0
  local key
  for key in "${SYSCTLS[@]}"; do echo "$key=$(sysctl -n "$key")"; done >"$RUN/sysctl.orig"
}

restore_sysctls() {
  [[ -f $RUN/sysctl.orig ]] || return 0
  local line key value
  while IFS= read -r line; do
    key=${line%%=*} value=${line#*=}
    [[ $(sysctl -n "$key" 2>/dev/null) == "$value" ]] || sysctl -q -w "$key=$value" >/dev/null || log "could not restore $key=$value"
  done <"$RUN/sysctl.orig"
  rm -f "$RUN/sysctl.orig"
}

# Pods reach the API server as in any cluster, at the kubernetes Service (10.0.0.1:443, their
# KUBERNETES_SERVICE_HOST): there is no kube-proxy, so one DNAT rule in a chain of our own sends
# what arrives on the bridge for it to the API server on 127.0.0.1. Loopback is a destination
# only with route_localnet, set on our bridge alone (it goes with the bridge). down removes both.
api_forward() {
  sysctl -q -w "net.ipv4.conf.$BRIDGE.route_localnet=1" >/dev/null
  iptables -t nat -N "$NAT_CHAIN" 2>/dev/null || iptables -t nat -F "$NAT_CHAIN"
  iptables -t nat -A "$NAT_CHAIN" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$API_PORT"
  iptables -t nat -C PREROUTING -i "$BRIDGE" -j "$NAT_CHAIN" 2>/dev/null ||
    iptables -t nat -A PREROUTING -i "$BRIDGE" -j "$NAT_CHAIN"
  echo "$NAT_CHAIN" >"$RUN/nat-chain"
}

remove_api_forward() {
  [[ -f $RUN/nat-chain ]] || return 0
  while iptables -t nat -D PREROUTING -i "$BRIDGE" -j "$NAT_CHAIN" 2>/dev/null; do :; done
  iptables -t nat -F "$NAT_CHAIN" 2>/dev/null || true
  iptables -t nat -X "$NAT_CHAIN" 2>/dev/null || true
  rm -f "$RUN/nat-chain"
}

start_node() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    echo "$BRIDGE" >"$RUN/bridge"
  fi
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  api_forward
  write_node_config
  start containerd "$(command -v containerd)" --config "$NODE_DIR/containerd.toml"
  wait_until containerd 30 healthy containerd
  ctr_ images import "$CACHE/images/busybox.tar" >/dev/null
  ctr_ images import "$CACHE/images/pause.tar" >/dev/null
  # The kubelet's cgroup tree: removed by down only if this run created it.
  [[ -d /sys/fs/cgroup/memory/kubepods || -d /sys/fs/cgroup/kubepods ]] || touch "$RUN/cgroups.ours"
  save_sysctls
  start kubelet "$BIN/kubelet" --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$RUN/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --container-runtime remote \
    --container-runtime-endpoint "unix://$SOCK" --image-service-endpoint "unix://$SOCK" \
    --pod-infra-container-image "$PAUSE_IMAGE" --root-dir "$RUN/kubelet" --v=1
  wait_until kubelet 60 healthy kubelet
  wait_until "node $NODE_NAME to be Ready and untainted" 120 node_ready
  wait_until "the default ServiceAccount" 60 kubectl_ get serviceaccount default -n default
}

# -- teardown ---------------------------------------------------------------------------------------

# Kill and remove every container and sandbox the kubelet created (containerd namespace k8s.io).
remove_containers() {
  [[ -d $RUN/containerd/root ]] || return 0
  local temporary=0
  if ! pid_of containerd >/dev/null; then
    # A killed run: its shims and containers still run; a containerd on the same root finds them.
    [[ -f $NODE_DIR/containerd.toml ]] || return 0
    start containerd "$(command -v containerd)" --config "$NODE_DIR/containerd.toml"
    wait_until "containerd (to clean up)" 30 healthy containerd
    temporary=1
  fi
  local tasks id
  tasks=$(ctr_ tasks list -q 2>/dev/null || true)
  for id in $tasks; do ctr_ tasks kill --signal SIGTERM "$id" >/dev/null 2>&1 || true; done
  # A container's PID 1 without a TERM handler ignores SIGTERM: a short grace, then SIGKILL.
  local deadline=$((SECONDS + 3))
  while [[ -n $(ctr_ tasks list 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"') ]] && ((SECONDS < deadline)); do
    sleep 0.5
  done
  for id in $(ctr_ tasks list -q 2>/dev/null || true); do
    ctr_ tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr_ tasks list -q 2>/dev/null || true); do
    ctr_ tasks delete --force "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr_ containers list -q 2>/dev/null || true); do
    ctr_ containers delete "$id" >/dev/null 2>&1 || true
  done
  ((temporary)) && stop containerd
  return 0
}

# Mounts below $RUN (kubelet volumes, network namespaces, container root filesystems), deepest first.
mounts_below_run() {
  awk -v run="$(readlink -f "$RUN")/" 'index($5 "/", run) == 1 {print $5}' /proc/self/mountinfo | sort -r | uniq
}

unmount_all() {
  local target
  for target in $(mounts_below_run); do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || log "could not unmount $target"
  done
}

remove_pod_logs() {
  # The kubelet keeps container logs in /var/log/pods/NS_NAME_UID (a path it does not let us
  # move); remove those of this run's Pods only, by the Pod UIDs under our root-dir.
  [[ -d $RUN/kubelet/pods ]] || return 0
  local pod dir
  for pod in "$RUN"/kubelet/pods/*/; do
    for dir in /var/log/pods/*_"$(basename "$pod")"; do
      if [[ -d $dir ]]; then rm -rf "$dir"; fi
    done
  done
  find /var/log/containers -maxdepth 1 -xtype l -delete 2>/dev/null || true
}

remove_cgroups() {
  [[ -f $RUN/cgroups.ours ]] || return 0
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [[ -d ${hierarchy}kubepods ]] && find "${hierarchy}kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -f "$RUN/cgroups.ours"
}

down() {
  [[ -d $RUN ]] || { log "nothing to stop ($RUN does not exist)"; return 0; }
  local began
  began=$(now)
  stop kubelet
  stop kube-scheduler
  stop kube-controller-manager
  remove_containers
  stop containerd
  stop kube-apiserver
  stop etcd
  unmount_all
  remove_pod_logs
  remove_cgroups
  remove_api_forward
  if [[ -f $RUN/bridge ]]; then
    ip link delete "$(cat "$RUN/bridge")" 2>/dev/null || true
    rm -f "$RUN/bridge"
  fi
  restore_sysctls
  local left
  left=$(mounts_below_run)
  [[ -z $left ]] || die "still mounted below $RUN, not removing it:
$left"
  rm -rf "$RUN"
  log "down in $(since "$began")s"
}

# -- commands -----------------------------------------------------------------------------------------

print_env() {
  echo "export KUBECONFIG=$RUN/kubeconfig"
  echo "export E2E_KUBECTL=$BIN/kubectl"
  echo "export E2E_APP_IMAGE=$BUSYBOX_IMAGE"
  echo "export E2E_WEBHOOK_HOST=127.0.0.1"
}

up() {
  mkdir -p "$CACHE_ROOT"
  preflight
  local began
  began=$(now)
  build
  local built
  built=$(since "$began")
  if [[ -d $RUN ]] && all_healthy; then
    log "already up (node $NODE_NAME Ready)"
    print_env
    return 0
  fi
  if [[ -d $RUN ]]; then
    log "cleaning up what a previous run left"
    down
  fi
  began=$(now)
  mkdir -p "$PKI" "$LOGS" "$PIDS"
  make_pki
  make_kubeconfig "$RUN/kubeconfig" admin
  make_kubeconfig "$RUN/controller-manager.kubeconfig" controller-manager
  make_kubeconfig "$RUN/scheduler.kubeconfig" scheduler
  make_kubeconfig "$RUN/kubelet.kubeconfig" kubelet
  start_etcd
  start_apiserver
  start_controllers
  start_node
  log "up: build/cache check ${built}s, start $(since "$began")s; node $NODE_NAME Ready; logs in $LOGS"
  print_env
}

status() {
  if [[ ! -d $RUN ]]; then
    echo "local cluster: not running (no $RUN)"
    return 1
  fi
  local component pid state ok=0
  for component in "${COMPONENTS[@]}"; do
    if pid=$(pid_of "$component"); then
      if healthy "$component" >/dev/null 2>&1; then state="running, healthy"; else state="running, NOT healthy" ok=1; fi
      printf '%-24s PID %-8s %s\n' "$component" "$pid" "$state"
    else
      printf '%-24s %-12s %s\n' "$component" "-" "not running"
      ok=1
    fi
  done
  if ((ok == 0)); then
    if node_ready 2>/dev/null; then echo "node $NODE_NAME: Ready"; else echo "node $NODE_NAME: not Ready"; ok=1; fi
    kubectl_ get pods -A --no-headers 2>/dev/null | awk '{n++} END {printf "pods: %d\n", n}'
  fi
  echo "KUBECONFIG=$RUN/kubeconfig"
  return $ok
}

load() {
  ((${#@} > 0)) || die "usage: local-cluster.sh load IMAGE.tar..."
  pid_of containerd >/dev/null || die "the local cluster is not running (local-cluster.sh up)"
  local archive
  for archive in "$@"; do
    [[ -f $archive ]] || die "$archive: no such file"
    ctr_ images import "$archive" | sed 's/^/local-cluster: loaded /' >&2
  done
}

case ${1:-} in
up) up ;;
load)
  shift
  load "$@"
  ;;
down) down ;;
status) status ;;
env) print_env ;;
*)
  awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0" >&2
  exit 2
  ;;
esac
