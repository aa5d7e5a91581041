# MariaDB 10.11 with Galera 4 from Debian bookworm, for the Galera role's mariadb flavour and the
# replication role: the server, client, mariadb-backup, and everything the Galera State Snapshot
# Transfer scripts (wsrep_sst_mariabackup, wsrep_sst_rsync) call. It starts like the official
# mariadb:10.11 image: docker-entrypoint.sh and healthcheck.sh in /usr/local/bin are this
# directory's own, with the official image's contract (see contract.yaml); as there, the mysql
# user and group get the fixed id 999 before any package is installed, /var/lib/mysql is left
# empty, /docker-entrypoint-initdb.d exists, and files under /etc/mysql/conf.d are read last, so a
# mounted configuration overrides the packaged one.
# Sourced by lib/common.sh's recipe(): its variables are read there, cache, repo, die and log come
# from there, and the functions are called from build.sh and lib/hook.sh.
# Single-quoted $ are for the programs that get them (dpkg-query, sed, Apache): SC2016.
# shellcheck shell=bash disable=SC2034,SC2154,SC2317,SC2016
MARIADB_VERSION=10.11.19
IMAGE_TAG=$MARIADB_VERSION
IMAGE_BASE=debian
IMAGE_PACKAGES=(
  mariadb-server mariadb-client mariadb-backup galera-4
  # State Snapshot Transfer: streams (socat), rsync, listening-port checks (ss from iproute2), own
  # addresses (ip, hostname), process checks (ps), progress (pv), TLS (openssl)
  socat rsync iproute2 hostname procps pv openssl
  # the entrypoint: time zones to load, *.sql.xz and *.sql.zst initialisation files, the
  # compressed dump of the system tables before an upgrade
  tzdata xz-utils zstd
)
IMAGE_USERS=("mysql:999:999:/var/lib/mysql:/bin/false")

image_customize() {
  local root=$1 installed tool
  installed=$(chroot "$root" dpkg-query -W -f='${Version}' mariadb-server)
  installed=${installed#*:}
  [ "${installed%%-*}" = "$MARIADB_VERSION" ] ||
    die "mariadb-galera: Debian now has mariadb-server $installed; set MARIADB_VERSION (the tag) to ${installed%%-*}"
  # The package initialised a database in its postinst: the image carries none.
  rm -rf "$root/var/lib/mysql"
  install -d -m 0755 -o 999 -g 999 "$root/var/lib/mysql"
  # Listen on every address, not only 127.0.0.1 (a pod is reached through its own address).
  sed -i -E 's/^(bind-address[[:space:]]*=)/#\1/' "$root/etc/mysql/mariadb.conf.d/50-server.cnf"
  # Read /etc/mysql/conf.d (where the roles mount their configuration) after mariadb.conf.d.
  local cnf=$root/etc/mysql/mariadb.cnf
  if ! grep -qx '!includedir /etc/mysql/conf.d/' "$cnf" || ! grep -qx '!includedir /etc/mysql/mariadb.conf.d/' "$cnf"; then
    die "mariadb-galera: $cnf no longer includes conf.d and mariadb.conf.d"
  fi
  sed -i -e '\#^!includedir /etc/mysql/conf.d/$#d' "$cnf"
  printf '!includedir /etc/mysql/conf.d/\n' >>"$cnf"
  # Its [mysqld_safe] syslog sends the State Snapshot Transfer scripts' messages to a syslog that a
  # container does not have; the official image removes it too. Nothing here runs mysqld_safe.
  rm -f "$root/etc/mysql/mariadb.conf.d/50-mysqld_safe.cnf"
  # Other containers are reached by address or by names that need no reverse lookup.
  printf '[mariadbd]\nskip-name-resolve\nskip-host-cache\n' >"$root/etc/mysql/mariadb.conf.d/05-kubess.cnf"
  chmod 0644 "$root/etc/mysql/mariadb.conf.d/05-kubess.cnf"
  [ -e "$root/usr/lib/galera/libgalera_smm.so" ] || die "mariadb-galera: no Galera provider"
  # Start-up and health checks, and the directory of initialisation files they read.
  install -m 0755 "$IMAGE_DIR/docker-entrypoint.sh" "$IMAGE_DIR/healthcheck.sh" "$root/usr/local/bin/"
  install -d -m 0755 "$root/docker-entrypoint-initdb.d"
  for tool in setpriv getent zstd xzcat gunzip tar flock od; do
    chroot "$root" sh -c 'command -v "$1"' sh "$tool" >/dev/null || die "mariadb-galera: the entrypoint needs $tool"
  done
  return 0
}

image_finalize() {
  # Socket and pid file: writable whatever uid the server ends up running as (sticky, as in the
  # official image).
  install -d -m 1777 -o 999 -g 999 "$1/run/mysqld"
}
