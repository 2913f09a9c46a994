"""The metric catalogue: `catalogue/metrics.yaml` (sections 1, 2, 4) plus, when it exists, the network
package's `pipelines/network/catalogue.py: COLUMNS` (section 3), as one list of entries, and the generated
`docs/metrics.md`.

Run `python -m pipelines.catalogue` to regenerate the docs. This module reads YAML and writes Markdown only.
"""

from __future__ import annotations

import importlib
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
    """The rule (from the catalogue) and every published table's families (from the SQL headers and
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
    for table in sorted(by_table, key=lambda t: (by_table[t][0].section, t)):
        rows = by_table[table]
        first = rows[0]
        kind = "internal (person-level)" if table.startswith("fct_") else "published"
        lines += [f"## {table}", "", f"Section {first.section}; {kind}; grain: {first.grain}; "
                  f"inputs: {', '.join(first.inputs)}", "",
                  "| column | definition | anchor | version |", "|---|---|---|---|"]
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


if __name__ == "__main__":  # pragma: no cover
    print(write_docs())
