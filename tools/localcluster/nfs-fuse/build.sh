#!/usr/bin/env bash
# Builds the real node's userspace NFS client (kubess-nfs-fuse) and its mount(8) stand-in.
#
#   tools/localcluster/nfs-fuse/build.sh           build unless the cache already holds this source
#   tools/localcluster/nfs-fuse/build.sh --print   print NFS_FUSE_BIN=<dir>, build nothing
#
# Output: $KUBESS_CACHE_DIR/bin/nfs-fuse-<hash of the sources>/{kubess-nfs-fuse,mount}
# (default cache ~/.cache/kubess-stateful). An edit of any source gives a new directory;
# a warm run does nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KUBESS_CACHE_DIR:-$HOME/.cache/kubess-stateful}
sources=(kubess-nfs-fuse.c mount build.sh)

hash=$(cd "$here" && cat "${sources[@]}" | sha256sum | cut -c1-12)
out=$cache/bin/nfs-fuse-$hash

if [ "${1:-}" = "--print" ]; then
  printf 'NFS_FUSE_BIN=%s\n' "$out"
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: $0 [--print]" >&2
  exit 2
fi

log() { printf '[build] %s\n' "$*" >&2; }

if [ -x "$out/kubess-nfs-fuse" ] && [ -x "$out/mount" ]; then
  exit 0
fi

# Debian packages: headers and pkg-config data (libnfs-dev, libfuse3-dev), fusermount3 and
# /etc/fuse.conf (fuse3), the compiler and pkg-config themselves.
missing=()
for p in gcc pkg-config libnfs-dev libfuse3-dev fuse3; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "nfs-fuse build: missing Debian packages: ${missing[*]}" >&2
  echo "  install them with: apt-get install ${missing[*]}   (or: make apt-deps)" >&2
  exit 1
fi

log "nfs-fuse $hash: kubess-nfs-fuse, mount"
mkdir -p "$cache/bin"
tmp=$(mktemp -d "$cache/bin/.nfs-fuse-$hash.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# shellcheck disable=SC2046 # pkg-config prints several words on purpose
gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror \
  $(pkg-config --cflags fuse3 libnfs) \
  -o "$tmp/kubess-nfs-fuse" "$here/kubess-nfs-fuse.c" \
  $(pkg-config --libs fuse3 libnfs) -lpthread
install -m 0755 "$here/mount" "$tmp/mount"

# moved into place only when complete: an interrupted build never looks finished
rm -rf "$out"
chmod 0755 "$tmp"
mv "$tmp" "$out"
trap - EXIT
