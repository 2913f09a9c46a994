"""Packaging hygiene: the licence file, the declared dependencies, the Docker image's install, the docs' paths.

- LICENSE holds the Apache License 2.0 verbatim, the licence pyproject.toml declares;
- every runtime dependency of pyproject.toml is imported somewhere in the code (the installed
  distribution's own files say which modules it provides), or, for dbt's adapters, named as the
  profile type pipelines/transform.py writes: a dependency nobody uses only costs installs and CVEs;
- the Dockerfile installs uv.lock's versions on the Airflow image of the lock's Airflow version;
- the docs and the README hold no absolute path of a developer's machine.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as md
import os
import re
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
CODE_DIRS = ("pipelines", "dags", "tests", "bench", "scripts")
#: SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt (202 lines; the text several installed
#: distributions ship verbatim, e.g. sniffio's LICENSE.APACHE2)
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
#: dependencies used without an import statement: where and how the code uses them
USED_WITHOUT_IMPORT = {
    "dbt-duckdb": ("pipelines/transform.py", '"type": "duckdb"'),  # dbt loads the adapter by profile type
    "dbt-postgres": ("pipelines/transform.py", '"type": "postgres"'),
}
#: absolute paths that exist only on a developer's or CI's machine
MACHINE_PATH = re.compile(r"(?<![\w.~-])(/work/|/tmp/|/home/[a-z]|/root/|/Users/|/private/var/|[A-Z]:\\Users\\)")


def test_license_is_the_apache_2_text_that_pyproject_declares() -> None:
    text = (REPO / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    assert re.match(r"\s*Apache License\s+Version 2\.0, January 2004\s", text)
    assert "END OF TERMS AND CONDITIONS" in text
    assert hashlib.sha256(text.encode()).hexdigest() == APACHE_2_SHA256, "LICENSE is not the verbatim text"


def _requirements() -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]


@cache
def _modules_of(dist_name: str) -> frozenset[str]:
    """The modules a distribution provides: the common package of its Python files (airflow.providers.smtp
    for the SMTP provider), else its top-level names; a meta-package (no module, like apache-airflow)
    provides its requirements' modules."""
    dist = md.distribution(dist_name)
    paths = []
    for f in dist.files or []:
        p = str(f)
        if p.endswith((".py", ".so", ".pyd")) and ".dist-info" not in p and not p.startswith(".."):
            parts = p.split("/")
            stem = parts[-1].split(".")[0]
            paths.append(parts[:-1] + ([] if stem == "__init__" else [stem]))
    if not paths:
        names: set[str] = set()
        for r in dist.requires or []:
            req = Requirement(r)
            if not req.marker or req.marker.evaluate({"extra": ""}):
                names |= _modules_of(req.name)
        return frozenset(names)
    common = os.path.commonprefix(paths)  # element-wise on the lists of path parts
    if common:
        return frozenset({".".join(common)})
    return frozenset(p[0] for p in paths if not p[0].startswith("_"))


@cache
def _imported() -> frozenset[str]:
    """Every module named by an import statement (top level or inside a function) in the code."""
    names: set[str] = set()
    for folder in CODE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            if ".venv" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module)
                    names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _is_imported(module: str) -> bool:
    return any(name == module or name.startswith(module + ".") for name in _imported())


@pytest.mark.parametrize("requirement", _requirements(), ids=lambda r: r.name)
def test_every_declared_dependency_is_used(requirement: Requirement) -> None:
    if requirement.name in USED_WITHOUT_IMPORT:
        file, evidence = USED_WITHOUT_IMPORT[requirement.name]
        assert evidence in (REPO / file).read_text(), f"{requirement.name}: {file} no longer has {evidence!r}"
        return
    modules = _modules_of(requirement.name)
    assert modules, f"no module found in the installed distribution {requirement.name}"
    assert any(_is_imported(m) for m in modules), (
        f"{requirement.name} is declared in pyproject.toml but none of its modules {sorted(modules)} is imported "
        f"in {', '.join(CODE_DIRS)}: remove it (and run `uv lock`)")


def test_the_import_scan_sees_lazy_imports_and_providers() -> None:
    # the scan must find an import inside a function (pipelines/warehouse.py imports pipelines.secrets there)
    assert "pipelines.secrets" in _imported()
    assert _modules_of("apache-airflow-providers-smtp") == {"airflow.providers.smtp"}
    assert "airflow.sdk" in _modules_of("apache-airflow")  # a meta-package: the task SDK's modules
    assert not any(_is_imported(m) for m in _modules_of("tenacity"))  # installed, through Airflow only


def test_dockerfile_installs_the_lock_on_the_locks_airflow_image() -> None:
    text = (REPO / "Dockerfile").read_text()
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    airflow = next(p["version"] for p in lock["package"] if p["name"] == "apache-airflow")
    assert re.search(rf"^FROM apache/airflow:{re.escape(airflow)}-python3\.11$", text, re.M)
    assert re.search(r"^COPY .*\buv\.lock\b", text, re.M)
    install = re.search(r"uv export --locked [^\n]*\\\n\s*[^\n]*-o (\S+)", text)
    assert install, "the Dockerfile must export uv.lock with `uv export --locked`"
    assert re.search(rf"pip install [^\n]*--no-deps --require-hashes -r {re.escape(install.group(1))}", text)
    assert not re.search(r"pip install [^\n]*(?<!--no-deps )-e /opt/esn", text), "the project without deps"


def test_docs_hold_no_absolute_path_of_a_developer_machine() -> None:
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "absolute paths of a machine (use paths relative to the repository or placeholders):\n" \
        + "\n".join(found)
