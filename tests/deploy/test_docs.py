"""The operator docs exist, link where they say, and cannot drift from the metrics in the code."""

import re

import pytest

from tests.deploy import helpers

METRIC = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary)\(\s*[\"']([a-z_:][a-z0-9_:]*)[\"']")
SOURCES = ("k8sdm", "requests_app", "deployments_app", "users_app")


def metrics_defined_in_code() -> dict[str, str]:
    found = {}
    for package in SOURCES:
        for path in (helpers.ROOT / package).rglob("*.py"):
            for name in METRIC.findall(path.read_text()):
                found[name] = str(path.relative_to(helpers.ROOT))
    return found


def test_the_code_defines_the_metrics_this_test_expects_to_find():
    found = metrics_defined_in_code()
    assert {"k8sdm_outbox_backlog", "k8sdm_watcher_active", "k8sdm_http_requests_total",
            "k8sdm_k8s_call_seconds"} <= set(found)


def test_every_metric_defined_in_the_code_is_documented():
    text = (helpers.DOCS / "metrics.md").read_text()
    missing = {name: where for name, where in metrics_defined_in_code().items() if f"`{name}`" not in text}
    assert not missing, f"docs/metrics.md misses {missing}"


def test_docs_metrics_lists_no_metric_the_code_does_not_define():
    text = (helpers.DOCS / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(k8sdm_[a-z0-9_]+)`", text, flags=re.M))
    assert documented == set(metrics_defined_in_code())


@pytest.mark.parametrize("page", ["architecture", "configuration", "deploying", "scaling", "upgrading",
                                  "troubleshooting", "metrics"])
def test_every_operator_page_exists_and_its_relative_links_resolve(page):
    path = helpers.DOCS / f"{page}.md"
    text = path.read_text()
    assert text.startswith("# ")
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (path.parent / target).exists(), f"{page}.md links to missing {target}"


def test_the_architecture_page_has_a_diagram_and_the_reliability_rules():
    text = (helpers.DOCS / "architecture.md").read_text()
    assert "```mermaid" in text
    for rule in ("outbox", "at-least-once", "advisory lock", "standing by"):
        assert rule in text.lower()


def test_the_troubleshooting_page_quotes_the_log_lines_the_code_writes():
    text = (helpers.DOCS / "troubleshooting.md").read_text()
    code = "".join(p.read_text() for pkg in SOURCES for p in (helpers.ROOT / pkg).rglob("*.py"))
    for line in ("another watcher is active: standing by", "lost the watcher lock", "worker ready"):
        assert line in text and line in code, line


def test_the_readme_points_operators_at_the_production_docs():
    readme = (helpers.ROOT / "README.md").read_text()
    production = readme.split("## Production", 1)[1]
    for page in ("docs/configuration.md", "docs/deploying.md"):
        assert page in production
    for name in ("K8SDM_ENV", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "NATS_URL"):
        assert name in production
