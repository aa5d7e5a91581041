# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter that asks whether a stored X.509 certificate is kept or issued again.

A role that keeps certificates in a Secret asks, for each one, with what the Secret holds and what the
certificate must be: the answer is empty to keep it, else the reason to issue it again (missing, unparsable,
expired, expiring, names, issuer, key). Reasons name no value: they can be shown. The decision itself is
module_utils/_certificates.py (the module tls_certificates asks it too); the documentation is in cert_renewal.yml
beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.module_utils._certificates import (
    CertificateError,
    renewal_reason,
)


def cert_renewal(certificate, dns_names=None, ip_addresses=None, renew_days=30, ca=None, key=None):
    """Why the certificate must be issued again, or '' to keep it (see renewal_reason)."""
    try:
        return renewal_reason(certificate, dns_names, ip_addresses, renew_days, ca, key)
    except CertificateError as exc:
        raise AnsibleFilterError("cert_renewal: {0}".format(exc)) from None


class FilterModule:
    """kubess.stateful certificate renewal."""

    def filters(self):
        return {"cert_renewal": cert_renewal}
