"""The local cluster is a real Kubernetes control plane: its controllers, scheduler, PV binder,
metrics pipeline, RBAC and audit log act on what we create."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
import yaml

from conftest import CLUSTER_SH, REPO

VERSIONS = dict(
    line.split("=", 1)
    for line in (REPO / "tools/localcluster/versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)


class PodWatch:
    """Records, from a watch on a namespace, when each pod was added, became Ready and was deleted."""

    def __init__(self, cluster, namespace: str):
        self.cluster = cluster
        self.namespace = namespace
        self.added: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.deleted: dict[str, float] = {}
        self.order: list[tuple[str, str]] = []
        self._proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "get", "pods", "-n", namespace,
             "--watch", "--output-watch-events", "-o", "json"],
            env=cluster.env, stdout=subprocess.PIPE, text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        decoder = json.JSONDecoder()
        buf = ""
        for chunk in iter(self._proc.stdout.readline, ""):
            buf += chunk
            while buf.strip():
                try:
                    obj, end = decoder.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                self._event(obj, time.monotonic())

    def _event(self, ev: dict, now: float):
        pod = ev["object"]
        name = pod["metadata"]["name"]
        if ev["type"] == "DELETED":
            self.deleted.setdefault(name, now)
            self.order.append(("deleted", name))
            return
        self.added.setdefault(name, now)
        conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        if conds.get("Ready") == "True" and name not in self.ready:
            self.ready[name] = now
            self.order.append(("ready", name))

    def stop(self):
        self._proc.terminate()
        self._proc.wait(timeout=10)


def test_nodes_ready_and_pinned_version(cluster):
    nodes = cluster.get_json("nodes", "-l", "type=kwok")["items"]
    assert len(nodes) == 3
    zones = set()
    for node in nodes:
        conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conds["Ready"] == "True", node["metadata"]["name"]
        zones.add(node["metadata"]["labels"]["topology.kubernetes.io/zone"])
        assert node["status"]["allocatable"]["cpu"] == "8"
    assert len(zones) == 3
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]
    assert version["clientVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]


def test_second_cluster_up_reuses_running_cluster(cluster):
    pids_before = sorted(p.read_text() for p in (REPO / ".localcluster/kwok/clusters/kubess/pids").glob("*.pid"))
    out = subprocess.run([str(CLUSTER_SH), "up"], check=True, capture_output=True, text=True)
    assert "reusing the running cluster" in out.stderr
    pids_after = sorted(p.read_text() for p in (REPO / ".localcluster/kwok/clusters/kubess/pids").glob("*.pid"))
    assert pids_before == pids_after


def _static_pv(name: str, claim_ns: str, claim: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"test": claim_ns}},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "static-test",
            "nfs": {"server": "127.0.0.1", "path": f"/exports/{claim}"},
            "claimRef": {"namespace": claim_ns, "name": claim},
        },
    }


def _statefulset(name: str, replicas: int, ready_delay: str) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name, "replicas": replicas, "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name},
                             "annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": ready_delay}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "static-test",
                         "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }


def test_statefulset_ordered_ready_pvcs_and_lifo_scale_down(cluster, namespace):
    pvs = [_static_pv(f"{namespace}-data-db-{i}", namespace, f"data-db-{i}") for i in range(3)]
    try:
        cluster.apply(yaml.safe_dump_all(pvs))
        watch = PodWatch(cluster, namespace)
        try:
            cluster.apply(yaml.safe_dump(_statefulset("db", 3, "500ms")), namespace)
            cluster.wait_for(lambda: len(watch.ready) == 3, timeout=90, what="3 pods Ready")
            # Each ordinal is created only after the previous one is Ready, as a watch saw it.
            for i in (1, 2):
                assert watch.added[f"db-{i}"] >= watch.ready[f"db-{i - 1}"], watch.__dict__
            # The readiness delay is really applied: no pod is Ready before its 500 ms.
            for i in range(3):
                assert watch.ready[f"db-{i}"] - watch.added[f"db-{i}"] >= 0.4
            # One PVC per ordinal, each bound to the static PV pinned to it.

            def bound():
                pvcs = cluster.get_json("pvc", "-n", namespace)["items"]
                return {p["metadata"]["name"]: p["spec"].get("volumeName") for p in pvcs
                        if p["status"].get("phase") == "Bound"}
            got = cluster.wait_for(lambda: len(bound()) == 3 and bound(), timeout=60, what="3 PVCs Bound")
            assert got == {f"data-db-{i}": f"{namespace}-data-db-{i}" for i in range(3)}

            cluster.kubectl("scale", "statefulset/db", "-n", namespace, "--replicas=1")
            cluster.wait_for(lambda: {"db-1", "db-2"} <= set(watch.deleted), timeout=60, what="db-1, db-2 deleted")
            assert watch.deleted["db-2"] <= watch.deleted["db-1"]
            deletions = [name for kind, name in watch.order if kind == "deleted"]
            assert deletions.index("db-2") < deletions.index("db-1")
            # Scale-down keeps every PVC, still bound.
            assert bound() == got
        finally:
            watch.stop()
    finally:
        cluster.kubectl("delete", "statefulset", "db", "-n", namespace, "--wait=true", check=False)
        cluster.kubectl("delete", "pvc", "--all", "-n", namespace, "--wait=true", check=False)
        cluster.kubectl("delete", "pv", "-l", f"test={namespace}", check=False)


def test_anti_affinity_spreads_and_missing_node_label_stays_pending(cluster, namespace):
    spread = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
        "spec": {
            "replicas": 3, "selector": {"matchLabels": {"app": "spread"}},
            "template": {
                "metadata": {"labels": {"app": "spread"}},
                "spec": {
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": {"matchLabels": {"app": "spread"}},
                        "topologyKey": "kubernetes.io/hostname"}]}},
                    "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
                },
            },
        },
    }
    cluster.apply(yaml.safe_dump(spread), namespace)
    cluster.kubectl("rollout", "status", "deployment/spread", "-n", namespace, "--timeout=60s")
    pods = cluster.get_json("pods", "-n", namespace, "-l", "app=spread")["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["kubess-node-1", "kubess-node-2", "kubess-node-3"]

    stuck = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nowhere"},
        "spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubess.io/does-not-exist", "operator": "In", "values": ["yes"]}]}]}}},
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
        },
    }
    cluster.apply(yaml.safe_dump(stuck), namespace)

    def unschedulable():
        pod = cluster.get_json("pod", "nowhere", "-n", namespace)
        for cond in pod["status"].get("conditions", []):
            if cond["type"] == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return cond
        return None

    cond = cluster.wait_for(unschedulable, timeout=60, what="PodScheduled=False/Unschedulable")
    assert cond["status"] == "False"
    assert "node affinity" in cond["message"], cond["message"]
    assert cluster.get_json("pod", "nowhere", "-n", namespace)["status"]["phase"] == "Pending"


def test_top_pods_and_hpa_scales_on_usage(cluster, namespace):
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": {"kwok.x-k8s.io/usage-cpu": "20m"}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1",
                                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
            },
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                          "target": {"type": "Utilization", "averageUtilization": 50}}}],
        },
    }
    cluster.apply(yaml.safe_dump(deploy), namespace)
    cluster.apply(yaml.safe_dump(hpa), namespace)

    last = {}

    def top():
        out = cluster.kubectl("top", "pods", "-n", namespace, "--no-headers", check=False)
        rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
        last["out"] = out.stdout + out.stderr
        return rows if out.returncode == 0 and len(rows) == 2 else None

    try:
        rows = cluster.wait_for(top, timeout=120, what="kubectl top pods", interval=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; kubectl top said: {last.get('out')}") from None
    assert all(re.fullmatch(r"(19|20|21)m", cpu) for _name, cpu, _mem in rows), rows

    def hpa_status():
        return cluster.get_json("hpa", "web", "-n", namespace).get("status", {})

    def reading():
        status = hpa_status()
        return status if status.get("currentMetrics") and status.get("desiredReplicas") else None

    status = cluster.wait_for(reading, timeout=120, what="HPA reading metrics", interval=2)
    assert status["desiredReplicas"] == 2

    # Usage rises to 90 % of the request: the real HPA controller scales the Deployment out.
    cluster.kubectl("patch", "deployment", "web", "-n", namespace, "--type=merge", "-p",
                    json.dumps({"spec": {"template": {"metadata": {"annotations": {"kwok.x-k8s.io/usage-cpu": "90m"}}}}}))
    cluster.wait_for(lambda: hpa_status().get("desiredReplicas", 0) > 2, timeout=180,
                     what="HPA desiredReplicas above 2", interval=2)
    cluster.wait_for(lambda: cluster.get_json("deployment", "web", "-n", namespace)["spec"]["replicas"] > 2,
                     timeout=60, what="Deployment scaled above 2")


def test_rbac_namespaced_role_is_forbidden_elsewhere(cluster, namespace):
    other = f"{namespace}-other"
    cluster.kubectl("create", "namespace", other)
    try:
        cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
        cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
        cluster.kubectl("create", "rolebinding", "reader", "--role=pod-reader",
                        f"--serviceaccount={namespace}:reader", "-n", namespace)
        who = f"--as=system:serviceaccount:{namespace}:reader"
        assert cluster.kubectl("auth", "can-i", "list", "pods", "-n", namespace, who, check=False).stdout.strip() == "yes"
        assert cluster.kubectl("auth", "can-i", "list", "pods", "-n", other, who, check=False).stdout.strip() == "no"

        # A real request with the ServiceAccount's own token.
        token = cluster.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
        cfg = yaml.safe_load(cluster.kubectl("config", "view", "--raw", "--minify", "-o", "yaml").stdout)
        server = cfg["clusters"][0]["cluster"]["server"]
        ca = cfg["clusters"][0]["cluster"]
        ca_args = (["--insecure-skip-tls-verify"] if ca.get("insecure-skip-tls-verify")
                   else ["--certificate-authority", ca.get("certificate-authority", "")])
        base = ["kubectl", "--kubeconfig", "/dev/null", "--server", server, "--token", token, *ca_args]
        ok = subprocess.run([*base, "get", "pods", "-n", namespace], capture_output=True, text=True, check=False)
        assert ok.returncode == 0, ok.stderr
        denied = subprocess.run([*base, "get", "pods", "-n", other, "-v=6"], capture_output=True, text=True, check=False)
        assert denied.returncode != 0
        assert "403 Forbidden" in denied.stderr or "Forbidden" in denied.stderr, denied.stderr
        assert f"system:serviceaccount:{namespace}:reader" in denied.stderr
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_audit_log_records_a_create(cluster, namespace):
    since = time.time() - 1
    name = f"audit-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "configmap", name, "-n", namespace, "--from-literal=k=v")

    def found():
        return [e for e in cluster.audit_events(since)
                if e["verb"] == "create" and e.get("objectRef", {}).get("name") == name]

    events = cluster.wait_for(found, timeout=30, what="audit event for the create")
    assert events[0]["objectRef"]["resource"] == "configmaps"
    assert events[0]["objectRef"]["namespace"] == namespace
    assert events[0]["responseStatus"]["code"] == 201
