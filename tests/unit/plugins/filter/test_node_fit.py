"""Which nodes a role's pods may run on (plugins/filter/node_fit.py), as the scheduler's filters decide it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.node_fit import node_fit, pod_anti_affinity, tolerates


def node(name, labels=None, taints=None, unschedulable=False, zone="a"):
    spec = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": zone, **(labels or {})}},
            "spec": spec}


NOSCHED = {"key": "kubess.io/real", "value": "yes", "effect": "NoSchedule"}
NODES = [node("n1", {"kubess.io/etcd": "true"}, zone="a"), node("n2", {"kubess.io/etcd": "true"}, zone="b"),
         node("n3", zone="b"), node("real", {"kubess.io/etcd": "true"}, [NOSCHED], zone="c")]


def test_untainted_nodes_fit_any_pod():
    out = node_fit(NODES)
    assert out["nodes"] == ["n1", "n2", "n3"]
    assert out["left_out"] == ["real has the taint kubess.io/real=yes:NoSchedule (not tolerated)"]
    assert out["domains"] == ["n1", "n2", "n3"]


def test_node_selector_and_tolerations():
    out = node_fit(NODES, {"kubess.io/etcd": "true"}, [{"key": "kubess.io/real", "operator": "Exists"}])
    assert out["nodes"] == ["n1", "n2", "real"]
    assert out["left_out"] == ["n3 lacks the label kubess.io/etcd=true"]


def test_nodes_to_be_labelled_count_as_labelled():
    assert node_fit(NODES, {"x": "1"}, [], assume_labelled=["n3"])["nodes"] == ["n3"]


def test_topology_domains_count_distinct_values():
    assert node_fit(NODES, {}, [], "zone")["domains"] == ["a", "b"]


def test_prefer_no_schedule_does_not_block_and_cordoned_nodes_do():
    soft = node("soft", taints=[{"key": "k", "effect": "PreferNoSchedule"}])
    cordoned = node("cordoned", unschedulable=True)
    out = node_fit([soft, cordoned])
    assert out["nodes"] == ["soft"]
    assert out["left_out"] == ["cordoned has the taint node.kubernetes.io/unschedulable:NoSchedule (not tolerated)"]


@pytest.mark.parametrize(
    "toleration, ok",
    [
        ({"key": "kubess.io/real", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}, True),
        ({"key": "kubess.io/real", "value": "yes"}, True),
        ({"key": "kubess.io/real", "value": "no"}, False),
        ({"key": "kubess.io/real", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"operator": "Exists"}, True),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_tolerates(toleration, ok):
    assert tolerates(toleration, NOSCHED) is ok


def test_refuses_what_is_not_a_node_list():
    with pytest.raises(AnsibleFilterError):
        node_fit({"items": []})


def test_pod_anti_affinity_required_and_preferred():
    sel = {"app": "x"}
    term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": sel}}
    assert pod_anti_affinity(sel) == {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    assert pod_anti_affinity(sel, "preferred") == {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}
    with pytest.raises(AnsibleFilterError):
        pod_anti_affinity(sel, "sometimes")
