"""Issuing in memory (plugins/module_utils/_certificates.py): keys, the CA, certificates, and renew() putting them together.

The decision to keep or issue again has its own tests through the filter (tests/unit/plugins/filter/test_cert_renewal.py).
Every certificate is parsed back with cryptography and checked for what it must carry.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from ansible_collections.kubess.stateful.plugins.module_utils import _certificates as c

DNS = ["etcd-0.etcd.db.svc.cluster.local", "localhost"]
IPS = ["127.0.0.1", "::1"]


def load(pem):
    return x509.load_pem_x509_certificate(pem.encode())


def ext(cert, oid):
    return cert.extensions.get_extension_for_oid(oid)


def not_before(cert):
    return cert.not_valid_before_utc


def not_after(cert):
    return cert.not_valid_after_utc


@pytest.fixture(scope="module")
def ca():
    key = c.make_key()
    return c.make_ca(key, "db/etcd etcd CA", 3650), key


def test_a_key_is_ec_p256_pkcs8_unencrypted():
    pem = c.make_key()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, not "EC PRIVATE KEY", not "ENCRYPTED"
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert c.make_key() != pem


def test_the_ca_is_self_signed_with_its_constraints(ca):
    crt, key = ca
    cert = load(crt)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "db/etcd etcd CA"
    cert.verify_directly_issued_by(cert)
    private = serialization.load_pem_private_key(key.encode(), password=None)
    assert private.public_key().public_numbers() == cert.public_key().public_numbers()
    constraints = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert constraints.critical and constraints.value.ca is True and constraints.value.path_length is None
    usage = ext(cert, ExtensionOID.KEY_USAGE)
    assert usage.critical
    assert (usage.value.key_cert_sign, usage.value.crl_sign, usage.value.digital_signature) == (True, True, True)
    assert not usage.value.key_encipherment
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)


def test_the_ca_lasts_the_days_asked_from_a_little_before_now():
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cert = load(c.make_ca(c.make_key(), "CA", 100, now=now))
    assert not_after(cert) - now == timedelta(days=100)
    assert now - not_before(cert) == c.CLOCK_SKEW


def test_a_certificate_carries_its_names_usages_and_constraints(ca):
    ca_crt, ca_key = ca
    key = c.make_key()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cert = load(c.issue_certificate(ca_crt, ca_key, key, "etcd-0", DNS, IPS, ["serverAuth", "clientAuth"], 365, now=now))
    authority = load(ca_crt)
    cert.verify_directly_issued_by(authority)
    assert cert.issuer == authority.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "etcd-0"
    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert san.get_values_for_type(x509.DNSName) == DNS
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(i) for i in IPS]
    assert ext(cert, ExtensionOID.BASIC_CONSTRAINTS).value.ca is False
    usage = ext(cert, ExtensionOID.KEY_USAGE).value
    assert (usage.digital_signature, usage.key_encipherment, usage.key_cert_sign) == (True, True, False)
    assert list(ext(cert, ExtensionOID.EXTENDED_KEY_USAGE).value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value.key_identifier == \
        ext(authority, ExtensionOID.SUBJECT_KEY_IDENTIFIER).value.digest
    assert not_after(cert) - now == timedelta(days=365) and now - not_before(cert) == c.CLOCK_SKEW
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    # The certificate is for the key given.
    assert c.renewal_reason(cert.public_bytes(serialization.Encoding.PEM).decode(), DNS, IPS, 30, ca_crt, key) == ""


def test_a_client_certificate_without_names_has_no_san_and_one_usage(ca):
    cert = load(c.issue_certificate(ca[0], ca[1], c.make_key(), "etcd-client", [], [], ["clientAuth"], 365))
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert list(ext(cert, ExtensionOID.EXTENDED_KEY_USAGE).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_serial_numbers_are_random(ca):
    key = c.make_key()
    serials = {load(c.issue_certificate(ca[0], ca[1], key, "x", [], [], ["clientAuth"], 1)).serial_number for _i in range(5)}
    assert len(serials) == 5


@pytest.mark.parametrize("change, words", [
    ({"ca_key": "not a key"}, "CA key"),
    ({"ca_crt": "not a certificate"}, "CA certificate"),
    ({"key": ""}, "certificate's key"),
    ({"usages": ["codeSigning"]}, "codeSigning"),
    ({"ip_addresses": ["300.0.0.1"]}, "300.0.0.1"),
    ({"common_name": "x" * 65}, "1 to 64"),
])
def test_refuses_what_it_cannot_issue(ca, change, words):
    args = dict(ca_crt=ca[0], ca_key=ca[1], key=c.make_key(), common_name="etcd-0", dns_names=DNS, ip_addresses=IPS,
                usages=["serverAuth"], days=365)
    args.update(change)
    with pytest.raises(c.CertificateError, match=words):
        c.issue_certificate(**args)


def spec(name, dns=None, ips=None, usages=None, crt="", key=""):
    return {"name": name, "common_name": name, "dns": DNS if dns is None else dns, "ips": IPS if ips is None else ips,
            "usages": ["serverAuth", "clientAuth"] if usages is None else usages, "crt": crt, "key": key}


def renew(ca_given, certificates, renew_days=30):
    return c.renew(ca_given, "db/etcd etcd CA", 3650, 365, renew_days, certificates)


def test_renew_makes_everything_when_nothing_is_stored():
    result = renew({"crt": "", "key": ""}, [spec("etcd-0"), spec("client", [], [], ["clientAuth"])])
    assert result["ca"]["reason"] == "missing"
    assert [(x["name"], x["reason"]) for x in result["certificates"]] == [("etcd-0", "missing"), ("client", "missing")]
    assert result["issued"] == ["CA: missing", "etcd-0: missing", "client: missing"]
    for entry in result["certificates"]:
        load(entry["crt"]).verify_directly_issued_by(load(result["ca"]["crt"]))


def test_renew_keeps_what_serves_and_reissues_the_rest():
    first = renew({}, [spec("etcd-0"), spec("etcd-1")])
    stored = [spec("etcd-0", crt=first["certificates"][0]["crt"], key=first["certificates"][0]["key"]),
              spec("etcd-1", dns=DNS + ["etcd-1.extra"], crt=first["certificates"][1]["crt"], key=first["certificates"][1]["key"])]
    second = renew({"crt": first["ca"]["crt"], "key": first["ca"]["key"]}, stored)
    assert second["ca"] == dict(first["ca"], reason="")
    assert second["certificates"][0] == dict(first["certificates"][0], reason="")
    assert second["certificates"][1]["reason"] == "names"
    assert second["certificates"][1]["key"] != first["certificates"][1]["key"]
    assert second["issued"] == ["etcd-1: names"]


@pytest.mark.parametrize("ca_given, reason", [
    ({"crt": "", "key": ""}, "missing"),
    ({"crt": "garbage", "key": "garbage"}, "unparsable"),
    ({"crt": "CA", "key": ""}, "key"),
    ({"crt": "CA", "key": "other"}, "key"),
    ({"crt": "expired", "key": "expired"}, "expired"),
])
def test_a_new_ca_issues_every_certificate_again(ca, ca_given, reason):
    stored_key = c.make_key()
    stored_crt = c.issue_certificate(ca[0], ca[1], stored_key, "etcd-0", DNS, IPS, ["serverAuth"], 365)
    old_key = c.make_key()
    old = c.make_ca(old_key, "db/etcd etcd CA", 10, now=datetime.now(timezone.utc) - timedelta(days=20))
    given = {"crt": {"CA": ca[0], "expired": old}.get(ca_given["crt"], ca_given["crt"]),
             "key": {"other": c.make_key(), "expired": old_key}.get(ca_given["key"], ca_given["key"])}
    result = renew(given, [spec("etcd-0", crt=stored_crt, key=stored_key)])
    assert result["ca"]["reason"] == reason
    assert result["ca"]["crt"] != given["crt"] and result["ca"]["key"] != given["key"]
    entry = result["certificates"][0]
    assert entry["reason"] == "issuer" and entry["crt"] != stored_crt and entry["key"] != stored_key
    load(entry["crt"]).verify_directly_issued_by(load(result["ca"]["crt"]))
    assert result["issued"] == ["CA: " + reason, "etcd-0: issuer"]


def test_a_certificate_within_renew_days_is_issued_again(ca):
    key = c.make_key()
    crt = c.issue_certificate(ca[0], ca[1], key, "etcd-0", DNS, IPS, ["serverAuth"], 10)
    result = renew({"crt": ca[0], "key": ca[1]}, [spec("etcd-0", crt=crt, key=key)])
    assert result["certificates"][0]["reason"] == "expiring"
    assert not_after(load(result["certificates"][0]["crt"])) - datetime.now(timezone.utc) > timedelta(days=364)
    # ... and kept with a window shorter than what it has left.
    assert renew({"crt": ca[0], "key": ca[1]}, [spec("etcd-0", crt=crt, key=key)], renew_days=5)["issued"] == []


def test_a_kept_ca_signs_with_its_own_subject(ca):
    """A stored CA keeps its name even when ca_common_name is another."""
    result = c.renew({"crt": ca[0], "key": ca[1]}, "another name", 3650, 365, 30, [spec("etcd-0")])
    cert = load(result["certificates"][0]["crt"])
    assert cert.issuer == load(ca[0]).subject
    cert.verify_directly_issued_by(load(ca[0]))
