# A small Debian userland for the node's own tests: a shell, coreutils, ip/ss, nc, busybox (httpd,
# wget), python3 and getent. Runs as the non-root user toolbox (1000:1000) unless told otherwise.
# Sourced by lib/common.sh's recipe(): its variables are read there, cache, repo, die and log come
# from there, and the functions are called from build.sh and lib/hook.sh.
# shellcheck shell=bash disable=SC2034,SC2154,SC2317
IMAGE_TAG=bookworm
IMAGE_BASE=debian
IMAGE_PACKAGES=(iproute2 netcat-openbsd busybox python3-minimal procps)
IMAGE_USERS=("toolbox:1000:1000:/home/toolbox:/bin/bash")

image_customize() {
  local root=$1
  install -d -m 0755 -o 1000 -g 1000 "$root/home/toolbox"
}
