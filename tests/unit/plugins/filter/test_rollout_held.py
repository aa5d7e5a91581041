"""A StatefulSet manifest held at its partition when its pod template changes (plugins/filter/rollout_held.py)."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.rollout_held import ANNOTATION, rollout_held, template_hash

SET = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "etcd", "labels": {"a": "b"}},
       "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"},
                "template": {"metadata": {"labels": {"app": "etcd"}},
                             "spec": {"containers": [{"name": "etcd", "image": "etcd:v3.6.16"}]}}}}


def applied(manifest, replicas=3):
    """The set as the cluster holds it after ``manifest`` was applied."""
    return dict(copy.deepcopy(manifest), spec=dict(manifest["spec"], replicas=replicas), status={"replicas": replicas})


def with_image(image):
    out = copy.deepcopy(SET)
    out["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return out


def partition(manifest):
    return manifest["spec"]["updateStrategy"].get("rollingUpdate", {}).get("partition")


def test_a_new_set_is_marked_not_held():
    out = rollout_held(SET, {})
    assert out["metadata"]["annotations"] == {ANNOTATION: template_hash(SET)}
    assert partition(out) is None
    assert "annotations" not in SET["metadata"]  # the input is left as it is


def test_the_same_template_is_not_held_and_the_manifest_does_not_change_between_runs():
    first = rollout_held(SET, {})
    assert rollout_held(SET, applied(first)) == first


def test_a_changed_template_is_held_at_the_existing_replicas():
    first = rollout_held(SET, {})
    out = rollout_held(with_image("etcd:v3.6.17"), applied(first, replicas=5))
    assert partition(out) == 5
    assert out["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert out["metadata"]["annotations"][ANNOTATION] != first["metadata"]["annotations"][ANNOTATION]


def test_a_rollout_under_way_keeps_its_partition():
    first = rollout_held(SET, {})
    stopped = applied(first)
    stopped["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    assert partition(rollout_held(SET, stopped)) == 2                        # the same template: kept where it is
    assert partition(rollout_held(with_image("etcd:v3.6.17"), stopped)) == 3  # another one: every pod held


def test_a_set_made_without_the_annotation_is_held_once():
    assert partition(rollout_held(SET, applied(SET))) == 3


def test_a_set_without_pods_is_not_held():
    first = rollout_held(SET, {})
    assert partition(rollout_held(with_image("etcd:v3.6.17"), applied(first, replicas=0))) is None


def test_only_the_template_counts():
    first = rollout_held(SET, {})
    scaled = copy.deepcopy(SET)
    scaled["spec"]["replicas"] = 5
    scaled["metadata"]["labels"]["c"] = "d"
    assert partition(rollout_held(scaled, applied(first))) is None


def test_other_objects_pass_as_they_are():
    service = {"kind": "Service", "metadata": {"name": "etcd"}}
    assert rollout_held(service, {"spec": {"replicas": 3}}) is service


def test_bad_input_is_refused():
    with pytest.raises(AnsibleFilterError, match="a manifest"):
        rollout_held([], {})
    on_delete = with_image("etcd:v3.6.17")
    on_delete["spec"]["updateStrategy"] = {"type": "OnDelete"}
    with pytest.raises(AnsibleFilterError, match="not RollingUpdate"):
        rollout_held(on_delete, applied(rollout_held(SET, {})))
