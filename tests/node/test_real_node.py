"""The real node is real: a kubelet at the control plane's version runs containers from the images built here,
probes run, cluster DNS and Services work, volumes on the NFS server keep their data and their owners, and no
image is ever pulled. The simulated nodes are left as they were."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import NODE_ENV, REPO, RealNode

VERSIONS = dict(
    line.split("=", 1)
    for line in (REPO / "tools/localcluster/versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)
NFS_EXPORT_ROOT = Path("/srv/kubess-nfs")


def manifest(*objects: dict) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})


def pod(name: str, spec: dict, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def pod_json(node: RealNode, namespace: str, name: str) -> dict:
    return node.cluster.get_json("pod", name, "-n", namespace)


def condition(obj: dict, kind: str) -> str | None:
    return next((c["status"] for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), None)


def wait_pod(node: RealNode, namespace: str, name: str, what: str, predicate, timeout: float = 120):
    def check():
        try:
            return predicate(pod_json(node, namespace, name))
        except subprocess.CalledProcessError:
            return False
    return node.cluster.wait_for(check, timeout=timeout, what=f"pod {name} {what}")


def toolbox(node: RealNode, name: str, command: list[str], **container) -> dict:
    return {"name": name, "image": node.images["toolbox"], "command": command, **container}


def exec_in(node: RealNode, namespace: str, name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return node.cluster.kubectl("exec", "-n", namespace, name, "--", *argv, check=check)


# --- the node itself -----------------------------------------------------------------------------------------


def test_real_node_ready_with_the_pinned_kubelet(node):
    real = node.cluster.get_json("node", node.name)
    assert condition(real, "Ready") == "True"
    info = real["status"]["nodeInfo"]
    assert info["kubeletVersion"] == VERSIONS["KUBERNETES_VERSION"]
    assert info["containerRuntimeVersion"] == "containerd://" + VERSIONS["CONTAINERD_VERSION"].removeprefix("v")
    addresses = {a["type"]: a["address"] for a in real["status"]["addresses"]}
    assert addresses["InternalIP"] == NODE_ENV["NODE_IP"]
    assert {"key": NODE_ENV["NODE_TAINT"], "value": "true", "effect": "NoSchedule"} in real["spec"]["taints"]
    # Its kubelet serves the API server: logs and exec go through it (used by every test below too).
    assert real["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250


def test_real_node_reports_no_pressure_while_the_shared_disk_has_room(node):
    """The disk is shared with this machine's builds: eviction floors are absolute, so the node reports no pressure
    (and carries no pressure taint) while more than 2 GiB are free."""
    real = node.cluster.get_json("node", node.name)
    for kind in ("DiskPressure", "MemoryPressure", "PIDPressure"):
        assert condition(real, kind) == "False", kind
    assert [t["key"] for t in real["spec"]["taints"]] == [NODE_ENV["NODE_TAINT"]]
    configz = json.loads(node.cluster.kubectl("get", "--raw", f"/api/v1/nodes/{node.name}/proxy/configz").stdout)
    eviction = configz["kubeletconfig"]["evictionHard"]
    assert (eviction["nodefs.available"], eviction["imagefs.available"]) == ("2Gi", "2Gi")


def test_simulated_nodes_unaffected(node, namespace):
    kwok = node.cluster.get_json("nodes", "-l", "type=kwok")["items"]
    assert len(kwok) == 3
    for item in kwok:
        assert condition(item, "Ready") == "True"
        assert item["status"]["nodeInfo"]["kubeletVersion"].startswith("kwok-")
        assert not item["spec"].get("taints")
    # A pod that does not tolerate the real node's taint lands on a simulated node, and kwok plays it as before.
    node.cluster.apply(manifest(pod("anywhere", {"containers": [{"name": "c", "image": "kubess.local/none:0"}]})),
                       namespace)
    placed = wait_pod(node, namespace, "anywhere", "Ready on a simulated node",
                      lambda p: condition(p, "Ready") == "True" and p["spec"]["nodeName"])
    assert placed.startswith("kubess-node-")


# --- containers from the images built here -------------------------------------------------------------------

# What each image's own program says about itself, run in a pod on the real node.
IMAGE_CHECKS = {
    "toolbox": (["bash", "-c", "echo toolbox $(id -u)"], "toolbox 1000"),
    "etcd": (["/usr/local/bin/etcd", "--version"], "etcd Version: " + VERSIONS["ETCD_VERSION"].removeprefix("v")),
    "coredns": (["/coredns", "-version"], "CoreDNS-"),
    "mariadb-galera": (["mariadbd", "--version"], "MariaDB"),
    "wordpress": (["php", "-r", "echo 'php ', PHP_VERSION, ' ', extension_loaded('mysqli') ? 'mysqli' : '-';"],
                  "mysqli"),
}


def test_every_image_is_checked(node):
    assert set(node.images) == set(IMAGE_CHECKS) | {"pause"}


@pytest.mark.parametrize("image", sorted(IMAGE_CHECKS))
def test_image_runs_on_the_real_node(node, namespace, image):
    command, expected = IMAGE_CHECKS[image]
    container = {"name": "main", "image": node.images[image], "command": command}
    if image == "coredns":
        # Its binary carries a file capability (as the official image's does): exec needs it in the bounding set.
        container["securityContext"] = {
            "allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        }
    spec = node.pod_spec([container], restartPolicy="Never")
    node.cluster.apply(manifest(pod("run", spec)), namespace)
    done = wait_pod(node, namespace, "run", "Succeeded",
                    lambda p: p["status"].get("phase") in ("Succeeded", "Failed") and p["status"]["phase"])
    out = node.cluster.kubectl("logs", "-n", namespace, "run").stdout
    assert done == "Succeeded", out
    assert expected in out
    assert pod_json(node, namespace, "run")["spec"]["nodeName"] == node.name


def test_pause_image_is_every_pods_sandbox(node, namespace):
    spec = node.pod_spec([{"name": "pause", "image": node.images["pause"]}])
    node.cluster.apply(manifest(pod("pause", spec)), namespace)
    wait_pod(node, namespace, "pause", "Ready", lambda p: condition(p, "Ready") == "True")
    # The runtime makes every pod's sandbox from it (the pod above also runs it as its own container).
    images = dict(line.split()[:2] for line in node.runtime("containers", "ls").splitlines()[1:])
    sandboxes = node.crictl("pods", "-q").split()
    assert sandboxes
    assert {images[sandbox] for sandbox in sandboxes} == {node.images["pause"]}


# --- probes ----------------------------------------------------------------------------------------------------


def test_exec_probes_really_run(node, namespace):
    """Readiness follows a file the probe tests; a failing liveness probe restarts the container."""
    container = toolbox(
        node, "probed", ["bash", "-c", "touch /tmp/ready /tmp/alive; exec sleep 3600"],
        readinessProbe={"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1},
        livenessProbe={"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2},
    )
    node.cluster.apply(manifest(pod("probed", node.pod_spec([container]))), namespace)
    wait_pod(node, namespace, "probed", "Ready", lambda p: condition(p, "Ready") == "True")

    exec_in(node, namespace, "probed", "rm", "/tmp/ready")
    wait_pod(node, namespace, "probed", "unready after its readiness file is gone",
             lambda p: condition(p, "Ready") == "False", timeout=30)
    exec_in(node, namespace, "probed", "touch", "/tmp/ready")
    wait_pod(node, namespace, "probed", "Ready again", lambda p: condition(p, "Ready") == "True", timeout=30)

    exec_in(node, namespace, "probed", "rm", "/tmp/alive")
    restarted = wait_pod(node, namespace, "probed", "restarted by its liveness probe",
                         lambda p: p["status"]["containerStatuses"][0]["restartCount"] >= 1 and p, timeout=60)
    assert restarted["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] != 0
    reasons = {e["reason"] for e in node.cluster.get_json("events", "-n", namespace)["items"]
               if e["involvedObject"].get("name") == "probed"}
    assert {"Unhealthy", "Killing"} <= reasons
    # The new container starts with its files again and becomes Ready.
    wait_pod(node, namespace, "probed", "Ready after the restart", lambda p: condition(p, "Ready") == "True")


# --- cluster DNS and Services ----------------------------------------------------------------------------------


@pytest.fixture
def web(node, namespace):
    """A 2-member StatefulSet serving its own pod name over HTTP, behind a headless and a ClusterIP Service."""
    serve = toolbox(
        node, "web",
        ["bash", "-c", "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www"],
        ports=[{"containerPort": 8080, "name": "http"}],
        readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    )
    labels = {"app": "web"}
    node.cluster.apply(manifest(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 8080, "name": "http"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-svc"},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080, "name": "http"}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
         "spec": {"serviceName": "web", "replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": node.pod_spec([serve])}}},
        pod("client", node.pod_spec([toolbox(node, "client", ["sleep", "3600"])])),
    ), namespace)
    node.cluster.wait_for(
        lambda: node.cluster.get_json("statefulset", "web", "-n", namespace)["status"].get("readyReplicas") == 2,
        timeout=120, what="both web pods Ready")
    wait_pod(node, namespace, "client", "Ready", lambda p: condition(p, "Ready") == "True")
    return namespace


def test_service_names_resolve_in_a_pod(node, web):
    namespace = web
    kubernetes = exec_in(node, namespace, "client", "getent", "hosts", "kubernetes.default.svc.cluster.local").stdout
    assert kubernetes.split()[0] == "10.96.0.1"
    for ordinal in (0, 1):
        ip = pod_json(node, namespace, f"web-{ordinal}")["status"]["podIP"]
        name = f"web-{ordinal}.web.{namespace}.svc.cluster.local"
        assert exec_in(node, namespace, "client", "getent", "hosts", name).stdout.split()[0] == ip
    # A short name, through the search path the kubelet writes into the pod's resolv.conf.
    svc_ip = node.cluster.get_json("service", "web-svc", "-n", namespace)["spec"]["clusterIP"]
    assert exec_in(node, namespace, "client", "getent", "hosts", "web-svc").stdout.split()[0] == svc_ip
    assert exec_in(node, namespace, "client", "getent", "hosts", "no-such-service", check=False).returncode != 0


def test_cluster_ip_reaches_its_backends(node, web):
    namespace = web
    svc_ip = node.cluster.get_json("service", "web-svc", "-n", namespace)["spec"]["clusterIP"]
    # From a pod, by name (DNS and kube-proxy's rules together): both backends answer, each with its own name.
    seen = set()
    deadline = time.monotonic() + 60
    while seen != {"web-0", "web-1"} and time.monotonic() < deadline:
        seen.add(exec_in(node, namespace, "client", "busybox", "wget", "-qO-", f"http://web-svc.{namespace}/").stdout.strip())
    assert seen == {"web-0", "web-1"}
    # From the node's own network (its host), and from this machine, which routes Services through the node.
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://{svc_ip}/', timeout=10).read().decode())"
    assert node.in_node("python3", "-c", fetch).stdout.strip() in {"web-0", "web-1"}
    with urllib.request.urlopen(f"http://{svc_ip}/", timeout=10) as response:
        assert response.read().decode().strip() in {"web-0", "web-1"}


# --- volumes ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nfs_server(node):
    """The collection's own NFS server (nfs_server role, ganesha on loopback, root_squash), with a directory per
    test owned by the uid its pod runs as; stopped at the end only if it was not running before."""
    def playbook(**extra_vars):
        run = subprocess.run(["ansible-playbook", "-i", "inventories/local/hosts.yml", "tests/node/nfs_server.yml",
                              "-e", json.dumps(extra_vars)],
                             cwd=REPO, check=False, capture_output=True, text=True, env=node.cluster.env)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    pid_file = Path("/run/ganesha/ganesha.pid")
    was_running = pid_file.exists() and Path(f"/proc/{pid_file.read_text().strip()}").exists()
    # One level under the export root, as the volumes of the stack are.
    volumes = [{"path": "node-test-owned-999", "owner": 999, "group": 999, "mode": "0700"},
               {"path": "node-test-root-only", "owner": 0, "group": 0, "mode": "0700"}]
    playbook(nfs_server_volumes=volumes)
    yield NFS_EXPORT_ROOT
    if not was_running:
        playbook(nfs_entry="stop")


def nfs_volume(node: RealNode, namespace: str, name: str, path: Path) -> list[dict]:
    pv = f"{namespace}-{name}"
    return [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "node-test",
                  "claimRef": {"namespace": namespace, "name": name},
                  "nfs": {"server": node.env["NODE_GATEWAY_IP"], "path": str(path)}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": namespace},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "node-test", "volumeName": pv,
                  "resources": {"requests": {"storage": "1Gi"}}}},
    ]


def test_nfs_volume_keeps_data_and_owner_across_pods(node, namespace, nfs_server):
    directory = nfs_server / "node-test-owned-999"
    token = uuid.uuid4().hex
    objects = nfs_volume(node, namespace, "data", directory)
    spec = node.pod_spec(
        [toolbox(node, "writer", ["bash", "-c", f"echo {token} > /data/{token} && echo written && exec sleep 3600"],
                 volumeMounts=[{"name": "data", "mountPath": "/data"}])],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
    spec["securityContext"].update(runAsUser=999, runAsGroup=999)
    node.cluster.apply(manifest(*objects, pod("writer", spec)), namespace)
    wait_pod(node, namespace, "writer", "Running", lambda p: p["status"].get("phase") == "Running")
    # The container says when its write is closed; from then on (close-to-open) the file is on the server.
    node.cluster.wait_for(lambda: "written" in node.cluster.kubectl("logs", "-n", namespace, "writer").stdout,
                          timeout=120, what="the writer's closed write")
    written = directory / token
    assert written.exists(), f"{written} is not on the export after the container closed it"
    stat = written.stat()
    assert (stat.st_uid, stat.st_gid) == (999, 999), "the file on the NFS server belongs to the container's uid"

    node.cluster.kubectl("delete", "pod", "writer", "-n", namespace, "--wait=true")
    reader = node.pod_spec(
        [toolbox(node, "reader", ["sleep", "3600"], volumeMounts=[{"name": "data", "mountPath": "/data"}])],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
    reader["securityContext"].update(runAsUser=999, runAsGroup=999)
    node.cluster.apply(manifest(pod("reader", reader)), namespace)
    wait_pod(node, namespace, "reader", "Ready", lambda p: condition(p, "Ready") == "True")
    assert exec_in(node, namespace, "reader", "cat", f"/data/{token}").stdout.strip() == token
    node.cluster.kubectl("delete", "pv", f"{namespace}-data", "--wait=false", check=False)


def test_root_in_a_pod_is_squashed_on_the_export(node, namespace, nfs_server):
    """A container running as root cannot write a root-owned 0700 directory of a root-squashed export."""
    objects = nfs_volume(node, namespace, "rootonly", nfs_server / "node-test-root-only")
    spec = node.pod_spec(
        [toolbox(node, "root", ["bash", "-c", "touch /data/x; echo rc=$?; exec sleep 3600"],
                 volumeMounts=[{"name": "data", "mountPath": "/data"}],
                 securityContext={"runAsUser": 0, "runAsNonRoot": False})],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "rootonly"}}])
    node.cluster.apply(manifest(*objects, pod("root", spec)), namespace)
    wait_pod(node, namespace, "root", "Running", lambda p: p["status"].get("phase") == "Running")
    node.cluster.wait_for(lambda: "rc=" in node.cluster.kubectl("logs", "-n", namespace, "root").stdout,
                          timeout=30, what="the write attempt")
    log = node.cluster.kubectl("logs", "-n", namespace, "root").stdout
    assert "Permission denied" in log and "rc=1" in log
    assert not (nfs_server / "node-test-root-only" / "x").exists()
    node.cluster.kubectl("delete", "pv", f"{namespace}-rootonly", "--wait=false", check=False)


# --- images are never pulled -----------------------------------------------------------------------------------


def test_images_are_pinned_and_survive_a_prune(node, tmp_path):
    imported = set(node.images.values())
    listed = json.loads(node.crictl("images", "-o", "json"))["images"]
    pinned = {tag for image in listed if image.get("pinned") for tag in image.get("repoTags", [])}
    assert imported <= pinned
    # An image of its own content, imported without the pin: the same prune removes it, so the check can fail.
    spare = f"kubess.local/spare:{uuid.uuid4().hex[:8]}"
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "spare").write_text(spare)
    (tmp_path / "config.json").write_text(json.dumps({"Cmd": ["/spare"]}))
    subprocess.run([sys.executable, str(REPO / "tools/images/lib/ocipack.py"), "--rootfs", str(rootfs),
                    "--config", str(tmp_path / "config.json"), "--ref", spare, "--epoch", "0",
                    "--out", str(tmp_path / "spare.tar")], check=True, capture_output=True)
    node.runtime("images", "import", str(tmp_path / "spare.tar"))
    before = {tag for image in json.loads(node.crictl("images", "-o", "json"))["images"] for tag in image["repoTags"]}
    assert spare in before
    node.crictl("rmi", "--prune")
    after = {tag for image in json.loads(node.crictl("images", "-o", "json"))["images"] for tag in image["repoTags"]}
    assert imported <= after
    assert spare not in after


def test_zz_no_image_was_pulled(node):
    """Last in this module: over every pod this session ran on the real node, the kubelet pulled nothing."""
    events = node.cluster.get_json("events", "-A", "--field-selector", "reason=Pulling")["items"]
    on_real = [e for e in events if e.get("source", {}).get("host") == node.name or e.get("reportingInstance") == node.name]
    assert not on_real, [e["message"] for e in on_real]
    pulled = [e for e in node.cluster.get_json("events", "-A", "--field-selector", "reason=Pulled")["items"]
              if e.get("source", {}).get("host") == node.name or e.get("reportingInstance") == node.name]
    assert pulled, "no container started on the real node this session"
    assert all("already present on machine" in e["message"] for e in pulled), [e["message"] for e in pulled]
