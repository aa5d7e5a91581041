"""Every role's writes (module_defaults of kubernetes.core.k8s) report a change only for what the role wrote: a
controller writing status or its managedFields entry between the module's read and its apply is not a change."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import diff_objects
from role_vars import render

ROLES = ("etcd", "pxc", "mysql_replication", "wordpress", "pv_provisioning")

LIVE = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {
        "name": "wordpress", "namespace": "wp", "resourceVersion": "100", "generation": 1,
        "managedFields": [
            {"manager": "kubess-wordpress", "operation": "Apply", "time": "2026-12-03T09:00:00Z"},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "time": "2026-12-03T09:00:00Z"},
        ],
    },
    "spec": {"minReplicas": 5, "maxReplicas": 10},
    "status": {"currentReplicas": 5, "desiredReplicas": 5,
               "currentMetrics": [{"resource": {"current": {"averageUtilization": 3}}}]},
}


def controller_wrote_status(live: dict) -> dict:
    after = copy.deepcopy(live)
    after["metadata"]["resourceVersion"] = "101"
    after["metadata"]["managedFields"][1]["time"] = "2026-12-03T09:00:15Z"
    after["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] = 41
    after["status"]["desiredReplicas"] = 6
    return after


@pytest.fixture(scope="module", params=ROLES)
def hidden(request):
    return render(request.param, f"{request.param}__k8s_apply")["hidden_fields"]


def test_status_written_by_a_controller_is_not_a_change(hidden):
    assert diff_objects(LIVE, controller_wrote_status(LIVE), hidden)[0]


@pytest.mark.parametrize("field, value", [(("spec", "maxReplicas"), 12), (("metadata", "labels"), {"a": "b"})])
def test_what_the_role_writes_is_a_change_even_with_status_churn(hidden, field, value):
    after = controller_wrote_status(LIVE)
    after[field[0]][field[1]] = value
    match, diffs = diff_objects(LIVE, after, hidden)
    assert not match
    assert field[1] in diffs["after"][field[0]]
