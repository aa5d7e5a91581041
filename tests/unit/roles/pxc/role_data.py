"""The pxc role's own data, for the tests: its defaults and vars, the environment its pod template gives the
container, and its my.cnf, rendered with Jinja2 the way Ansible would for the values these use.

Values that need Ansible's own filters or lookups stay unrendered; the ones read here (the flavours, the paths,
the environment entries, the my.cnf template) need none, except the member list, which is computed here.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from jinja2 import Environment, StrictUndefined
from jinja2.nativetypes import NativeEnvironment

# The namespace and the passwords Secret of the pods the tests make.
NS = "shop"
SECRETS = {
    "root-password": "R00t-secret-value-xyz",
    "xtrabackup-password": "B4ckup-secret-value-def",
    "monitor-password": "M0nitor-secret-value-abc",
    "clustercheck-password": "Ch3ck-secret-value-ghi",
    "wordpress-password": "W0rdpress-secret-value-jkl",
    "wordpress-database": "wordpress",
    "wordpress-user": "wordpress",
}

ROLE = Path(__file__).resolve().parents[4] / "roles" / "pxc"
FILES = ROLE / "files"
FLAVORS = ("percona", "mariadb")

_NATIVE = NativeEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)


def _bool(value) -> bool:
    """Ansible's bool filter, for the values the role's variables take."""
    return value if isinstance(value, bool) else str(value).strip().lower() in ("yes", "on", "1", "true", "y", "t")


_NATIVE.filters["bool"] = _bool


def raw() -> dict:
    """defaults/main.yml and vars/main.yml as written (vars win, as in Ansible)."""
    data = {}
    for part in ("defaults", "vars"):
        data.update(yaml.safe_load((ROLE / part / "main.yml").read_text(encoding="utf-8")) or {})
    return data


def _render(value, context):
    if isinstance(value, str) and "{{" in value:
        return _NATIVE.from_string(value).render(context)
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, context) for k, v in value.items()}
    return value


def role_vars(flavor: str, **overrides) -> dict:
    """The role's variables for a flavour, rendered until nothing changes (what fails to render stays raw)."""
    data = {**raw(), "pxc_flavor": flavor, **overrides}
    for _round in range(10):
        changed = False
        for name, value in data.items():
            if name in overrides:
                continue
            try:
                rendered = _render(value, data)
            except Exception:  # noqa: BLE001 - Ansible-only filters and lookups: left as they are
                continue
            if rendered != value:
                data[name] = rendered
                changed = True
        if not changed:
            break
    hosts = [f"{data['pxc_name']}-{n}.{data['pxc_name']}.{data['pxc_namespace']}.svc.{data['pxc_cluster_domain']}"
             for n in range(int(data["pxc_replicas"]))]
    data["pxc__member_hosts"] = hosts
    return data


def container_env(flavor: str, secrets: dict[str, str], namespace: str, **overrides) -> dict[str, str]:
    """The environment the role's pod template gives the container: its entries (pxc__script_env, then the
    flavour's pxc__image_env), with the Secret's values and the pod's namespace filled in."""
    data = role_vars(flavor, **overrides)
    env = {}
    for var in data["pxc__script_env"] + data["pxc__image_env"][flavor]:
        if "secret" in var:
            env[var["name"]] = secrets[var["secret"]]
        elif "field" in var:
            assert var["field"] == "metadata.namespace", var
            env[var["name"]] = namespace
        else:
            env[var["name"]] = str(var["value"])
    return env


def my_cnf(flavor: str, **overrides) -> str:
    """templates/my.cnf.j2 for a flavour, as the role renders it."""
    data = role_vars(flavor, **overrides)
    text = (ROLE / "templates" / "my.cnf.j2").read_text(encoding="utf-8")
    environment = Environment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True)
    environment.filters["bool"] = _bool
    return environment.from_string(text).render(data)
