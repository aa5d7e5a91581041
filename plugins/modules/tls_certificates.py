#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: tls_certificates
short_description: Keep or issue, in memory, a CA and the certificates it signs
version_added: 0.1.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Returns a CA and certificates signed by it, as PEM text, keeping what the caller already stores (O(ca),
    O(certificates[].crt) and O(certificates[].key)) where it still serves and issuing the rest. Nothing is written
    anywhere - no file, no cluster object; storing the result, for example in a Kubernetes Secret, is the next task's.
  - The CA is kept unless its certificate is missing, unparsable or expired, or its key is missing or does not match
    it. Otherwise a new CA is made (a new key, a self-signed certificate valid O(ca_days) days), and every certificate
    is issued again, since none of the stored ones is signed by it.
  - A certificate is kept unless it is missing or unparsable, expired or expiring within O(renew_days) days, does not
    carry exactly the names of O(certificates[].dns) and O(certificates[].ips), is not signed by the CA, or its key
    is missing or does not match it - the decision of the filter P(kubess.stateful.cert_renewal#filter), which the
    module shares. A new certificate has a new key and is valid O(cert_days) days.
  - Keys are EC P-256, PEM (PKCS#8, unencrypted). The CA carries basicConstraints C(CA:TRUE) and keyUsage
    C(keyCertSign), C(cRLSign), C(digitalSignature), both critical, and no subject alternative name. A certificate
    carries basicConstraints C(CA:FALSE), keyUsage C(digitalSignature), C(keyEncipherment), extendedKeyUsage
    O(certificates[].usages) and its names as subject alternative names. Certificates are signed with SHA-256, have a
    random serial number and start five minutes before they are made, for hosts whose clocks run a little behind.
options:
  ca:
    description:
      - The CA as the caller stores it. Leave both empty to make one.
    type: dict
    suboptions:
      crt:
        description:
          - The CA certificate, PEM; empty when there is none.
        type: str
        default: ''
      key:
        description:
          - The CA private key, PEM, unencrypted; empty when there is none.
        type: str
        default: ''
  ca_common_name:
    description:
      - The common name of a CA the module makes (1 to 64 characters). A kept CA keeps its own.
    type: str
    required: true
  ca_days:
    description:
      - How many days a CA the module makes is valid. Must be more than O(cert_days).
    type: int
    default: 3650
  cert_days:
    description:
      - How many days a certificate the module issues is valid. Must be more than O(renew_days), else every
        certificate would be issued again at every run.
    type: int
    default: 365
  renew_days:
    description:
      - Issue a certificate again when it expires within this many days. V(0) issues it again only once it has expired.
      - The CA is made again only once it has expired.
    type: int
    default: 30
  certificates:
    description:
      - The certificates the CA signs, each with what the caller stores of it.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The certificate's name, unique in O(certificates); it names the certificate in the result and in RV(issued).
        type: str
        required: true
      common_name:
        description:
          - The common name of the certificate (1 to 64 characters). Defaults to O(certificates[].name).
          - A change of the common name alone does not issue a stored certificate again.
        type: str
      dns:
        description:
          - The DNS names the certificate carries, in their ASCII (IDNA A-label) form.
        type: list
        elements: str
        default: []
      ips:
        description:
          - The IP addresses (IPv4 or IPv6) the certificate carries.
        type: list
        elements: str
        default: []
      usages:
        description:
          - The extended key usages of the certificate, at least one.
          - A change of the usages alone does not issue a stored certificate again.
        type: list
        elements: str
        choices: [serverAuth, clientAuth]
        default: [serverAuth, clientAuth]
      crt:
        description:
          - The certificate, PEM, as stored; empty when there is none.
        type: str
        default: ''
      key:
        description:
          - The certificate's private key, PEM, unencrypted, as stored; empty when there is none.
        type: str
        default: ''
requirements:
  - cryptography >= 3.1 (Python package, on the host the module runs on)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module writes nothing anywhere, so check mode returns what a real run would, newly issued keys and
      certificates included.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - The result holds private keys, the CA's included. Run the task with C(no_log=true), and keep the result out of
    every later task's output. RV(issued) names what was issued and why, and holds no key material, so it can be shown.
  - Keys pass in the module's arguments and result only, in memory; with pipelining they are not written to a
    temporary file on the host either.
  - The module makes no change; RV(changed) is always false. The task that stores the result reports the change.
seealso:
  - plugin: kubess.stateful.cert_renewal
    plugin_type: filter
  - module: community.crypto.x509_certificate_pipe
"""

EXAMPLES = r"""
- name: Read the Secret that keeps the CA and the certificates
  kubernetes.core.k8s_info:
    kind: Secret
    namespace: db
    name: etcd-tls
  register: stored
  no_log: true

- name: Keep what still serves, issue the rest
  kubess.stateful.tls_certificates:
    ca:
      crt: "{{ data['ca.crt'] | default('') | b64decode }}"
      key: "{{ data['ca.key'] | default('') | b64decode }}"
    ca_common_name: db/etcd etcd CA
    renew_days: 30
    certificates:
      - name: etcd-0
        dns: [etcd-0.etcd.db.svc.cluster.local, localhost]
        ips: [127.0.0.1]
        crt: "{{ data['etcd-0.crt'] | default('') | b64decode }}"
        key: "{{ data['etcd-0.key'] | default('') | b64decode }}"
      - name: etcd-client
        usages: [clientAuth]
        crt: "{{ data['client.crt'] | default('') | b64decode }}"
        key: "{{ data['client.key'] | default('') | b64decode }}"
  vars:
    data: "{{ (stored.resources | first | default({})).data | default({}) }}"
    ansible_pipelining: true
  register: tls
  no_log: true

- name: Show what was issued, and why (no key material)
  ansible.builtin.debug:
    var: tls.issued

- name: Store the CA and the certificates
  kubernetes.core.k8s:
    definition:
      apiVersion: v1
      kind: Secret
      metadata:
        name: etcd-tls
        namespace: db
      stringData: >-
        {{ {'ca.crt': tls.ca.crt, 'ca.key': tls.ca.key}
           | combine(dict(tls.certificates | map(attribute='name') | map('regex_replace', '$', '.crt')
                          | zip(tls.certificates | map(attribute='crt'))))
           | combine(dict(tls.certificates | map(attribute='name') | map('regex_replace', '$', '.key')
                          | zip(tls.certificates | map(attribute='key')))) }}
  no_log: true
"""

RETURN = r"""
ca:
  description: The CA, as given when it was kept, else the one just made.
  returned: success
  type: dict
  contains:
    crt:
      description: The CA certificate, PEM.
      type: str
      sample: "-----BEGIN CERTIFICATE-----\nMIIBnzCCAUWgAwIBAgIU...\n-----END CERTIFICATE-----\n"
    key:
      description: The CA private key, PEM.
      type: str
      sample: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n"
    reason:
      description:
        - Empty when the CA was kept, else why it was made - V(missing), V(unparsable), V(expired) or V(key).
      type: str
      sample: ""
certificates:
  description: The certificates, in the order of O(certificates).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The certificate's O(certificates[].name).
      type: str
      sample: etcd-0
    crt:
      description: The certificate, PEM, as given when it was kept, else the one just issued.
      type: str
      sample: "-----BEGIN CERTIFICATE-----\nMIICCzCCAbGgAwIBAgIU...\n-----END CERTIFICATE-----\n"
    key:
      description: The certificate's private key, PEM, as given when it was kept, else the one just made.
      type: str
      sample: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n"
    reason:
      description:
        - Empty when the certificate was kept, else why it was issued - V(missing), V(unparsable), V(expired),
          V(expiring), V(names), V(issuer) (signed by another CA, or the CA was made again) or V(key).
      type: str
      sample: names
issued:
  description:
    - "What was issued, and why, as C(<name>: <reason>); C(CA: <reason>) first when the CA was made. Empty when
      everything was kept."
    - Holds no key material, so it can be shown.
  returned: success
  type: list
  elements: str
  sample: ["etcd-2: missing", "etcd-0: names"]
changed:
  description: Always false; the module writes nothing.
  returned: always
  type: bool
  sample: false
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.kubess.stateful.plugins.module_utils._certificates import (
    COMMON_NAME_MAX,
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    USAGES,
    CertificateError,
    renew,
)

ARGUMENT_SPEC = dict(
    ca=dict(
        type="dict",
        apply_defaults=True,
        options=dict(
            crt=dict(type="str", default=""),
            key=dict(type="str", default="", no_log=True),
        ),
    ),
    ca_common_name=dict(type="str", required=True),
    ca_days=dict(type="int", default=3650),
    cert_days=dict(type="int", default=365),
    renew_days=dict(type="int", default=30),
    certificates=dict(
        type="list",
        elements="dict",
        required=True,
        options=dict(
            name=dict(type="str", required=True),
            common_name=dict(type="str"),
            dns=dict(type="list", elements="str", default=[]),
            ips=dict(type="list", elements="str", default=[]),
            usages=dict(type="list", elements="str", choices=list(USAGES), default=list(USAGES)),
            crt=dict(type="str", default=""),
            key=dict(type="str", default="", no_log=True),
        ),
    ),
)

# Stands for a key in the arguments the result echoes (invocation), once the keys are allowed in the result.
HIDDEN = "NOT_LOGGING_PARAMETER"


def _common_name_problem(option, value):
    if not value or not value.strip() or len(value) > COMMON_NAME_MAX:
        return "{0} must be 1 to {1} characters (the X.509 limit), got {2}".format(option, COMMON_NAME_MAX, len(value or ""))
    return None


def _certificate_problem(where, cert):
    """The first problem with one entry of certificates, as a message naming the option, or None."""
    problem = _common_name_problem(where + ".common_name", cert["common_name"] if cert["common_name"] is not None else cert["name"])
    if problem:
        return problem
    for name in cert["dns"]:
        if not name or not name.strip():
            return "{0}.dns holds an empty name".format(where)
        try:
            name.encode("ascii")
        except UnicodeEncodeError:
            return "{0}.dns: {1!r} is not ASCII; give its IDNA A-label form (xn--...)".format(where, name)
    for address in cert["ips"]:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return "{0}.ips: {1!r} is not an IPv4 or IPv6 address".format(where, address)
    if not cert["usages"]:
        return "{0}.usages must name at least one of {1}".format(where, ", ".join(USAGES))
    return None


def validate(params):
    """The first value check that fails, as a message naming the option, or None: what types cannot say."""
    problem = _common_name_problem("ca_common_name", params["ca_common_name"])
    if problem:
        return problem
    for option in ("ca_days", "cert_days"):
        if params[option] <= 0:
            return "{0} must be a positive number of days, got {1}".format(option, params[option])
    if params["renew_days"] < 0:
        return "renew_days must be 0 or more, got {0}".format(params["renew_days"])
    if params["cert_days"] <= params["renew_days"]:
        return "cert_days ({0}) must be more than renew_days ({1}), else every certificate would be issued again at every run".format(
            params["cert_days"], params["renew_days"])
    if params["ca_days"] <= params["cert_days"]:
        return "ca_days ({0}) must be more than cert_days ({1}), else a new CA would sign certificates that outlive it".format(
            params["ca_days"], params["cert_days"])
    seen = {}
    for index, cert in enumerate(params["certificates"]):
        where = "certificates[{0}]".format(index)
        if not cert["name"] or not cert["name"].strip():
            return "{0}.name must not be empty".format(where)
        if cert["name"] in seen:
            return "{0}.name {1!r} is the name of certificates[{2}] too; names must be unique".format(where, cert["name"], seen[cert["name"]])
        seen[cert["name"]] = index
        problem = _certificate_problem("{0} ({1})".format(where, cert["name"]), cert)
        if problem:
            return problem
    return None


def certificate_specs(params):
    """The certificates as renew() takes them: the common name defaults to the name."""
    return [dict(cert, common_name=cert["common_name"] if cert["common_name"] is not None else cert["name"])
            for cert in params["certificates"]]


def allow_keys_in_result(module):
    """Let the result carry the keys it was given, since returning them is the module's purpose.

    AnsibleModule replaces every value of a no_log option wherever it appears in the result, which would turn a kept
    key into a placeholder. The given keys are therefore dropped from the values it hides, and replaced in the
    arguments the result echoes (invocation); nothing after this point logs (no_log), and the task must use no_log.
    """
    module.no_log = True
    entries = [module.params["ca"]] + module.params["certificates"]
    for entry in entries:
        module.no_log_values.discard(entry["key"])
        if entry["key"]:
            entry["key"] = HIDDEN


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    problem = validate(params)
    if problem:
        module.fail_json(msg=problem)
    try:
        result = renew(params["ca"], params["ca_common_name"], params["ca_days"], params["cert_days"],
                       params["renew_days"], certificate_specs(params))
    except CertificateError as err:
        module.fail_json(msg="Could not issue the certificates: {0}".format(err))
    allow_keys_in_result(module)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
