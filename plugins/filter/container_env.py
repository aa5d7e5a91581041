# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the roles write a container's environment: from short specs to Kubernetes EnvVar entries.

A spec gives a variable a value, a key of the role's Secret (``secret``) or a field of the pod (``field``). The roles
keep their specs as a list of ``{name, value|secret|field}`` or as a mapping of name to a value or to
``{secret: ...}``/``{field: ...}``. The documentation is in container_env.yml beside this file.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _entry(name, spec, secret_name):
    if not isinstance(spec, Mapping):
        return {"name": name, "value": "" if spec is None else str(spec)}
    given = [k for k in ("value", "secret", "field") if k in spec]
    if len(given) != 1 or set(spec) - {"name", "value", "secret", "field"}:
        raise AnsibleFilterError(f"container_env: {name} needs exactly one of value, secret or field, got {sorted(spec)}")
    if "secret" in given:
        if not secret_name:
            raise AnsibleFilterError(f"container_env: {name} is read from a Secret, but no Secret was named")
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": str(spec["secret"])}}}
    if "field" in given:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": str(spec["field"])}}}
    return _entry(name, spec["value"], secret_name)


def container_env(specs, secret_name=""):
    """EnvVar entries, in the specs' order, from a list of ``{name, value|secret|field}`` or a mapping of name to a
    value, ``{secret: key}`` or ``{field: path}``; ``secret`` keys are read from the Secret ``secret_name``."""
    if isinstance(specs, Mapping):
        return [_entry(str(name), spec, secret_name) for name, spec in specs.items()]
    if isinstance(specs, (list, tuple)):
        out = []
        for spec in specs:
            if not isinstance(spec, Mapping) or not spec.get("name"):
                raise AnsibleFilterError(f"container_env: each entry of a list needs a name, got {spec!r}")
            out.append(_entry(str(spec["name"]), spec, secret_name))
        return out
    raise AnsibleFilterError(f"container_env takes a list or a mapping, got {type(specs).__name__}")


class FilterModule:
    """kubess.stateful container environment."""

    def filters(self):
        return {"container_env": container_env}
