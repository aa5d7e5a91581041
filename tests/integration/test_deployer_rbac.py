"""The deployer identity (playbooks/deployer_rbac.yml): the whole site playbook converges with its token alone.

As a cluster administrator, the test runs deployer_rbac.yml for a fresh stack namespace; then it runs
playbooks/site.yml with a kubeconfig that holds only the ServiceAccount's token, and reads the audit log: every
request the deployer made was allowed (RBAC refuses anything outside the rules with 403, so no 403 means every
request was within them). Writes outside the rules (a ConfigMap in kube-system, deleting a PersistentVolume) are
refused. The teardown playbook is refused too, until the identity is made with kubess_deployer_teardown; then it
runs, and deletes no claim, Secret or volume. The NFS server of the run is nfs-ganesha on loopback, on its own port
and files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Cluster
from localcluster import play_recap

INVENTORY = REPO / "inventories" / "local" / "hosts.yml"
DEPLOYER = "kubess-deployer"


def playbook(env: dict, playbook_path: Path, extra_vars: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY), "-e", f"@{extra_vars}",
         *args, str(playbook_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False,
    )


@pytest.fixture
def stack(cluster: Cluster, tmp_path):
    """Extra variables for a stack in a fresh namespace; the namespace, its volumes, the deployer's cluster-wide
    objects and the NFS server are removed at the end."""
    name = f"kubess-rbac-{uuid.uuid4().hex[:6]}"
    export_root = Path(f"/srv/{name}")
    extra = {
        "kubess_namespace": name,
        "kubess_nfs_export_root": str(export_root),
        "nfs_server_port": 20493,
        "nfs_server_ganesha_graceless": True,
        "nfs_server_ganesha_config_file": f"/etc/ganesha/{name}.conf",
        "nfs_server_ganesha_pid_file": f"/run/ganesha/{name}.pid",
        "nfs_server_ganesha_log_file": f"/var/log/ganesha/{name}.log",
        "etcd_wait_timeout": 180, "pxc_wait_timeout": 180, "wordpress_wait_timeout": 180,
    }
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(extra), encoding="utf-8")
    yield name, path
    subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "-i", str(INVENTORY), "nfs_servers", "-e", f"@{path}",
         "-m", "ansible.builtin.include_role", "-a", "name=kubess.stateful.nfs_server tasks_from=stop"],
        cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=300, check=False,
    )
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    cluster.kubectl("delete", "pv", "-l", f"kubess.io/namespace={name}", "--wait=false", check=False)
    cluster.kubectl("delete", "clusterrole,clusterrolebinding", DEPLOYER, check=False)
    shutil.rmtree(export_root, ignore_errors=True)
    for leftover in (f"/etc/ganesha/{name}.conf", f"/var/log/ganesha/{name}.log"):
        Path(leftover).unlink(missing_ok=True)


def deployer_kubeconfig(cluster: Cluster, namespace: str, path: Path) -> Path:
    """The admin kubeconfig's server and CA, with the ServiceAccount's token as the only credential."""
    token = cluster.kubectl("-n", namespace, "create", "token", DEPLOYER, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text(encoding="utf-8"))
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": DEPLOYER, "user": {"token": token}}],
        "contexts": [{"name": DEPLOYER, "context": {"cluster": "local", "user": DEPLOYER}}],
        "current-context": DEPLOYER,
    }), encoding="utf-8")
    path.chmod(0o600)
    return path


def test_the_site_playbook_converges_and_tears_down_as_the_deployer_and_nothing_outside_its_rules_is_allowed(cluster, stack, tmp_path):
    namespace, extra_vars = stack
    admin_env = cluster.env

    made = playbook(admin_env, REPO / "playbooks" / "deployer_rbac.yml", extra_vars)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-2000:]
    again = playbook(admin_env, REPO / "playbooks" / "deployer_rbac.yml", extra_vars)
    assert again.returncode == 0 and play_recap(again.stdout)["localhost"]["changed"] == 0, again.stdout[-3000:]
    labels = cluster.get_json("namespace", namespace)["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"

    kubeconfig = deployer_kubeconfig(cluster, namespace, tmp_path / "deployer.kubeconfig")
    user = f"system:serviceaccount:{namespace}:{DEPLOYER}"
    env = dict(admin_env, KUBECONFIG=str(kubeconfig))
    since = time.time() - 1

    site = playbook(env, REPO / "playbooks" / "site.yml", extra_vars)
    assert site.returncode == 0, site.stdout[-6000:] + site.stderr[-2000:]
    assert play_recap(site.stdout)["localhost"]["failed"] == 0

    events = [e for e in cluster.audit_events(since) if e["user"]["username"] == user]
    writes = {(e["verb"], e["objectRef"].get("resource")) for e in events
              if e["verb"] in ("create", "patch", "update") and e["responseStatus"]["code"] < 300}
    # The deployer itself wrote the stack: the volumes, the passwords, the sets.
    assert {"persistentvolumes", "secrets", "statefulsets", "deployments"} <= {write[1] for write in writes}, writes
    refused = [(e["verb"], e["objectRef"], e["responseStatus"]["code"]) for e in events
               if e["responseStatus"]["code"] == 403]
    assert not refused, refused

    # Outside the rules: another namespace, and deleting a volume (nothing is lost unless an administrator asks).
    pv = cluster.get_json("pv", "-l", f"kubess.io/namespace={namespace}")["items"][0]["metadata"]["name"]
    for argv in (["-n", "kube-system", "create", "configmap", "kubess-outside"], ["delete", "pv", pv]):
        result = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *argv], env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode != 0 and "forbidden" in result.stderr, (argv, result.stdout, result.stderr)
    denied = [e for e in cluster.audit_events(since) if e["user"]["username"] == user
              and e["responseStatus"]["code"] == 403]
    assert {(e["verb"], e["objectRef"].get("resource")) for e in denied} == {("create", "configmaps"),
                                                                             ("delete", "persistentvolumes")}
    assert cluster.get_json("pv", pv)["metadata"]["name"] == pv

    # The teardown deletes: refused by default (the first delete, WordPress's Deployment, before anything changed);
    # allowed once the identity is made with kubess_deployer_teardown, and even then no claim or volume is deleted.
    refused = playbook(env, REPO / "playbooks" / "teardown.yml", extra_vars)
    assert refused.returncode != 0 and "forbidden" in refused.stdout, refused.stdout[-3000:]
    assert cluster.get_json("statefulset", "pxc", "-n", namespace)["spec"]["replicas"] == 3
    widened = playbook(admin_env, REPO / "playbooks" / "deployer_rbac.yml", extra_vars,
                       "-e", "kubess_deployer_teardown=true")
    assert widened.returncode == 0, widened.stdout[-3000:]
    since = time.time() - 1
    down = playbook(env, REPO / "playbooks" / "teardown.yml", extra_vars)
    assert down.returncode == 0, down.stdout[-6000:] + down.stderr[-2000:]
    events = [e for e in cluster.audit_events(since) if e["user"]["username"] == user]
    assert not [e for e in events if e["responseStatus"]["code"] == 403]
    deleted = {e["objectRef"].get("resource") for e in events if e["verb"] == "delete"}
    assert {"pods", "statefulsets", "deployments", "services"} <= deleted, deleted
    assert not deleted & {"persistentvolumeclaims", "persistentvolumes", "secrets"}, deleted
    assert cluster.get_json("statefulsets", "-n", namespace)["items"] == []
