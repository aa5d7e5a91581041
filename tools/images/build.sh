#!/usr/bin/env bash
# Builds the container images of the local cluster's real node, as OCI image archives that
# `ctr -n k8s.io images import` takes. No registry is reachable: every image is built here, from
# Debian packages (mmdebstrap) or from binaries built from the Go module proxy and gcc.
#
#   tools/images/build.sh [NAME...]          build the named images (default: all) unless cached
#   tools/images/build.sh --print [NAME...]  print "NAME REF ARCHIVE" for the current inputs, build nothing
#   tools/images/build.sh --list             print the image names
#   tools/images/build.sh --apt-packages     print the Debian packages the builder needs
#
# An image lands in $KUBESS_CACHE_DIR/images/<name>-<tag>-<key>/image.tar (default cache
# ~/.cache/kubess-stateful), where <key> is a short hash of every input: this script, lib/, the
# image's recipe directory (its contract.yaml aside), the Debian suite and mirrors, and the identity
# of each binary copied in (module and version, toolchain). A cached archive is never rebuilt.
#
# Each image is tools/images/<name>/: recipe.sh (tag, base, packages, users, build steps),
# config.json (the image's runtime configuration) and contract.yaml (what the image promises; the
# unit tests check the archive against it). Building needs root (mmdebstrap --mode=root, files
# owned by other uids) and the packages printed by --apt-packages.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# Set by lib/common.sh.
images_dir=${images_dir:?}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The text the cache key hashes: files (by content, in a fixed order) and identity lines.
key_material() {
  local f
  printf 'suite %s\nepoch %s\nregistry %s\n' "$DEBIAN_SUITE" "$SOURCE_DATE_EPOCH" "$REGISTRY"
  printf 'mirror %s\n' "${DEBIAN_MIRRORS[@]}"
  printf 'package %s\n' "${IMAGE_PACKAGES[@]}"
  printf 'user %s\n' "${IMAGE_USERS[@]}"
  (
    cd "$here"
    { printf '%s\n' build.sh; find lib "$IMAGE_NAME" -type f ! -name contract.yaml ! -name '*.pyc' | LC_ALL=C sort; } |
      while read -r f; do printf 'file %s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"; done
  )
  image_identity | sed 's/^/identity /'
}

image_key() { key_material | sha256sum | cut -c1-12; }

archive_dir() { printf '%s/%s-%s-%s' "$images_dir" "$IMAGE_NAME" "$IMAGE_TAG" "$(image_key)"; }

# --- root file systems ------------------------------------------------------------------------------

debian_rootfs() { # debian_rootfs ROOT
  local include
  include=$(
    IFS=,
    printf '%s' "${IMAGE_PACKAGES[*]}"
  )
  # shellcheck disable=SC2016 # the hooks' $ are for the shell mmdebstrap runs them with
  local args=(
    --mode=root --variant=minbase --format=directory
    # Documentation, manual pages and translations stay out; copyright files stay in.
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --aptopt='APT::Install-Recommends "false"'
    # The build directory lies in root's cache, which apt's _apt sandbox user cannot enter.
    --aptopt='APT::Sandbox::User "root"'
    # Users with fixed ids before any package can create them with whatever id is free.
    --essential-hook='bash "$KUBESS_IMAGES_HERE/lib/hook.sh" essential "$KUBESS_IMAGE_NAME" "$1"'
    --customize-hook='bash "$KUBESS_IMAGES_HERE/lib/hook.sh" customize "$KUBESS_IMAGE_NAME" "$1"'
  )
  [ -n "$include" ] && args+=(--include="$include")
  KUBESS_IMAGE_NAME=$IMAGE_NAME mmdebstrap "${args[@]}" "$DEBIAN_SUITE" "$1" "${DEBIAN_MIRRORS[@]}" >&2
  KUBESS_IMAGE_NAME=$IMAGE_NAME bash "$here/lib/hook.sh" finalize "$IMAGE_NAME" "$1"
}

scratch_rootfs() { # scratch_rootfs ROOT
  mkdir -m 0755 "$1"
  KUBESS_IMAGE_NAME=$IMAGE_NAME bash "$here/lib/hook.sh" essential "$IMAGE_NAME" "$1"
  KUBESS_IMAGE_NAME=$IMAGE_NAME bash "$here/lib/hook.sh" customize "$IMAGE_NAME" "$1"
  KUBESS_IMAGE_NAME=$IMAGE_NAME bash "$here/lib/hook.sh" finalize "$IMAGE_NAME" "$1"
}

missing_apt_packages() {
  local p missing=()
  for p in "${BUILDER_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  printf '%s\n' "${missing[@]}"
}

build_image() { # build_image NAME
  recipe "$1"
  local dir
  dir=$(archive_dir)
  if [ -s "$dir/image.tar" ]; then
    log "$IMAGE_REF: cached ($dir)"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "building $IMAGE_NAME needs root (mmdebstrap --mode=root, files owned by other uids)"
  local missing
  missing=$(missing_apt_packages)
  [ -z "$missing" ] || die "missing Debian packages: ${missing//$'\n'/ } (apt-get install ${missing//$'\n'/ })"
  mkdir -p "$images_dir"
  # One builder per image at a time (another checkout may share the cache); it may have finished.
  exec 9>"$images_dir/.$IMAGE_NAME.lock"
  flock 9
  if [ -s "$dir/image.tar" ]; then
    log "$IMAGE_REF: built meanwhile ($dir)"
    return 0
  fi
  local started=$SECONDS
  log "$IMAGE_REF: building into $dir"
  local work
  work=$(mktemp -d "$images_dir/.build-$IMAGE_NAME.XXXXXX")
  # --one-file-system: never into a mount a failed build might have left under the root file system.
  # shellcheck disable=SC2064
  trap "rm -rf --one-file-system '$work'" EXIT
  chmod 0755 "$work"
  # image_prepare's outputs, for image_customize; removed once the image is packed.
  export KUBESS_IMAGE_WORK=$work/prepare
  IMAGE_WORK=$KUBESS_IMAGE_WORK
  mkdir "$IMAGE_WORK"
  image_prepare
  case $IMAGE_BASE in
    debian) debian_rootfs "$work/rootfs" ;;
    scratch) scratch_rootfs "$work/rootfs" ;;
  esac
  python3 "$here/lib/ocipack.py" --rootfs "$work/rootfs" --config "$IMAGE_DIR/config.json" \
    --ref "$IMAGE_REF" --epoch "$SOURCE_DATE_EPOCH" --out "$work/image.tar" \
    --history "kubess.stateful tools/images/build.sh $IMAGE_NAME" >&2
  key_material >"$work/inputs.txt"
  printf '%s\n' "$IMAGE_REF" >"$work/ref"
  rm -rf --one-file-system "$work/rootfs" "$IMAGE_WORK"
  # Appears complete or not at all.
  rm -rf "$dir"
  mv "$work" "$dir"
  trap - EXIT
  log "$IMAGE_REF: $(du -h "$dir/image.tar" | cut -f1) in $((SECONDS - started)) s"
}

# --- main -------------------------------------------------------------------------------------------

mode=build
case ${1:-} in
  --print) mode=print; shift ;;
  --list) printf '%s\n' "${ALL_IMAGES[@]}"; exit 0 ;;
  --apt-packages) printf '%s\n' "${BUILDER_APT_PACKAGES[@]}"; exit 0 ;;
  -h | --help) usage ;;
  -*) usage ;;
esac
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${ALL_IMAGES[@]}")
for n in "${names[@]}"; do known_image "$n" || die "unknown image '$n' (known: ${ALL_IMAGES[*]})"; done

if [ $mode = print ]; then
  for n in "${names[@]}"; do
    recipe "$n"
    printf '%s %s %s\n' "$IMAGE_NAME" "$IMAGE_REF" "$(archive_dir)/image.tar"
  done
  exit 0
fi

for n in "${names[@]}"; do
  (build_image "$n")
done
