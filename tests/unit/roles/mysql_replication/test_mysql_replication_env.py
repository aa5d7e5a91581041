"""The MySQL/MariaDB pods' environment against the images': no variable of ours takes a name the image reads.

The role keeps, as data in vars/main.yml, the pods' environment (``mysql_replication__env``), per flavour
the variables the image's own entrypoint reads (``mysql_replication__image_env``) and those of them the
pods set on purpose, to drive the image's initialisation (``mysql_replication__image_init_env``). An
image reads its variables whatever the pod means by them, so a name of ours in that list would silently
change what the image does at start-up.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[4]
ROLE = REPO / "roles" / "mysql_replication"
SCRIPT = (ROLE / "files" / "mysql-replication.sh").read_text(encoding="utf-8")
TEMPLATE = (ROLE / "templates" / "statefulset.yaml.j2").read_text(encoding="utf-8")
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
OURS = set(VARS["mysql_replication__env"])
IMAGE_ENV = VARS["mysql_replication__image_env"]
INIT_ENV = VARS["mysql_replication__image_init_env"]


def script_variables() -> set[str]:
    return set(re.findall(r"\bKUBESS_[A-Z0-9_]+", SCRIPT))


def documented_inputs() -> set[str]:
    """The variables the script's header lists under "Inputs"."""
    header = SCRIPT.split("\nset -euo pipefail", 1)[0]
    inputs = header.split("# Inputs", 1)[1].split("\n#\n", 1)[0]
    return set(re.findall(r"\bKUBESS_[A-Z0-9_]+", inputs))


def test_every_variable_of_ours_is_prefixed():
    assert OURS, "the pods' environment is data in vars/main.yml"
    assert {name for name in OURS | script_variables() if not name.startswith("KUBESS_")} == set()


@pytest.mark.parametrize("flavor", sorted(IMAGE_ENV))
def test_no_variable_of_ours_is_one_the_image_reads(flavor):
    reads = set(IMAGE_ENV[flavor])
    assert reads, f"the {flavor} image's variables are listed"
    assert (OURS | script_variables()) & reads == set()


def test_the_pods_set_what_the_script_documents_and_reads():
    assert script_variables() == documented_inputs()
    # The script defaults the rest (the temporary server's socket and timeout).
    assert OURS <= documented_inputs()


def test_every_container_takes_the_environment_from_the_data():
    envs = re.findall(r"^\s*env:.*$", TEMPLATE, re.MULTILINE)
    assert envs
    assert {line.strip() for line in envs} == {"env: {{ mysql_replication__env_list | to_json }}"}


def test_the_mariadb_list_holds_every_variable_the_image_contract_names():
    contract = yaml.safe_load((REPO / "tools" / "images" / "mariadb-galera" / "contract.yaml").read_text(encoding="utf-8"))
    listed = set(contract["reads_env"]["/usr/local/bin/docker-entrypoint.sh"]) - {"_FILE"}
    assert listed <= set(IMAGE_ENV["mariadb"])
    # The NAME_FILE variants of the settings the contract marks "(file)".
    assert {"MARIADB_ROOT_PASSWORD_FILE", "MYSQL_PASSWORD_FILE", "MARIADB_REPLICATION_PASSWORD_FILE"} <= set(
        IMAGE_ENV["mariadb"])


@pytest.mark.parametrize("flavor", sorted(IMAGE_ENV))
def test_the_image_variables_the_pods_set_are_the_images_own(flavor):
    assert set(INIT_ENV) == set(IMAGE_ENV)
    assert set(INIT_ENV[flavor]) <= set(IMAGE_ENV[flavor])
    assert not set(INIT_ENV[flavor]) & OURS


def test_the_mariadb_pods_set_root_at_localhost_only_and_passwords_from_the_secret():
    init = INIT_ENV["mariadb"]
    assert init["MARIADB_ROOT_HOST"] == "localhost", "no root@'%' from the entrypoint"
    assert {name for name, value in init.items() if "PASSWORD" in name} == {
        name for name, value in init.items() if isinstance(value, dict) and "secret" in value}


def test_the_initialisation_file_runs_the_script_where_the_pods_mount_it():
    hook = (ROLE / "files" / "mysql-replication-initdb.sh").read_text(encoding="utf-8")
    assert f"exec bash {VARS['mysql_replication__scripts_dir']}/mysql-replication.sh initialised" in hook
