# Shared by tools/images/build.sh and lib/hook.sh (sourced, never run): settings that every image
# depends on, and the loading of one image's recipe. Expects $here to be tools/images.
# shellcheck shell=bash
# The settings below are read by the scripts that source this file, and the recipe functions are
# called by them: SC2034 (unused variable) and SC2317 (unreachable function) do not apply. $here is
# theirs (SC2154).
# shellcheck disable=SC2034,SC2154,SC2317

repo=$(cd "$here/../.." && pwd)
# shellcheck source=../../localcluster/versions.env
. "$repo/tools/localcluster/versions.env"

cache=${KUBESS_CACHE_DIR:-$HOME/.cache/kubess-stateful}
images_dir=$cache/images

# Every image, in build order (the cheap ones first).
ALL_IMAGES=(pause etcd coredns toolbox mariadb-galera wordpress)
# Registry part of every reference: a name no registry answers to, so nothing is ever pulled.
REGISTRY=kubess.local
# Every time stamp in an image: file times are clamped to it, and it is the config's "created".
SOURCE_DATE_EPOCH=1767225600 # 2026-01-01T00:00:00Z
DEBIAN_SUITE=bookworm
DEBIAN_MIRRORS=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
# Debian packages the builder itself runs: mmdebstrap (root file systems), gcc and libc6-dev (the
# static pause binary), libcap2-bin (setcap), python3 (the packer).
BUILDER_APT_PACKAGES=(mmdebstrap gcc libc6-dev libcap2-bin python3)

export KUBESS_CACHE_DIR=$cache SOURCE_DATE_EPOCH ETCD_VERSION KUBERNETES_VERSION
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# The mmdebstrap hooks run lib/hook.sh; it finds this directory through this variable.
export KUBESS_IMAGES_HERE=$here

log() { printf '[images] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

known_image() {
  local n
  for n in "${ALL_IMAGES[@]}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}

# recipe NAME: load tools/images/NAME/recipe.sh into the current shell, resetting what it may set.
# A recipe sets IMAGE_TAG, IMAGE_BASE (debian: a minbase root file system with IMAGE_PACKAGES;
# scratch: an empty one), IMAGE_USERS ("name:uid:gid:home:shell" entries, created before any
# package is installed) and may define:
#   image_identity   print what identifies inputs that are not files here (versions, toolchains)
#   image_prepare    build what the image copies in (outside the root file system), before it
#   image_customize  fill the root file system ($1) once its packages are installed
#   image_finalize   last touches to the root file system ($1), e.g. in /run, which mmdebstrap empties
recipe() {
  IMAGE_NAME=$1
  IMAGE_DIR=$here/$1
  IMAGE_TAG=""
  IMAGE_BASE=""
  IMAGE_PACKAGES=()
  IMAGE_USERS=()
  image_identity() { :; }
  image_prepare() { :; }
  image_customize() { :; }
  image_finalize() { :; }
  # shellcheck disable=SC1090,SC1091
  . "$IMAGE_DIR/recipe.sh"
  [ -n "$IMAGE_TAG" ] || die "$IMAGE_DIR/recipe.sh sets no IMAGE_TAG"
  [ "$IMAGE_TAG" != latest ] || die "$IMAGE_NAME: the tag 'latest' is not allowed"
  case $IMAGE_BASE in
    debian | scratch) ;;
    *) die "$IMAGE_DIR/recipe.sh: IMAGE_BASE is '$IMAGE_BASE', expected debian or scratch" ;;
  esac
  IMAGE_REF=$REGISTRY/$IMAGE_NAME:$IMAGE_TAG
  # Where image_prepare leaves its outputs for image_customize (set while building).
  IMAGE_WORK=${KUBESS_IMAGE_WORK:-}
}

# go_module_dir MODULE@VERSION: the module's directory in the Go module cache (downloaded if needed).
go_module_dir() {
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}
