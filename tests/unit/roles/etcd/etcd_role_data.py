"""The etcd role's own data, for the tests: its defaults and vars rendered the way Ansible would for the values the
tests read (the container's environment, the certificates' names), with ansible-core's own filters.

Values that need a lookup, a collection filter or a fact set by a task stay unrendered.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from ansible.plugins.filter.core import FilterModule as CoreFilters
from jinja2 import Environment, StrictUndefined
from jinja2.nativetypes import NativeEnvironment

ROLE = Path(__file__).resolve().parents[4] / "roles" / "etcd"
EXPANSION = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

_NATIVE = NativeEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
_NATIVE.filters.update(CoreFilters().filters())
# Templates (text, as Ansible's template lookup renders them).
_NATIVE_TEXT = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
_NATIVE_TEXT.filters.update(CoreFilters().filters())


def raw() -> dict:
    """defaults/main.yml and vars/main.yml as written (vars win, as in Ansible)."""
    data = {}
    for part in ("defaults", "vars"):
        data.update(yaml.safe_load((ROLE / part / "main.yml").read_text(encoding="utf-8")) or {})
    return data


def _render(value, context):
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return _NATIVE.from_string(value).render(context)
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, context) for k, v in value.items()}
    return value


def role_vars(**overrides) -> dict:
    """The role's variables, rendered until nothing changes (what fails to render stays raw)."""
    data = {**raw(), **overrides}
    for _round in range(10):
        changed = False
        for name, value in data.items():
            if name in overrides:
                continue
            try:
                rendered = _render(value, data)
            except Exception:  # noqa: BLE001 - lookups, collection filters, facts: left as they are
                continue
            if rendered != value:
                data[name] = rendered
                changed = True
        if not changed:
            break
    return data


def members_configmap(data: dict, ordinals: list[int] | None = None, state: str = "new") -> dict:
    """The members' ConfigMap as the role's template renders it: the initial cluster of ``ordinals`` (every member
    by default) and the initial cluster state."""
    if ordinals is None:
        ordinals = list(range(int(data["etcd_replicas"])))
    text = (ROLE / "templates" / "members-configmap.yaml.j2").read_text(encoding="utf-8")
    context = {**data, "etcd__cm_ordinals": ordinals, "etcd__cm_state": state}
    return yaml.safe_load(_NATIVE_TEXT.from_string(text).render(context))


def pod_env(entries: list[dict], pod: str, configmaps: dict[str, dict] | None = None) -> dict[str, str]:
    """What a container of pod ``pod`` sees: the downward API's pod name, the keys of ``configmaps`` (name -> data)
    it refers to, then Kubernetes' $(VAR) expansion of the entries defined before (an unknown reference stays as it
    is)."""
    env: dict[str, str] = {}
    for item in entries:
        ref = item.get("valueFrom", {}).get("configMapKeyRef")
        if "value" in item:
            env[item["name"]] = EXPANSION.sub(lambda m: env.get(m.group(1), m.group(0)), str(item["value"]))
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = pod
        elif ref and ref["key"] in (configmaps or {}).get(ref["name"], {}):
            env[item["name"]] = configmaps[ref["name"]][ref["key"]]
        else:
            raise AssertionError(f"unsupported env entry {item}, or a ConfigMap key not given ({configmaps})")
    return env
