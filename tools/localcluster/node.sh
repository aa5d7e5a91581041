#!/usr/bin/env bash
# The real node of the local cluster: a kubelet, containerd with runc, kube-proxy (iptables) and the CNI bridge,
# on this machine's kernel, in a network namespace of its own, registered with the local control plane beside the
# three kwok nodes. Containers really run on it, from images built here (tools/images), never pulled.
#
#   node.sh up       build what is missing, start the control plane if needed, then the node; reuse a healthy one
#   node.sh down     stop everything the node started, by PID; unmount its volumes; remove its network
#   node.sh status   say whether it runs, and what
#   node.sh env      shell variables for crictl/ctr against the node's runtime
#
# Layout (see the README, "The real node"):
#   network namespace kubess-node; veth kubess-veth0 (10.213.0.1, this machine) <-> eth0 (10.213.0.2, the node)
#   10.213.1.1 inside the node's namespace: the control plane and the NFS server as the node sees them, served by
#     netns_gateway.py, which listens there and connects to their loopback ports from this machine's namespace
#   pods: 10.244.0.0/24 on the bridge kubess-cni0; Services: 10.96.0.0/16, cluster DNS 10.96.0.10 (CoreDNS)
#   this machine routes the pod and Service ranges through the node, so tests reach pods and ClusterIPs directly
#   the node is tainted kubess.io/real-node=true:NoSchedule: only pods that tolerate it land there
#
# Settings (environment): KUBESS_CACHE_DIR (binaries, images, containerd's content store),
#   KUBESS_NODE_NFS_PORT (the NFS port the gateway forwards, default 2049).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=$repo/.localcluster
nstate=$state/node
cache=${KUBESS_CACHE_DIR:-$HOME/.cache/kubess-stateful}
kubeconfig=$state/kubeconfig
pki=$state/kwok/clusters/kubess/pki

# shellcheck source=tools/localcluster/node.env
. "$here/node.env"
NETNS=$NODE_NETNS
HOST_IF=$NODE_HOST_IF
HOST_IP=$NODE_HOST_IP
GATEWAY_IP=$NODE_GATEWAY_IP
POD_CIDR=$NODE_POD_CIDR
POD_GATEWAY=$NODE_POD_GATEWAY
DNS_IP=$CLUSTER_DNS_IP
TAINT=$NODE_TAINT
NFS_PORT=${KUBESS_NODE_NFS_PORT:-2049}
TAINT=kubess.io/real-node
# Runtime state that must sit on the machine's own filesystems (mounts, sockets): outside the checkout.
RUN=/run/kubess-node
KUBELET_ROOT=/var/lib/kubess-node/kubelet
CONTAINERD_ROOT=$cache/node/containerd

eval "$("$here/build.sh" --print)"
eval "$("$here/nfs-fuse/build.sh" --print)"
kubectl=$K8S_BIN/kubectl

log() { printf '[node] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
kc() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }
in_node() { nsenter --net="/run/netns/$NETNS" -- "$@"; }
# ctr warns on every call that cgroup v1 support is deprecated: keep its other messages.
ctr_() { "$CONTAINERD_BIN/ctr" --address "$RUN/containerd/containerd.sock" --namespace k8s.io "$@" 2> >(grep -v "support for cgroup v1 is deprecated" >&2); }

# A PID file names a live process of the expected program (not a zombie, not a reused PID): its executable
# starts with PREFIX, or, for a script, its command line holds it.
pid_alive() { # pid_alive NAME PREFIX
  local f=$nstate/pids/$1.pid pid exe
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -d "/proc/$pid" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case "$exe" in "$2"*) echo "$pid"; return 0 ;; esac
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$2" && echo "$pid"
}

# Start a daemon in the node's network namespace (same mount namespace as this machine, so that the kubelet's
# mounts are the ones containerd and runc see), in a session of its own, with its log and PID file.
start_daemon() { # start_daemon NAME COMMAND...
  local name=$1
  shift
  mkdir -p "$nstate/pids" "$nstate/logs"
  setsid nsenter --net="/run/netns/$NETNS" -- "$@" >>"$nstate/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$nstate/pids/$name.pid"
}

wait_until() { # wait_until SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5 # poll interval of a wait with a deadline
  done
  log "$what"
}

prerequisites() {
  [ "$(id -u)" = 0 ] || die "the real node needs root (network namespaces, mounts, cgroups)"
  local missing="" cmd
  for cmd in ip nsenter iptables iptables-restore conntrack openssl; do
    command -v "$cmd" >/dev/null || missing="$missing $cmd"
  done
  [ -z "$missing" ] || die "missing commands:$missing (make node-up installs the Debian packages)"
  [ -c /dev/fuse ] || die "/dev/fuse is missing: the node's NFS client is a FUSE file system"
  local fs
  fs=$(stat -fc %T /sys/fs/cgroup)
  [ "$fs" = tmpfs ] || [ "$fs" = cgroup2fs ] || die "unexpected /sys/fs/cgroup type $fs"
}

control_plane() {
  "$here/cluster.sh" up
  local pid
  pid=$(cat "$state/kwok/clusters/kubess/pids/kube-apiserver.pid")
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- "--advertise-address=$GATEWAY_IP" ||
    die "the running control plane predates the real node (no --advertise-address=$GATEWAY_IP): make cluster-down, then make node-up"
  API_PORT=$(sed -n 's#.*server: https://127.0.0.1:\([0-9]*\).*#\1#p' "$kubeconfig" | head -n 1)
  [ -n "$API_PORT" ] || die "cannot read the apiserver port from $kubeconfig"
}

network() {
  if ! ip netns list | grep -qw "^$NETNS"; then
    ip netns add "$NETNS"
  fi
  if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
    ip link add "$HOST_IF" type veth peer name eth0 netns "$NETNS"
    ip addr add "$HOST_IP/24" dev "$HOST_IF"
    ip link set "$HOST_IF" up
    ip -n "$NETNS" addr add "$NODE_IP/24" dev eth0
    ip -n "$NETNS" link set eth0 up
    ip -n "$NETNS" link set lo up
    ip -n "$NETNS" addr add "$GATEWAY_IP/32" dev lo
    ip -n "$NETNS" route add default via "$HOST_IP"
  fi
  # The machine reaches pods and ClusterIPs through the node, as another host of a cluster network would.
  ip route replace "$POD_CIDR" via "$NODE_IP" dev "$HOST_IF"
  ip route replace "$SERVICE_CIDR" via "$NODE_IP" dev "$HOST_IF"
  in_node sysctl -qw net.ipv4.ip_forward=1
  # Bridged pod traffic must cross iptables, or a pod cannot reach a Service whose backend shares its bridge.
  in_node sysctl -qw net.bridge.bridge-nf-call-iptables=1
}

node_pki() {
  local d=$nstate/pki
  [ -s "$d/kubelet-client.crt" ] && [ -s "$d/kube-proxy.crt" ] && [ -s "$d/kubelet-serving.crt" ] &&
    openssl verify -CAfile "$pki/ca.crt" "$d/kubelet-client.crt" >/dev/null 2>&1 && return 0
  rm -rf "$d"
  mkdir -p "$d"
  sign() { # sign NAME SUBJECT EXTENSIONS
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$d/$1.ext"
    openssl x509 -req -in "$d/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 365 \
      -extfile "$d/$1.ext" -out "$d/$1.crt" 2>/dev/null
  }
  local client='extendedKeyUsage=clientAuth
keyUsage=digitalSignature,keyEncipherment'
  sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
  sign kube-proxy "/CN=system:kube-proxy" "$client"
  sign kubelet-serving "/CN=$NODE_NAME" "extendedKeyUsage=serverAuth
keyUsage=digitalSignature,keyEncipherment
subjectAltName=DNS:$NODE_NAME,IP:$NODE_IP"
}

kubeconfig_for() { # kubeconfig_for NAME
  cat >"$nstate/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubess
  cluster:
    certificate-authority: $pki/ca.crt
    server: https://$GATEWAY_IP:$API_PORT
users:
- name: $1
  user:
    client-certificate: $nstate/pki/$1.crt
    client-key: $nstate/pki/$1.key
contexts:
- name: kubess
  context: {cluster: kubess, user: $1}
current-context: kubess
EOF
}

gateway() {
  pid_alive gateway "$here/netns_gateway.py" >/dev/null && return 0
  mkdir -p "$nstate/pids" "$nstate/logs"
  rm -f "$nstate/pids/gateway.pid"
  setsid python3 "$here/netns_gateway.py" --netns "/run/netns/$NETNS" --pid-file "$nstate/pids/gateway.pid" \
    --forward "$GATEWAY_IP:$API_PORT=127.0.0.1:$API_PORT" --forward "$GATEWAY_IP:$NFS_PORT=127.0.0.1:$NFS_PORT" \
    >>"$nstate/logs/gateway.log" 2>&1 </dev/null &
  wait_until 10 "gateway listening on $GATEWAY_IP:$API_PORT and :$NFS_PORT" test -s "$nstate/pids/gateway.pid" ||
    die "the gateway did not start; see $nstate/logs/gateway.log"
}

containerd_config() {
  mkdir -p "$nstate/cni" "$RUN/containerd" "$CONTAINERD_ROOT"
  cat >"$nstate/cni/10-kubess.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kubess",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "kubess-cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RUN/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$nstate/containerd.toml" <<EOF
# containerd 2.x for the real node: everything it writes is under root, state and the paths below.
version = 4
root = "$CONTAINERD_ROOT"
state = "$RUN/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.tracing"]

[plugins."io.containerd.server.v1.grpc"]
  address = "$RUN/containerd/containerd.sock"

[plugins."io.containerd.server.v1.ttrpc"]
  address = "$RUN/containerd/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN/containerd/opt"

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "$RUN/containerd/s"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_REF"

[plugins."io.containerd.cri.v1.runtime"]
  # This machine's processes lack CAP_SYS_RESOURCE: no OOM score below the runtime's own (0) can be set.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, not /run/netns beside the node's own.
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$RUNC_BIN/runc"
        Root = "$RUN/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CNI_BIN"]
    conf_dir = "$nstate/cni"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
}

start_containerd() {
  pid_alive containerd "$CONTAINERD_BIN/" >/dev/null && return 0
  containerd_config
  start_daemon containerd env "PATH=$CONTAINERD_BIN:$PATH" "$CONTAINERD_BIN/containerd" --config "$nstate/containerd.toml"
  wait_until 30 "containerd up (PID $(cat "$nstate/pids/containerd.pid"))" ctr_ version ||
    die "containerd did not answer in 30 s; see $nstate/logs/containerd.log"
}

# Every image the node may run is imported from the archives tools/images builds, and pinned, so that neither
# the kubelet's image garbage collection nor a prune removes it (none could be pulled again).
import_images() {
  local name ref archive want have
  while read -r name ref archive; do
    [ -n "$name" ] || continue
    # The manifest digest the archive holds, against the one the runtime has under that name.
    want=$(tar -xOf "$archive" index.json | python3 -c 'import json, sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
    have=$(ctr_ images ls "name==$ref" | awk 'NR == 2 {print $3}')
    if [ "$have" != "$want" ]; then
      log "importing $ref ($name)"
      ctr_ images import "$archive" >/dev/null
    fi
    ctr_ images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
  done < <("$repo/tools/images/build.sh" --print)
}

kubelet_config() {
  printf '# Only cluster DNS: no upstream resolvers are reachable from the node.\n' >"$nstate/resolv.conf"
  cat >"$nstate/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $nstate/pki/kubelet-serving.crt
tlsPrivateKeyFile: $nstate/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
# This machine mounts the cgroup v1 hierarchies (cgroup2 only at /sys/fs/cgroup/unified).
cgroupDriver: cgroupfs
failCgroupV1: false
# Without CAP_SYS_RESOURCE (not granted on this machine) the kubelet cannot lower its own OOM score.
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $nstate/resolv.conf
registerWithTaints:
- {key: $TAINT, value: "true", effect: NoSchedule}
# Nothing can be pulled again: never collect images by disk use (they are also pinned).
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# This machine's disk is shared with its builds: the default thresholds (percentages of the whole disk) would taint
# the node with disk-pressure while gigabytes are free. Absolute floors instead.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2Gi
  nodefs.inodesFree: 5%
  imagefs.available: 2Gi
  imagefs.inodesFree: 5%
serializeImagePulls: false
maxPods: 110
podCIDR: $POD_CIDR
EOF
}

start_kubelet() {
  pid_alive kubelet "$NODE_BIN/kubelet" >/dev/null && return 0
  kubelet_config
  kubeconfig_for kubelet-client
  mkdir -p "$KUBELET_ROOT"
  # mount -t nfs resolves to the FUSE NFS client first on the kubelet's PATH (this kernel has no NFS client).
  start_daemon kubelet env "PATH=$NFS_FUSE_BIN:$PATH" "$NODE_BIN/kubelet" \
    --config "$nstate/kubelet.yaml" --kubeconfig "$nstate/kubelet-client.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$KUBELET_ROOT" \
    --cert-dir "$nstate/pki" \
    --node-labels "kubess.io/node=real,topology.kubernetes.io/zone=zone-real,topology.kubernetes.io/region=local"
  wait_until 120 "$NODE_NAME is Ready" node_ready ||
    die "$NODE_NAME did not become Ready in 120 s; see $nstate/logs/kubelet.log"
}

# Ready, and the node.kubernetes.io/not-ready taint the node registers with (or unreachable, after a kubelet outage)
# gone: the node lifecycle controller removes it a moment after Ready; until then nothing without a toleration for
# it is scheduled there.
node_ready() {
  local state
  state=$(kc get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}' 2>/dev/null) || return 1
  [[ $state == True* && $state != *node.kubernetes.io/not-ready* && $state != *node.kubernetes.io/unreachable* ]]
}

start_kube_proxy() {
  pid_alive kube-proxy "$NODE_BIN/kube-proxy" >/dev/null && return 0
  kubeconfig_for kube-proxy
  cat >"$nstate/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $nstate/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
detectLocalMode: ClusterCIDR
# Without CAP_SYS_RESOURCE (not granted on this machine) no process can lower its own OOM score.
oomScoreAdj: 0
# Leave the kernel's connection-tracking limits and timeouts as they are.
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  start_daemon kube-proxy "$NODE_BIN/kube-proxy" --config "$nstate/kube-proxy.yaml"
  wait_until 60 "kube-proxy synced (PID $(cat "$nstate/pids/kube-proxy.pid"))" \
    in_node sh -c 'iptables -t nat -S KUBE-SERVICES | grep -q "default/kubernetes:https"' ||
    die "kube-proxy wrote no Service rules in 60 s; see $nstate/logs/kube-proxy.log"
}

cluster_dns() {
  sed -e "s#@COREDNS_REF@#$COREDNS_REF#g" -e "s#@DNS_IP@#$DNS_IP#g" -e "s#@NODE_NAME@#$NODE_NAME#g" \
    -e "s#@TAINT@#$TAINT#g" "$here/node/coredns.yaml" | kc apply --server-side --field-manager kubess-node -f - >/dev/null
  kc -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null ||
    die "CoreDNS did not become Ready in 120 s: $(kc -n kube-system get pods -l k8s-app=kube-dns -o wide 2>&1)"
  log "cluster DNS ready at $DNS_IP"
}

up() {
  prerequisites
  "$here/build.sh" node
  "$here/nfs-fuse/build.sh"
  "$repo/tools/images/build.sh"
  eval "$("$here/build.sh" --print)"
  eval "$("$repo/tools/images/build.sh" --print | awk '{n = toupper($1); gsub("-", "_", n); printf "%s_REF=%s\n", n, $2}')"
  control_plane
  network
  node_pki
  gateway
  start_containerd
  import_images
  start_kubelet
  start_kube_proxy
  cluster_dns
  log "up: $NODE_NAME ($NODE_IP), kubelet $("$NODE_BIN/kubelet" --version | awk '{print $2}')"
}

stop_daemon() { # stop_daemon NAME PREFIX: TERM, then KILL after 30 s
  local pid
  pid=$(pid_alive "$1" "$2") || return 0
  kill "$pid"
  timeout 30 tail --pid="$pid" -f /dev/null || kill -9 "$pid" 2>/dev/null || true
}

# Unmount a volume. One whose NFS server no longer answers (stopped first, or unreachable) would hang umount on the
# FUSE client's hard retries: after 20 s without an answer, end that client (found by its exact command line) and
# detach the mount. Any other failure (busy): detach lazily, leaving the client to finish.
unmount_volume() { # unmount_volume MOUNTPOINT
  local rc=0 pid
  timeout -s KILL 20 umount -c "$1" 2>/dev/null || rc=$?
  [ "$rc" = 0 ] && return 0
  if [ "$rc" = 137 ]; then
    for pid in $(fuse_clients "$1"); do kill -9 "$pid" 2>/dev/null || true; done
  fi
  umount -l -c "$1" 2>/dev/null || true
}

# PIDs of the FUSE NFS clients serving mount points under a directory, or one mount point (their third argument).
fuse_clients() { # fuse_clients PATH
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    tr '\0' '\n' <"$f" 2>/dev/null | awk -v p="$1" -v pid="$pid" \
      'NR == 1 && $0 !~ /kubess-nfs-fuse$/ {exit} NR == 3 && (index($0, p "/") == 1 || $0 == p) {print pid; exit}'
  done
}

# Pods first (their containers outlive containerd, in their shims), then the daemons, then the mounts the kubelet
# made, while the gateway still carries their NFS traffic, then the gateway and the network. The Node object is
# deleted, so that its pods are collected and a later `up` starts clean.
down() {
  local pid clients
  stop_daemon kubelet "$NODE_BIN/kubelet"
  if [ -S "$RUN/containerd/containerd.sock" ] && pid_alive containerd "$CONTAINERD_BIN/" >/dev/null; then
    "$CRICTL_BIN/crictl" --runtime-endpoint "unix://$RUN/containerd/containerd.sock" rmp --all --force >/dev/null 2>&1 || true
  fi
  stop_daemon kube-proxy "$NODE_BIN/kube-proxy"
  stop_daemon containerd "$CONTAINERD_BIN/"
  # Shims of containers that outlived the runtime (a crash), found by their binary.
  for pid in $(pgrep -f "^$CONTAINERD_BIN/containerd-shim-runc-v2" || true); do kill -9 "$pid" 2>/dev/null || true; done
  # Volumes the kubelet mounted (NFS through FUSE, tmpfs for Secrets), deepest first, while the gateway still
  # carries their NFS traffic; each FUSE client flushes what it holds and exits once unmounted: wait for them.
  clients=$(fuse_clients "$KUBELET_ROOT")
  awk -v root="$KUBELET_ROOT" '$2 ~ "^"root {print $2}' /proc/mounts | sort -r | while read -r mnt; do
    unmount_volume "$mnt"
  done
  awk -v run="$RUN" '$2 ~ "^"run {print $2}' /proc/mounts | sort -r | while read -r mnt; do
    unmount_volume "$mnt"
  done
  for pid in $clients; do timeout 30 tail --pid="$pid" -f /dev/null || kill -9 "$pid" 2>/dev/null || true; done
  stop_daemon gateway "$here/netns_gateway.py"
  if [ -f "$kubeconfig" ]; then kc delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true; fi
  ip route del "$POD_CIDR" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" 2>/dev/null || true
  ip link del "$HOST_IF" 2>/dev/null || true
  if ip netns list | grep -qw "^$NETNS"; then ip netns del "$NETNS"; fi
  rm -rf "$RUN" "$KUBELET_ROOT" "$nstate/pids"
  log "stopped"
}

status() {
  local running=1 name
  for name in gateway containerd kubelet kube-proxy; do
    if [ -f "$nstate/pids/$name.pid" ] && [ -d "/proc/$(cat "$nstate/pids/$name.pid")" ]; then
      printf '  %-11s PID %s\n' "$name" "$(cat "$nstate/pids/$name.pid")"
    else
      printf '  %-11s not running\n' "$name"
      running=0
    fi
  done
  if [ $running = 1 ] && [ -f "$kubeconfig" ] && node_ready; then
    echo "running: $NODE_NAME Ready"
    kc get node "$NODE_NAME" -o wide
  else
    echo "not running"
    return 1
  fi
}

print_env() {
  printf 'export CONTAINER_RUNTIME_ENDPOINT=unix://%s/containerd/containerd.sock\n' "$RUN"
  printf 'export CONTAINERD_ADDRESS=%s/containerd/containerd.sock\nexport CONTAINERD_NAMESPACE=k8s.io\n' "$RUN"
  # shellcheck disable=SC2016 # $PATH is left for the shell that evaluates this output
  printf 'export PATH=%s:%s:%s:$PATH\n' "$CRICTL_BIN" "$CONTAINERD_BIN" "$NODE_BIN"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
