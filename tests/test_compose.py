"""The Docker Compose stack and the committed configuration files, checked without Docker.

docker-compose.yml: the services exist; the Airflow services share one image and one environment (the
`x-airflow-common` anchor) and wait for the init service; the project folders are mounted; only
placeholder secrets are committed. config/docker.yaml points at the stack's own warehouse service and
lake volume. config/example.yaml is a valid configuration that documents every setting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from pydantic import BaseModel

from pipelines.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKER_CONFIG = REPO / "config" / "docker.yaml"
EXAMPLE_CONFIG = REPO / "config" / "example.yaml"

AIRFLOW_RUNTIME = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
AIRFLOW_SERVICES = ("airflow-init", *AIRFLOW_RUNTIME)
REQUIRED = (*AIRFLOW_SERVICES, "airflow-db", "warehouse-db", "mailpit")
PROJECT_MOUNTS = {"./dags": "/opt/esn/dags", "./pipelines": "/opt/esn/pipelines", "./sql": "/opt/esn/sql",
                  "./expectations": "/opt/esn/expectations", "./config": "/opt/esn/config"}
PLACEHOLDER = re.compile(r"change-me|\$\{[A-Z0-9_]+:-(change-me)?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")
REAL_SECRET_SHAPES = re.compile(r"xox[abpr]-[0-9A-Za-z-]{10,}|ghp_[0-9A-Za-z]{20,}|AKIA[0-9A-Z]{16}|"
                                r"-----BEGIN [A-Z ]*PRIVATE KEY-----|sk-[0-9A-Za-z]{20,}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    out = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        out[source] = target
    return out


def test_compose_has_every_required_service(services: dict[str, Any]) -> None:
    assert set(REQUIRED) <= set(services)


def test_airflow_services_share_one_image_and_one_environment(services: dict[str, Any]) -> None:
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert images == {"esn-metrics-airflow:3.3.2"}
    # the anchor gives the long-running services the very same mapping, not four copies to keep in step
    common_env = services["airflow-scheduler"]["environment"]
    for name in AIRFLOW_RUNTIME:
        assert services[name]["environment"] is common_env, name
    init_env = services["airflow-init"]["environment"]
    assert {k: init_env[k] for k in common_env} == common_env
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", DOCKERFILE.read_text(), re.M)


def test_airflow_services_wait_for_the_init_service_and_the_databases(services: dict[str, Any]) -> None:
    for name in AIRFLOW_RUNTIME:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["airflow-db"]["condition"] == "service_healthy", name
        assert depends["warehouse-db"]["condition"] == "service_healthy", name
    assert "airflow-init" not in services["airflow-init"]["depends_on"]


def test_init_service_migrates_and_sets_up_the_admin_user(services: dict[str, Any]) -> None:
    script = "\n".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert "passwords.json" in script and "admin" in script
    env = services["airflow-init"]["environment"]
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].startswith("admin:")


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_mount_the_project_and_the_lake(services: dict[str, Any], name: str) -> None:
    mounts = _mounts(services[name])
    for source, target in PROJECT_MOUNTS.items():
        assert mounts.get(source) == target, f"{name} does not mount {source} at {target}"
        assert (REPO / source).is_dir()
    assert mounts.get("esn-lake") == str(load_settings(DOCKER_CONFIG).lake_dir)


def test_esn_config_of_the_stack_is_the_mounted_docker_yaml(services: dict[str, Any]) -> None:
    env = services["airflow-scheduler"]["environment"]
    assert env["ESN_CONFIG"] == "/opt/esn/config/docker.yaml"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/esn/dags"
    assert DOCKER_CONFIG.exists()


def test_docker_config_publishes_to_the_warehouse_service(services: dict[str, Any]) -> None:
    settings = load_settings(DOCKER_CONFIG)
    url = sa.engine.make_url(settings.warehouse_url)
    warehouse = services["warehouse-db"]["environment"]
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "warehouse-db" and url.port == 5432
    assert url.database == warehouse["POSTGRES_DB"]
    assert url.username == warehouse["POSTGRES_USER"]
    assert url.password == warehouse["POSTGRES_PASSWORD"] == "change-me"


def test_airflow_metadata_db_is_its_own_service(services: dict[str, Any]) -> None:
    url = sa.engine.make_url(services["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    metadata = services["airflow-db"]["environment"]
    assert url.host == "airflow-db"
    assert (url.username, url.password, url.database) == (
        metadata["POSTGRES_USER"], metadata["POSTGRES_PASSWORD"], metadata["POSTGRES_DB"])


def test_connections_point_to_the_smtp_catcher_and_hold_a_placeholder_key(services: dict[str, Any]) -> None:
    env = services["airflow-scheduler"]["environment"]
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert smtp["conn_type"] == "smtp" and smtp["host"] == "mailpit" and smtp["port"] == 1025
    assert "password" not in smtp
    key = json.loads(env["AIRFLOW_CONN_ESN_PSEUDONYM_KEY"])
    assert PLACEHOLDER.fullmatch(key["password"]), key["password"]


def test_no_real_secret_is_committed(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for var, value in (service.get("environment") or {}).items():
            if var.startswith("AIRFLOW_CONN_"):
                password = json.loads(value).get("password")
                assert password is None or PLACEHOLDER.fullmatch(password), f"{name}: {var}"
            elif SECRET_NAME.search(var) and "USERS" not in var and "PASSWORDS_FILE" not in var:
                assert value == "" or PLACEHOLDER.fullmatch(str(value)), f"{name}: {var}={value!r}"
            if var.endswith("SQL_ALCHEMY_CONN"):
                assert sa.engine.make_url(value).password == "change-me"
    for path in (COMPOSE, DOCKERFILE, DOCKER_CONFIG, EXAMPLE_CONFIG):
        assert not REAL_SECRET_SHAPES.search(path.read_text()), path


def test_example_config_is_valid_and_its_demo_options_too() -> None:
    from pipelines.sources.demo import DemoOptions

    settings = load_settings(EXAMPLE_CONFIG)
    demo = settings.source("demo")
    DemoOptions.model_validate(demo.options)
    assert settings.privacy.pseudonym_key_conn_id == "esn_pseudonym_key"


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for inner in (arg, *getattr(arg, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner.__name__ != "Tables":
                    names |= _field_names(inner, seen)
    return names


def test_example_config_documents_every_setting() -> None:
    text = EXAMPLE_CONFIG.read_text()
    missing = sorted(n for n in _field_names(Settings) if not re.search(rf"^[\s#-]*{re.escape(n)}:", text, re.M))
    assert not missing, f"config/example.yaml does not mention {missing}"
