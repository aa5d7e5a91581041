# The Kubernetes pause container: pause.c of the k8s.io/kubernetes module, linked statically with gcc
# the way its build/pause/Makefile does, alone in an otherwise empty image.
# Sourced by lib/common.sh's recipe(): its variables are read there, cache, repo, die and log come
# from there, and the functions are called from build.sh and lib/hook.sh.
# shellcheck shell=bash disable=SC2034,SC2154,SC2317
IMAGE_TAG=3.10.2 # build/pause/Makefile TAG (and kubeadm's PauseVersion) of Kubernetes v1.36.3
IMAGE_BASE=scratch

pause_source() { printf '%s/build/pause/linux/pause.c' "$(go_module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")"; }

image_identity() {
  printf 'k8s.io/kubernetes@%s build/pause/linux/pause.c\n' "$KUBERNETES_VERSION"
  gcc --version | head -n 1
  dpkg-query -W -f='libc6-dev ${Version}\n' libc6-dev
}

image_prepare() {
  local src makefile tag
  src=$(pause_source)
  makefile=$(dirname "$(dirname "$src")")/Makefile
  tag=$(sed -n 's/^TAG ?= *//p' "$makefile")
  [ "$tag" = "$IMAGE_TAG" ] || die "pause: $makefile says TAG $tag, the recipe says $IMAGE_TAG"
  # The Makefile's CFLAGS; VERSION names the Kubernetes release the source comes from.
  gcc -Os -Wall -Werror -static -DVERSION="v$IMAGE_TAG-kubernetes-$KUBERNETES_VERSION" -o "$IMAGE_WORK/pause" "$src"
  strip "$IMAGE_WORK/pause"
}

image_customize() {
  install -m 0755 "$IMAGE_WORK/pause" "$1/pause"
  # The official image holds /pause only: no /etc/passwd either (it runs as the numeric 65535).
  rm -f "$1/etc/passwd" "$1/etc/group"
  rmdir "$1/etc"
}
