# MariaDB 10.11 with Galera 4 from Debian bookworm, for the Galera role's mariadb flavour and the
# replication role: the server, client, mariadb-backup, and everything the Galera State Snapshot
# Transfer scripts (wsrep_sst_mariabackup, wsrep_sst_rsync) call. As in the official mariadb image,
# the mysql user and group get the fixed id 999 before any package is installed, /var/lib/mysql is
# left empty (no database is initialised here) and files under /etc/mysql/conf.d are read last, so a
# mounted configuration overrides the packaged one. No entrypoint: the roles start mariadbd.
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
  tzdata
)
IMAGE_USERS=("mysql:999:999:/var/lib/mysql:/bin/false")

image_customize() {
  local root=$1 installed
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
  # Other containers are reached by address or by names that need no reverse lookup.
  printf '[mariadbd]\nskip-name-resolve\nskip-host-cache\n' >"$root/etc/mysql/mariadb.conf.d/05-kubess.cnf"
  chmod 0644 "$root/etc/mysql/mariadb.conf.d/05-kubess.cnf"
  [ -e "$root/usr/lib/galera/libgalera_smm.so" ] || die "mariadb-galera: no Galera provider"
  return 0
}

image_finalize() {
  # Socket and pid file: writable whatever uid the server ends up running as.
  install -d -m 0777 -o 999 -g 999 "$1/run/mysqld"
}
