"""The container's environment and the images' contracts, as the pxc role states them in vars/main.yml.

An image reads environment variables by name: a variable the role sets for its own scripts under a name the
image also reads changes what the image does (PXC_SERVICE turned the Percona image's entrypoint to its own
Kubernetes mode). The role keeps, per flavour, every name the image reads (reads_env, with the prefixes of their
families) and the two lists it sets: its scripts' (pxc__script_env) and the image's settings (pxc__image_env).
"""

from __future__ import annotations

import re

import pytest
import yaml

from role_data import FILES, FLAVORS, ROLE, raw, role_vars

CONTRACT = ROLE.parents[1] / "tools" / "images" / "mariadb-galera" / "contract.yaml"


def script_env_names() -> list[str]:
    return [var["name"] for var in raw()["pxc__script_env"]]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_no_variable_of_the_scripts_is_one_the_image_reads(flavor):
    image = raw()["pxc__flavors"][flavor]
    clashes = [name for name in script_env_names()
               if name in image["reads_env"] or name.startswith(tuple(image["reads_prefixes"]))]
    assert clashes == [], f"{flavor}: the image reads {clashes}; give them the KUBESS_ prefix"


def test_the_scripts_variables_have_the_kubess_prefix():
    names = script_env_names()
    assert [n for n in names if not n.startswith("KUBESS_")] == []
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_image_settings_are_variables_the_image_reads(flavor):
    # A misspelt setting would be ignored by the image without a word.
    data = raw()
    settings = [var["name"] for var in data["pxc__image_env"][flavor]]
    assert settings and set(settings) <= set(data["pxc__flavors"][flavor]["reads_env"])


def test_the_mariadb_list_holds_every_setting_the_contract_names():
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    names = set(contract["reads_env"]["/usr/local/bin/docker-entrypoint.sh"]) - {"_FILE"}
    assert names <= set(raw()["pxc__flavors"]["mariadb"]["reads_env"])
    assert contract["user"]["uid"] == raw()["pxc__flavors"]["mariadb"]["uid"]


def test_the_pod_template_takes_its_environment_from_the_role_data_only():
    template = (ROLE / "templates" / "statefulset.yaml.j2").read_text(encoding="utf-8")
    assert template.count("env: {{ pxc__container_env | to_json }}") == 1
    assert "secretKeyRef" not in template and not re.search(r"^\s*- name: [A-Z_]+\s*$", template, re.M)


@pytest.mark.parametrize("script", sorted(FILES.glob("*.sh")), ids=lambda p: p.name)
def test_the_scripts_read_their_own_variables_only(script):
    # Inputs are KUBESS_ variables; besides, HOSTNAME (the runtime's) and, in pxc-initdb.sh, the root password
    # MariaDB's entrypoint exports for its initialisation files. MYSQL_PWD is set for the clients, never read.
    text = script.read_text(encoding="utf-8")
    read = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    assigned = set(re.findall(r"(?:^|[\s;(])(?:local |export )?([A-Z][A-Z0-9_]*)=", text, re.M))
    inputs = read - assigned - {"SECONDS", "BASH_REMATCH"}
    assert {n for n in inputs if not n.startswith("KUBESS_")} <= {"HOSTNAME", "MARIADB_ROOT_PASSWORD"}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_volume_owner_follows_the_flavour(flavor):
    data = role_vars(flavor)
    (volume,) = data["pxc__volumes"]
    assert int(volume["owner"]) == int(volume["group"]) == data["pxc__flavors"][flavor]["uid"]
    assert {"percona": 1001, "mariadb": 999}[flavor] == int(data["pxc__uid"])
