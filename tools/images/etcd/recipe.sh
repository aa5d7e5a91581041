# etcd, etcdctl and etcdutl at the local cluster's pinned version, at the paths of the official image
# (/usr/local/bin), as the only programs: like the official image there is no shell, since the etcd
# role runs /usr/local/bin/etcd itself. Unlike the official image (which runs as root) it runs as
# the numeric user 65532.
# Sourced by lib/common.sh's recipe(): its variables are read there, cache, repo, die and log come
# from there, and the functions are called from build.sh and lib/hook.sh.
# shellcheck shell=bash disable=SC2034,SC2154,SC2317
IMAGE_TAG=$ETCD_VERSION
IMAGE_BASE=scratch
IMAGE_USERS=("etcd:65532:65532:/var/lib/etcd:/sbin/nologin")

etcd_bin=$cache/bin/etcd-$ETCD_VERSION/etcd
etcd_tools_dir=$cache/bin/etcd-tools-$ETCD_VERSION

image_identity() {
  # etcd comes from tools/localcluster/build.sh; etcdctl and etcdutl are built below.
  printf 'go.etcd.io/etcd/server/v3@%s etcd tools/localcluster/build.sh %s\n' \
    "$ETCD_VERSION" "$(sha256sum <"$repo/tools/localcluster/build.sh" | cut -c1-64)"
  printf 'go.etcd.io/etcd/etcdctl/v3@%s go.etcd.io/etcd/etcdutl/v3@%s\n' "$ETCD_VERSION" "$ETCD_VERSION"
  go env GOVERSION
}

# etcdctl and etcdutl have replace directives in their go.mod, so `go install` refuses them: build
# their main packages from a module that requires both.
build_etcd_tools() {
  [ -x "$etcd_tools_dir/etcdctl" ] && [ -x "$etcd_tools_dir/etcdutl" ] && return 0
  log "etcdctl, etcdutl $ETCD_VERSION"
  local src=$cache/src/etcd-tools-$ETCD_VERSION out
  rm -rf "$src"
  mkdir -p "$src" "$cache/bin"
  out=$(mktemp -d "$cache/bin/.etcd-tools.XXXXXX")
  (
    cd "$src" || exit 1
    printf 'module kubess.local/etcd-tools-build\n\ngo 1.26.0\n' >go.mod
    go get "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdutl/v3@$ETCD_VERSION"
    go build -trimpath -ldflags "-s -w" -o "$out/" go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3
  )
  chmod 0755 "$out"
  if [ ! -x "$out/etcdctl" ] || [ ! -x "$out/etcdutl" ]; then die "etcd tools: the build left $(ls "$out")"; fi
  rm -rf "$etcd_tools_dir"
  mv "$out" "$etcd_tools_dir"
}

image_prepare() {
  [ -x "$etcd_bin" ] || "$repo/tools/localcluster/build.sh" etcd
  build_etcd_tools
  # Whole outputs first: grep -q would close the pipe early, and pipefail count that against it.
  local v=${ETCD_VERSION#v} out
  out=$("$etcd_bin" --version)
  grep -qx "etcd Version: $v" <<<"$out" || die "$etcd_bin is not etcd $v: $out"
  out=$("$etcd_tools_dir/etcdctl" version)
  grep -qx "etcdctl version: $v" <<<"$out" || die "etcdctl is not $v: $out"
  out=$("$etcd_tools_dir/etcdutl" version)
  grep -qx "etcdutl version: $v" <<<"$out" || die "etcdutl is not $v: $out"
}

image_customize() {
  local root=$1
  install -d -m 0755 "$root/usr/local/bin"
  install -m 0755 "$etcd_bin" "$etcd_tools_dir/etcdctl" "$etcd_tools_dir/etcdutl" "$root/usr/local/bin/"
  # The official image's two working directories, here owned by the user etcd runs as.
  install -d -m 0755 -o 65532 -g 65532 "$root/var/etcd" "$root/var/lib/etcd"
  install -d -m 1777 "$root/tmp"
  # Host names resolve through /etc/hosts first, then DNS (Go reads this file).
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}
