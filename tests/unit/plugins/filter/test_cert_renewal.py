"""The one decision to keep or issue again a stored certificate (plugins/filter/cert_renewal.py)."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

import pytest
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.kubess.stateful.plugins.filter.cert_renewal import cert_renewal

DNS = ["etcd-0.etcd.db.svc.cluster.local", "localhost"]
IPS = ["127.0.0.1"]
NOW = datetime.now(timezone.utc)


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def make_ca(name="test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_cert(ca, days=365, dns=None, ips=None, not_before_days=1):
    ca_cert, ca_key = ca
    dns = DNS if dns is None else dns
    ips = IPS if ips is None else ips
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-0")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=not_before_days)).not_valid_after(NOW + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key(key)


@pytest.fixture(scope="module")
def ca():
    return make_ca()


def ca_pem(ca):
    return ca[0].public_bytes(serialization.Encoding.PEM).decode()


def test_a_valid_certificate_outside_the_window_is_kept(ca):
    cert, key = make_cert(ca, days=365)
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(ca), key) == ""
    # The order of the names does not matter.
    assert cert_renewal(cert, list(reversed(DNS)), IPS, 30) == ""


def test_an_expired_certificate_is_issued_again(ca):
    cert, key = make_cert(ca, days=-1, not_before_days=30)
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(ca), key) == "expired"


def test_a_certificate_within_the_window_is_issued_again(ca):
    cert, _key = make_cert(ca, days=10)
    assert cert_renewal(cert, DNS, IPS, 30) == "expiring"
    # ... and kept with a shorter window.
    assert cert_renewal(cert, DNS, IPS, 5) == ""


@pytest.mark.parametrize("dns, ips", [
    (DNS + ["etcd-3.etcd.db.svc.cluster.local"], IPS),  # a name more (the set grew)
    (DNS[:1], IPS),                                      # a name fewer
    (DNS, []),                                           # an address fewer
    (DNS, ["127.0.0.1", "::1"]),                         # an address more
])
def test_a_certificate_whose_names_differ_is_issued_again(ca, dns, ips):
    cert, _key = make_cert(ca)
    assert cert_renewal(cert, dns, ips, 30) == "names"


def test_names_are_unchecked_when_not_given(ca):
    cert, _key = make_cert(ca, dns=["other"], ips=[])
    assert cert_renewal(cert) == ""


@pytest.mark.parametrize("certificate", ["", None])
def test_a_missing_certificate_is_issued(certificate):
    assert cert_renewal(certificate, DNS, IPS, 30) == "missing"


@pytest.mark.parametrize("certificate", ["not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_an_unparsable_certificate_is_issued_again(certificate):
    assert cert_renewal(certificate, DNS, IPS, 30) == "unparsable"


def test_a_certificate_of_another_ca_is_issued_again(ca):
    cert, _key = make_cert(make_ca("another CA"))
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(ca)) == "issuer"
    # Same subject, other key: the signature decides.
    cert, _key = make_cert(make_ca("test CA"))
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(ca)) == "issuer"
    assert cert_renewal(cert, DNS, IPS, 30, "") == "issuer"


def test_a_certificate_without_its_key_is_issued_again(ca):
    cert, key = make_cert(ca)
    _other_cert, other_key = make_cert(ca)
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(ca), other_key) == "key"
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(ca), "") == "key"
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(ca), "garbage") == "key"
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(ca), key) == ""


def test_the_first_reason_wins(ca):
    cert, _key = make_cert(ca, days=-1, dns=["x"], not_before_days=30)
    assert cert_renewal(cert, DNS, IPS, 30, ca_pem(make_ca()), "") == "expired"


@pytest.mark.parametrize("days", [-1, "x", True, 1.5])
def test_refuses_a_bad_window(ca, days):
    with pytest.raises(AnsibleFilterError):
        cert_renewal(make_cert(ca)[0], DNS, IPS, days)


def test_refuses_a_bad_address(ca):
    with pytest.raises(AnsibleFilterError, match="not-an-ip"):
        cert_renewal(make_cert(ca)[0], DNS, ["not-an-ip"], 30)
