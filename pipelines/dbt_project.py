"""The dbt project of `sql/` read without running dbt: its models as `pipelines.warehouse.Model` (for
suppression, the catalogue's lineage and the tests), their descriptions (for the publication's comments),
the vars of a run, and the generated `columns:` of the catalogue's tables in the properties YAML.

The project (sql/dbt_project.yml, sql/models/<layer>/*.sql and _<layer>.yml): staging views and internal
models in the staging and internal schemas, marts built and tested in the build schema. A model's
`config.meta` keeps the keys of the old SQL headers (grain, key, partition_column, owner, families,
family_total, group_size, shared_people, labels, sub_suppression, not_null): `pipelines.suppression` parses
them as before. Reading the YAML and the `ref()`/`source()` calls of the SQL is enough, and fast.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipelines.warehouse import LAYERS, SQL_DIR, Model, _check_ident

MODELS_DIR = "models"
_REF = re.compile(r"\{\{\s*ref\(\s*['\"]([a-z_][a-z0-9_]*)['\"]\s*\)\s*\}\}")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: 10x faster
_SOURCE = re.compile(r"\{\{\s*source\(\s*['\"]lake['\"]\s*,\s*['\"]([a-z_][a-z0-9_]*)['\"]\s*\)\s*\}\}")


def properties_file(layer: str, project_dir: Path = SQL_DIR) -> Path:
    """The properties YAML of a layer: sql/models/<layer>/_<layer>.yml."""
    return project_dir / MODELS_DIR / layer / f"_{layer}.yml"


def _properties(project_dir: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every model's properties entry, by name, with its layer."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for layer in LAYERS:
        path = properties_file(layer, project_dir)
        if not path.exists():
            continue
        for entry in (yaml.load(path.read_text(), Loader=_LOADER) or {}).get("models") or []:  # noqa: S506
            name = entry["name"]
            if name in out:
                raise ValueError(f"{path}: model {name} is also described in {out[name][0]}")
            out[name] = (layer, entry)
    return out


def _split(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [x.strip() for x in str(value or "").split(",") if x.strip()]


def discover_models(project_dir: Path = SQL_DIR) -> list[Model]:
    """The models of the dbt project in `project_dir`, in dependency order (layers first, then the models
    each one refs), as `warehouse.Model`: `sql` is the Jinja text, `depends_on` the models it refs and the
    lake tables it reads (`source('lake', ...)`), `meta` the YAML meta (string values, the old header
    names) with `description` and `materialized` added, as the old headers had them."""
    props = _properties(project_dir)
    models: dict[str, Model] = {}
    for layer in LAYERS:
        for path in sorted((project_dir / MODELS_DIR / layer).glob("*.sql")):
            name = _check_ident(path.stem)
            if name in models:
                raise ValueError(f"two models named {name}")
            if name not in props:
                raise ValueError(f"{path}: model {name} has no entry in {properties_file(layer, project_dir)}")
            prop_layer, entry = props[name]
            if prop_layer != layer:
                raise ValueError(f"{path}: model {name} is described in the {prop_layer} layer's YAML")
            sql = path.read_text()
            config = entry.get("config") or {}
            meta = {k: str(v) for k, v in (config.get("meta") or {}).items()}
            materialized = str(config.get("materialized", "table"))
            if materialized not in ("view", "table", "incremental"):
                raise ValueError(f"{path}: materialized must be view, table or incremental")
            partition_by = meta.get("partition_column") or None
            if materialized == "incremental" and not partition_by:
                raise ValueError(f"{path}: an incremental model needs meta.partition_column")
            depends = list(dict.fromkeys(_REF.findall(sql) + _SOURCE.findall(sql)))
            meta = {"model": name, **meta, "materialized": materialized}
            if entry.get("description"):
                meta["description"] = str(entry["description"])
            models[name] = Model(name=name, layer=layer, path=path, sql=sql, materialized=materialized,
                                 partition_by=partition_by, key=_split(meta.get("key")), depends_on=depends,
                                 meta=meta)
    missing = sorted(set(props) - set(models))
    if missing:
        raise ValueError(f"the properties YAML describes models without SQL: {missing}")
    ordered: list[Model] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"dependency cycle: {' -> '.join(chain + (name,))}")
        state[name] = 1
        for dep in models[name].depends_on:
            if dep in models:
                visit(dep, chain + (name,))
        state[name] = 2
        ordered.append(models[name])

    for layer in LAYERS:
        for m in models.values():
            if m.layer == layer:
                visit(m.name, ())
    return ordered


def model_descriptions(project_dir: Path = SQL_DIR) -> dict[str, tuple[str, dict[str, str]]]:
    """Every model's description and its columns' descriptions (those that have one), for the comments
    the publication puts on the published tables."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for name, (_layer, entry) in _properties(project_dir).items():
        cols = {str(c["name"]): str(c["description"]) for c in entry.get("columns") or [] if c.get("description")}
        out[name] = (str(entry.get("description") or ""), cols)
    return out


# ------------------------------------------------------------------------ columns from the catalogue
def catalogue_columns(catalogue: Path | None = None) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Per table of catalogue/metrics.yaml: its own columns' definitions and the shared columns'."""
    from pipelines.catalogue import CATALOGUE_FILE

    data = yaml.safe_load((catalogue or CATALOGUE_FILE).read_text())
    common = {str(c): str(m["definition"]) for c, m in (data.get("common_columns") or {}).items()}
    return {str(t): ({str(c): str(m["definition"]) for c, m in (spec.get("columns") or {}).items()}, common)
            for t, spec in (data.get("tables") or {}).items()}


def sync_columns(entry: dict[str, Any], own: Mapping[str, str], common: Mapping[str, str]) -> dict[str, Any]:
    """A model's properties entry with its `columns:` described by the catalogue: every column already
    listed keeps its place and tests and gets the catalogue's definition (its own, else the shared one);
    the catalogue's own columns not listed yet are appended; a listed column the catalogue does not know
    keeps its hand description. Everything else of the entry is kept."""
    listed: list[dict[str, Any]] = [dict(c) for c in entry.get("columns") or []]
    names = [str(c["name"]) for c in listed]
    for own_col in own:
        if own_col not in names:
            listed.append({"name": own_col})
            names.append(own_col)
    out_cols: list[dict[str, Any]] = []
    for col in listed:
        name = str(col["name"])
        definition = own.get(name, common.get(name))
        new: dict[str, Any] = {"name": name}
        if definition is not None:
            new["description"] = definition
        elif col.get("description"):
            new["description"] = col["description"]
        new.update({k: v for k, v in col.items() if k not in ("name", "description")})
        out_cols.append(new)
    return {**entry, "columns": out_cols}


def render_properties(models: list[dict[str, Any]]) -> str:
    header = ("# Generated in part: the `columns:` of the tables of catalogue/metrics.yaml are rewritten from it by\n"
              "# `python -m pipelines.catalogue` (pipelines.dbt_project.write_properties); edit their definitions\n"
              "# there. Everything else here is hand-written.\n")
    return header + yaml.safe_dump({"version": 2, "models": models}, sort_keys=False, width=110,
                                   allow_unicode=True)


def synced_properties(project_dir: Path = SQL_DIR, catalogue: Path | None = None) -> dict[Path, str]:
    """The text every layer's properties YAML should have (catalogue columns regenerated)."""
    cat = catalogue_columns(catalogue)
    out: dict[Path, str] = {}
    for layer in LAYERS:
        path = properties_file(layer, project_dir)
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text()) or {}
        entries = [sync_columns(e, *cat[e["name"]]) if e["name"] in cat else e for e in data.get("models") or []]
        out[path] = render_properties(entries)
    return out


def write_properties(project_dir: Path = SQL_DIR, catalogue: Path | None = None) -> list[Path]:
    """Rewrite the catalogue tables' columns of the properties YAML; returns the files that changed."""
    changed = []
    for path, text in synced_properties(project_dir, catalogue).items():
        if path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed
