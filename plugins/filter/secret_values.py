# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that chooses a secret value: given, else stored, else generated.

Every role that keeps passwords or keys in a Secret calls it with what the user gave and what the Secret
already holds, and gets back the values to store and the keys whose given value differs from the stored one
(a password set in a database cannot be changed by rewriting the Secret). Values never appear in a message.
The documentation is in secret_values.yml beside this file.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string

from ansible.errors import AnsibleFilterError

ALPHABET = string.ascii_letters + string.digits


def _decode(key, value):
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AnsibleFilterError(f"the stored value of key {key!r} is not base64-encoded UTF-8 text") from None


def secret_values(stored, given, length=32):
    """Choose each key's value.

    ``stored`` is the ``data`` of the existing Secret (base64, as the API returns it) or empty; ``given`` maps
    each key to the value the user gave, empty for none. Returns ``values`` (key to plain text, every key of
    ``given``), ``differing`` (the keys given a value other than the stored one) and ``stored`` (true when the
    Secret already holds every value, so that there is nothing to write).
    """
    if not isinstance(given, dict):
        raise AnsibleFilterError(f"secret_values takes the given values as a mapping, got {type(given).__name__}")
    if isinstance(length, bool) or not str(length).isdigit() or int(length) < 1:
        raise AnsibleFilterError("secret_values takes a positive length")
    stored = stored or {}
    values, differing, new = {}, [], []
    for key, wanted in given.items():
        wanted = "" if wanted is None else str(wanted)
        kept = _decode(key, stored[key]) if stored.get(key) else None
        if wanted and kept is not None and wanted != kept:
            differing.append(key)
        if wanted:
            values[key] = wanted
        elif kept is not None:
            values[key] = kept
        else:
            values[key] = "".join(secrets.choice(ALPHABET) for _position in range(int(length)))
        if values[key] != kept:
            new.append(key)
    return {"values": values, "differing": differing, "stored": not new}


class FilterModule:
    """kubess.stateful secret values."""

    def filters(self):
        return {"secret_values": secret_values}
