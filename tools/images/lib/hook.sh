#!/usr/bin/env bash
# One step of an image's root file system, run by build.sh (scratch images) or as an mmdebstrap
# hook (Debian images; mmdebstrap passes the chroot directory):
#   hook.sh essential NAME ROOT   the image's users and groups, with fixed ids, before any package
#   hook.sh customize NAME ROOT   the recipe's image_customize (Debian: packages installed, the chroot's
#                                 /proc, /sys and /dev mounted)
#   hook.sh finalize NAME ROOT    the recipe's image_finalize, once mmdebstrap is done (it empties /run
#                                 on its way out), then the clean-up every image gets
set -euo pipefail

here=${KUBESS_IMAGES_HERE:?set by build.sh}
# shellcheck source=common.sh
. "$here/lib/common.sh"

phase=$1
recipe "$2"
root=$3
[ -d "$root" ] || die "hook: no root file system at '$root'"

# add_line FILE LINE: append LINE to FILE unless an entry of that name is there already.
add_line() {
  local name=${2%%:*}
  if [ -e "$1" ] && grep -q "^$name:" "$1"; then
    die "$IMAGE_NAME: '$name' is in $1 already; fixed-id users must be created first"
  fi
  printf '%s\n' "$2" >>"$1"
}

essential() {
  mkdir -p "$root/etc"
  if [ ! -e "$root/etc/passwd" ]; then
    # A scratch image: only root, and the users below.
    printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
    chmod 0644 "$root/etc/passwd" "$root/etc/group"
  fi
  local entry name uid gid home shell
  for entry in "${IMAGE_USERS[@]}"; do
    IFS=: read -r name uid gid home shell <<<"$entry"
    add_line "$root/etc/group" "$name:x:$gid:"
    add_line "$root/etc/passwd" "$name:x:$uid:$gid:$name:$home:$shell"
    # Debian's passwd package builds /etc/shadow and /etc/gshadow from these files when it is
    # installed; where they exist already, the entries go in by hand.
    [ -e "$root/etc/shadow" ] && add_line "$root/etc/shadow" "$name:!:$((SOURCE_DATE_EPOCH / 86400))::::::"
    [ -e "$root/etc/gshadow" ] && add_line "$root/etc/gshadow" "$name:!::"
  done
  return 0
}

# Leftovers of the build that would make two builds differ, or that no container needs. Only once
# mmdebstrap is done: while it runs, its apt configuration lives in the chroot's /tmp, and its own
# clean-up would run apt against the build host's configuration if that file were gone.
cleanup() {
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  rm -rf "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
  rm -f "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log "$root"/var/log/apt/*.log
  rm -f "$root"/var/cache/ldconfig/aux-cache
  rm -f "$root"/etc/resolv.conf "$root"/etc/hostname
  # The runtime writes /etc/hosts, /etc/hostname and /etc/resolv.conf into every container.
  [ ! -e "$root/etc/machine-id" ] || : >"$root/etc/machine-id"
  find "$root/tmp" "$root/var/tmp" -mindepth 1 -delete 2>/dev/null || true
  find "$root" -xdev -name '__pycache__' -type d -prune -exec rm -rf {} +
}

case $phase in
  essential) essential ;;
  customize) image_customize "$root" ;;
  finalize)
    image_finalize "$root"
    cleanup
    ;;
  *) die "hook: unknown phase '$phase'" ;;
esac
