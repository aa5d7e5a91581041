"""Every molecule scenario (converge, idempotence, check mode, verify, cleanup) on the local cluster.

Each scenario's whole output goes to tests/output/molecule-<scenario>.log; a failure shows its tail.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from conftest import REPO

SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))
# The whole stack last: it repeats what the role scenarios check one by one.
SCENARIOS.sort(key=lambda name: name == "default")


def test_every_role_has_a_scenario():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
    assert set(roles) <= set(SCENARIOS), f"roles without a molecule scenario: {set(roles) - set(SCENARIOS)}"
    assert "default" in SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_tests_the_working_tree(scenario):
    """Molecule's prerun would install a copy of the collection built for Galaxy into ~/.ansible/collections, which
    shadows the working tree that ANSIBLE_COLLECTIONS_PATH links in: every scenario turns it off."""
    config = yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text(encoding="utf-8"))
    assert config.get("prerun") is False, f"molecule/{scenario}/molecule.yml: set prerun: false"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(cluster, scenario):
    out_dir = REPO / "tests" / "output"
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / f"molecule-{scenario}.log"
    env = dict(cluster.env)
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env["PY_COLORS"] = "0"
    env["KUBESS_AUDIT_LOG"] = str(cluster.audit_log)
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.run(
            ["molecule", "test", "-s", scenario], cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT,
            check=False, timeout=1800,
        )
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-120:]
        pytest.fail(f"molecule test -s {scenario} failed (rc={proc.returncode}); {log}:\n" + "\n".join(tail))
