"""The MySQL pods' environment against the images': no variable of ours takes a name the image reads.

The role keeps, as data in vars/main.yml, the pods' environment (``mysql_replication__env``) and, per
flavour, the variables the image's own entrypoint reads (``mysql_replication__image_env``). An image
reads its variables whatever the pod means by them, so a name of ours in that list would silently change
what the image does at start-up.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[4] / "roles" / "mysql_replication"
SCRIPT = (ROLE / "files" / "mysql-replication.sh").read_text(encoding="utf-8")
TEMPLATE = (ROLE / "templates" / "statefulset.yaml.j2").read_text(encoding="utf-8")
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
OURS = set(VARS["mysql_replication__env"])
IMAGE_ENV = VARS["mysql_replication__image_env"]


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
