"""The Secrets a role writes are only those whose data changes (plugins/filter/secret_manifests.py)."""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.secret_manifests import secret_manifests

NAMES = {"ca": "etcd-tls-ca", "client": "etcd-tls-client"}
WANTED = {"ca": {"ca.crt": "CERT", "ca.key": "KEY"}, "client": {"tls.crt": "C", "tls.key": "K"}}


def test_every_secret_is_written_when_none_is_stored():
    out = secret_manifests(WANTED, {}, NAMES, "db", {"app": "etcd"}, {"client": "kubernetes.io/tls"})
    assert [m["metadata"]["name"] for m in out] == ["etcd-tls-ca", "etcd-tls-client"]
    assert [m["type"] for m in out] == ["Opaque", "kubernetes.io/tls"]
    assert out[0]["metadata"] == {"name": "etcd-tls-ca", "namespace": "db", "labels": {"app": "etcd"}}
    assert {k: base64.b64decode(v).decode() for k, v in out[0]["data"].items()} == WANTED["ca"]


def test_a_secret_holding_what_it_must_is_not_written():
    stored = {"ca": dict(WANTED["ca"]), "client": {"tls.crt": "old", "tls.key": "K"}}
    out = secret_manifests(WANTED, stored, NAMES, "db")
    assert [m["metadata"]["name"] for m in out] == ["etcd-tls-client"]
    assert secret_manifests(WANTED, {"ca": WANTED["ca"], "client": WANTED["client"]}, NAMES, "db") == []


def test_an_extra_key_in_the_stored_secret_is_a_difference():
    stored = {"ca": {**WANTED["ca"], "stale": "x"}, "client": WANTED["client"]}
    assert [m["metadata"]["name"] for m in secret_manifests(WANTED, stored, NAMES, "db")] == ["etcd-tls-ca"]


@pytest.mark.parametrize("args, message", [
    (({"x": {}}, {}, NAMES, "db"), "no Secret name for part 'x'"),
    ((WANTED, {}, NAMES, ""), "needs the namespace"),
    ((WANTED, [], NAMES, "db"), "takes stored as a mapping"),
    (({"ca": "text"}, {}, NAMES, "db"), "the data of part 'ca' must be a mapping"),
])
def test_bad_input_is_refused_naming_what(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        secret_manifests(*args)
