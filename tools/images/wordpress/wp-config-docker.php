<?php
/**
 * wp-config.php of kubess.local/wordpress, written by the image's entrypoint on first start.
 *
 * Every setting is read from the environment at each request, so a changed Secret or variable
 * takes effect on the next container start without touching this file. For each variable NAME,
 * NAME_FILE (when set and not empty) names a file whose content, less trailing newlines, is used
 * instead; otherwise NAME; otherwise the default given here.
 */

if (!function_exists('kubess_wordpress_setting')) {
	function kubess_wordpress_setting($name, $default) {
		$file = getenv($name . '_FILE');
		if ($file !== false && $file !== '') {
			$content = file_get_contents($file);
			if ($content === false) {
				throw new RuntimeException("cannot read $file (from {$name}_FILE)");
			}
			return rtrim($content, "\r\n");
		}
		$value = getenv($name);
		return $value === false ? $default : $value;
	}
}

// Database.
define('DB_NAME', kubess_wordpress_setting('WORDPRESS_DB_NAME', 'wordpress'));
define('DB_USER', kubess_wordpress_setting('WORDPRESS_DB_USER', 'example username'));
define('DB_PASSWORD', kubess_wordpress_setting('WORDPRESS_DB_PASSWORD', 'example password'));
define('DB_HOST', kubess_wordpress_setting('WORDPRESS_DB_HOST', 'mysql'));
define('DB_CHARSET', kubess_wordpress_setting('WORDPRESS_DB_CHARSET', 'utf8mb4'));
define('DB_COLLATE', kubess_wordpress_setting('WORDPRESS_DB_COLLATE', ''));

// Authentication keys and salts. The entrypoint replaces each default below with a random value
// when it writes this file; a variable, when set, wins over it.
define('AUTH_KEY', kubess_wordpress_setting('WORDPRESS_AUTH_KEY', 'put your unique phrase here'));
define('SECURE_AUTH_KEY', kubess_wordpress_setting('WORDPRESS_SECURE_AUTH_KEY', 'put your unique phrase here'));
define('LOGGED_IN_KEY', kubess_wordpress_setting('WORDPRESS_LOGGED_IN_KEY', 'put your unique phrase here'));
define('NONCE_KEY', kubess_wordpress_setting('WORDPRESS_NONCE_KEY', 'put your unique phrase here'));
define('AUTH_SALT', kubess_wordpress_setting('WORDPRESS_AUTH_SALT', 'put your unique phrase here'));
define('SECURE_AUTH_SALT', kubess_wordpress_setting('WORDPRESS_SECURE_AUTH_SALT', 'put your unique phrase here'));
define('LOGGED_IN_SALT', kubess_wordpress_setting('WORDPRESS_LOGGED_IN_SALT', 'put your unique phrase here'));
define('NONCE_SALT', kubess_wordpress_setting('WORDPRESS_NONCE_SALT', 'put your unique phrase here'));

// Table prefix: letters, digits and underscores.
$table_prefix = kubess_wordpress_setting('WORDPRESS_TABLE_PREFIX', 'wp_');

// Debugging: any non-empty value other than "0" turns it on.
define('WP_DEBUG', (bool) kubess_wordpress_setting('WORDPRESS_DEBUG', ''));

// Behind a TLS-terminating proxy, the scheme the client used comes in X-Forwarded-Proto.
if (isset($_SERVER['HTTP_X_FORWARDED_PROTO']) && strpos($_SERVER['HTTP_X_FORWARDED_PROTO'], 'https') !== false) {
	$_SERVER['HTTPS'] = 'on';
}

// Any further PHP, e.g. define('WP_HOME', 'https://example.test');
$kubess_config_extra = kubess_wordpress_setting('WORDPRESS_CONFIG_EXTRA', '');
if ($kubess_config_extra !== '') {
	eval($kubess_config_extra);
}
unset($kubess_config_extra);

if (!defined('ABSPATH')) {
	define('ABSPATH', __DIR__ . '/');
}

require_once ABSPATH . 'wp-settings.php';
