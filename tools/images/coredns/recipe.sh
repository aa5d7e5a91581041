# CoreDNS from the Go module proxy (CGO_ENABLED=0), alone in the image with an /etc/passwd for its
# user, like the official image: entrypoint /coredns, numeric user 65532, and the file capability
# cap_net_bind_service on the binary so that a non-root process can still serve port 53.
# Sourced by lib/common.sh's recipe(): its variables are read there, cache, repo, die and log come
# from there, and the functions are called from build.sh and lib/hook.sh.
# shellcheck shell=bash disable=SC2034,SC2154,SC2317
COREDNS_VERSION=v1.15.0 # the newest release; its go.mod asks for Go 1.26.0
IMAGE_TAG=$COREDNS_VERSION
IMAGE_BASE=scratch
IMAGE_USERS=("nonroot:65532:65532:/home/nonroot:/sbin/nologin")

coredns_dir=$cache/bin/coredns-$COREDNS_VERSION

image_identity() {
  printf 'github.com/coredns/coredns@%s\n' "$COREDNS_VERSION"
  go env GOVERSION
}

image_prepare() {
  if [ ! -x "$coredns_dir/coredns" ]; then
    log "coredns $COREDNS_VERSION"
    local out
    mkdir -p "$cache/bin"
    out=$(mktemp -d "$cache/bin/.coredns.XXXXXX")
    chmod 0755 "$out"
    # The release's own build sets the commit it was built from; a module has none, so say which.
    GOBIN=$out go install -trimpath \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=module-$COREDNS_VERSION" \
      "github.com/coredns/coredns@$COREDNS_VERSION"
    rm -rf "$coredns_dir"
    mv "$out" "$coredns_dir"
  fi
  local out
  out=$("$coredns_dir/coredns" -version)
  grep -qx "CoreDNS-${COREDNS_VERSION#v}" <<<"$out" || die "$coredns_dir/coredns is not CoreDNS ${COREDNS_VERSION#v}: $out"
}

image_customize() {
  local root=$1
  install -m 0755 "$coredns_dir/coredns" "$root/coredns"
  setcap cap_net_bind_service=+ep "$root/coredns"
  install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
  install -d -m 1777 "$root/tmp"
}
