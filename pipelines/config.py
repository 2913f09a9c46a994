"""Typed configuration, validated at the boundary.

One YAML file (or the defaults) describes where the lake and the warehouse are, which sources to
extract, and the privacy settings. Errors name the bad field (`sources.0.options.people: ...`).
Secrets never live here: only the *names* of environment variables or Airflow connections that hold them.

`load_settings` is fast and touches nothing but the file: the YAML (a key given twice in a mapping is an
error, `UniqueKeyLoader`), types and ranges, no NaN or infinity anywhere, known alert-threshold names.
What needs the file system or other files (the opt-out file, source options, business-outcome files, the
reports' catalogue and names file) is `Settings.check_runtime()`, which `esn check-config` runs.
"""

from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipelines.errors import ConfigError
from pipelines.network.rules import SET_ELSEWHERE, NetworkRules
from pipelines.reports_config import ReportsConfig
from pipelines.topics import TopicRules

__all__ = ["ConfigError", "DuplicateKeyError", "Settings", "SourceConfig", "UniqueKeyLoader", "load_settings",
           "yaml_load"]

CONFIG_ENV = "ESN_CONFIG"
#: the default alert thresholds (their names are the only ones `alert_thresholds` may override)
ALERT_THRESHOLDS_FILE = Path(__file__).resolve().parent.parent / "sql" / "alert_thresholds.yaml"


# --- YAML ---------------------------------------------------------------------------------------------
class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives the same key twice (PyYAML would keep the last one without a word)."""

    def __init__(self, path: tuple[str, ...], line: int, first_line: int):
        self.path, self.line, self.first_line = path, line, first_line
        super().__init__(f"{self.where}: given twice (line {first_line} and line {line}); keep one")

    @property
    def where(self) -> str:
        return ".".join(self.path)


class UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that raises `DuplicateKeyError` (naming the key's path and lines) on a mapping
    key given twice."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_unique_keys(node, (), set())
        return super().construct_document(node)


def _check_unique_keys(node: yaml.Node, path: tuple[str, ...], visited: set[int]) -> None:
    if id(node) in visited:  # an alias met again (or a recursive one)
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, Any], int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _check_unique_keys(value_node, path, visited)
                continue
            name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if ident in first:
                    raise DuplicateKeyError((*path, name), line, first[ident])
                first[ident] = line
            _check_unique_keys(value_node, (*path, name), visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique_keys(item, (*path, str(i)), visited)


def yaml_load(text: str) -> Any:
    """`yaml.safe_load` that refuses duplicate mapping keys (`DuplicateKeyError`, a `yaml.YAMLError`)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _thresholds_yaml(path: Path) -> Any:
    try:
        return yaml_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: {exc}") from None


@functools.lru_cache(maxsize=4)
def alert_threshold_names(path: Path = ALERT_THRESHOLDS_FILE) -> frozenset[str]:
    data = _thresholds_yaml(path)
    return frozenset(str(k) for k in data) if isinstance(data, dict) else frozenset()


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_alert_thresholds(path: Path = ALERT_THRESHOLDS_FILE,
                          overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The alert thresholds: the YAML defaults with `overrides` on top (`pipelines.metrics.thresholds`
    binds them). Unknown override names, a name given twice in the file, and values that are not finite
    numbers are `ValueError`s."""
    data = _thresholds_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of threshold names to numbers")
    for key, value in data.items():
        if not _finite_number(value):
            raise ValueError(f"{path}: threshold {key!r} must be a finite number, got {value!r}")
    for key, value in (overrides or {}).items():
        if key not in data:
            raise ValueError(f"unknown alert threshold {key!r} (known: {sorted(data)})")
        if not _finite_number(value):
            raise ValueError(f"alert threshold {key!r} must be a finite number, got {value!r}")
        data[key] = value
    return data


class _Strict(BaseModel):
    # no NaN or infinity in any number: a NaN threshold silently disables its alert
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class WarehouseSchemas(_Strict):
    """The warehouse's schemas (pipelines.warehouse.Schemas): published marts, person-level and internal
    tables, lake and staging, and the build schema the marts are built and tested in before publication."""

    marts: str = "esn_marts"
    internal: str = "esn_internal"
    staging: str = "esn_staging"
    build: str = "esn_build"

    @model_validator(mode="after")
    def _distinct_idents(self) -> WarehouseSchemas:
        names = [self.marts, self.internal, self.staging, self.build]
        for n in names:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", n):
                raise ValueError(f"warehouse schema name {n!r} must be lower-case letters, digits and _")
        if len(set(names)) != 4:
            raise ValueError(f"the four warehouse schemas need four different names, got {names}")
        return self


class WarehouseConfig(_Strict):
    """What the warehouse publishes and to whom (the URL is `warehouse_url`)."""

    schemas: WarehouseSchemas = Field(default_factory=lambda: WarehouseSchemas.model_validate({}))
    bi_roles: list[str] = Field(
        default_factory=list,
        description="PostgreSQL roles of the BI tools: granted usage of the marts schema and select on its tables "
                    "at every publish, and nothing else (the roles must exist; DuckDB has no roles)")
    published_duckdb: Path | None = Field(
        default=None,
        description="DuckDB warehouse only: the file BI tools open, the published marts alone, replaced "
                    "atomically at each publish (default: published/esn_marts.duckdb beside the warehouse file)")
    conn_id: str | None = Field(
        default=None,
        description="Airflow connection holding the warehouse (its URI: host, port, login, password, schema "
                    "as the database; extra `{\"driver\": \"psycopg\"}` by default for postgres). When set it "
                    "takes precedence over `warehouse_url`; outside Airflow the connection is read from the "
                    "environment variable AIRFLOW_CONN_<CONN_ID> (a URI or Airflow's JSON form). Keeps the "
                    "password out of the YAML")
    duckdb_storage_version: str = Field(
        default="v1.0.0",
        description="storage version of the published DuckDB file: v1.0.0 is readable by DuckDB 1.0 and later")

    @field_validator("bi_roles")
    @classmethod
    def _role_idents(cls, value: list[str]) -> list[str]:
        for role in value:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", role):
                raise ValueError(f"BI role {role!r} must be lower-case letters, digits and _")
        return value


class PrivacyConfig(_Strict):
    min_group_size: int = Field(5, ge=1, description="published aggregates over fewer people are suppressed")
    pseudonym_key_env: str = "ESN_PSEUDONYM_KEY"
    pseudonym_key_conn_id: str = "esn_pseudonym_key"
    opt_out_file: Path | None = Field(
        None, description="file of emails or person keys (one a line) whose data is dropped everywhere"
    )
    allow_named_leaderboards: bool = False


Severity = Literal["blocking", "warning"]


class SourceQuality(_Strict):
    """Per-source overrides of the `quality` severities (unset: the global setting)."""

    volume_drift: Severity | None = None
    empty_day: Severity | None = None
    freshness: Severity | None = None
    freshness_max_lag_hours: float | None = Field(None, gt=0)


class SourceConfig(_Strict):
    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    kind: str
    enabled: bool = True
    conn_id: str | None = Field(
        None, description="Airflow connection holding this source's credentials (token in the password; "
                          "Graph: client id in login, secret in password, tenant_id in extra)")
    options: dict[str, Any] = Field(default_factory=dict)
    quality: SourceQuality = Field(default_factory=lambda: SourceQuality.model_validate({}),
                                   description="this source's overrides of the global `quality` severities")


class QualityConfig(_Strict):
    drift_window_days: int = Field(14, ge=1)
    drift_tolerance: float = Field(0.6, gt=0, description="allowed relative deviation from the recent median")
    volume_drift: Literal["blocking", "warning"] = Field(
        "blocking", description="a day far below its usual volume rejects the batch (blocking) or is only "
                                "reported (warning); a surge is always only reported")
    empty_day: Literal["blocking", "warning"] = Field(
        "blocking", description="a day on which a source delivered nothing although the same weekday had "
                                "activity in at least `empty_day_min_weeks` of the previous weeks of the drift "
                                "window: rejects the batch (blocking) or is reported as not delivered "
                                "(warning), never as a quiet day")
    empty_day_min_weeks: int = Field(2, ge=1, description="weeks of history (same weekday, with activity) "
                                                          "before an empty day counts as not delivered")
    empty_day_min_events: int = Field(
        10, ge=1, description="activities each of those same weekdays must have had: a source that sends a "
                              "handful of events that weekday can be empty by chance (not a missing delivery)")
    freshness: Literal["blocking", "warning"] = Field(
        "warning", description="the newest activity of a batch is older than its end by more than "
                               "`freshness_max_lag_hours` (a source that stopped delivering mid-batch)")
    freshness_max_lag_hours: float = Field(36.0, gt=0)
    completeness_warn_below: float = Field(
        0.98, ge=0.0, le=1.0,
        description="warn when a run received less than this share of the replies its source announced "
                    "(Slack reply_count, Graph replies@odata.count, Viva Engage thread stats, Chatter "
                    "CommentCount; pipelines/completeness.py): logged, in the run report, and a failed "
                    "warning record replies_complete in dq_validation_results; never blocks a batch")


Inclusion = Literal["include", "exclude"]


class DirectoryConfig(_Strict):
    """People outside the HR directory. Every source lands the people it knows (an HR directory its
    directory, a platform its user listing with each account's type); an actor no directory lists is a
    person of unknown department (`in_directory` false), counted, not a reason to reject a batch."""

    max_unknown_actor_share: float = Field(
        0.5, ge=0.0, le=1.0,
        description="a batch in which more than this share of the distinct actors is in no HR directory is "
                    "rejected (the directory is stale, or the wrong one); ignored when no enabled source "
                    "lands a directory (kind demo, kind file with a directory or dataset labels)")
    guests: Inclusion = Field("include", description="guest accounts (Slack guests, Entra B2B guests, "
                              "Salesforce guest users): include, or exclude (their activities are dropped "
                              "at stage, with a count)")
    externals: Inclusion = Field("include", description="accounts of other organisations (Slack Connect, "
                                 "Salesforce partner and customer communities)")
    bots: Inclusion = Field("exclude", description="automated accounts (Slack bots and apps, Salesforce "
                            "automated-process users)")

    def excluded_account_types(self) -> set[str]:
        return {kind for kind, choice in (("guest", self.guests), ("external", self.externals),
                                          ("bot", self.bots)) if choice == "exclude"}


class InteractionRules(_Strict):
    weights: dict[str, float] = Field(
        default_factory=lambda: {"reply": 1.0, "reaction": 0.5, "mention": 1.0, "share": 1.0}
    )

    @field_validator("weights")
    @classmethod
    def _known_types(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"reply", "reaction", "mention", "share"}
        if unknown:
            raise ValueError(f"unknown interaction types {sorted(unknown)}")
        return value


class UsageSegments(_Strict):
    """The usage segments of fct_person_usage_daily (vivainsights identify_usage_segments, 12-week
    version), over the twelve 7-day blocks ending on each day: power = at least
    `power_actions_per_week` actions a week on average and active in at least `power_active_weeks`
    weeks; habitual = active in at least `habitual_active_weeks` weeks; novice = at least
    `novice_actions_per_week` actions a week on average; low = any action in the 12 weeks; non-user =
    none. The segments are tested in that order and are nested (a power user is habitual, and does at
    least a novice's actions); a set that breaks the nesting is refused, naming the key. Bound to the SQL as
    parameters (`jobs.model_params`); the defaults are the specification's (METRICS.md section 1)."""

    habitual_active_weeks: int = Field(9, ge=1, le=12, description="habitual: active in at least this many "
                                       "of the last 12 weeks")
    novice_actions_per_week: float = Field(1.0, gt=0, description="novice: at least this many actions a "
                                           "week on average over 12 weeks")
    # validate_default: the checks against the habitual and novice thresholds also hold for the defaults
    power_active_weeks: int = Field(9, ge=1, le=12, validate_default=True,
                                    description="power: active in at least this many of the last 12 weeks (at "
                                                "least habitual_active_weeks: a power user is habitual)")
    power_actions_per_week: float = Field(15.0, gt=0, validate_default=True,
                                          description="power: at least this many actions a week on average "
                                                      "(at least novice_actions_per_week)")

    @field_validator("power_active_weeks")
    @classmethod
    def _power_is_habitual(cls, value: int, info: ValidationInfo) -> int:
        habitual = info.data.get("habitual_active_weeks")
        if habitual is not None and value < habitual:
            raise ValueError(f"power_active_weeks ({value}) is below habitual_active_weeks ({habitual}): a power "
                             "user is tested first and must also be habitual; raise power_active_weeks or lower "
                             "habitual_active_weeks")
        return value

    @field_validator("power_actions_per_week")
    @classmethod
    def _power_above_novice(cls, value: float, info: ValidationInfo) -> float:
        novice = info.data.get("novice_actions_per_week")
        if novice is not None and value < novice:
            raise ValueError(f"power_actions_per_week ({value:g}) is below novice_actions_per_week ({novice:g}): "
                             "a power user must do at least a novice's actions")
        return value

    def params(self) -> dict[str, Any]:
        """The bound parameters of the SQL models (`:usage_power_actions_per_week`, ...)."""
        return {f"usage_{name}": value for name, value in self.model_dump().items()}


_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
#: what may follow a leading question word ("How, exactly", "Why?", "Qui:")
_WORD_END = ",.;:!?¿¡…"


class QuestionRules(_Strict):
    """How `is_question` is decided at extraction for messages whose platform has no question type
    (Slack, Teams, the Chatterjee Slack archives of kind `file`; other imports carry their own flag): on
    the message's visible prose (code, links and mentions removed; the archives' whole text), a message is
    a question when it is at least `min_length` characters long and contains one of the `marks` or starts
    with one of the `leading_words` of any language. Viva Engage and Chatter mark questions themselves (`message_type: question`, `QuestionPost`):
    their flag is the platform's, untouched by these rules. The text is never stored: only the flag is.
    The defaults are the historical rule ('?' anywhere in the prose)."""

    marks: list[str] = Field(default_factory=lambda: ["?"], description="a message whose prose contains any "
                             "of these is a question (e.g. '?', the full-width '？', the Spanish '¿'); [] for none")
    leading_words: dict[str, list[str]] = Field(
        default_factory=dict, description="per language (ISO 639 code: en, fr, de, ...), words that make a "
        "message a question when its prose starts with one (case-insensitive), e.g. {en: [who, what, how], "
        "fr: [qui, quoi, comment]}")
    min_length: int = Field(0, ge=0, le=10_000, description="prose shorter than this many characters (leading "
                            "and trailing blanks aside) is never a question")
    _words: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @field_validator("marks")
    @classmethod
    def _marks(cls, value: list[str]) -> list[str]:
        for i, mark in enumerate(value):
            if not isinstance(mark, str) or not mark.strip() or mark != mark.strip() or len(mark) > 8:
                raise ValueError(f"mark {i} ({mark!r}) must be a non-blank string of at most 8 characters, "
                                 "without leading or trailing blanks")
        return value

    @field_validator("leading_words")
    @classmethod
    def _words_per_language(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for lang, words in value.items():
            if not _LANGUAGE.fullmatch(str(lang)):
                raise ValueError(f"language {lang!r} must be an ISO 639 code in lower case (en, fr, deu)")
            for i, word in enumerate(words):
                if not isinstance(word, str) or not word or any(ch.isspace() for ch in word) \
                        or word.strip(_WORD_END) != word:
                    raise ValueError(f"{lang}.{i} ({word!r}) must be one word, without blanks or punctuation "
                                     "at its ends")
            out[str(lang)] = [w.casefold() for w in words]
        return out

    def model_post_init(self, context: Any, /) -> None:
        self._words = frozenset(w for words in self.leading_words.values() for w in words)

    def matches(self, prose: str) -> bool:
        """Whether a message whose visible prose is `prose` asks something, by these rules."""
        text = (prose or "").strip()
        if not text or len(text) < self.min_length:
            return False
        if any(mark in text for mark in self.marks):
            return True
        if self._words:
            first = text.split(maxsplit=1)[0].casefold().lstrip(_WORD_END).rstrip(_WORD_END)
            return first in self._words
        return False


class AlertsConfig(_Strict):
    """Who hears about a failed Airflow task or run (dags: a failure notifier sending through SMTP)."""

    email_on_failure: list[str] = Field(
        default_factory=list,
        description="addresses that receive an email when a task or run of an esn DAG fails (also from the "
                    "environment variable ESN_ALERT_EMAILS, comma-separated); empty: no email, logs only")
    smtp_conn_id: str = Field("smtp_default", description="Airflow SMTP connection the failure emails use")
    sender: str | None = Field(None, description="From address (default: reports.delivery.sender)")

    @field_validator("email_on_failure")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an email address")
        return value


class AnswerSuggestionsConfig(_Strict):
    """Who could answer an open question (pipelines/answer_suggestions.py): which questions are open, how
    many people to suggest, and to whom the lists go. The lists are person-level: never in a mart."""

    open_after_hours: float = Field(24.0, gt=0, description="a question unanswered this long is open")
    open_within_days: float = Field(14.0, gt=0, description="questions older than this are no longer suggested for")
    suggestions: int = Field(5, ge=1, le=20, description="people suggested per question")
    history_days: int = Field(365, ge=7, description="the replies the suggestions learn from")
    deliver_to: Literal["container_managers", "asker", "none"] = Field(
        "none", description="container_managers: each container's managers (container_managers); asker: the "
                            "person who asked; none: only `esn answerers` shows the lists")
    container_managers: dict[str, list[str]] = Field(
        default_factory=dict, description="container id -> the emails of its managers (community managers, "
                                          "channel owners)")
    people_file: Path | None = Field(None, description="a CSV with an `email` column (the HR directory's): the "
                                     "people a message may name, keyed with the pseudonymisation key")

    @field_validator("container_managers")
    @classmethod
    def _emails(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for container, emails in value.items():
            bad = [e for e in emails if "@" not in e or any(c.isspace() for c in e)]
            if bad:
                raise ValueError(f"container_managers[{container!r}]: not email addresses: {bad}")
        return value


class Settings(_Strict):
    lake_dir: Path = Path("data/lake")
    warehouse_url: str = "duckdb:///data/warehouse.duckdb"
    warehouse: WarehouseConfig = Field(default_factory=lambda: WarehouseConfig.model_validate({}))
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig.model_validate({"name": "demo", "kind": "demo"})]
    )
    privacy: PrivacyConfig = Field(default_factory=lambda: PrivacyConfig.model_validate({}))
    quality: QualityConfig = Field(default_factory=lambda: QualityConfig.model_validate({}))
    directory: DirectoryConfig = Field(default_factory=lambda: DirectoryConfig.model_validate({}))
    interactions: InteractionRules = Field(default_factory=lambda: InteractionRules.model_validate({}))
    usage_segments: UsageSegments = Field(default_factory=lambda: UsageSegments.model_validate({}))
    questions: QuestionRules = Field(default_factory=lambda: QuestionRules.model_validate({}),
                                     description="the question heuristic of the sources without a question type")
    topics: TopicRules = Field(default_factory=lambda: TopicRules.model_validate({}),
                               description="the topics of posts and replies, computed at extraction from the text "
                                           "(taxonomy terms and patterns, platform tags, hashtags): "
                                           "pipelines/topics.py")
    answer_suggestions: AnswerSuggestionsConfig = Field(
        default_factory=lambda: AnswerSuggestionsConfig.model_validate({}),
        description="who could answer the open questions, and who receives the lists")
    alert_thresholds: dict[str, float] = Field(
        default_factory=dict, description="overrides of sql/alert_thresholds.yaml (unknown names are errors)")
    reports: ReportsConfig = Field(default_factory=lambda: ReportsConfig.model_validate({}))
    alerts: AlertsConfig = Field(default_factory=lambda: AlertsConfig.model_validate({}))
    network: NetworkRules = Field(
        default_factory=NetworkRules,
        description="the network stage's rules and thresholds (pipelines.network.rules.NetworkRules: edges, "
                    "ties, influence tiers, personas, paths, community method and resolution, seed); the "
                    "interaction weights are interactions.weights and the group size privacy.min_group_size")
    #: where these settings were read from, for the messages of `check_runtime`
    _origin: str = PrivateAttr("settings")

    @field_validator("alert_thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        if value:
            known = alert_threshold_names()
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(f"unknown alert threshold(s) {unknown} (known: {sorted(known)})")
        return value

    @field_validator("network", mode="before")
    @classmethod
    def _network_set_once(cls, value: Any) -> Any:
        # a rule with its own place in the configuration is set there only, never twice with two values
        if isinstance(value, dict):
            for dotted, where in SET_ELSEWHERE.items():
                head, _, leaf = dotted.rpartition(".")
                part = value.get(head) if head else value
                if isinstance(part, dict) and leaf in part:
                    raise ValueError(f"network.{dotted} cannot be set here: {where}")
        return value

    @property
    def raw_dir(self) -> Path:
        return self.lake_dir / "raw"

    @property
    def canonical_dir(self) -> Path:
        return self.lake_dir / "canonical"

    @property
    def quarantine_dir(self) -> Path:
        return self.lake_dir / "quarantine"

    @property
    def evidence_dir(self) -> Path:
        return self.lake_dir / "validation"

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named {name!r} in the configuration (have {[s.name for s in self.sources]})")

    def schemas(self) -> Any:
        """The warehouse schemas as `pipelines.warehouse.Schemas`."""
        from pipelines.warehouse import Schemas

        return Schemas(**self.warehouse.schemas.model_dump())

    def published_duckdb(self) -> Path | None:
        """The published DuckDB file BI tools open (None when the warehouse is not a DuckDB file)."""
        from pipelines.warehouse import warehouse_url_of  # the connection's URL when warehouse.conn_id is set

        url = warehouse_url_of(self)
        if not url.startswith("duckdb:///") or url.startswith("duckdb:///:memory:"):
            return None
        if self.warehouse.published_duckdb is not None:
            return self.warehouse.published_duckdb
        return Path(url.removeprefix("duckdb:///")).parent / "published" / "esn_marts.duckdb"

    def check_runtime(self, *, impact_config: str | Path | None = None) -> list[str]:
        """What `load_settings` leaves out because it needs other files (see `check_runtime`); returns
        the warnings, raises `ConfigError` naming every bad field."""
        return check_runtime(self, impact_config=impact_config)


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***` (`scheme://user:***@host/db`), for printing and logs."""
    return re.sub(r"(://[^/@:\s]*:)[^@/\s]*@", r"\1***@", url)


def redacted(data: Any) -> Any:
    """A copy of a settings dump (or any JSON-like value) with passwords in URLs and values of keys that
    name a secret (password, secret, token, key) replaced by `***`."""
    if isinstance(data, dict):
        return {k: ("***" if isinstance(v, str) and v and _SECRET_KEY.search(str(k)) else redacted(v))
                for k, v in data.items()}
    if isinstance(data, list):
        return [redacted(v) for v in data]
    if isinstance(data, str):
        return redact_url(data)
    return data


#: keys whose string values are secrets (not the *names* of variables or connections holding them)
_SECRET_KEY = re.compile(r"(password|secret|token|api_key|private_key)$(?<!_env)", re.I)


def _format(err: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration in {origin}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from `path` (or $ESN_CONFIG, or defaults), with keyword overrides applied on top."""
    path = path or os.environ.get(CONFIG_ENV)
    data: dict[str, Any] = {}
    origin = "defaults"
    if path:
        origin = str(path)
        try:
            data = yaml_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except DuplicateKeyError as exc:
            raise ConfigError(f"invalid configuration in {origin}:\n  {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping at the top level")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err, origin)) from None
    settings._origin = origin
    return settings


# --- run-time checks ----------------------------------------------------------------------------------
class _Problems:
    """Errors grouped by the file they are in, in the format of `_format`."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.warnings: list[str] = []

    def error(self, title: str, where: str, message: str) -> None:
        self.errors.setdefault(title, []).append(f"  {where}: {message}")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigError("\n".join(line for title, lines in self.errors.items() for line in [title, *lines]))


def check_runtime(settings: Settings, *, impact_config: str | Path | None = None) -> list[str]:
    """Every run-time setting `load_settings` does not check because it needs other files:

      - each source's kind exists and its `options` are valid for that kind (no unknown option), and
        every file or folder an enabled source's options name exists;
      - `privacy.opt_out_file` exists, is readable, and every line is an email or a 24-hex person key;
      - the alert thresholds (sql/alert_thresholds.yaml with the overrides) are finite numbers;
      - the business-impact configuration ($ESN_IMPACT_CONFIG or `impact_config`, else the defaults)
        is valid, and every outcome file (its `outcome_files`, else <lake>/outcomes/) exists, parses and
        holds finite numbers;
      - the reports' metric catalogue exists when it is configured (the default one may be missing: a
        warning) and parses, and the names file is a mapping.

    Raises `ConfigError` naming every bad field (`invalid configuration in FILE:` then `  field: message`
    lines, one block per file); returns warnings (settings that will be ignored or degrade the reports).
    Reads only; writes nothing. Costs a read of every outcome file: for `esn check-config` and the start
    of a run, not for every task.
    """
    p = _Problems()
    title = f"invalid configuration in {settings._origin}:"
    _check_sources(settings, p, title)
    _check_opt_out(settings, p, title)
    _check_thresholds(settings, p, title)
    _check_impact(settings, p, impact_config)
    _check_reports(settings, p, title)
    p.raise_if_any()
    return p.warnings


def _check_sources(settings: Settings, p: _Problems, title: str) -> None:
    from types import SimpleNamespace

    from pipelines import sources

    for i, cfg in enumerate(settings.sources):
        if cfg.kind not in sources.REGISTRY:
            p.error(title, f"sources.{i}.kind", f"unknown source kind {cfg.kind!r} (known: {sorted(sources.REGISTRY)})")
            continue
        module = sources.load(cfg.kind)
        read_options = getattr(module, "options", None)
        if read_options is None:
            continue
        try:
            opts = read_options(SimpleNamespace(source=cfg, settings=settings, lake_dir=settings.lake_dir))
        except ValidationError as err:
            for e in err.errors():
                loc = ".".join(str(x) for x in e["loc"])
                p.error(title, f"sources.{i}.options{'.' + loc if loc else ''}", e["msg"])
            continue
        except (ValueError, OSError) as exc:
            p.error(title, f"sources.{i}.options", str(exc))
            continue
        if cfg.enabled:
            _check_source_paths(opts, p, title, f"sources.{i}.options")


def _check_source_paths(opts: Any, p: _Problems, title: str, where: str) -> None:
    """Every path a source's options name (a `Path` field: the file-based sources' input files and
    folders, their HR directory, identity map, ...) exists: a run would fail on it after extracting
    the other sources."""
    if not isinstance(opts, BaseModel):
        return
    for name in type(opts).model_fields:
        value = getattr(opts, name, None)
        if isinstance(value, Path) and not value.exists():
            p.error(title, f"{where}.{name}", f"{value} does not exist"
                    + ("" if value.is_absolute() else f" (relative to the current folder {Path.cwd()})"))


def _check_opt_out(settings: Settings, p: _Problems, title: str) -> None:
    from pipelines.privacy import OptOutFileError, read_opt_out_file

    path = settings.privacy.opt_out_file
    if path is None:
        return
    try:
        read_opt_out_file(path)
    except OptOutFileError as exc:
        p.error(title, "privacy.opt_out_file", str(exc))


def _check_thresholds(settings: Settings, p: _Problems, title: str) -> None:
    try:
        read_alert_thresholds(overrides=settings.alert_thresholds)
    except (ValueError, OSError, yaml.YAMLError) as exc:
        p.error(title, "alert_thresholds", str(exc))


def _check_impact(settings: Settings, p: _Problems, impact_config: str | Path | None) -> None:
    import secrets

    from pipelines.metrics.config import DEFAULTS_FILE, IMPACT_CONFIG_ENV, load_impact_config
    from pipelines.metrics.outcomes import load_outcome_file, outcome_files
    from pipelines.privacy import Pseudonymiser

    origin = str(impact_config or os.environ.get(IMPACT_CONFIG_ENV) or DEFAULTS_FILE)
    title = f"invalid impact configuration in {origin}:"
    try:
        cfg = load_impact_config(impact_config)
    except ValueError as exc:  # "invalid impact configuration in FILE:" then "  field: message" lines
        head, _, rest = str(exc).partition("\n")
        if rest:
            p.errors.setdefault(head, []).extend(rest.splitlines())
        else:
            p.error(title, "(file)", head)
        return
    if cfg.outcome_files:
        files = [(f"outcome_files.{i}", Path(f)) for i, f in enumerate(cfg.outcome_files)]
    else:
        files = [(f"outcome_files ({f.parent})", f) for f in outcome_files(settings.lake_dir / "outcomes")]
    # only parsed here: a throwaway key, the rows are dropped at once
    probe = Pseudonymiser(secrets.token_bytes(32))
    for where, path in files:
        if not path.is_file():
            p.error(title, where, f"{path} does not exist")
            continue
        try:
            load_outcome_file(path, probe)
        except (ValueError, OSError) as exc:
            p.error(title, where, str(exc))


def _check_reports(settings: Settings, p: _Problems, title: str) -> None:
    reports = settings.reports
    if not reports.catalogue_path.exists() and "catalogue_path" in reports.model_fields_set:
        # a catalogue the configuration names must be there; the default one is optional
        p.error(title, "reports.catalogue_path", f"{reports.catalogue_path} does not exist")
    elif not reports.catalogue_path.exists():
        p.warnings.append(f"reports.catalogue_path: {reports.catalogue_path} does not exist: the reports' "
                          "links point at anchors derived from metric names")
    else:
        from pipelines.catalogue import load_entries

        try:
            load_entries(reports.catalogue_path, include_network=False)  # the file only
        except (ValueError, OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
            p.error(title, "reports.catalogue_path", f"{reports.catalogue_path} cannot be read as a metric "
                                                     f"catalogue ({type(exc).__name__}: {exc})")
    names = reports.names_file
    if names is None:
        return
    if not settings.privacy.allow_named_leaderboards:
        p.warnings.append("reports.names_file is ignored: privacy.allow_named_leaderboards is false")
        return
    if not names.exists():
        p.warnings.append(f"reports.names_file: {names} does not exist: nobody is named in the leaderboards")
        return
    try:
        data = yaml_load(names.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        p.error(title, "reports.names_file", f"{names} cannot be read ({exc})")
        return
    if data is not None and not isinstance(data, dict):
        p.error(title, "reports.names_file", f"{names} must map person keys to display names")
