"""The rules every role checks its input with (plugins/test/k8s_names.py) and the filter that applies them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.input_problems import input_problems
from ansible_collections.kubess.stateful.plugins.test import k8s_names as kn

TESTS = kn.TestModule().tests()


@pytest.mark.parametrize(
    "rule, good, bad",
    [
        ("dns_label", ["a", "etcd", "pxc-0", "a" * 63, "0abc"], ["", "Etcd", "-a", "a-", "a_b", "a.b", "a" * 64, 3, None]),
        ("dns_1035_label", ["a", "pxc-client", "a" * 63], ["0abc", "", "A", "a-", "a" * 64, ["a"]]),
        ("dns_subdomain", ["a", "cluster.local", "pxc-secrets", "a.b-c.d"], ["", ".a", "a..b", "A.b", "a_b", "a" * 254]),
        ("label_key", ["app", "kubess.io/etcd", "a_b.c-d", "k8s.io/x"], ["", "/a", "a/", "-a", "UP.io/x", "a" * 64, 1]),
        ("label_value", ["", "true", "a.b_c-d", "A1"], ["-a", "a b", "a" * 64, True, 1]),
        ("labels", [{}, {"kubess.io/etcd": "true"}], [{"kubess.io/etcd": True}, {"a b": "x"}, ["a"], "a=b"]),
        ("annotations", [{}, {"pod-ready.stage.kwok.x-k8s.io/delay": "400ms"}], [{"a b": "x"}, "x"]),
        ("image_ref", ["mysql:8.4.6", "percona/percona-xtradb-cluster:8.0.39-30.1", "gcr.io/etcd-development/etcd:v3.6.16",
                       "localhost:5000/a/b@sha256:" + "0" * 64, "wordpress"],
         ["", " ", "mysql 8", "MySQL:8", "a:", "a:b:c", None, 1]),
        ("quantity", ["1Gi", "500Mi", "10G", 1, "1.5Gi"], ["", "0", "-1Gi", "1GB", "Gi", None]),
        ("port", [1, 3306, "3306", 65535], [0, 65536, -1, "http", True, None, 3306.5]),
        ("network_peers",
         [[], [{"podSelector": {}}], [{"namespaceSelector": {"matchLabels": {"team": "web"}}, "podSelector": {}}],
          [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
          [{"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}]],
         [{"podSelector": {}}, [{}], ["app=web"], [{"podselector": {}}], [{"podSelector": {"app": "web"}}],
          [{"podSelector": {"matchLabels": {"app": True}}}], [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}],
          [{"ipBlock": "10.0.0.0/8"}], [{"podSelector": {"matchExpressions": "app"}}]]),
        ("cron_schedule", ["", "30 2 * * *", "*/5 * * * 1-5", "@daily", "@hourly"],
         ["30 2 * * ", "30 2 * *", "@often", "30  2 * * *", " 30 2 * * *", None, 5]),
        ("time_zone", ["Etc/UTC", "Europe/Paris", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+2"],
         ["", "/Etc/UTC", "Europe/", "Europe//Paris", "Europe/Paris ", "1UTC", None]),
        ("relative_path", ["backups", "backups/galera", "a.b/c_d-e"],
         ["", "/backups", "backups/", "../x", "a/./b", "a/../b", "..", "a b", "a//b", None]),
    ],
)
def test_rules_accept_the_good_and_refuse_the_bad(rule, good, bad):
    for value in good:
        assert TESTS[rule](value), f"{rule} refused {value!r}"
        assert kn.RULES[rule](value) is None
    for value in bad:
        assert not TESTS[rule](value), f"{rule} accepted {value!r}"
        assert kn.RULES[rule](value).startswith(("must", "has"))


def test_lengths_can_be_lowered():
    assert TESTS["dns_label"]("a" * 52, 52) and not TESTS["dns_label"]("a" * 53, 52)
    assert "at most 52 characters" in kn.dns_label("a" * 53, max_length=52)


@pytest.mark.parametrize(
    "value, minimum, maximum, ok",
    [(1, 1, None, True), (0, 1, None, False), ("7", 0, 10, True), (11, 0, 10, False), (True, None, None, False),
     ("x", None, None, False), (-1, None, None, True)],
)
def test_whole_number(value, minimum, maximum, ok):
    assert (kn.whole_number(value, minimum, maximum) is None) is ok


@pytest.mark.parametrize(
    "value, sql_quoted, ok",
    [("a" * 12, True, True), ("a" * 11, True, False), ("abc'defghijkl", True, False), ("abc defghijkl", True, False),
     ("abc\\defghijkl", True, False), ("abc'defghijkl", False, True), ("a\nb", False, False)],
)
def test_password(value, sql_quoted, ok):
    assert (kn.password(value, min_length=12 if sql_quoted else 1, sql_quoted=sql_quoted) is None) is ok


def test_input_problems_names_the_variable_and_the_value():
    problems = input_problems([
        {"var": "etcd_name", "value": "Etcd", "test": "dns_label", "max_length": 52},
        {"var": "etcd_namespace", "value": "kubess", "test": "dns_label"},
        {"var": "etcd_replicas", "ok": False, "msg": "must be odd"},
        {"var": "etcd_nodes", "ok": True, "msg": "unused"},
        {"var": "wordpress_resources", "ok": False, "msg": ".requests.cpu must be set"},
    ])
    assert problems == [
        "etcd_name must be a DNS-1123 label of at most 52 characters (lower-case letters, digits and '-', starting "
        "and ending with a letter or digit), got 'Etcd'",
        "etcd_replicas must be odd",
        "wordpress_resources.requests.cpu must be set",
    ]


def test_input_problems_hides_secrets_skips_when_and_allows_empty():
    problems = input_problems([
        {"var": "pxc_root_password", "value": "short'pw", "test": "password", "min_length": 12, "sql_quoted": True,
         "secret": True},
        {"var": "pxc_tls_secret", "value": "", "test": "dns_subdomain", "allow_empty": True},
        {"var": "pxc_replicas", "when": False, "ok": False, "msg": "never"},
    ])
    assert len(problems) == 1
    assert problems[0].startswith("pxc_root_password must be at least 12 characters")
    assert "short'pw" not in problems[0]


@pytest.mark.parametrize("rules", [{"var": "x"}, [{"value": 1, "test": "port"}], [{"var": "x", "test": "nope"}], ["x"]])
def test_input_problems_refuses_malformed_rules(rules):
    with pytest.raises(AnsibleFilterError):
        input_problems(rules)
