"""The module tls_certificates, run in-process through main() with patch_module_args, as a task runs it.

exit_json and fail_json are the real ones: the result is read back from the JSON the module prints, so what Ansible
does to a result (hiding the values of no_log options) is part of what is tested. Every certificate is parsed with
cryptography and checked against the CA with cryptography's own path verifier.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timedelta, timezone

import pytest
from ansible.module_utils.testing import patch_module_args
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from ansible_collections.kubess.stateful.plugins.module_utils import _certificates
from ansible_collections.kubess.stateful.plugins.modules import tls_certificates as module

CA_NAME = "db/etcd etcd CA"
SHARED_DNS = ["etcd-client.db.svc.cluster.local", "etcd-client.db.svc", "localhost"]


def members(count=3):
    return [{"name": "etcd-{0}".format(i), "dns": ["etcd-{0}.etcd.db.svc.cluster.local".format(i)] + SHARED_DNS,
             "ips": ["127.0.0.1"]} for i in range(count)]


def client():
    return {"name": "etcd-client", "usages": ["clientAuth"]}


@pytest.fixture
def run(capsys):
    def _run(args):
        args = dict(args, _ansible_no_log=True)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as done:
                module.main()
        result = json.loads(capsys.readouterr().out)
        return ("fail" if done.value.code else "exit"), result

    return _run


def stored(result, certificates):
    """The arguments of the next run: the same certificates, with what the last run returned as stored."""
    by_name = {entry["name"]: entry for entry in result["certificates"]}
    return {
        "ca_common_name": CA_NAME,
        "ca": {"crt": result["ca"]["crt"], "key": result["ca"]["key"]},
        "certificates": [dict(cert, crt=by_name[cert["name"]]["crt"], key=by_name[cert["name"]]["key"])
                         for cert in certificates],
    }


def load(pem):
    return x509.load_pem_x509_certificate(pem.encode())


def ext(cert, oid):
    return cert.extensions.get_extension_for_oid(oid)


def verifier(ca_pem):
    return PolicyBuilder().store(Store([load(ca_pem)]))


def assert_member(entry, ca_pem, dns, ips):
    cert = load(entry["crt"])
    # A server at each of its names, and a client, to a verifier that trusts the CA alone.
    for name in dns:
        verifier(ca_pem).build_server_verifier(x509.DNSName(name)).verify(cert, [])
    for ip in ips:
        verifier(ca_pem).build_server_verifier(x509.IPAddress(ipaddress.ip_address(ip))).verify(cert, [])
    verifier(ca_pem).build_client_verifier().verify(cert, [])
    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert san.get_values_for_type(x509.DNSName) == dns
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ips
    assert list(ext(cert, ExtensionOID.EXTENDED_KEY_USAGE).value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ext(cert, ExtensionOID.BASIC_CONSTRAINTS).value.ca is False
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == entry["name"]
    assert _certificates.renewal_reason(entry["crt"], key=entry["key"]) == ""  # the key returned is the certificate's


def test_the_first_run_makes_the_ca_and_every_certificate(run):
    outcome, result = run({"ca_common_name": CA_NAME, "certificates": members() + [client()]})
    assert outcome == "exit", result
    assert result["changed"] is False
    ca = load(result["ca"]["crt"])
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CA_NAME
    constraints = ext(ca, ExtensionOID.BASIC_CONSTRAINTS)
    assert constraints.critical and constraints.value.ca is True
    assert _certificates.renewal_reason(result["ca"]["crt"], key=result["ca"]["key"]) == ""
    assert [e["name"] for e in result["certificates"]] == ["etcd-0", "etcd-1", "etcd-2", "etcd-client"]
    for entry, spec in zip(result["certificates"][:3], members()):
        assert_member(entry, result["ca"]["crt"], spec["dns"], spec["ips"])
    client_cert = load(result["certificates"][3]["crt"])
    client_cert.verify_directly_issued_by(ca)
    assert list(ext(client_cert, ExtensionOID.EXTENDED_KEY_USAGE).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        ext(client_cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert result["ca"]["reason"] == "missing" and {e["reason"] for e in result["certificates"]} == {"missing"}
    assert result["issued"] == ["CA: missing", "etcd-0: missing", "etcd-1: missing", "etcd-2: missing",
                                "etcd-client: missing"]
    # Every key is its own.
    assert len({result["ca"]["key"]} | {e["key"] for e in result["certificates"]}) == 5
    # The days asked.
    now = datetime.now(timezone.utc)
    assert timedelta(days=3649) < ca.not_valid_after_utc - now <= timedelta(days=3650)
    assert timedelta(days=364) < client_cert.not_valid_after_utc - now <= timedelta(days=365)


def test_a_second_run_with_what_the_first_returned_keeps_everything(run):
    certificates = members() + [client()]
    _outcome, first = run({"ca_common_name": CA_NAME, "certificates": certificates})
    outcome, second = run(stored(first, certificates))
    assert outcome == "exit", second
    assert second["issued"] == []
    # Byte for byte: the kept keys come back as given, not as Ansible's no_log placeholder.
    assert second["ca"] == dict(first["ca"], reason="")
    assert second["certificates"] == [dict(e, reason="") for e in first["certificates"]]
    assert "BEGIN PRIVATE KEY" in second["ca"]["key"]
    # The arguments echoed in the result hold no key.
    assert "PRIVATE KEY" not in json.dumps(second["invocation"])


def test_a_certificate_whose_names_changed_is_issued_again_alone(run):
    certificates = members() + [client()]
    _outcome, first = run({"ca_common_name": CA_NAME, "certificates": certificates})
    args = stored(first, certificates)
    dns = args["certificates"][1]["dns"] + ["etcd.example.com"]
    args["certificates"][1]["dns"] = dns
    outcome, second = run(args)
    assert outcome == "exit", second
    assert second["issued"] == ["etcd-1: names"]
    assert [e["reason"] for e in second["certificates"]] == ["", "names", "", ""]
    assert second["ca"] == dict(first["ca"], reason="")
    for index in (0, 2, 3):
        assert second["certificates"][index] == dict(first["certificates"][index], reason="")
    renewed = second["certificates"][1]
    assert renewed["crt"] != first["certificates"][1]["crt"] and renewed["key"] != first["certificates"][1]["key"]
    assert_member(renewed, first["ca"]["crt"], dns, ["127.0.0.1"])


def test_a_ca_with_a_wrong_key_is_made_again_with_every_certificate(run):
    certificates = members(2) + [client()]
    _outcome, first = run({"ca_common_name": CA_NAME, "certificates": certificates})
    args = stored(first, certificates)
    args["ca"]["key"] = first["certificates"][0]["key"]  # a valid key, not the CA's
    outcome, second = run(args)
    assert outcome == "exit", second
    assert second["ca"]["reason"] == "key"
    assert second["ca"]["crt"] != first["ca"]["crt"] and second["ca"]["key"] not in (first["ca"]["key"], args["ca"]["key"])
    assert second["issued"] == ["CA: key", "etcd-0: issuer", "etcd-1: issuer", "etcd-client: issuer"]
    for old, new in zip(first["certificates"], second["certificates"]):
        assert new["reason"] == "issuer" and new["crt"] != old["crt"] and new["key"] != old["key"]
        load(new["crt"]).verify_directly_issued_by(load(second["ca"]["crt"]))
    assert_member(second["certificates"][0], second["ca"]["crt"], certificates[0]["dns"], certificates[0]["ips"])


def test_an_expiring_certificate_is_issued_again(run):
    certificates = members(2)
    _outcome, first = run({"ca_common_name": CA_NAME, "certificates": certificates})
    args = stored(first, certificates)
    # etcd-0 as a run of 355 days ago left it: 10 days to go, within renew_days.
    key = _certificates.make_key()
    args["certificates"][0]["key"] = key
    args["certificates"][0]["crt"] = _certificates.issue_certificate(
        first["ca"]["crt"], first["ca"]["key"], key, "etcd-0", certificates[0]["dns"], certificates[0]["ips"],
        ["serverAuth", "clientAuth"], 365, now=datetime.now(timezone.utc) - timedelta(days=355))
    outcome, second = run(args)
    assert outcome == "exit", second
    assert second["issued"] == ["etcd-0: expiring"]
    renewed = load(second["certificates"][0]["crt"])
    assert renewed.not_valid_after_utc - datetime.now(timezone.utc) > timedelta(days=364)
    assert second["certificates"][1] == dict(first["certificates"][1], reason="")
    # With a window shorter than the 10 days it has left, it is kept.
    outcome, third = run(dict(args, renew_days=5))
    assert outcome == "exit" and third["issued"] == [], third


def test_check_mode_returns_what_a_run_would(run):
    outcome, result = run({"ca_common_name": CA_NAME, "certificates": members(1), "_ansible_check_mode": True})
    assert outcome == "exit", result
    assert result["issued"] == ["CA: missing", "etcd-0: missing"]
    load(result["certificates"][0]["crt"]).verify_directly_issued_by(load(result["ca"]["crt"]))


def test_the_common_name_defaults_to_the_name_and_can_be_given(run):
    certificates = [{"name": "a"}, {"name": "b", "common_name": "root"}]
    outcome, result = run({"ca_common_name": CA_NAME, "certificates": certificates})
    assert outcome == "exit", result
    names = [load(e["crt"]).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for e in result["certificates"]]
    assert names == ["a", "root"]


@pytest.mark.parametrize("change, words", [
    ({"cert_days": 30, "renew_days": 30}, "cert_days (30) must be more than renew_days (30)"),
    ({"ca_days": 365, "cert_days": 365}, "ca_days (365) must be more than cert_days (365)"),
    ({"ca_days": 0}, "ca_days must be a positive number of days, got 0"),
    ({"cert_days": -1}, "cert_days must be a positive number of days, got -1"),
    ({"renew_days": -1}, "renew_days must be 0 or more, got -1"),
    ({"ca_common_name": "x" * 65}, "ca_common_name must be 1 to 64 characters"),
    ({"ca_common_name": " "}, "ca_common_name must be 1 to 64 characters"),
    ({"certificates": [{"name": "a"}, {"name": "b"}, {"name": "a"}]},
     "certificates[2].name 'a' is the name of certificates[0] too"),
    ({"certificates": [{"name": ""}]}, "certificates[0].name must not be empty"),
    ({"certificates": [{"name": "a", "ips": ["127.0.0.1", "300.0.0.1"]}]}, "certificates[0] (a).ips: '300.0.0.1'"),
    ({"certificates": [{"name": "a", "dns": ["bücher.example"]}]}, "certificates[0] (a).dns: 'bücher.example' is not ASCII"),
    ({"certificates": [{"name": "a", "dns": [""]}]}, "certificates[0] (a).dns holds an empty name"),
    ({"certificates": [{"name": "a", "usages": []}]}, "certificates[0] (a).usages must name at least one"),
    ({"certificates": [{"name": "a", "common_name": "x" * 65}]}, "certificates[0] (a).common_name must be 1 to 64"),
    ({"certificates": [{"name": "a", "usages": ["codeSigning"]}]}, "usages"),
    ({"certificates": [{"dns": ["a"]}]}, "name"),
    ({"ca_days": "ten years"}, "ca_days"),
])
def test_bad_options_fail_naming_the_option(run, change, words):
    args = {"ca_common_name": CA_NAME, "certificates": members(1)}
    args.update(change)
    outcome, result = run(args)
    assert outcome == "fail", result
    assert words in result["msg"]
    assert "certificates" not in result or not isinstance(result["certificates"], list)


def test_without_cryptography_it_says_what_to_install(run, monkeypatch):
    monkeypatch.setattr(module, "HAS_CRYPTOGRAPHY", False)
    outcome, result = run({"ca_common_name": CA_NAME, "certificates": members(1)})
    assert outcome == "fail"
    assert "cryptography" in result["msg"] and "required" in result["msg"]
