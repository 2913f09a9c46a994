"""The metric catalogue: `catalogue/metrics.yaml` (sections 1, 2, 4) plus, when it exists, the network
package's `pipelines/network/catalogue.py: COLUMNS` (section 3), as one list of entries, and the generated
`docs/metrics.md`.

Run `python -m pipelines.catalogue` to regenerate the docs and the column descriptions of the catalogue's
tables in the dbt properties YAML (`pipelines.dbt_project.write_properties`). This module reads YAML and
writes Markdown and that YAML only.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE_FILE = ROOT / "catalogue" / "metrics.yaml"
DOCS_FILE = ROOT / "docs" / "metrics.md"


@dataclass(frozen=True)
class Entry:
    name: str
    table: str
    column: str
    definition: str
    grain: str
    inputs: list[str] = field(default_factory=list)
    version: int = 1
    anchor: str = ""
    section: str = ""
    internal: bool = False
    shared: bool = False  # from common_columns: applies only where the table has the column

    @property
    def doc_id(self) -> str:
        """The HTML anchor of this metric in docs/metrics.md (emails and BI tools link to it)."""
        return f"{self.table}__{self.column}"


def load_entries(path: Path = CATALOGUE_FILE, *, include_network: bool = True) -> list[Entry]:
    data = yaml.safe_load(path.read_text())
    common: dict[str, dict[str, Any]] = data.get("common_columns", {})
    version = int(data.get("version", 1))
    entries: list[Entry] = []
    for table, spec in data["tables"].items():
        cols = dict(spec.get("columns", {}))
        for col, meta in cols.items():
            if not meta or not meta.get("definition"):
                raise ValueError(f"{path}: {table}.{col} has no definition")
            entries.append(Entry(name=f"{table}.{col}", table=table, column=col, definition=meta["definition"],
                                 grain=spec.get("grain", ""), inputs=list(spec.get("inputs", [])),
                                 version=int(meta.get("version", spec.get("version", version))),
                                 anchor=str(meta.get("anchor", "")), section=str(spec.get("section", "")),
                                 internal=bool(spec.get("internal", False))))
        for col, meta in common.items():
            if col not in cols:
                entries.append(Entry(name=f"{table}.{col}", table=table, column=col,
                                     definition=meta["definition"], grain=spec.get("grain", ""),
                                     inputs=list(spec.get("inputs", [])), version=version,
                                     section=str(spec.get("section", "")), internal=True, shared=True))
    if include_network:
        entries += network_entries()
    return entries


def network_entries() -> list[Entry]:
    """Entries from pipelines/network/catalogue.py COLUMNS, if that module exists. Accepted shapes:
    {table: {column: definition-or-dict}} or a list of dicts with table, column, definition."""
    try:
        module = importlib.import_module("pipelines.network.catalogue")
    except ModuleNotFoundError:
        return []
    columns = getattr(module, "COLUMNS", None) or {}
    out: list[Entry] = []
    items: list[tuple[str, str, Any]] = []
    if isinstance(columns, dict):
        for table, cols in columns.items():
            for col, meta in (cols or {}).items():
                items.append((table, col, meta))
    else:
        for row in columns:
            items.append((row["table"], row["column"], row))
    for table, col, meta in items:
        meta = meta if isinstance(meta, dict) else {"definition": str(meta)}
        out.append(Entry(name=f"{table}.{col}", table=table, column=col,
                         definition=str(meta.get("definition", meta.get("description", ""))),
                         grain=str(meta.get("grain", "")), inputs=list(meta.get("inputs", [])),
                         version=int(meta.get("version", 1)), anchor=str(meta.get("anchor", "")),
                         section="3", internal=table.startswith("fct_")))
    return out


def network_rules() -> list[str]:
    """The network package's section of every rule and threshold with its default and setting
    (`pipelines.network.catalogue.render_rules`), as Markdown lines; none without that module."""
    try:
        module = importlib.import_module("pipelines.network.catalogue")
    except ModuleNotFoundError:
        return []
    render = getattr(module, "render_rules", None)
    return list(render()) if render is not None else []


def usage_segment_rules() -> list[str]:
    """The usage-segment thresholds (`usage_segments:` of the configuration, pipelines.config.UsageSegments)
    with their defaults and the rule in words, as Markdown lines."""
    from pipelines.config import UsageSegments

    d = UsageSegments.model_validate({})
    lines = ["## Usage segments", "",
             "fct_person_usage_daily gives each person a usage segment every day, over the twelve 7-day blocks "
             "ending on the day (vivainsights identify_usage_segments, 12-week version); mart_adoption_daily "
             "counts them. Set in the configuration's `usage_segments:` section; a set that breaks the nesting "
             "of the segments (power below habitual, or below novice) is refused naming the key.", "",
             "| setting | default | meaning |", "|---|---|---|"]
    for name, f in UsageSegments.model_fields.items():
        lines.append(f"| usage_segments.{name} | {getattr(d, name):g} | {f.description} |")
    lines += ["", "With the defaults, tested in this order:", "",
              f"- power: at least {d.power_actions_per_week:g} actions a week on average and active in at least "
              f"{d.power_active_weeks} of the 12 weeks;",
              f"- habitual: active in at least {d.habitual_active_weeks} of the 12 weeks;",
              f"- novice: at least {d.novice_actions_per_week:g} action(s) a week on average;",
              "- low: any action in the 12 weeks;", "- non-user: none (absent from fct_person_usage_daily).", "",
              "An action is an event of a per-event source, or a count of an aggregate usage report (Teams channel "
              "and chat messages, Viva Engage messages posted and likes) for a product whose messages no per-event "
              "source of the configuration loads (Teams: msgraph, chats with its include_chats; Viva Engage: "
              "yammer, yammer_export): never both for one product. A change applies to the days a run "
              "publishes (rebuild the history to apply it to every day).", ""]
    return lines


#: what the network stage reads (pipelines.network_stage) for the tables it builds (section 3)
NETWORK_STAGE_READS = ("int_interactions", "stg_people", "int_people_history", "fct_person_daily_activity")
_LAKE_TABLE = re.compile(r"\blake_[a-z_]+\b")
#: the people model: whatever reaches it is computed from "people" (its own inputs are who is counted)
PEOPLE_MODEL = "stg_people"


def lake_lineage(table: str, inputs: list[str], models: list[Any]) -> set[str]:
    """The lake tables a published table is computed from, by the SQL models' dependency graph: the
    model's own `depends_on` (or, for a table Python builds, the models its catalogue inputs name, and
    what the network stage reads for the network tables), followed down to the `lake_*` tables the
    staging models select from (the people model counts as "people": its inputs say who is counted,
    not what is measured)."""
    by_name = {m.name: m for m in models}
    todo = [table] if table in by_name else [m.group(0) for i in inputs if (m := re.match(r"[a-z_]+", i))]
    if table.startswith(("mart_network", "fct_network", "fct_person_network")) or "fct_person_network" in todo:
        todo += NETWORK_STAGE_READS
    found: set[str] = set()
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        if name == PEOPLE_MODEL:
            found.add("lake_people")
            continue
        found |= set(_LAKE_TABLE.findall(by_name[name].sql))
        todo += by_name[name].depends_on
    return found


def _source_kinds() -> tuple[list[str], list[str]]:
    """(per-event source kinds, aggregate-only kinds) of the source registry (`AGGREGATE_ONLY`)."""
    from pipelines import sources

    aggregate = sorted(k for k in sources.REGISTRY if getattr(sources.load(k), "AGGREGATE_ONLY", False))
    return sorted(k for k in sources.REGISTRY if k not in aggregate), aggregate


def computed_from(lake_tables: set[str], kinds: tuple[list[str], list[str]]) -> str:
    """What a table is computed from, in words, from its lake tables."""
    events, aggregate = kinds
    parts = []
    if "lake_activities" in lake_tables:
        parts.append(f"per-event activities of the sources of kind {', '.join(events)}")
    if "lake_usage_daily" in lake_tables:
        parts.append(f"aggregate usage reports ({', '.join(aggregate)})")
    if lake_tables & {"lake_people", "lake_people_history"}:
        parts.append("people (HR directories, platform listings, and the people seen in activities)")
    if "lake_containers" in lake_tables:
        parts.append("containers")
    if not parts:
        return ""
    text = "; ".join(parts)
    if "lake_activities" in lake_tables and "lake_usage_daily" not in lake_tables:
        text += "; aggregate usage reports excluded"
    elif "lake_usage_daily" in lake_tables and "lake_activities" not in lake_tables:
        text += "; per-event activities excluded"
    return text


def load_event_times(path: Path = CATALOGUE_FILE) -> dict[str, Any]:
    """The `event_times` section of the catalogue: the dating rule and each platform's event times."""
    return dict(yaml.safe_load(path.read_text()).get("event_times") or {})


def render_event_rules(event_times: dict[str, Any]) -> list[str]:
    """docs/metrics.md's section on when events are dated (from the catalogue) and the question heuristic
    (every setting of the configuration's `questions:` section with its default, from
    `pipelines.config.QuestionRules`), as Markdown lines."""
    lines = ["## Event times and questions", ""]
    if event_times:
        lines += [f"**Event times.** {event_times.get('rule', '')}", "", "| platform | dated at |", "|---|---|"]
        lines += [f"| {name} | {str(text).replace('|', '/')} |"
                  for name, text in (event_times.get("platforms") or {}).items()]
        lines.append("")
    try:
        from pipelines.config import QuestionRules
    except ImportError:  # pragma: no cover - the docs can be rendered without the pipeline's dependencies
        return lines
    import inspect
    import json

    doc = " ".join(inspect.cleandoc(QuestionRules.__doc__ or "").split())
    lines += [f"**Questions** (`is_question`: the questions of fct_posts and of the knowledge-sharing marts). {doc}",
              "", "| setting | default | what it does |", "|---|---|---|"]
    defaults = QuestionRules.model_validate({}).model_dump()
    for name, spec in QuestionRules.model_fields.items():
        text = (spec.description or "").replace("|", "/")
        lines.append(f"| `questions.{name}` | `{json.dumps(defaults[name], ensure_ascii=False)}` | {text} |")
    return [*lines, ""]


def load_suppression(path: Path = CATALOGUE_FILE) -> dict[str, str]:
    """The `suppression` section of the catalogue: the rule, its variants, where it applies."""
    section = yaml.safe_load(path.read_text()).get("suppression") or {}
    return {str(k): str(v) for k, v in section.items()}


_SUPPRESSION_HEADINGS = {
    "primary": "Primary suppression", "complementary": "Complementary suppression",
    "shared_people": "Cells that share people", "categories": "Counts of people by category",
    "layers": "Second flags", "overlapping_families": "Overlapping families", "where": "Where it is applied",
    "noise": "Noise",
}


def render_suppression(rule: dict[str, str]) -> list[str]:
    """The rule (from the catalogue) and every published table's families (from the dbt marts' meta and
    pipelines.suppression), as Markdown lines."""
    if not rule:
        return []
    lines = ["## Suppression", "", f"Version {rule.get('version', '1')}. What it protects and what it does not: "
             "[privacy.md](privacy.md#what-suppression-protects-and-what-it-does-not).", ""]
    for key, title in _SUPPRESSION_HEADINGS.items():
        if key in rule:
            lines += [f"**{title}.** {rule[key]}", ""]
    try:
        from pipelines import suppression
    except ImportError:  # pragma: no cover - the docs can be rendered without the pipeline's dependencies
        return lines
    lines += ["### Families per published table", "",
              "| table | one family | cells | total | group size | applied |", "|---|---|---|---|---|---|"]
    for fam in suppression.families():
        sizes = "; ".join(f"{lyr.flag}: {lyr.size_from or lyr.size}"
                          + (f" ({', '.join(lyr.measures)})" if lyr.measures else "") for lyr in fam.layers)
        cells = ", ".join(fam.cell) + (f" by {fam.category}" if fam.category else "")
        extra = []
        if fam.shared_people:
            extra.append("cells sharing people: " + ", ".join(fam.shared_people))
        if fam.overlap:
            extra.append("overlap audit")
        if fam.note:
            extra.append(fam.note)
        applied = ("publish" if fam.applied == "publish" else "when built") + (
            f" ({'; '.join(extra)})" if extra else "")
        lines.append(f"| {fam.table} | {', '.join(fam.family)} | {cells} | {fam.total.replace('|', '/')} | "
                     f"{sizes} | {applied} |")
    lines += ["", "Published tables without a family:", ""]
    lines += [f"- {table}: {why}" for table, why in sorted(suppression.NO_FAMILY.items())]
    return lines + [""]


def render_markdown(entries: list[Entry], rule: dict[str, str] | None = None) -> str:
    lines = ["# Metric catalogue", "",
             "Generated by `python -m pipelines.catalogue` from `catalogue/metrics.yaml` (and the network "
             "package's catalogue); do not edit by hand.", ""]
    lines += render_suppression(rule or {})
    lines += network_rules()
    lines += render_event_rules(load_event_times())
    lines += usage_segment_rules()
    lines += ["## Shared columns", "", "| column | definition |", "|---|---|"]
    seen: set[str] = set()
    for e in entries:
        if e.shared and e.column not in seen:
            seen.add(e.column)
            lines.append(f"| {e.column} | {e.definition} |")
    lines.append("")
    by_table: dict[str, list[Entry]] = {}
    for e in entries:
        by_table.setdefault(e.table, []).append(e)
    try:
        from pipelines import dbt_project

        models: list[Any] = dbt_project.discover_models()
        kinds = _source_kinds()
    except ImportError:  # pragma: no cover - the docs can be rendered without the pipeline's dependencies
        models, kinds = [], ([], [])
    for table in sorted(by_table, key=lambda t: (by_table[t][0].section, t)):
        rows = by_table[table]
        first = rows[0]
        kind = "internal (person-level)" if table.startswith("fct_") else "published"
        lines += [f"## {table}", "", f"Section {first.section}; {kind}; grain: {first.grain}; "
                  f"inputs: {', '.join(first.inputs)}", ""]
        source = computed_from(lake_lineage(table, first.inputs, models), kinds) if models else ""
        if source:
            lines += [f"Computed from: {source}.", ""]
        lines += ["| column | definition | anchor | version |", "|---|---|---|---|"]
        for e in rows:
            if e.shared:
                continue
            lines.append(f'| <a name="{e.doc_id}"></a>{e.column} | {e.definition.replace("|", "/")} '
                         f"| {e.anchor} | {e.version} |")
        lines.append("")
    return "\n".join(lines)


def write_docs(path: Path = DOCS_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(load_entries(), load_suppression()))
    return path


def write_model_columns() -> list[Path]:
    """The `columns:` of the catalogue's tables in the dbt properties YAML (sql/models/<layer>/_<layer>.yml),
    regenerated from catalogue/metrics.yaml; returns the files that changed."""
    from pipelines import dbt_project

    return dbt_project.write_properties()


if __name__ == "__main__":  # pragma: no cover
    print(write_docs())
    for changed in write_model_columns():
        print(changed)
