# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that decides whether a stored X.509 certificate is kept or issued again.

A role that keeps certificates in a Secret asks, for each one, with what the Secret holds and what the
certificate must be: the answer is empty to keep it, else the reason to issue it again (missing, unparsable,
expired, expiring, names, issuer, key). Reasons name no value: they can be shown. The documentation is in
cert_renewal.yml beside this file.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

from ansible.errors import AnsibleFilterError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import ExtensionOID
except ImportError as exc:  # pragma: no cover - the controller has cryptography with community.crypto
    IMPORT_ERROR = exc
else:
    IMPORT_ERROR = None

REASONS = ("missing", "unparsable", "expired", "expiring", "names", "issuer", "key")


def _load_cert(pem):
    try:
        return x509.load_pem_x509_certificate(str(pem).encode())
    except ValueError:
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
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            public.verify(cert.signature, cert.tbs_certificate_bytes)
    except Exception:  # noqa: BLE001 - any verification failure means: not signed by this CA
        return False
    return True


def _key_matches(cert, key_pem):
    try:
        key = serialization.load_pem_private_key(str(key_pem).encode(), password=None)
    except (ValueError, TypeError):
        return False
    der = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return key.public_key().public_bytes(encoding, der) == cert.public_key().public_bytes(encoding, der)


def _ips(values):
    try:
        return {str(ipaddress.ip_address(str(v))) for v in values}
    except ValueError as exc:
        raise AnsibleFilterError(f"cert_renewal: {exc}") from None


def cert_renewal(certificate, dns_names=None, ip_addresses=None, renew_days=30, ca=None, key=None):
    """Why the certificate must be issued again, or '' to keep it.

    ``certificate``: PEM text, empty for none. ``dns_names``/``ip_addresses``: the subject alternative names it
    must carry, exactly (``None`` leaves them unchecked). ``renew_days``: issue again when it expires within that
    many days. ``ca``: PEM of the CA that must have signed it (``None``: unchecked). ``key``: PEM of the private key
    that must match it (``None``: unchecked; empty: missing).
    """
    if IMPORT_ERROR is not None:
        raise AnsibleFilterError(f"cert_renewal needs the Python package cryptography: {IMPORT_ERROR}")
    if isinstance(renew_days, bool) or not str(renew_days).isdigit():
        raise AnsibleFilterError(f"cert_renewal takes a whole number of days to renew before expiry, got {renew_days!r}")
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
                (ip_addresses is not None and have_ips != _ips(ip_addresses)):
            return "names"
    if ca is not None:
        authority = _load_cert(ca) if ca else None
        if authority is None or not _signed_by(cert, authority):
            return "issuer"
    if key is not None and (not key or not _key_matches(cert, key)):
        return "key"
    return ""


class FilterModule:
    """kubess.stateful certificate renewal."""

    def filters(self):
        return {"cert_renewal": cert_renewal}
