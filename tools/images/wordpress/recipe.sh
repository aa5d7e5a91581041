# WordPress on Apache 2 with mod_php, from Debian bookworm's packages, with the start-up contract of
# the official wordpress:*-apache image (docker-entrypoint.sh, wp-config-docker.php,
# apache2-foreground: see those files). The source tree /usr/src/wordpress is Debian's WordPress
# with Debian's links to shared libraries resolved into real files, since it is copied into a
# volume; the PHP extensions are those of the official image that Debian packages.
# Sourced by lib/common.sh's recipe(): its variables are read there, cache, repo, die and log come
# from there, and the functions are called from build.sh and lib/hook.sh.
# Single-quoted $ are for the programs that get them (dpkg-query, sed, Apache): SC2016.
# shellcheck shell=bash disable=SC2034,SC2154,SC2317,SC2016
WORDPRESS_VERSION=6.1.9
IMAGE_TAG=$WORDPRESS_VERSION-apache
IMAGE_BASE=debian
IMAGE_PACKAGES=(
  apache2 libapache2-mod-php8.2 wordpress wordpress-theme-twentytwentythree
  # bcmath, curl, exif (php8.2-common), gd, imagick, intl, mbstring, mysqli, opcache, xml, zip
  php8.2-bcmath php8.2-curl php8.2-gd php8.2-imagick php8.2-intl php8.2-mbstring php8.2-mysql
  php8.2-opcache php8.2-xml php8.2-zip
  ca-certificates
)
# www-data (33:33) comes with Debian's base-passwd.

image_customize() {
  local root=$1 files=$IMAGE_DIR
  local version
  version=$(sed -n "s/^\$wp_version = '\([^']*\)';/\1/p" "$root/usr/share/wordpress/wp-includes/version.php")
  [ "$version" = "$WORDPRESS_VERSION" ] ||
    die "wordpress: Debian now has WordPress $version; set WORDPRESS_VERSION (the tag) to $version"

  # --- the source tree ---
  local src=$root/usr/src/wordpress
  mkdir -p "$root/usr/src"
  # -L: Debian links parts of the tree to other packages (getID3, underscore, cropper, the CA
  # bundle); a copy in a volume must not depend on them. In the chroot, where the links point.
  chroot "$root" cp -RL /usr/share/wordpress /usr/src/wordpress
  # Debian's wp-config.php reads /etc/wordpress/config-<host>.php; its .htaccess is all comments.
  rm -f "$src/wp-config.php" "$src/.htaccess"
  install -m 0644 "$files/htaccess" "$src/.htaccess"
  install -m 0644 "$files/wp-config-docker.php" "$src/wp-config-docker.php"
  # Debian moves upstream's license.txt into its copyright file; the wordpress role's liveness
  # probe requests /license.txt, so the tree gets one again: Debian's record of WordPress's
  # copyright and licence, then the GPL version 2 it refers to.
  if [ ! -e "$src/license.txt" ]; then
    {
      printf 'WordPress - Web publishing software\n\n'
      cat "$root/usr/share/doc/wordpress/copyright"
      printf '\n'
      cat "$root/usr/share/common-licenses/GPL-2"
    } >"$src/license.txt"
  fi
  local dir
  for dir in "$src/wp-content" "$src/wp-content/plugins" "$src/wp-content/themes"; do
    [ -e "$dir/index.php" ] || printf '<?php\n// Silence is golden.\n' >"$dir/index.php"
  done
  chroot "$root" chown -R www-data:www-data /usr/src/wordpress
  # The volume mount point, and its first-level directories, so that mounts below it get the right owner.
  rm -rf "$root/var/www/html"
  install -d -m 1777 -o 33 -g 33 "$root/var/www/html" "$root/var/www/html/wp-content"
  for dir in "$src"/wp-content/*/ "$src/wp-content/cache/"; do
    dir=$(basename "$dir")
    install -d -m 1777 -o 33 -g 33 "$root/var/www/html/wp-content/$dir"
  done

  # --- Apache ---
  local envvars=$root/etc/apache2/envvars
  # Every "export APACHE_X=value" becomes a default the environment may override.
  sed -i -E 's/^export ([A-Z_]+)=(.*)$/: ${\1:=\2}\nexport \1/' "$envvars"
  grep -q '^: ${APACHE_RUN_USER:=www-data}$' "$envvars" || die "wordpress: $envvars changed shape"
  # Run, lock and log directories usable by any uid; logs go to the container's output.
  rm -rf "$root/var/log/apache2"
  install -d -m 1777 -o 33 -g 33 "$root/var/log/apache2"
  ln -sfT /dev/stderr "$root/var/log/apache2/error.log"
  ln -sfT /dev/stdout "$root/var/log/apache2/access.log"
  ln -sfT /dev/stdout "$root/var/log/apache2/other_vhosts_access.log"
  chroot "$root" chown -h www-data:www-data /var/log/apache2/error.log /var/log/apache2/access.log \
    /var/log/apache2/other_vhosts_access.log
  # The listening port comes from KUBESS_HTTP_PORT (apache2-foreground sets it).
  printf 'Listen ${KUBESS_HTTP_PORT}\n' >"$root/etc/apache2/ports.conf"
  sed -i -E 's/^<VirtualHost \*:80>$/<VirtualHost *:${KUBESS_HTTP_PORT}>/' "$root/etc/apache2/sites-available/000-default.conf"
  grep -q 'KUBESS_HTTP_PORT' "$root/etc/apache2/sites-available/000-default.conf" || die "wordpress: no port in 000-default.conf"
  install -m 0644 "$files/kubess-wordpress.conf" "$root/etc/apache2/conf-available/kubess-wordpress.conf"
  # The client's address, not the proxy's, in logs and to PHP (behind a Service or an ingress).
  sed -i -E 's/([[:space:]]*LogFormat[[:space:]]+"[^"]*)%h([^"]*")/\1%a\2/g' "$root/etc/apache2/apache2.conf"
  chroot "$root" a2dismod -q mpm_event >/dev/null 2>&1 || true
  chroot "$root" a2enmod -q mpm_prefork php8.2 rewrite expires remoteip >/dev/null
  chroot "$root" a2enconf -q kubess-wordpress >/dev/null
  rm -f "$root/var/www/html/index.html"

  # --- PHP ---
  install -m 0644 "$files/php-kubess.ini" "$root/etc/php/8.2/apache2/conf.d/90-kubess.ini"

  # --- start-up ---
  install -m 0755 "$files/docker-entrypoint.sh" "$files/apache2-foreground" "$root/usr/local/bin/"
  ln -sfT docker-entrypoint.sh "$root/usr/local/bin/docker-ensure-installed.sh"
  # Apache must start from this tree as it is: fail the build rather than the first pod.
  chroot "$root" /bin/sh -c '. /etc/apache2/envvars && KUBESS_HTTP_PORT=80 apache2 -t' >&2 ||
    die "wordpress: apache2 -t rejects the configuration"
  chroot "$root" php -r 'foreach (["bcmath","curl","exif","gd","imagick","intl","mbstring","mysqli","Zend OPcache","xml","zip"] as $e) if (!extension_loaded($e)) { fwrite(STDERR, "missing $e\n"); exit(1); }' ||
    die "wordpress: a PHP extension is missing (php-cli)"
}

image_finalize() {
  # Apache's run and lock directories, usable by any uid (mmdebstrap empties /run when it is done).
  install -d -m 1777 -o 33 -g 33 "$1/run/apache2" "$1/run/apache2/socks" "$1/run/lock/apache2"
}
