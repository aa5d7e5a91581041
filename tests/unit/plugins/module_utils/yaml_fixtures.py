"""The YAML fixtures in fixtures/ (Kubernetes objects as the API returns them), shared by the unit tests."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

FIXTURES = Path(__file__).parent / "fixtures"


@lru_cache(maxsize=None)
def _load(name):
    with open(FIXTURES / f"{name}.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def fx(name, key):
    """A fresh copy of the object ``key`` in fixtures/<name>.yaml."""
    return copy.deepcopy(_load(name)[key])
