#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go module proxy, once per pinned version.
#
#   tools/localcluster/build.sh            build whatever is missing from the cache
#   tools/localcluster/build.sh control-plane  only the control plane's (what the simulated nodes' cluster runs)
#   tools/localcluster/build.sh node       only the real node's binaries (NODE-BUILD.md)
#   tools/localcluster/build.sh --print    print the cache's bin directories, build nothing
#
# Binaries land in $KUBESS_CACHE_DIR/bin/<component>-<version>/ (default ~/.cache/kubess-stateful),
# outside the repository. A component already in the cache is never rebuilt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${KUBESS_CACHE_DIR:-$HOME/.cache/kubess-stateful}
k8s_bin=$cache/bin/kubernetes-$KUBERNETES_VERSION
etcd_bin=$cache/bin/etcd-$ETCD_VERSION
kwok_bin=$cache/bin/kwok-$KWOK_VERSION
ms_bin=$cache/bin/metrics-server-$METRICS_SERVER_VERSION
# The real node's components (NODE-BUILD.md).
node_bin=$cache/bin/kubernetes-node-$KUBERNETES_VERSION
containerd_bin=$cache/bin/containerd-$CONTAINERD_VERSION
runc_bin=$cache/bin/runc-$RUNC_VERSION
crictl_bin=$cache/bin/crictl-$CRICTL_VERSION
cni_bin=$cache/bin/cni-plugins-$CNI_PLUGINS_VERSION

if [ "${1:-}" = "--print" ]; then
  printf 'K8S_BIN=%s\nETCD_BIN=%s\nKWOK_BIN=%s\nMETRICS_SERVER_BIN=%s\n' "$k8s_bin" "$etcd_bin" "$kwok_bin" "$ms_bin"
  printf 'NODE_BIN=%s\nCONTAINERD_BIN=%s\nRUNC_BIN=%s\nCRICTL_BIN=%s\nCNI_BIN=%s\n' \
    "$node_bin" "$containerd_bin" "$runc_bin" "$crictl_bin" "$cni_bin"
  exit 0
fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
log() { printf '[build] %s\n' "$*" >&2; }

# Files are built into a temporary directory and moved into place only when all are there,
# so an interrupted build never leaves a half-filled cache directory that looks complete.
finish() { # finish TMPDIR DEST
  mkdir -p "$(dirname "$2")"
  rm -rf "$2"
  mv "$1" "$2"
}

# build_kubernetes_cmds DEST NAME...: builds k8s.io/kubernetes/cmd/NAME for each NAME into DEST, from
# one wrapper module shared by the control plane and the node (so they share its go.sum and build cache).
build_kubernetes_cmds() {
  local dest=$1; shift
  local src=$cache/src/kubernetes-$KUBERNETES_VERSION
  mkdir -p "$src"
  # k8s.io/kubernetes replaces its staging modules with directories inside its own tree, which a
  # dependent module cannot use: replace each of them with its published v0.Y.Z instead. The list
  # comes from the release's own go.mod as the proxy serves it.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  (
    cd "$src"
    # Written beside go.mod and renamed over it, so that a build of the other half that is reading
    # go.mod at the same moment never sees it half written.
    local next
    next=$(mktemp "$src/.go.mod.XXXXXX")
    chmod 644 "$next"
    printf 'module kubess.local/kubernetes-build\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n' "$KUBERNETES_VERSION" >"$next"
    go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print(r["Old"]["Path"])' | while read -r mod; do
      go mod edit -replace "$mod=$mod@$staging_version" "$next"
    done
    mv -f "$next" go.mod
    local ldpkg ld="-s -w"
    local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
    for ldpkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $ldpkg.gitVersion=$KUBERNETES_VERSION -X $ldpkg.gitMajor=1 -X $ldpkg.gitMinor=$minor"
      ld+=" -X $ldpkg.gitTreeState=clean -X $ldpkg.buildDate=1970-01-01T00:00:00Z"
    done
    local out name pkgs=()
    for name in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
    out=$(mktemp -d "$cache/bin/.$(basename "$dest").XXXXXX")
    go build -trimpath -ldflags "$ld" -o "$out/" "${pkgs[@]}"
    finish "$out" "$dest"
  )
}

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0 b
  for b in "${want[@]}"; do [ -x "$k8s_bin/$b" ] || missing=1; done
  [ $missing = 0 ] && return 0
  log "kubernetes $KUBERNETES_VERSION: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl"
  build_kubernetes_cmds "$k8s_bin" "${want[@]}"
}

build_etcd() {
  [ -x "$etcd_bin/etcd" ] && return 0
  log "etcd $ETCD_VERSION"
  # go.etcd.io/etcd/server/v3 has replace directives too, so `go install` refuses it: build a
  # two-line main that hands over to etcdmain.
  local src=$cache/src/etcd-$ETCD_VERSION
  mkdir -p "$src"
  (
    cd "$src"
    printf 'module kubess.local/etcd-build\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >go.mod
    cat >main.go <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
    local out
    out=$(mktemp -d "$cache/bin/.etcd.XXXXXX")
    go build -trimpath -ldflags "-s -w" -o "$out/etcd" .
    finish "$out" "$etcd_bin"
  )
}

build_kwok() {
  [ -x "$kwok_bin/kwok" ] && [ -x "$kwok_bin/kwokctl" ] && [ -d "$kwok_bin/stage" ] && return 0
  log "kwok $KWOK_VERSION"
  local out
  out=$(mktemp -d "$cache/bin/.kwok.XXXXXX")
  GOBIN=$out go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  # Since v0.8.0 kwok ships no built-in stages: keep the module's stage files beside the binaries.
  local dir
  dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$dir/kustomize/stage" "$out/stage"
  chmod -R u+w "$out/stage"
  finish "$out" "$kwok_bin"
}

build_metrics_server() {
  [ -x "$ms_bin/metrics-server" ] && [ -d "$ms_bin/manifests" ] && return 0
  log "metrics-server $METRICS_SERVER_VERSION"
  local out
  out=$(mktemp -d "$cache/bin/.metrics-server.XXXXXX")
  GOBIN=$out go install -trimpath -ldflags "-s -w -X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
  # Its own manifests (APIService, RBAC, Service), which kwokctl would otherwise fetch from the web.
  local dir
  dir=$(go mod download -json "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$dir/manifests/base" "$out/manifests"
  chmod -R u+w "$out/manifests"
  finish "$out" "$ms_bin"
}

# --- The real node: kubelet and kube-proxy, containerd, runc, crictl and the CNI plugins. ---

# runc is the one cgo build: it links libseccomp. Fail before any long build if its headers are missing.
check_node_build_deps() {
  [ -x "$runc_bin/runc" ] && return 0
  local need=()
  command -v gcc >/dev/null || need+=(gcc)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  if [ ${#need[@]} = 0 ] && ! pkg-config --exists libseccomp; then need+=(libseccomp-dev); fi
  [ ${#need[@]} = 0 ] && return 0
  log "runc needs Debian packages that are missing: apt-get install -y ${need[*]}"
  exit 1
}

build_node_kubernetes() {
  [ -x "$node_bin/kubelet" ] && [ -x "$node_bin/kube-proxy" ] && return 0
  log "kubernetes $KUBERNETES_VERSION: kubelet, kube-proxy"
  # Built without cgo like the control plane: in their whole dependency graph only the standard
  # library's net (resolver) and os/user have cgo files, and their pure Go versions read the same
  # /etc/hosts, resolv.conf, passwd and group files.
  build_kubernetes_cmds "$node_bin" kubelet kube-proxy
}

build_containerd() {
  local want=(containerd containerd-shim-runc-v2 ctr)
  local missing=0 b
  for b in "${want[@]}"; do [ -x "$containerd_bin/$b" ] || missing=1; done
  [ $missing = 0 ] && return 0
  log "containerd $CONTAINERD_VERSION: ${want[*]}"
  # No cgo (containerd's own code has none; the shim is built so upstream too). The btrfs
  # snapshotter is the one part that needs cgo and the btrfs headers: no_btrfs leaves it out
  # whatever CGO_ENABLED says.
  local pkg=github.com/containerd/containerd/v2 out
  out=$(mktemp -d "$cache/bin/.containerd.XXXXXX")
  GOBIN=$out go install -trimpath -tags "no_btrfs urfave_cli_no_docs" \
    -ldflags "-s -w -X $pkg/version.Version=$CONTAINERD_VERSION" \
    "$pkg/cmd/containerd@$CONTAINERD_VERSION" "$pkg/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
    "$pkg/cmd/ctr@$CONTAINERD_VERSION"
  finish "$out" "$containerd_bin"
}

build_runc() {
  [ -x "$runc_bin/runc" ] && return 0
  log "runc $RUNC_VERSION"
  # runc needs cgo (its nsenter part is C) and, with the seccomp tag, libseccomp. Linked as a static
  # PIE, so that the binary needs no library at run time. The libpathrs tag of upstream's Makefile
  # is left out: that library is in no Debian package, and without it runc uses its Go fallback.
  local out
  out=$(mktemp -d "$cache/bin/.runc.XXXXXX")
  CGO_ENABLED=1 GOBIN=$out go install -trimpath -buildmode=pie \
    -tags "seccomp urfave_cli_no_docs netgo osusergo" \
    -ldflags "-s -w -linkmode external -extldflags -static-pie" \
    "github.com/opencontainers/runc@$RUNC_VERSION"
  finish "$out" "$runc_bin"
}

build_crictl() {
  [ -x "$crictl_bin/crictl" ] && return 0
  log "crictl $CRICTL_VERSION"
  local out
  out=$(mktemp -d "$cache/bin/.crictl.XXXXXX")
  GOBIN=$out go install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  finish "$out" "$crictl_bin"
}

build_cni_plugins() {
  local want=(bridge host-local loopback portmap)
  local missing=0 b
  for b in "${want[@]}"; do [ -x "$cni_bin/$b" ] || missing=1; done
  [ $missing = 0 ] && return 0
  log "CNI plugins $CNI_PLUGINS_VERSION: ${want[*]}"
  local mod=github.com/containernetworking/plugins out
  out=$(mktemp -d "$cache/bin/.cni-plugins.XXXXXX")
  GOBIN=$out go install -trimpath -ldflags "-s -w -X $mod/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
    "$mod/plugins/main/bridge@$CNI_PLUGINS_VERSION" "$mod/plugins/ipam/host-local@$CNI_PLUGINS_VERSION" \
    "$mod/plugins/main/loopback@$CNI_PLUGINS_VERSION" "$mod/plugins/meta/portmap@$CNI_PLUGINS_VERSION"
  finish "$out" "$cni_bin"
}

# Everything of the node but kubelet and kube-proxy (which come from the Kubernetes wrapper module).
build_node_runtime() {
  build_runc
  build_containerd
  build_crictl
  build_cni_plugins
}

mkdir -p "$cache/bin"
what=${1:-all}
case "$what" in
  all)
    check_node_build_deps
    # Kubernetes is the long one: build it beside the others (downloads and links overlap on 2 cores).
    # The node's kubelet and kube-proxy follow in the same job, as they share its wrapper module.
    { build_kubernetes; build_node_kubernetes; } &
    k8s_pid=$!
    build_etcd
    build_kwok
    build_metrics_server
    build_node_runtime
    wait "$k8s_pid"
    log "all binaries in the cache ($SECONDS s)"
    ;;
  control-plane)
    build_kubernetes &
    k8s_pid=$!
    build_etcd
    build_kwok
    build_metrics_server
    wait "$k8s_pid"
    log "control plane binaries in the cache ($SECONDS s)"
    ;;
  node)
    check_node_build_deps
    build_node_kubernetes &
    node_pid=$!
    build_node_runtime
    wait "$node_pid"
    log "node binaries in the cache ($SECONDS s)"
    ;;
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  metrics-server) build_metrics_server ;;
  *) echo "usage: $0 [--print|all|control-plane|kubernetes|etcd|kwok|metrics-server|node]" >&2; exit 2 ;;
esac
