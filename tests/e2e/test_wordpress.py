"""WordPress in real containers: through its Service, the installer completes, a post is created and read back on
the front page; the autoscaler reads a real CPU utilisation from metrics-server and scales up under load."""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xmlrpc.client

import pytest

from conftest import NFS_ROOT

ADMIN_SECRET = "e2e-wordpress-admin"


def service_url(stack, name: str = "wordpress") -> str:
    spec = stack.get("service", name)["spec"]
    return f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"


def fetch(url: str, data: dict | None = None, timeout: float = 30) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


@pytest.fixture(scope="module")
def site(stack):
    """The installed site and its administrator. The password is kept in a Secret of the stack's namespace, so that a
    later session on the same stack can log in again."""
    url = service_url(stack)
    try:
        password = stack.secret(ADMIN_SECRET, "password")
    except subprocess.CalledProcessError:
        password = secrets.token_urlsafe(24)
        stack.kubectl("create", "secret", "generic", ADMIN_SECRET, "-n", stack.namespace,
                      f"--from-literal=password={password}")
    status, page = fetch(f"{url}/wp-admin/install.php")
    assert status == 200, page[:500]
    if "Already Installed" not in page:
        status, page = fetch(f"{url}/wp-admin/install.php?step=2", {
            "weblog_title": "kubess end to end", "user_name": "admin", "admin_password": password,
            "admin_password2": password, "pw_weak": "1", "admin_email": "admin@example.com", "blog_public": "0",
            "language": "",
        })
        assert status == 200 and "Success!" in page, page[-1500:]
    return url, password


def test_installer_completed_and_a_post_is_read_back(site):
    url, password = site
    title = f"Post {uuid.uuid4().hex[:12]}"
    api = xmlrpc.client.ServerProxy(f"{url}/xmlrpc.php")
    post_id = api.wp.newPost(1, "admin", password, {"post_title": title, "post_content": "Written end to end.",
                                                    "post_status": "publish"})
    assert int(post_id) > 0
    # Every pod serves the same database: whichever answers, the front page lists the post.
    for attempt in range(5):
        status, page = fetch(f"{url}/")
        assert status == 200 and title in page, f"request {attempt + 1} of 5"


def test_the_autoscaler_reads_a_real_cpu_utilisation(stack):
    def utilisation():
        status = stack.get("hpa", "wordpress").get("status", {})
        for metric in status.get("currentMetrics") or []:
            value = (metric.get("resource") or {}).get("current", {}).get("averageUtilization")
            if value is not None:
                return value, status
        return None
    value, status = stack.wait_for(utilisation, timeout=240, what="the autoscaler to read CPU utilisation")
    assert isinstance(value, int) and value >= 0
    assert status["currentReplicas"] >= 5


def test_the_autoscaler_scales_up_under_load(stack, site):
    url, _password = site
    stop = threading.Event()

    def load():
        while not stop.is_set():
            fetch(f"{url}/?s={uuid.uuid4().hex}", timeout=10)

    workers = [threading.Thread(target=load, daemon=True) for _worker in range(8)]
    for worker in workers:
        worker.start()
    try:
        scaled = stack.wait_for(lambda: (stack.get("hpa", "wordpress")["status"].get("desiredReplicas", 0) > 5
                                         and stack.get("hpa", "wordpress")["status"]), timeout=300,
                                what="the autoscaler to ask for more than 5 replicas under load")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
    print(f"\nautoscaler under load: {json.dumps(scaled.get('currentMetrics'))} -> {scaled['desiredReplicas']} replicas")
    assert scaled["desiredReplicas"] > 5


def test_content_was_copied_once_by_the_job_as_www_data(stack):
    jobs = stack.get("jobs", "-l", "app.kubernetes.io/component=content")["items"]
    assert len(jobs) == 1 and jobs[0]["status"].get("succeeded") == 1
    content = NFS_ROOT / "wordpress-content"
    for path in (content / "plugins" / "akismet", content / "themes"):
        assert path.is_dir(), f"{path} was not copied into wp-content"
        assert path.stat().st_uid == 33


def test_web_pods_never_write_wordpress_into_the_shared_content(stack):
    """Each web pod's document root is its own, filled by its init container; the web containers' entrypoints find
    WordPress in place and copy nothing (five pods copying into one NFS directory at once failed with stale
    handles)."""
    stack.wait_for(lambda: stack.deployment_settled("wordpress"), timeout=300, what="every web pod Ready (after the scale-up)")
    pods = [p for p in stack.pods("app.kubernetes.io/instance=wordpress,app.kubernetes.io/component=web")
            if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) >= 5
    checked = 0
    for pod in pods:
        name = pod["metadata"]["name"]
        assert [c["name"] for c in pod["spec"]["initContainers"]] == ["docroot"]
        logs = stack.kubectl("logs", "-n", stack.namespace, name, "-c", "wordpress", check=False)
        if logs.returncode != 0:
            # the autoscaler scaling back down after the load may delete a pod between the list and its logs
            gone = stack.kubectl("get", "pod", "-n", stack.namespace, name, check=False)
            assert "NotFound" in gone.stderr, f"no logs from {name}, which still exists: {logs.stderr}"
            continue
        assert "copying" not in logs.stdout, f"{name} copied WordPress: {logs.stdout[:500]}"
        statuses = pod["status"].get("containerStatuses", [])
        assert statuses and all(s["restartCount"] == 0 for s in statuses), f"{name} restarted: {statuses}"
        checked += 1
    assert checked >= 5, f"only {checked} web pods could be checked"
