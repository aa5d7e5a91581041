"""The one writer of the roles' container environments (plugins/filter/container_env.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.container_env import container_env

EXPECTED = [
    {"name": "KUBESS_PORT", "value": "3306"},
    {"name": "KUBESS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-secrets", "key": "root-password"}}},
    {"name": "KUBESS_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
]


def test_a_list_of_specs_in_its_order():
    specs = [{"name": "KUBESS_PORT", "value": 3306}, {"name": "KUBESS_PASSWORD", "secret": "root-password"},
             {"name": "KUBESS_POD", "field": "metadata.name"}]
    assert container_env(specs, "db-secrets") == EXPECTED


def test_a_mapping_of_names_to_values_secrets_and_fields():
    specs = {"KUBESS_PORT": 3306, "KUBESS_PASSWORD": {"secret": "root-password"}, "KUBESS_POD": {"field": "metadata.name"}}
    assert container_env(specs, "db-secrets") == EXPECTED


@pytest.mark.parametrize("specs, fragment", [
    ([{"name": "A", "value": "1", "secret": "k"}], "A needs exactly one of value, secret or field"),
    ({"A": {"secrets": "k"}}, "A needs exactly one of value, secret or field"),
    ([{"value": "1"}], "each entry of a list needs a name"),
    ({"A": {"secret": "k"}}, "A is read from a Secret, but no Secret was named"),
    ("A=1", "takes a list or a mapping, got str"),
])
def test_a_spec_that_says_too_much_or_too_little_is_refused_naming_the_variable(specs, fragment):
    with pytest.raises(AnsibleFilterError, match=fragment):
        container_env(specs)
