"""The one chooser of secret values: given, else stored, else generated (plugins/filter/secret_values.py)."""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.secret_values import secret_values


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_given_stored_generated():
    out = secret_values({"a": b64("stored-a"), "b": b64("stored-b")}, {"a": "", "b": "given-b", "c": ""}, 20)
    assert out["values"]["a"] == "stored-a"
    assert out["values"]["b"] == "given-b"
    assert len(out["values"]["c"]) == 20 and out["values"]["c"].isalnum()
    assert out["differing"] == ["b"]
    assert out["stored"] is False


def test_stored_when_the_secret_holds_every_value():
    assert secret_values({"a": b64("x"), "b": b64("y")}, {"a": "", "b": "y"})["stored"] is True
    assert secret_values({"a": b64("x")}, {"a": "", "b": "y"})["stored"] is False


def test_given_equal_to_stored_is_not_differing_and_generation_is_random():
    assert secret_values({"a": b64("x")}, {"a": "x"})["differing"] == []
    first, second = (secret_values({}, {"a": ""})["values"]["a"] for _run in range(2))
    assert first != second and len(first) == 32


@pytest.mark.parametrize("stored, given, length", [({}, ["a"], 8), ({}, {"a": ""}, 0), ({"a": "%%%"}, {"a": ""}, 8)])
def test_refuses_bad_input_without_printing_values(stored, given, length):
    with pytest.raises(AnsibleFilterError) as err:
        secret_values(stored, given, length)
    assert "%%%" not in str(err.value)
