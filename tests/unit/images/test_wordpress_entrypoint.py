"""The WordPress image's start-up, run here in the image's own root file system.

The archive built by tools/images/build.sh is unpacked into a temporary directory, and the image's
entrypoint runs in it with chroot(8) inside a private mount namespace (unshare(1); image_root.run),
so that it uses the image's own bash, tar, PHP and /usr/src/wordpress. The document root is the working
directory, as in a container (WORKDIR); each test uses a directory of its own under /srv. The
host's /dev is bound into the root (the entrypoint reads /dev/urandom); read-only bind mounts stand
for volumes the container may not write (NFS with root squashing, read-only mounts).
Needs root (unshare, chroot, mount).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from image_archive import ImageArchive
from image_root import PATH, run

ENTRYPOINT = "/usr/local/bin/docker-entrypoint.sh"
ENSURE = "/usr/local/bin/docker-ensure-installed.sh"
KEYS = [f"{kind}_{part}" for kind in ("AUTH", "SECURE_AUTH", "LOGGED_IN", "NONCE") for part in ("KEY", "SALT")]
PLACEHOLDER = "put your unique phrase here"


@pytest.fixture(scope="module")
def root(built, tmp_path_factory) -> Path:
    """The wordpress image's root file system, unpacked."""
    target = tmp_path_factory.mktemp("wordpress-rootfs")
    ImageArchive(built["wordpress"][1]).unpack(target)
    # A stand-in for wp-settings.php, so that wp-config.php can be loaded without a database.
    stub = target / "srv" / "stub"
    stub.mkdir(parents=True)
    (stub / "wp-settings.php").write_text("<?php\n")
    return target


def docroot(root: Path, name: str, owner: tuple[int, int] = (0, 0), mode: int = 0o755) -> tuple[str, Path]:
    inside = f"/srv/{name}/html"
    path = root / inside.lstrip("/")
    path.mkdir(parents=True)
    path.chmod(mode)
    os.chown(path, *owner)
    return inside, path


def owners(path: Path) -> set[tuple[int, int]]:
    return {(p.lstat().st_uid, p.lstat().st_gid) for p in [path, *path.rglob("*")]}


def load_config(root: Path, config: str, env: dict) -> dict:
    """The constants wp-config.php defines for env, evaluated by the image's PHP."""
    code = (
        "define('ABSPATH', '/srv/stub/'); require '" + config + "';"
        " $out = ['table_prefix' => $table_prefix, 'WP_DEBUG' => WP_DEBUG];"
        " foreach (['DB_NAME','DB_USER','DB_PASSWORD','DB_HOST','DB_CHARSET','DB_COLLATE'," + ",".join(
            f"'{k}'" for k in KEYS) + "] as $c) { $out[$c] = constant($c); }"
        " if (defined('KUBESS_TEST_EXTRA')) { $out['extra'] = KUBESS_TEST_EXTRA; }"
        " echo json_encode($out);"
    )
    result = run(root, ["php", "-r", code], env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_first_start_as_root_copies_wordpress_and_writes_the_config(root):
    inside, path = docroot(root, "first")
    env = {"WORDPRESS_DB_HOST": "db.example:3306", "WORDPRESS_DB_USER": "wp", "WORDPRESS_DB_PASSWORD": "s3cret"}
    # Any apache2* command installs first; apache2 -v only prints the version.
    result = run(root, [ENTRYPOINT, "apache2", "-v"], cwd=inside, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Server version: Apache/2.4")
    assert "WordPress not found in " + inside in result.stderr
    assert "Complete! WordPress has been copied to " + inside in result.stderr
    assert (path / "index.php").is_file() and (path / "wp-includes" / "version.php").is_file()
    assert (path / "wp-login.php").is_file() and (path / "wp-content" / "plugins" / "akismet").is_dir()
    assert "RewriteRule . /index.php [L]" in (path / ".htaccess").read_text()
    # The run user owns everything; the root-owned directory itself was handed over.
    assert owners(path) == {(33, 33)}
    config = (path / "wp-config.php").read_text()
    assert PLACEHOLDER not in config
    assert "WORDPRESS_DB_HOST" in config
    assert not list(path.glob(".wordpress-write-check.*")) and not list(path.glob(".wp-config.php.*"))


def test_second_start_changes_nothing(root):
    inside, path = docroot(root, "second")
    env = {"WORDPRESS_DB_HOST": "db"}
    assert run(root, [ENSURE, "true"], cwd=inside, env=env).returncode == 0
    config = (path / "wp-config.php").read_text()
    (path / "readme.html").write_text("edited by the site\n")
    (path / "index.php").unlink()  # WordPress still counts as present: wp-includes/version.php is there
    result = run(root, [ENSURE, "true"], cwd=inside, env={"WORDPRESS_DB_HOST": "other"})
    assert result.returncode == 0, result.stderr
    assert "copying" not in result.stderr and "writing it" not in result.stderr
    assert (path / "readme.html").read_text() == "edited by the site\n"
    assert not (path / "index.php").exists()
    assert (path / "wp-config.php").read_text() == config


def test_existing_plugins_and_htaccess_are_kept(root):
    inside, path = docroot(root, "kept")
    plugin = path / "wp-content" / "plugins" / "akismet"
    plugin.mkdir(parents=True)
    (plugin / "akismet.php").write_text("<?php // the site's own version\n")
    (path / ".htaccess").write_text("# the site's rules\n")
    result = run(root, [ENSURE, "true"], cwd=inside)
    assert result.returncode == 0, result.stderr
    assert "exists (keeping it" in result.stderr
    assert (plugin / "akismet.php").read_text() == "<?php // the site's own version\n"
    assert not (plugin / "class.akismet.php").exists()
    assert (path / ".htaccess").read_text() == "# the site's rules\n"
    assert (path / "wp-content" / "themes" / "twentytwentythree" / "style.css").is_file()
    # No WORDPRESS_* variable: no wp-config.php, as in the official image.
    assert not (path / "wp-config.php").exists()


def test_config_reads_variables_and_file_variants_at_run_time(root):
    inside, path = docroot(root, "config")
    secrets = root / "run" / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "db-password").write_text("from-a-file\n")
    (secrets / "auth-key").write_text("key-from-a-file\r\n")
    first = {"WORDPRESS_DB_NAME": "site"}
    assert run(root, [ENSURE, "true"], cwd=inside, env=first).returncode == 0
    config = f"{inside}/wp-config.php"

    env = {
        "WORDPRESS_DB_HOST": "db.shop.svc:3306",
        "WORDPRESS_DB_USER": "wpuser",
        "WORDPRESS_DB_PASSWORD": "ignored: the _FILE variant wins",
        "WORDPRESS_DB_PASSWORD_FILE": "/run/secrets/db-password",
        "WORDPRESS_DB_NAME": "shop",
        "WORDPRESS_TABLE_PREFIX": "shop_",
        "WORDPRESS_DEBUG": "1",
        "WORDPRESS_AUTH_KEY_FILE": "/run/secrets/auth-key",
        "WORDPRESS_NONCE_SALT": "salt-from-env",
        "WORDPRESS_CONFIG_EXTRA": "define('KUBESS_TEST_EXTRA', 'extra ran');",
    }
    got = load_config(root, config, env)
    assert got["DB_HOST"] == "db.shop.svc:3306"
    assert got["DB_USER"] == "wpuser"
    assert got["DB_PASSWORD"] == "from-a-file"
    assert got["DB_NAME"] == "shop"
    assert got["table_prefix"] == "shop_"
    assert got["WP_DEBUG"] is True
    assert got["AUTH_KEY"] == "key-from-a-file"
    assert got["NONCE_SALT"] == "salt-from-env"
    assert got["extra"] == "extra ran"
    # Keys and salts without a variable: the random values written at first start, all different.
    generated = [got[k] for k in KEYS if k not in ("AUTH_KEY", "NONCE_SALT")]
    assert all(re.fullmatch(r"[0-9a-f]{40}", v) for v in generated) and len(set(generated)) == 6

    defaults = load_config(root, config, {})
    assert defaults["DB_HOST"] == "mysql" and defaults["DB_NAME"] == "wordpress"
    assert defaults["DB_CHARSET"] == "utf8mb4" and defaults["DB_COLLATE"] == ""
    assert defaults["table_prefix"] == "wp_" and defaults["WP_DEBUG"] is False
    assert defaults["AUTH_KEY"] == generated[0] or defaults["AUTH_KEY"] not in (PLACEHOLDER, "")
    assert load_config(root, config, {"WORDPRESS_DEBUG": "0"})["WP_DEBUG"] is False

    # Two installations never share their generated keys.
    other_inside = docroot(root, "config-other")[0]
    assert run(root, [ENSURE, "true"], cwd=other_inside, env=first).returncode == 0
    other = load_config(root, f"{other_inside}/wp-config.php", {})
    assert all(other[k] != defaults[k] for k in KEYS)


def test_start_as_uid_33_in_a_writable_docroot(root):
    inside, path = docroot(root, "uid33", owner=(33, 33))
    result = run(root, [ENSURE, "true"], cwd=inside, user="33:33", env={"WORDPRESS_DB_HOST": "db"})
    assert result.returncode == 0, result.stderr
    assert (path / "index.php").is_file() and (path / "wp-config.php").is_file()
    assert owners(path) == {(33, 33)}


def test_start_as_uid_33_in_a_root_owned_docroot_fails_before_copying(root):
    inside, path = docroot(root, "squashed", owner=(0, 0), mode=0o755)
    result = run(root, [ENSURE, "true"], cwd=inside, user="33:33", env={"WORDPRESS_DB_HOST": "db"})
    assert result.returncode != 0
    assert f"WordPress is not in {inside} and uid 33 cannot write there (owner 0, group 0, mode 755)" in result.stderr
    assert "nothing was copied" in result.stderr
    assert list(path.iterdir()) == []


def test_start_as_root_on_a_read_only_docroot_fails_before_copying(root):
    inside, path = docroot(root, "read-only")
    result = run(root, [ENSURE, "true"], cwd=inside, env={"WORDPRESS_DB_HOST": "db"}, read_only=(inside,))
    assert result.returncode != 0
    assert f"WordPress is not in {inside} and uid 0 cannot write there" in result.stderr
    assert list(path.iterdir()) == []


def test_unwritable_wp_content_volume_fails_before_copying(root):
    inside, path = docroot(root, "content", owner=(33, 33))
    content = path / "wp-content"
    content.mkdir()
    os.chown(content, 0, 0)
    result = run(root, [ENSURE, "true"], cwd=inside, user="33:33")
    assert result.returncode != 0
    assert f"{inside}/wp-content is not writable by uid 33" in result.stderr
    assert sorted(p.name for p in path.iterdir()) == ["wp-content"]


# An emptyDir as the kubelet makes it for a pod with fsGroup 33: owned by root, group 33, mode 0777 with set-gid.
EMPTY_DIR = {"owner": (0, 33), "mode": 0o2777}
INIT_DOCROOT = "mkdir -p html && cd html && exec docker-ensure-installed.sh true"


def test_copy_as_uid_33_into_a_root_owned_empty_dir_fails(root):
    """Why the wordpress role does not use the emptyDir itself as the document root: tar run by uid 33 cannot keep
    the mode of the directory it extracts into when root owns it, even world-writable."""
    inside, path = docroot(root, "empty-dir", **EMPTY_DIR)
    result = run(root, [ENSURE, "true"], cwd=inside, user="33:33", env={"WORDPRESS_TABLE_PREFIX": "wp_"})
    assert result.returncode != 0
    assert "Cannot change mode" in result.stderr and "WordPress is not marked present" in result.stderr


def test_web_pod_with_a_filled_docroot_writes_nothing_to_the_shared_content(root):
    """The wordpress role's pods: an init container, as uid 33, makes html/ in an emptyDir and runs
    docker-ensure-installed.sh there, without the shared volume; then the web container's entrypoint, with html/ as
    its document root and wp-content mounted over it read-only (any write fails), finds WordPress in place and starts
    without writing."""
    volume, path = docroot(root, "pod", **EMPTY_DIR)
    init = run(root, ["sh", "-c", INIT_DOCROOT], cwd=volume, user="33:33", env={"WORDPRESS_TABLE_PREFIX": "wp_"})
    assert init.returncode == 0, init.stderr
    html = path / "html"
    assert (html.stat().st_uid, html.stat().st_gid) == (33, 33)
    assert (html / "wp-config.php").is_file() and (html / "wp-includes" / "version.php").is_file()
    env = {"WORDPRESS_DB_HOST": "db:3306", "WORDPRESS_DB_PASSWORD": "s3cret", "WORDPRESS_TABLE_PREFIX": "wp_"}
    web = run(root, [ENTRYPOINT, "apache2", "-v"], cwd=f"{volume}/html", user="33:33", env=env,
              read_only=(f"{volume}/html/wp-content",))
    assert web.returncode == 0, web.stderr
    assert "copying" not in web.stderr and "writing it" not in web.stderr


def test_the_roles_init_command_is_the_one_tested():
    template = (Path(__file__).resolve().parents[3] / "roles" / "wordpress" / "templates" / "deployment.yaml.j2").read_text()
    assert '"mkdir -p {{ wordpress__docroot_mount }}/html && cd {{ wordpress__docroot_mount }}/html && exec ' \
           'docker-ensure-installed.sh true"' in template
    assert "subPath: html" in template


def test_other_commands_start_without_installing(root):
    inside, path = docroot(root, "other")
    result = run(root, [ENTRYPOINT, "sh", "-c", "echo ran: $0", "here"], cwd=inside, env={"WORDPRESS_DB_HOST": "db"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran: here\n"
    assert list(path.iterdir()) == []


# --- Apache, serving -------------------------------------------------------------------------------

# Run inside the container's network namespace: waits (bounded) until the port accepts a connection,
# then fetches each path and prints {path: [status line, body]} as JSON.
CLIENT = r"""
$port = (int) $argv[1];
$deadline = microtime(true) + 60;
while (!($s = @fsockopen('127.0.0.1', $port, $errno, $errstr, 1))) {
    if (microtime(true) > $deadline) { fwrite(STDERR, "nothing listens on $port: $errstr\n"); exit(2); }
    usleep(50000);
}
fclose($s);
$out = [];
foreach (array_slice($argv, 2) as $path) {
    $body = @file_get_contents("http://127.0.0.1:$port$path", false,
        stream_context_create(['http' => ['ignore_errors' => true, 'timeout' => 20]]));
    $out[$path] = [$http_response_header[0] ?? 'no answer', $body === false ? '' : $body];
}
echo json_encode($out);
"""

PROBE = "<?php echo json_encode(['uid' => posix_geteuid(), 'sapi' => PHP_SAPI, 'db_host' => getenv('WORDPRESS_DB_HOST')]);\n"


def serve(root: Path, *, user: str | None, env: dict, port: int, paths: list[str],
          unprivileged_port_start: int = 1024) -> subprocess.CompletedProcess:
    """Start the image's command (entrypoint + apache2-foreground) in a network namespace of its
    own, request paths from inside it, stop Apache; the result's stdout is the client's JSON."""
    r = shlex.quote(str(root))
    chroot_user = f"--userspec={user}" if user else ""
    # Apache reopens its log, /dev/stderr, by name: like runc, hand the container's stderr to its user.
    errors = root / "srv" / "apache.err"
    errors.write_text("")
    uid, gid = (int(i) for i in (user or "0:0").split(":"))
    os.chown(errors, uid, gid)
    variables = " ".join(shlex.quote(f"{k}={v}") for k, v in {"PATH": PATH, **env}.items())
    client = shlex.quote(CLIENT)
    script = f"""
set -e
ip link set lo up
# What a pod's sysctl net.ipv4.ip_unprivileged_port_start sets, in its own network namespace.
echo {unprivileged_port_start} > /proc/sys/net/ipv4/ip_unprivileged_port_start
mount --rbind /dev {r}/dev
mount -t proc proc {r}/proc
# A session of its own: on shutdown Apache signals its whole process group (as PID 1 of a container,
# that is itself and its children), which here would otherwise include this script and its caller.
setsid chroot {chroot_user} {r} /usr/bin/env -i {variables} /usr/bin/env -C /var/www/html \
  {ENTRYPOINT} apache2-foreground >/dev/null 2>>{r}/srv/apache.err &
apache=$!
set +e
chroot {r} /usr/bin/env -i PATH={PATH} php -r {client} {port} {" ".join(shlex.quote(p) for p in paths)}
status=$?
kill -TERM $apache 2>/dev/null
wait $apache
exit $status
"""
    return subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "--fork", "sh", "-c", script],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def fresh_docroot(root):
    html = root / "var" / "www" / "html"
    shutil.rmtree(html)
    html.mkdir(mode=0o1777)
    html.chmod(0o1777)
    os.chown(html, 33, 33)
    (html / "probe.php").write_text(PROBE)
    return html


@pytest.mark.parametrize(
    "user, env, port, lowest, php_uid",
    [
        (None, {}, 80, 1024, 33),  # as root: port 80, PHP in Apache's children as www-data
        ("33:33", {}, 80, 80, 33),  # as uid 33: port 80 too, where the pod's sysctl lets it bind 80
        ("33:33", {"KUBESS_HTTP_PORT": "8081"}, 8081, 1024, 33),
    ],
    ids=["root", "uid-33-sysctl", "uid-33-port-8081"],
)
def test_apache_serves_wordpress_and_php_sees_the_environment(root, fresh_docroot, user, env, port, lowest, php_uid):
    result = serve(root, user=user, env={"WORDPRESS_DB_HOST": "db.shop.svc:3306", **env}, port=port,
                   paths=["/license.txt", "/probe.php"], unprivileged_port_start=lowest)
    errors = (root / "srv" / "apache.err").read_text()
    assert result.returncode == 0, result.stderr + errors
    answers = json.loads(result.stdout)
    status, body = answers["/license.txt"]
    assert " 200 " in status and "WordPress - Web publishing software" in body
    status, body = answers["/probe.php"]
    assert " 200 " in status, body
    assert json.loads(body) == {"uid": php_uid, "sapi": "apache2handler", "db_host": "db.shop.svc:3306"}
    assert (fresh_docroot / "wp-config.php").is_file() and (fresh_docroot / "index.php").is_file()


def test_apache_as_non_root_refuses_a_privileged_port_with_the_reason(root, fresh_docroot):
    r = shlex.quote(str(root))
    # No port asked for: 80, which uid 33 may not bind without the pod's sysctl.
    command = shlex.join(["chroot", "--userspec=33:33", str(root), "/usr/bin/env", "-i", f"PATH={PATH}",
                          "/usr/bin/env", "-C", "/var/www/html", "apache2-foreground"])
    script = f"mount --rbind /dev {r}/dev && mount -t proc proc {r}/proc && exec {command}"
    result = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "--fork", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    # A new network namespace starts with the kernel's default, 1024.
    assert "uid 33 cannot listen on port 80 (the lowest port it may bind is 1024)" in result.stderr
