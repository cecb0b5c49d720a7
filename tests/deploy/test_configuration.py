"""docs/configuration.md, the compose file and the manifests name exactly the variables the settings read."""

import re

from tests.deploy import helpers

REFERENCE = helpers.DOCS / "configuration.md"


def reference_rows() -> dict[str, str]:
    """`VAR` -> the rest of its row, for every row of the tables under "## Reference"."""
    text = REFERENCE.read_text()
    reference = text.split("## Reference", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in reference.splitlines():
        match = re.match(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|(.*)$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_regex_and_the_instrumented_settings_agree_on_the_variables():
    # If these ever differ, settings.py reads a variable in a way the regex cannot see (or not at all).
    assert helpers.settings_env_vars_by_regex() == helpers.settings_env_vars_read()
    assert len(helpers.settings_env_vars_read()) > 30


def test_the_reference_lists_every_variable_the_settings_read():
    missing = helpers.settings_env_vars_regex_and_read() - set(reference_rows())
    assert not missing, f"docs/configuration.md misses {sorted(missing)}"


def test_the_reference_lists_no_variable_the_settings_do_not_read():
    extra = set(reference_rows()) - helpers.settings_env_vars_regex_and_read()
    assert not extra, f"docs/configuration.md lists {sorted(extra)}, which k8sdm/settings.py does not read"


def test_every_reference_row_gives_a_default_and_a_meaning():
    for name, rest in reference_rows().items():
        cells = [cell.strip() for cell in rest.strip().strip("|").split("|")]
        assert len(cells) == 2 and all(cells), f"row of {name} needs a default and a meaning: {rest!r}"


def test_the_compose_file_sets_only_variables_the_settings_read():
    services = helpers.compose()["services"]
    k8sdm_services = {name: s for name, s in services.items() if "k8sdm" in str(s.get("image", ""))}
    assert set(k8sdm_services) == {"migrate", "api", "worker", "watcher", "events", "notifier"}
    for name, service in k8sdm_services.items():
        unknown = {var for var in service["environment"] if not helpers.is_setting_var(var)}
        assert not unknown, f"compose service {name} sets {sorted(unknown)}, which no setting reads"


def test_the_manifests_set_only_variables_the_settings_read():
    config_maps = helpers.docs_of_kind("ConfigMap")
    secrets = helpers.docs_of_kind("Secret", include_examples=True)
    names = {key for cm in config_maps for key in cm["data"]}
    names |= {key for secret in secrets for key in secret.get("stringData", {})}
    for workload in helpers.workloads().values():
        spec = workload["spec"]["template"]["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            names |= {item["name"] for item in container.get("env", [])}
    unknown = {var for var in names if not helpers.is_setting_var(var)} - helpers.K8S_HELPER_VARS
    assert not unknown, f"the manifests set {sorted(unknown)}, which no setting reads"


def test_every_helper_variable_of_the_deployment_files_is_documented():
    text = REFERENCE.read_text()
    for name in helpers.K8S_HELPER_VARS | {"WEB_CONCURRENCY"}:
        assert f"`{name}`" in text


def literal_defaults() -> dict[str, object]:
    """NAME -> default, for the env calls of settings.py whose default is a plain value (or
    arithmetic on plain values). Names read more than once or with computed defaults are left out."""
    import ast

    tree = ast.parse(helpers.SETTINGS.read_text())
    seen: dict[str, list] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        func = node.func
        is_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env")
        if not is_env:
            continue
        default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
        try:
            value = ast.literal_eval(default)
        except (ValueError, TypeError, SyntaxError):
            try:
                value = eval(compile(ast.Expression(default), "default", "eval"), {"__builtins__": {}})  # noqa: S307
            except Exception:  # noqa: BLE001 - computed from settings: not checkable here
                value = ...
        seen.setdefault(node.args[0].value, []).append(value)
    return {name: values[0] for name, values in seen.items() if len(values) == 1 and values[0] is not ...}


def test_the_reference_shows_the_defaults_the_settings_use():
    rows = reference_rows()
    checked = 0
    for name, value in literal_defaults().items():
        default_cell = rows[name].strip().strip("|").split("|")[0]
        if value in ("", [], None):
            expected = "empty"
        elif isinstance(value, list):
            expected = ",".join(value)
        else:
            expected = str(value)
        assert f"`{expected}`" in default_cell or default_cell.strip().startswith(expected), (
            f"{name}: the settings default is {value!r}, docs/configuration.md says {default_cell.strip()!r}")
        checked += 1
    assert checked > 30
