# -*- coding: utf-8 -*-
# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""X.509 for the roles, in memory: whether a stored certificate still serves, and issuing what does not.

``renewal_reason`` is the one decision to keep a stored certificate or issue it again (the filter
``kubess.stateful.cert_renewal`` and the module ``kubess.stateful.tls_certificates`` both ask it). ``make_key``,
``make_ca`` and ``issue_certificate`` make PEM text and nothing else: no file, no I/O. ``renew`` puts them together
for a CA and the certificates it signs. Reasons name no value, so they can be shown; keys are never in a message.
"""

from __future__ import annotations

import ipaddress
import traceback
from datetime import datetime, timedelta, timezone

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

# Why a certificate is issued again, in the order they are looked for: the first found is the answer.
REASONS = ("missing", "unparsable", "expired", "expiring", "names", "issuer", "key")

# The extended key usages a certificate may carry, by the names the options take (attribute of ExtendedKeyUsageOID).
USAGES = {"serverAuth": "SERVER_AUTH", "clientAuth": "CLIENT_AUTH"}

# Certificates start this long before they are made, for hosts whose clocks run a little behind.
CLOCK_SKEW = timedelta(minutes=5)

# The longest common name X.509 allows (RFC 5280, ub-common-name).
COMMON_NAME_MAX = 64


class CertificateError(ValueError):
    """Input the certificate functions cannot work with; the message says which and why, never a key."""


def _require_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise CertificateError("the Python package cryptography is required: {0}".format(CRYPTOGRAPHY_IMPORT_ERROR))


def _load_cert(pem):
    try:
        return x509.load_pem_x509_certificate(str(pem).encode())
    except ValueError:
        return None


def _load_key(pem):
    try:
        return serialization.load_pem_private_key(str(pem).encode(), password=None)
    except (ValueError, TypeError):
        return None


def _not_after(cert):
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_after_utc
    return cert.not_valid_after.replace(tzinfo=timezone.utc)  # cryptography < 42


def _names(cert):
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return set(), set()
    return (set(san.get_values_for_type(x509.DNSName)),
            {str(ip) for ip in san.get_values_for_type(x509.IPAddress)})


def _signed_by(cert, ca):
    if cert.issuer != ca.subject:
        return False
    public = ca.public_key()
    # Any failure to verify (a bad signature, an algorithm the key does not take) means: not signed by this CA.
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            public.verify(cert.signature, cert.tbs_certificate_bytes)
    except Exception:  # pylint: disable=broad-except
        return False
    return True


def _public_der(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_matches(cert, key_pem):
    key = _load_key(key_pem)
    return key is not None and _public_der(key.public_key()) == _public_der(cert.public_key())


def normal_ips(values):
    """The addresses as the certificate shows them (``::0001`` is ``::1``); CertificateError names a bad one."""
    try:
        return {str(ipaddress.ip_address(str(v))) for v in values}
    except ValueError as exc:
        raise CertificateError(str(exc)) from None


def renewal_reason(certificate, dns_names=None, ip_addresses=None, renew_days=30, ca=None, key=None):
    """Why the certificate must be issued again (one of REASONS), or '' to keep it.

    ``certificate``: PEM text, empty for none. ``dns_names``/``ip_addresses``: the subject alternative names it
    must carry, exactly (``None`` leaves them unchecked). ``renew_days``: issue again when it expires within that
    many days. ``ca``: PEM of the CA that must have signed it (``None``: unchecked). ``key``: PEM of the private key
    that must match it (``None``: unchecked; empty: missing).
    """
    _require_cryptography()
    if isinstance(renew_days, bool) or not str(renew_days).isdigit():
        raise CertificateError("renew_days must be a whole number of days, got {0!r}".format(renew_days))
    if not certificate:
        return "missing"
    cert = _load_cert(certificate)
    if cert is None:
        return "unparsable"
    now = datetime.now(timezone.utc)
    not_after = _not_after(cert)
    if not_after <= now:
        return "expired"
    if not_after - now <= timedelta(days=int(renew_days)):
        return "expiring"
    if dns_names is not None or ip_addresses is not None:
        have_dns, have_ips = _names(cert)
        if (dns_names is not None and have_dns != {str(n) for n in dns_names}) or \
                (ip_addresses is not None and have_ips != normal_ips(ip_addresses)):
            return "names"
    if ca is not None:
        authority = _load_cert(ca) if ca else None
        if authority is None or not _signed_by(cert, authority):
            return "issuer"
    if key is not None and (not key or not _key_matches(cert, key)):
        return "key"
    return ""


def make_key():
    """A new EC P-256 private key, PEM (PKCS#8, unencrypted)."""
    _require_cryptography()
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _subject(common_name):
    if not common_name or len(common_name) > COMMON_NAME_MAX:
        raise CertificateError("a common name takes 1 to {0} characters, got {1}".format(COMMON_NAME_MAX, len(common_name or "")))
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _signing_key(pem, what):
    key = _load_key(pem)
    if key is None:
        raise CertificateError("the {0} key is not an unencrypted PEM private key".format(what))
    return key


def _hash_for(key):
    # Ed25519 and Ed448 sign without a separate hash; cryptography wants None for them.
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return hashes.SHA256()


def _validity(builder, days, now):
    now = now or datetime.now(timezone.utc)
    return builder.not_valid_before(now - CLOCK_SKEW).not_valid_after(now + timedelta(days=days))


def make_ca(key, common_name, days, now=None):
    """A self-signed CA certificate, PEM: the given key, CN ``common_name``, valid ``days`` days from ``now``.

    basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign, digitalSignature, both critical; no subject
    alternative name.
    """
    _require_cryptography()
    private = _signing_key(key, "CA")
    subject = _subject(common_name)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(private.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False))
    cert = _validity(builder, days, now).sign(private, _hash_for(private))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _authority_key_identifier(ca):
    try:
        ski = ca.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def issue_certificate(ca_crt, ca_key, key, common_name, dns_names, ip_addresses, usages, days, now=None):
    """A certificate for ``key`` signed by the CA, PEM, valid ``days`` days from ``now``.

    CN ``common_name``; subject alternative names ``dns_names`` and ``ip_addresses`` (none: no extension);
    basicConstraints CA:FALSE; keyUsage digitalSignature, keyEncipherment; extendedKeyUsage ``usages`` (names of
    USAGES); a random serial number; SHA-256.
    """
    _require_cryptography()
    authority = _load_cert(ca_crt)
    if authority is None:
        raise CertificateError("the CA certificate is not PEM")
    signer = _signing_key(ca_key, "CA")
    public = _signing_key(key, "certificate's").public_key()
    unknown = [u for u in usages if u not in USAGES]
    if unknown:
        raise CertificateError("unknown usages {0}; known: {1}".format(", ".join(unknown), ", ".join(USAGES)))
    try:
        names = [x509.DNSName(str(n)) for n in dns_names] + \
            [x509.IPAddress(ipaddress.ip_address(str(a))) for a in ip_addresses]
    except ValueError as exc:
        raise CertificateError(str(exc)) from None
    builder = (x509.CertificateBuilder().subject_name(_subject(common_name)).issuer_name(authority.subject)
               .public_key(public).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
               .add_extension(_authority_key_identifier(authority), critical=False))
    if usages:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([getattr(ExtendedKeyUsageOID, USAGES[u]) for u in usages]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = _validity(builder, days, now).sign(signer, _hash_for(signer))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def renew(ca, ca_common_name, ca_days, cert_days, renew_days, certificates):
    """The CA and the certificates it signs: what is given where it still serves, the rest issued now.

    ``ca``: ``{crt, key}`` as stored (empty strings for none). ``certificates``: dicts with ``name``,
    ``common_name``, ``dns``, ``ips``, ``usages``, ``crt`` and ``key``. The CA is kept unless it is missing,
    unparsable, expired or without its key; a new CA issues every certificate again (none of the stored ones is
    signed by it). A certificate is kept unless ``renewal_reason`` gives a reason with its names, ``renew_days`` and
    the CA chosen.

    Returns ``{ca: {crt, key, reason}, certificates: [{name, crt, key, reason}], issued: ["name: reason"]}``, the
    certificates in the order given; ``reason`` is '' for what was kept; ``issued`` starts with ``CA: reason`` when
    the CA was made.
    """
    ca_crt, ca_key = ca.get("crt") or "", ca.get("key") or ""
    ca_reason = renewal_reason(ca_crt, renew_days=0, key=ca_key)
    issued = []
    if ca_reason:
        ca_key = make_key()
        ca_crt = make_ca(ca_key, ca_common_name, ca_days)
        issued.append("CA: {0}".format(ca_reason))
    out = []
    for cert in certificates:
        crt, key = cert.get("crt") or "", cert.get("key") or ""
        reason = renewal_reason(crt, cert["dns"], cert["ips"], renew_days, ca_crt, key)
        if reason:
            key = make_key()
            crt = issue_certificate(ca_crt, ca_key, key, cert["common_name"], cert["dns"], cert["ips"],
                                    cert["usages"], cert_days)
            issued.append("{0}: {1}".format(cert["name"], reason))
        out.append({"name": cert["name"], "crt": crt, "key": key, "reason": reason})
    return {"ca": {"crt": ca_crt, "key": ca_key, "reason": ca_reason}, "certificates": out, "issued": issued}
