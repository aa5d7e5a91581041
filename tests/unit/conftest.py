"""Make ``ansible_collections.kubess.stateful`` importable when pytest runs outside ansible-test.

ansible-test puts the collection tree on sys.path itself. A plain ``pytest`` run from the collection
link (``$ANSIBLE_COLLECTIONS_PATH/ansible_collections/kubess/stateful``) needs the directory that holds
``ansible_collections`` on sys.path: found from this file's own path when it lies in such a tree, else
from ANSIBLE_COLLECTIONS_PATH or the shell's logical working directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _collections_root() -> str | None:
    candidates = [Path(os.path.abspath(__file__))]
    if os.environ.get("PWD"):
        candidates.append(Path(os.environ["PWD"]) / "x")
    for start in candidates:
        for parent in start.parents:
            if parent.name == "ansible_collections" and (parent / "kubess" / "stateful").is_dir():
                return str(parent.parent)
    for entry in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if entry and (Path(entry) / "ansible_collections" / "kubess" / "stateful").is_dir():
            return entry
    return None


_root = _collections_root()
if _root and _root not in sys.path:
    sys.path.insert(0, _root)
