# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Secrets a role writes: only those whose data differs from what they hold.

A role that keeps material in Secrets (certificates, keys) has, for each Secret, what it must hold after the run and
what it holds now (both in plain text); it gets back the manifests of the Secrets to apply, with base64 data, and
none for a Secret that already holds exactly what it must. The documentation is in secret_manifests.yml beside this
file.
"""

from __future__ import annotations

import base64

from ansible.errors import AnsibleFilterError


def secret_manifests(wanted, stored, names, namespace, labels=None, types=None):
    """Secret manifests for each part of ``wanted`` whose data differs from ``stored``, in the order of ``wanted``.

    ``wanted`` and ``stored`` map a part (``ca``, ``members``, ...) to its data in plain text; ``names`` maps each part
    to its Secret's name; ``labels`` are set on every Secret; ``types`` maps a part to its Secret type (``Opaque`` when
    not given).
    """
    stored = {} if stored is None or stored == "" else stored
    for option, value in (("wanted", wanted), ("stored", stored), ("names", names), ("labels", labels or {}),
                          ("types", types or {})):
        if not isinstance(value, dict):
            raise AnsibleFilterError(f"secret_manifests takes {option} as a mapping, got {type(value).__name__}")
    if not namespace:
        raise AnsibleFilterError("secret_manifests needs the namespace of the Secrets")
    manifests = []
    for part, data in wanted.items():
        if part not in names:
            raise AnsibleFilterError(f"secret_manifests: no Secret name for part {part!r}")
        if not isinstance(data, dict):
            raise AnsibleFilterError(f"secret_manifests: the data of part {part!r} must be a mapping")
        if data == (stored.get(part) or {}):
            continue
        manifests.append({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": names[part], "namespace": namespace, "labels": dict(labels or {})},
            "type": (types or {}).get(part, "Opaque"),
            "data": {key: base64.b64encode(str(value).encode("utf-8")).decode("ascii") for key, value in data.items()},
        })
    return manifests


class FilterModule:
    """kubess.stateful Secret manifests."""

    def filters(self):
        return {"secret_manifests": secret_manifests}
