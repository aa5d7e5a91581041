"""The immutable fields of an existing StatefulSet or Deployment that the input would change
(plugins/filter/immutable_problems.py)."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.immutable_problems import immutable_problems

SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": "etcd"}}
CLAIM = {"metadata": {"name": "data", "labels": {"app.kubernetes.io/name": "etcd"}},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "kubess-nfs",
                  "resources": {"requests": {"storage": "1Gi"}}}}
DESIRED = {"serviceName": "etcd", "podManagementPolicy": "Parallel", "selector": SELECTOR,
           "volumeClaimTemplates": [CLAIM]}
BLAME = {"serviceName": "etcd_name", "podManagementPolicy": "etcd_pod_management_policy", "selector": "etcd_name",
         "volumeClaimTemplates": "etcd_volume_claim_template, etcd_storage_size and etcd_storage_class"}


def stored():
    """The set as the API server returns it: defaults filled in, quantities canonical, a status on each template."""
    claim = copy.deepcopy(CLAIM)
    claim["apiVersion"], claim["kind"] = "v1", "PersistentVolumeClaim"
    claim["spec"]["volumeMode"] = "Filesystem"
    claim["status"] = {"phase": "Pending"}
    claim["metadata"]["creationTimestamp"] = None
    return {"kind": "StatefulSet", "metadata": {"name": "etcd", "namespace": "kubess"},
            "spec": {"serviceName": "etcd", "podManagementPolicy": "Parallel", "selector": copy.deepcopy(SELECTOR),
                     "replicas": 3, "volumeClaimTemplates": [claim]}}


def test_no_set_nothing_to_compare():
    assert immutable_problems({}, DESIRED, BLAME) == []


def test_the_stored_form_of_the_same_spec_is_no_change():
    assert immutable_problems(stored(), DESIRED, BLAME) == []
    # The same size written another way is the same quantity.
    desired = copy.deepcopy(DESIRED)
    desired["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "1024Mi"
    assert immutable_problems(stored(), desired, BLAME) == []


def test_a_larger_volume_names_the_variables_the_change_and_what_to_do():
    desired = copy.deepcopy(DESIRED)
    desired["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"
    [problem] = immutable_problems(stored(), desired, BLAME)
    assert problem.startswith("etcd_volume_claim_template, etcd_storage_size and etcd_storage_class would change "
                              "spec.volumeClaimTemplates of StatefulSet kubess/etcd (data storage 1Gi -> 2Gi)")
    assert "kubectl delete statefulset -n kubess etcd --cascade=orphan" in problem


@pytest.mark.parametrize("change, expected", [
    (lambda c: c["spec"].__setitem__("storageClassName", "fast"), "data storageClassName kubess-nfs -> fast"),
    (lambda c: c["spec"].pop("storageClassName"), "data storageClassName kubess-nfs -> ''"),
    (lambda c: c["spec"].__setitem__("accessModes", ["ReadWriteMany"]),
     "data accessModes ['ReadWriteOnce'] -> ['ReadWriteMany']"),
    (lambda c: c["metadata"]["labels"].__setitem__("tier", "db"), "data labels"),
    (lambda c: c["metadata"].__setitem__("name", "datadir"),
     "claim template data would go; claim template datadir would be added"),
])
def test_every_part_of_a_claim_template_counts(change, expected):
    desired = copy.deepcopy(DESIRED)
    change(desired["volumeClaimTemplates"][0])
    [problem] = immutable_problems(stored(), desired, BLAME)
    assert expected in problem


def test_pod_management_policy_absent_means_ordered_ready():
    existing = stored()
    del existing["spec"]["podManagementPolicy"]
    [problem] = immutable_problems(existing, DESIRED, BLAME)
    assert problem.startswith("etcd_pod_management_policy would change spec.podManagementPolicy of StatefulSet "
                              "kubess/etcd (OrderedReady -> Parallel)")
    assert "run again to make it anew with Parallel, or keep OrderedReady" in problem
    assert immutable_problems(existing, dict(DESIRED, podManagementPolicy="OrderedReady"), BLAME) == []


def test_a_field_the_role_always_writes_says_so():
    existing = stored()
    existing["spec"]["podManagementPolicy"] = "OrderedReady"
    [problem] = immutable_problems(existing, DESIRED, dict(BLAME, podManagementPolicy="pxc_name"),
                                   ["podManagementPolicy"])
    assert "(OrderedReady -> Parallel)" in problem and "The role always writes Parallel" in problem
    assert "keep OrderedReady" not in problem


def test_a_set_made_by_something_else_names_its_service_and_selector():
    existing = stored()
    existing["spec"]["serviceName"] = "etcd-headless"
    existing["spec"]["selector"] = {"matchLabels": {"app": "etcd"}}
    problems = immutable_problems(existing, DESIRED, BLAME)
    assert [p.split(" would change ")[0] for p in problems] == ["etcd_name", "etcd_name"]
    assert "spec.serviceName of StatefulSet kubess/etcd (etcd-headless -> etcd)" in problems[0]
    assert "spec.selector" in problems[1] and "choose another name" in problems[1]


def test_a_field_without_a_variable_is_not_compared():
    existing = stored()
    existing["spec"]["serviceName"] = "other"
    assert immutable_problems(existing, DESIRED, {"podManagementPolicy": "x"}) == []


def test_a_deployment_has_only_its_selector():
    existing = {"kind": "Deployment", "metadata": {"name": "wordpress", "namespace": "web"},
                "spec": {"selector": {"matchLabels": {"app": "wordpress"}}}}
    desired = {"selector": {"matchLabels": {"app.kubernetes.io/name": "wordpress"}}}
    [problem] = immutable_problems(existing, desired, {"selector": "wordpress_name"})
    assert problem.startswith("wordpress_name would change spec.selector of Deployment web/wordpress")
    assert "kubectl delete deployment -n web wordpress" in problem
    with pytest.raises(AnsibleFilterError, match="serviceName is not an immutable field of a Deployment"):
        immutable_problems(existing, desired, {"serviceName": "wordpress_name"})


def test_bad_arguments_are_refused():
    with pytest.raises(AnsibleFilterError, match="all mappings"):
        immutable_problems(stored(), [], BLAME)
    with pytest.raises(AnsibleFilterError, match="not ConfigMap"):
        immutable_problems({"kind": "ConfigMap", "metadata": {}}, {}, {})
