"""The k8s_objects lookup never hands back a Secret's values (plugins/lookup/k8s_objects.py)."""

from __future__ import annotations

from ansible_collections.kubess.stateful.plugins.lookup.k8s_objects import _without_values


def test_secret_values_are_emptied_and_keys_kept():
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"root-password": "c2VjcmV0"},
              "stringData": {"x": "plain"}}
    assert _without_values(secret) == {"kind": "Secret", "metadata": {"name": "s"}, "data": {"root-password": ""}}
    assert secret["data"] == {"root-password": "c2VjcmV0"}


def test_other_objects_are_returned_as_they_are():
    cm = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert _without_values(cm) is cm
