#!/usr/bin/env bash
# Entrypoint of kubess.local/wordpress: the start-up contract of the official wordpress:*-apache
# image, on Debian's Apache, PHP and WordPress packages.
#
# When the command is Apache (apache2-foreground, apache2...), or when this script is called as
# docker-ensure-installed.sh (whatever the command), before running the command:
#   1. if the current directory (the document root, /var/www/html) holds no WordPress (neither
#      index.php nor wp-includes/version.php), copy the source tree /usr/src/wordpress into it,
#      owned by the user Apache runs as. Plugins, themes and .htaccess already there are kept.
#      The two files that mark WordPress as present are copied last, so an interrupted copy is
#      done again on the next start rather than taken for a complete one.
#   2. if there is no wp-config.php and any WORDPRESS_* variable is set, write wp-config.php from
#      the template wp-config-docker.php (the document root's own, else the source tree's). It
#      reads WORDPRESS_DB_HOST, WORDPRESS_DB_USER, WORDPRESS_DB_PASSWORD, WORDPRESS_DB_NAME,
#      WORDPRESS_DB_CHARSET, WORDPRESS_DB_COLLATE, WORDPRESS_TABLE_PREFIX, WORDPRESS_DEBUG,
#      WORDPRESS_CONFIG_EXTRA and the eight WORDPRESS_{AUTH,SECURE_AUTH,LOGGED_IN,NONCE}_{KEY,SALT}
#      at every request, each from the file named by its *_FILE variable when that is set. Keys
#      and salts without a variable get random values written into the file here.
# Started as root, the copy belongs to APACHE_RUN_USER:APACHE_RUN_GROUP (www-data, 33) and Apache
# drops to that user. Started as any other uid, the copy belongs to that uid, and the document root
# must be writable by it: if it is not (a root-squashed or read-only volume, a root-owned
# directory), the start fails here with the reason, before anything is copied.
set -Eeuo pipefail

SOURCE=/usr/src/wordpress

log() { printf 'wordpress-entrypoint: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# describe DIR: owner, group and mode of DIR, for error messages.
describe() { stat -c 'owner %u, group %g, mode %a' "$1" 2>/dev/null || echo 'not readable'; }

# writable DIR: can this process create a file in DIR? (asks the file system itself, which is
# what counts on NFS with root squashing, where the mode bits say otherwise)
writable() {
  local probe
  probe=$(mktemp "$1/.wordpress-write-check.XXXXXX" 2>/dev/null) || return 1
  rm -f "$probe"
}

install_wordpress() { # install_wordpress USER GROUP
  local user=$1 group=$2 uid
  uid=$(id -u)
  local docroot=$PWD
  if [ "$uid" = 0 ] && [ "$(stat -c '%u:%g' .)" = 0:0 ]; then
    # A directory the runtime created for a volume: hand it to the user Apache runs as.
    chown "$user:$group" . || true
  fi
  writable "$docroot" ||
    die "WordPress is not in $docroot and uid $uid cannot write there ($(describe "$docroot")); nothing was copied." \
      "Make the volume writable for uid $uid, or start the container as root."
  if [ -d wp-content ] && ! writable wp-content; then
    die "$docroot/wp-content is not writable by uid $uid ($(describe wp-content)); nothing was copied."
  fi

  log "WordPress not found in $docroot - copying $SOURCE"
  if [ -n "$(find . -mindepth 1 -maxdepth 1 ! -name wp-content ! -name '.wordpress-write-check.*')" ]; then
    log "WARNING: $docroot is not empty (copying anyhow)"
  fi
  local create=(--create --file - --directory "$SOURCE" --owner "$user" --group "$group" --anchored
    --exclude ./index.php --exclude ./wp-includes/version.php)
  local extract=(--extract --file -)
  # A non-root process cannot set the time or mode of directories it does not own.
  [ "$uid" = 0 ] || extract+=(--no-overwrite-dir)
  # What a previous start or the operator put there wins over the packaged copy.
  local path rel
  for path in "$SOURCE/.htaccess" "$SOURCE"/wp-content/*/*/; do
    path=${path%/}
    [ -e "$path" ] || continue
    rel=${path#"$SOURCE"/}
    if [ -e "$docroot/$rel" ]; then
      log "WARNING: $docroot/$rel exists (keeping it, not the packaged version)"
      create+=(--exclude "./$rel")
    fi
  done
  tar "${create[@]}" . | tar "${extract[@]}" ||
    die "copying WordPress into $docroot failed (see above); WordPress is not marked present, the next start copies again"
  # The markers last: only a complete copy counts as an installed WordPress.
  tar --create --file - --directory "$SOURCE" --owner "$user" --group "$group" \
    ./wp-includes/version.php ./index.php | tar "${extract[@]}" ||
    die "copying the last files of WordPress into $docroot failed"
  log "Complete! WordPress has been copied to $docroot"
}

# A random 40-hex-digit value for each key or salt the environment does not set.
random_phrase() { od -An -N20 -tx1 /dev/urandom | tr -d ' \n'; }

write_config() { # write_config USER GROUP
  local user=$1 group=$2 template=""
  local candidate
  for candidate in wp-config-docker.php "$SOURCE/wp-config-docker.php"; do
    if [ -s "$candidate" ]; then
      template=$candidate
      break
    fi
  done
  [ -n "$template" ] || die "no wp-config-docker.php template in $PWD or $SOURCE"
  local names=("${!WORDPRESS_@}")
  log "No wp-config.php in $PWD but ${names[*]} set: writing it from $template"
  local tmp line
  tmp=$(mktemp "$PWD/.wp-config.php.XXXXXX") || die "cannot write in $PWD ($(describe "$PWD"))"
  while IFS= read -r line || [ -n "$line" ]; do
    while [[ $line == *'put your unique phrase here'* ]]; do
      line=${line/put your unique phrase here/$(random_phrase)}
    done
    printf '%s\n' "$line"
  done <"$template" >"$tmp"
  chmod 0644 "$tmp"
  # Belongs to the user Apache runs as; a volume may refuse chown (NFS), which is no error.
  [ "$(id -u)" != 0 ] || chown "$user:$group" "$tmp" 2>/dev/null || true
  mv -f "$tmp" wp-config.php
}

ensure_installed() {
  local uid gid user group
  uid=$(id -u)
  gid=$(id -g)
  if [ "$uid" = 0 ]; then
    user=${APACHE_RUN_USER:-www-data}
    group=${APACHE_RUN_GROUP:-www-data}
    # Apache accepts '#1000' for a numeric id; chown and tar want the number.
    user=${user#'#'}
    group=${group#'#'}
  else
    user=$uid
    group=$gid
  fi
  if [ ! -e index.php ] && [ ! -e wp-includes/version.php ]; then
    install_wordpress "$user" "$group"
  fi
  local names=("${!WORDPRESS_@}")
  if [ ! -s wp-config.php ] && [ ${#names[@]} -gt 0 ]; then
    write_config "$user" "$group"
  fi
}

if [[ ${1:-} == apache2* ]] || [ "$(basename "$0")" = docker-ensure-installed.sh ]; then
  ensure_installed
fi

exec "$@"
