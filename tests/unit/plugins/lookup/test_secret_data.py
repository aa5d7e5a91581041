"""The secret_data lookup decodes what a Secret holds, and names a bad key without its value
(plugins/lookup/secret_data.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleError

from ansible_collections.kubess.stateful.plugins.lookup.secret_data import decoded


def test_values_are_decoded_and_a_missing_secret_is_empty():
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"ca.crt": "Q0VSVA==", "empty": ""}}
    assert decoded(secret) == {"ca.crt": "CERT", "empty": ""}
    assert decoded(None) == {}
    assert decoded({"kind": "Secret", "metadata": {"name": "s"}}) == {}


def test_a_value_that_is_not_base64_text_is_named_by_key_not_shown():
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"ca.key": "not*base64"}}
    with pytest.raises(AnsibleError) as err:
        decoded(secret)
    assert "'ca.key'" in str(err.value) and "'s'" in str(err.value) and "not*base64" not in str(err.value)
