"""Every StatefulSet role (and WordPress's Deployment) refuses, before its first write, input that would change a
field Kubernetes does not allow to update: the run fails naming the variable, the field, the change and what to do
instead, and the audit log shows no write of the collection's client during the run.

The object in the way is one another tool made under the role's name (another serviceName, selector,
podManagementPolicy, claim template), as a user meets it when a chart or an older install used the name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, Cluster

sys.path.insert(0, str(REPO / "molecule" / "shared"))
from audit_writes import writes  # noqa: E402 pylint: disable=wrong-import-position


def foreign_set(name: str, claim: str, size: str, policy: str) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {
            "replicas": 0, "serviceName": f"{name}-headless", "podManagementPolicy": policy,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": name, "image": "registry.example/none:1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": claim},
                                      "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": size}}}}],
        },
    }


CASES = {
    "etcd": (
        foreign_set("etcd", "data", "3Gi", "Parallel"),
        {},
        ["etcd_name would change spec.serviceName of StatefulSet {ns}/etcd (etcd-headless -> etcd)",
         "etcd_pod_management_policy would change spec.podManagementPolicy of StatefulSet {ns}/etcd "
         "(Parallel -> OrderedReady), which Kubernetes does not allow updating. Delete only the StatefulSet "
         "(kubectl delete statefulset -n {ns} etcd --cascade=orphan: its pods and claims stay)",
         "etcd_name would change spec.selector of StatefulSet {ns}/etcd",
         "etcd_volume_claim_template, etcd_storage_size and etcd_storage_class would change "
         "spec.volumeClaimTemplates of StatefulSet {ns}/etcd (data labels"],
    ),
    "pxc": (
        foreign_set("pxc", "datadir", "10Gi", "OrderedReady"),
        {"pxc_storage_size": "20Gi"},
        ["pxc_name would change spec.podManagementPolicy of StatefulSet {ns}/pxc (OrderedReady -> Parallel), which "
         "Kubernetes does not allow updating. The role always writes Parallel",
         "pxc_volume_claim_template, pxc_storage_size and pxc_storage_class would change spec.volumeClaimTemplates "
         "of StatefulSet {ns}/pxc (datadir labels {{}} -> ",
         "datadir storage 10Gi -> 20Gi), which Kubernetes does not allow updating. Keep the values the set was made "
         "with. To change the volumes themselves, change each claim"],
    ),
    "mysql_replication": (
        foreign_set("mysql", "data", "10Gi", "OrderedReady"),
        {"mysql_replication_volume_claim_template": "mysql-data"},
        ["mysql_replication_name would change spec.serviceName of StatefulSet {ns}/mysql (mysql-headless -> mysql)",
         "spec.volumeClaimTemplates of StatefulSet {ns}/mysql (claim template data would go; claim template "
         "mysql-data would be added)"],
    ),
    "wordpress": (
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "wordpress"},
         "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "wordpress"}},
                  "template": {"metadata": {"labels": {"app": "wordpress"}},
                               "spec": {"containers": [{"name": "wordpress", "image": "registry.example/none:1"}]}}}},
        {},
        ["wordpress_name would change spec.selector of Deployment {ns}/wordpress",
         "delete the Deployment (kubectl delete deployment -n {ns} wordpress; its pods are replaced, its volumes "
         "stay)"],
    ),
}


@pytest.mark.parametrize("role", sorted(CASES))
def test_a_change_kubernetes_would_refuse_is_refused_before_any_write(cluster: Cluster, namespace: str, role: str,
                                                                      tmp_path: Path):
    existing, given, expected = CASES[role]
    cluster.apply(json.dumps(existing), namespace=namespace)
    before = cluster.get_json("-n", namespace, existing["kind"].lower(), existing["metadata"]["name"])
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "connection": "local",
                                 "roles": [{"role": f"kubess.stateful.{role}"}]}]), encoding="utf-8")
    extra = {f"{role}_namespace": namespace, "ansible_python_interpreter": sys.executable, **given}
    since = time.time()
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-e", json.dumps(extra),
         str(play)],
        cwd=REPO, env={**cluster.env, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}, capture_output=True, text=True,
        timeout=600, check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "Nothing was changed." in output, output[-3000:]
    for message in expected:
        assert message.format(ns=namespace) in output, (message, output[-4000:])
    with open(cluster.audit_log, encoding="utf-8") as log:
        assert writes(log, since) == []
    # Its spec as it was (the controller may have written its status meanwhile; a change of spec bumps generation).
    after = cluster.get_json("-n", namespace, existing["kind"].lower(), existing["metadata"]["name"])
    assert (after["metadata"]["generation"], after["spec"]) == (before["metadata"]["generation"], before["spec"])
