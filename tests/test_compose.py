"""The Docker Compose stack and the committed configuration files, checked without Docker.

docker-compose.yml: the services exist; the Airflow services share one image and one environment (the
`x-airflow-common` anchor) and wait for the init service; the project folders are mounted; no secret is
committed and the stack refuses to start without the required ones (`${VAR:?...}`, checked by
interpolating the file as Compose does); the warehouse is an Airflow connection; the init service creates
every pool the DAGs use and queues the demo organisation's last days; the DAGs are not paused at
creation. config/docker.yaml names the stack's warehouse connection and lake volume, and its demo source
delivers the days a scheduler asks for. config/example.yaml is a valid configuration that documents every
setting.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from pydantic import BaseModel

from pipelines import secrets, warehouse
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
#: the secrets a user must set (in .env): the stack refuses to start without them
REQUIRED_SECRETS = ("ESN_PSEUDONYM_KEY", "ESN_WAREHOUSE_PASSWORD", "ESN_JWT_SECRET", "ESN_FERNET_KEY",
                    "ESN_ADMIN_PASSWORD")
REQUIRED_REF = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):\?[^}]+\}$")
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
    # the scheduler's tasks report to the api-server's execution API: a try started before it answers fails
    assert services["airflow-scheduler"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert "healthcheck" in services["airflow-apiserver"]


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


def test_docker_config_publishes_to_the_warehouse_service_through_a_connection(services: dict[str, Any]) -> None:
    settings = load_settings(DOCKER_CONFIG)
    assert settings.warehouse.conn_id == "esn_warehouse"
    assert "warehouse_url" not in yaml.safe_load(DOCKER_CONFIG.read_text())  # no URL, no password in the file
    env = interpolate(services["airflow-scheduler"]["environment"], FAKE_SECRETS)
    conn = secrets.parse_connection(settings.warehouse.conn_id, env[secrets.env_var(settings.warehouse.conn_id)])
    url = sa.engine.make_url(warehouse.url_from_connection(conn))
    db = interpolate(services["warehouse-db"]["environment"], FAKE_SECRETS)
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "warehouse-db" and url.port == 5432
    assert url.database == db["POSTGRES_DB"]
    assert url.username == db["POSTGRES_USER"]
    assert url.password == db["POSTGRES_PASSWORD"] == FAKE_SECRETS["ESN_WAREHOUSE_PASSWORD"]


def test_airflow_metadata_db_is_its_own_service(services: dict[str, Any]) -> None:
    url = sa.engine.make_url(services["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    metadata = services["airflow-db"]["environment"]
    assert url.host == "airflow-db"
    assert (url.username, url.password, url.database) == (
        metadata["POSTGRES_USER"], metadata["POSTGRES_PASSWORD"], metadata["POSTGRES_DB"])


def test_connections_point_to_the_smtp_catcher_and_read_the_key_from_the_environment(
        services: dict[str, Any]) -> None:
    env = services["airflow-scheduler"]["environment"]
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert smtp["conn_type"] == "smtp" and smtp["host"] == "mailpit" and smtp["port"] == 1025
    assert "password" not in smtp
    key = json.loads(env["AIRFLOW_CONN_ESN_PSEUDONYM_KEY"])
    assert REQUIRED_REF.match(key["password"]).group("var") == "ESN_PSEUDONYM_KEY"
    resolved = json.loads(interpolate(env, FAKE_SECRETS)["AIRFLOW_CONN_ESN_PSEUDONYM_KEY"])
    assert resolved["password"] == FAKE_SECRETS["ESN_PSEUDONYM_KEY"]


def test_every_secret_is_required_and_has_no_fallback(services: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for var in REQUIRED_SECRETS:
        uses = re.findall(rf"(?<!\$)\$\{{{var}(:?[-?])?[^}}]*\}}", text)  # not $${...}: the container's
        assert uses, f"{var} is not used by docker-compose.yml"
        assert set(uses) == {":?"}, f"{var} must be ${{{var}:?...}} everywhere (a fallback was found)"
    # every Airflow service, the init service and the warehouse refuse to start without them
    for name in (*AIRFLOW_SERVICES, "warehouse-db"):
        missing = set()
        for var in REQUIRED_SECRETS:
            env = {k: v for k, v in FAKE_SECRETS.items() if k != var}
            try:
                interpolate(services[name].get("environment") or {}, env)
            except MissingVariable as exc:
                missing.add(exc.var)
        expected = {"ESN_WAREHOUSE_PASSWORD"} if name == "warehouse-db" else (
            set(REQUIRED_SECRETS) if name == "airflow-init" else set(REQUIRED_SECRETS) - {"ESN_ADMIN_PASSWORD"})
        assert missing == expected, name
    assert "change-me" not in text.replace(services["airflow-db"]["environment"]["POSTGRES_PASSWORD"], "")


def test_only_the_unpublished_metadata_db_keeps_a_placeholder_password(services: dict[str, Any]) -> None:
    # reachable from the compose network only: it publishes no port
    assert "ports" not in services["airflow-db"]
    url = sa.engine.make_url(services["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert url.password == services["airflow-db"]["environment"]["POSTGRES_PASSWORD"] == "change-me"


def test_no_real_secret_is_committed(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for var, value in (service.get("environment") or {}).items():
            if var.startswith("AIRFLOW_CONN_"):
                password = json.loads(value).get("password")
                assert password is None or REQUIRED_REF.match(password), f"{name}: {var}"
            elif SECRET_NAME.search(var) and "USERS" not in var and "PASSWORDS_FILE" not in var:
                assert REQUIRED_REF.match(str(value)) or (name == "airflow-db" and var == "POSTGRES_PASSWORD"), \
                    f"{name}: {var}={value!r}"
    for path in (COMPOSE, DOCKERFILE, DOCKER_CONFIG, EXAMPLE_CONFIG):
        assert not REAL_SECRET_SHAPES.search(path.read_text()), path


def _init_script(services: dict[str, Any]) -> str:
    return "\n".join(services["airflow-init"]["command"])


def test_init_creates_every_pool_the_dags_use(services: dict[str, Any]) -> None:
    created = dict(re.findall(r"^\s*airflow pools set (\w+) (\d+) ", _init_script(services), re.M))
    used = {m for path in (REPO / "dags").glob("*.py")
            for m in re.findall(r'^[A-Z_]*POOL = "(\w+)"', path.read_text(), re.M)}
    assert {"esn_warehouse", "esn_extract"} <= used
    assert used <= set(created), f"pools used by dags/ but not created by airflow-init: {used - set(created)}"
    assert created["esn_warehouse"] == "1"  # one long warehouse writer at a time
    assert created["esn_extract"] == "4"


def test_dags_run_once_parsed_and_init_queues_the_demo_history(services: dict[str, Any]) -> None:
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
    script = _init_script(services)
    # a backfill needs the serialised DAG; one day at a time; it ends before yesterday, the scheduled run's day
    assert script.index("airflow dags reserialize") < script.index("airflow backfill create")
    backfill = re.search(r"airflow backfill create (.+?)\n\s*touch", script, re.S)
    assert backfill, script
    assert "--dag-id esn_daily" in backfill.group(1) and "--max-active-runs 1" in backfill.group(1)
    assert '--to-date "$$(date -u -d "-2 days" +%F)"' in backfill.group(1)
    # once per lake volume: a second `up` must not fail on an existing backfill
    assert re.search(r'\[ ! -e "\$\$marker" \]', script) and "marker=/data/lake/" in script
    assert int(interpolate(services["airflow-init"]["environment"], FAKE_SECRETS)["ESN_DEMO_BACKFILL_DAYS"]) > 0


def test_the_stacks_demo_source_delivers_the_days_a_scheduler_asks_for(tmp_path: Path) -> None:
    """config/docker.yaml's demo source (smaller) lands yesterday's activity, and rerunning the day alone
    after a range that held it lands the very same bytes."""
    from pipelines import jobs, lake

    demo = load_settings(DOCKER_CONFIG).source("demo")
    assert demo.options.get("rolling") is True
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    options = {**demo.options, "people": 60}
    settings = load_settings(None, lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path}/w.duckdb",
                             sources=[{"name": "demo", "kind": "demo", "options": options}])

    def landed() -> bytes:
        path = lake.raw_dir(settings.lake_dir, "demo", "activities")
        files = sorted(p for p in path.rglob("*.parquet") if yesterday.isoformat() in str(p))
        assert files, f"no activity landed for {yesterday} under {path}"
        return b"".join(p.read_bytes() for p in files)

    summary = jobs.extract(settings, "demo", jobs.Interval(yesterday - dt.timedelta(days=2), yesterday),
                           allow_demo_key=True)
    assert summary["rows"]["activities"] > 0 and summary["days"] == 3
    first = landed()
    summary = jobs.extract(settings, "demo", jobs.Interval(yesterday, yesterday), allow_demo_key=True)
    assert summary["days"] == 1
    assert landed() == first


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


# ------------------------------------------------------------------ Compose's variable interpolation
#: values for the required secrets in the tests (not secrets: never used outside them)
FAKE_SECRETS = {var: f"test{var.lower().replace('_', '')}" for var in REQUIRED_SECRETS}


class MissingVariable(KeyError):
    def __init__(self, var: str) -> None:
        super().__init__(var)
        self.var = var


_REF = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                  r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """`value` (a string, or a mapping or list of them) as Compose interpolates it: `$$` is `$`,
    `${VAR}`/`$VAR`, `${VAR:-default}` (unset or empty) and `${VAR-default}` (unset), `${VAR:?err}` and
    `${VAR?err}` raise `MissingVariable` (Compose refuses to start)."""
    if isinstance(value, Mapping):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        current = env.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":?", "?") and unset:
            raise MissingVariable(name)
        if op in (":-", "-") and unset:
            return arg
        return current or ""

    return _REF.sub(sub, value)


def test_interpolation_follows_compose() -> None:
    env = {"A": "1", "E": ""}
    assert interpolate("$$A ${A} $A ${E:-d} ${E-d} ${U:-d} ${A:?x}", env) == "$A 1 1 d  d 1"
    with pytest.raises(MissingVariable):
        interpolate("${E:?must be set}", env)
