# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the values every role checks the same way: Kubernetes names, labels, quantities, ports, images.

Each rule is a function that returns ``None`` for a good value, or what is wrong with it ("must be ...") for a
bad one; the Jinja tests are the same functions seen as booleans, and the filter
``kubess.stateful.input_problems`` applies them by name to a role's variables, so every role words a refusal
the same way. The documentation of each test is in the YAML file of the same name beside this one.
"""

from __future__ import annotations

import re

from ansible_collections.kubess.stateful.plugins.filter.volume_paths import k8s_quantity
from ansible.errors import AnsibleFilterError

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL = re.compile(rf"^{_LABEL}$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# A container image reference: [registry[:port]/]path[:tag][@digest], as the container runtimes parse it.
_PATH_PART = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]+)?/)?{_PATH_PART}(/{_PATH_PART})*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*:[0-9a-fA-F]{32,})?$"
)


def _text(value):
    """The value as text, or None when it is not a string (a name is never a number, a list or a mapping)."""
    return value if isinstance(value, str) else None


def _name_rule(pattern, what, default_length, doc):
    """A rule for names matching ``pattern``, at most ``max_length`` characters; ``what`` is said when it fails."""
    def rule(value, max_length=default_length):
        text = _text(value)
        if text is None or not pattern.match(text) or len(text) > int(max_length):
            return f"must be {what.format(max_length=max_length)}"
        return None
    rule.__doc__ = doc
    return rule


dns_label = _name_rule(
    _DNS_LABEL, "a DNS-1123 label of at most {max_length} characters (lower-case letters, digits and '-', starting "
    "and ending with a letter or digit)", 63,
    "A DNS-1123 label (names of namespaces, StatefulSets, claims), at most ``max_length`` characters.")
dns_1035_label = _name_rule(
    _DNS_1035_LABEL, "a DNS-1035 label of at most {max_length} characters (lower-case letters, digits and '-', "
    "starting with a letter and ending with a letter or digit; it names a Service)", 63,
    "A DNS-1035 label: a DNS-1123 label that starts with a letter (names of Services).")
dns_subdomain = _name_rule(
    _DNS_SUBDOMAIN, "a DNS-1123 subdomain of at most {max_length} characters (lower-case letters, digits, '-' and "
    "'.', each part starting and ending with a letter or digit)", 253,
    "A DNS-1123 subdomain (names of Secrets, ConfigMaps, StorageClasses, nodes; DNS domains).")


def label_key(value):
    """A label or annotation key: an optional DNS subdomain prefix and '/', then a name of at most 63 characters."""
    text = _text(value)
    prefix, sep, name = (text or "").rpartition("/")
    if (text is None or not _LABEL_NAME.match(name) or len(name) > 63
            or (sep and dns_subdomain(prefix) is not None)):
        return ("must be a label key: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, "
                "'-', '_' or '.', starting and ending with a letter or digit")
    return None


def label_value(value):
    """A label value: empty, or at most 63 letters, digits, '-', '_' or '.'."""
    text = _text(value)
    if text is None or not _LABEL_VALUE.match(text) or len(text) > 63:
        return ("must be a label value: a string of at most 63 letters, digits, '-', '_' or '.', starting and ending "
                "with a letter or digit (quote true, false and numbers)")
    return None


def labels(value):
    """A mapping of label keys to label values (a node selector, pod labels)."""
    if not isinstance(value, dict):
        return "must be a mapping of label keys to label values"
    for key, item in value.items():
        what, problem = ("key", label_key(key)) if label_key(key) else ("value", label_value(item))
        if problem:
            return f"has {key!r}: {item!r}, whose {what} {problem}"
    return None


def annotations(value):
    """A mapping of annotation keys (label keys) to string values."""
    if not isinstance(value, dict):
        return "must be a mapping of annotation keys to values"
    bad = [key for key in value if label_key(key)]
    if bad:
        return f"has keys that are not annotation keys ({', '.join(map(repr, bad))}): {label_key(bad[0])}"
    return None


def _selector(value):
    """What is wrong with a label selector ({matchLabels, matchExpressions}), or None."""
    if not isinstance(value, dict) or set(value) - {"matchLabels", "matchExpressions"}:
        return "must be a label selector (a mapping with matchLabels and/or matchExpressions; {} selects all)"
    problem = labels(value.get("matchLabels", {}))
    if problem:
        return f"has matchLabels that are not labels (the value {problem})"
    if not isinstance(value.get("matchExpressions", []), list):
        return "has matchExpressions that are not a list"
    return None


def network_peers(value):
    """A list of NetworkPolicy peers: each a mapping of podSelector and/or namespaceSelector, or of ipBlock."""
    if not isinstance(value, list):
        return "must be a list of NetworkPolicy peers ({podSelector: {}} is every pod of the namespace)"
    for peer in value:
        keys = set(peer) if isinstance(peer, dict) else set()
        if not keys or keys - {"podSelector", "namespaceSelector", "ipBlock"} or ("ipBlock" in keys and len(keys) > 1):
            return (f"has {peer!r}, which is not a NetworkPolicy peer (podSelector and/or namespaceSelector, or "
                    "ipBlock alone)")
        for key in sorted(keys - {"ipBlock"}):
            problem = _selector(peer[key])
            if problem:
                return f"has {peer!r}, whose {key} {problem.replace('must be', 'is not')}"
        if "ipBlock" in keys and not (isinstance(peer["ipBlock"], dict) and isinstance(peer["ipBlock"].get("cidr"), str)):
            return f"has {peer!r}, whose ipBlock has no cidr"
    return None


def image_ref(value):
    """A container image reference: not empty, no spaces, [registry[:port]/]path[:tag][@digest]."""
    text = _text(value)
    if text is None or not _IMAGE.match(text):
        return ("must be a container image reference such as registry.example.org/team/image:1.2.3 or "
                "image@sha256:<digest> (not empty, no spaces or upper-case letters in the path)")
    return None


def quantity(value):
    """A positive storage quantity (1Gi, 500Mi, 10G)."""
    try:
        k8s_quantity(value)
    except AnsibleFilterError:
        return "must be a positive storage quantity such as 1Gi or 500Mi (suffixes Ki Mi Gi Ti Pi Ei k M G T P E)"
    return None


def _whole(value):
    """The value as an int when it is a whole number (an int, or a string of digits from the command line)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r"^-?[0-9]+$", value.strip()):
        return int(value)
    return None


def port(value):
    """A TCP or UDP port number, 1 to 65535."""
    number = _whole(value)
    if number is None or not 1 <= number <= 65535:
        return "must be a port number from 1 to 65535"
    return None


def whole_number(value, minimum=None, maximum=None):
    """A whole number within [minimum, maximum] (either bound may be left out)."""
    number = _whole(value)
    if number is None or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = " and ".join(b for b in (f"at least {minimum}" if minimum is not None else "",
                                          f"at most {maximum}" if maximum is not None else "") if b)
        return f"must be a whole number{' ' + bounds if bounds else ''}"
    return None


def password(value, min_length=1, sql_quoted=False):
    """A password the pods can use: at least ``min_length`` characters, no line break; with ``sql_quoted``, also no
    quote, backslash or blank (the image puts it between single quotes in SQL)."""
    text = _text(value)
    forbidden = "'\\ \t\n\r" if sql_quoted else "\n\r"
    if text is None or len(text) < int(min_length) or any(c in forbidden for c in text):
        banned = "quote ('), backslash or blank" if sql_quoted else "line break"
        return f"must be at least {min_length} characters without {banned}; leave it empty to generate one"
    return None


_CRON_MACRO = re.compile(r"^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$")
_CRON_FIELDS = re.compile(r"^[^ ]+( [^ ]+){4}$")
_TIME_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
_RELATIVE_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


def cron_schedule(value):
    """A CronJob's schedule: five fields, or a macro such as @daily; empty (no schedule) too."""
    text = _text(value)
    if text is None or not (text == "" or _CRON_MACRO.match(text) or _CRON_FIELDS.match(text)):
        return "must be empty or a cron schedule of five fields (or a macro such as @daily)"
    return None


def time_zone(value):
    """An IANA time zone name (a CronJob's timeZone), such as Etc/UTC."""
    text = _text(value)
    if text is None or not _TIME_ZONE.match(text):
        return "must be an IANA time zone such as Etc/UTC or Europe/Paris"
    return None


def relative_path(value):
    """A relative path (a directory under the NFS export root), without '.' or '..' parts."""
    text = _text(value)
    if text is None or not _RELATIVE_PATH.match(text) or {".", ".."} & set(text.split("/")):
        return "must be a relative path under the NFS export root, without '.' or '..'"
    return None


# Every rule by the name the roles use in their input rules (see kubess.stateful.input_problems).
RULES = {
    "dns_label": dns_label,
    "dns_1035_label": dns_1035_label,
    "dns_subdomain": dns_subdomain,
    "label_key": label_key,
    "label_value": label_value,
    "labels": labels,
    "annotations": annotations,
    "network_peers": network_peers,
    "image_ref": image_ref,
    "quantity": quantity,
    "port": port,
    "whole_number": whole_number,
    "password": password,
    "cron_schedule": cron_schedule,
    "time_zone": time_zone,
    "relative_path": relative_path,
}


def _as_test(rule):
    def test(value, *args, **kwargs):
        return rule(value, *args, **kwargs) is None
    test.__doc__ = rule.__doc__
    return test


class TestModule:
    """kubess.stateful tests for Kubernetes names and values."""

    def tests(self):
        return {name: _as_test(rule) for name, rule in RULES.items()}
