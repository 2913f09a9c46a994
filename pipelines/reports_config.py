"""Typed configuration of the stakeholder reports (`pipelines.reports`): audiences, delivery, links, tables.

It is read from the `reports` key of the settings YAML (once `Settings` carries `reports: ReportsConfig`)
or, until then, from a YAML file of its own (`--reports-config`, or $ESN_REPORTS_CONFIG) holding either a
top-level `reports:` mapping or the section itself. Errors name the bad field, like `pipelines.config`
(a key given twice, NaN or infinity included); that the catalogue and names file can be read is checked
by `pipelines.config.check_runtime` (`esn check-config`).

Recipients come from this configuration only, never from the warehouse. This module must never hold a
secret: SMTP credentials are the *names* of environment variables or an Airflow connection id.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.errors import ConfigError

if TYPE_CHECKING:  # pipelines.config embeds ReportsConfig, so import Settings for typing only
    from pipelines.config import Settings

REPORTS_CONFIG_ENV = "ESN_REPORTS_CONFIG"
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def weekday_number(value: Any) -> Any:
    """0..6 (0 = Monday) from a number or a weekday's name (`sunday`, `Sun`); anything else unchanged, for
    the field's own validation to refuse with its name."""
    if isinstance(value, str):
        text = value.strip().lower()
        hits = [i for i, name in enumerate(WEEKDAYS) if len(text) >= 3 and name.startswith(text)]
        if len(hits) == 1:
            return hits[0]
        if text.isdigit():
            return int(text)
    return value


class Section(StrEnum):
    """The sections an email can carry, in the order they appear."""

    kpis = "kpis"
    activity_trend = "activity_trend"
    adoption_by_department = "adoption_by_department"
    alerts = "alerts"
    questions = "questions"
    network = "network"
    influence = "influence"


class OnIncomplete(StrEnum):
    """What a report does when its period's data is late, empty or incomplete (`pipelines.reports.coverage`)."""

    banner = "banner"  # send it, with an unmistakable "data incomplete" banner at the top and in the subject
    hold = "hold"  # do not send it (the run's summary says why); report.html is still written, with the banner


class Freshness(_Strict):
    on_incomplete: OnIncomplete = Field(OnIncomplete.banner, description="banner or hold; an audience may "
                                                                         "override it")
    sources: list[str] | None = Field(None, description="the sources the reports depend on; default every "
                                                        "enabled source of the configuration")
    hold_max_days: int = Field(3, ge=0, le=31, description="a held email is tried again in the next scheduled "
                                                           "runs, sent once its period's data is complete; "
                                                           "this many days after its period it is sent with "
                                                           "the banner (0: never sent)")


class Scope(_Strict):
    """The segment an audience looks at; it is always shown against the whole organisation."""

    segment_type: str = Field("department", pattern=r"^[a-z][a-z_]*$")
    segment_value: str = Field(..., min_length=1)


class Audience(_Strict):
    name: str = Field(..., pattern=r"^[a-z][a-z0-9_-]*$", description="used in file names and logs")
    title: str | None = Field(None, description="shown in the subject and heading; default from the scope")
    recipients: list[str] = Field(..., min_length=1)
    frequency: Frequency = Frequency.weekly
    weekday: int | None = Field(None, ge=0, le=6, description="weekly audiences: the weekday (0 = Monday, or "
                                                             "its name) whose date closes the week; default "
                                                             "reports.weekly_on")
    scope: Scope | None = Field(None, description="omit for the whole organisation")
    sections: list[Section] = Field(default_factory=lambda: list(Section))
    on_incomplete: OnIncomplete | None = Field(None, description="default reports.freshness.on_incomplete")

    @field_validator("weekday", mode="before")
    @classmethod
    def _weekday(cls, value: Any) -> Any:
        return weekday_number(value)

    @model_validator(mode="after")
    def _weekday_only_weekly(self) -> Audience:
        if self.weekday is not None and self.frequency is not Frequency.weekly:
            raise ValueError(f"weekday is for weekly audiences only (this one is {self.frequency.value})")
        return self

    @field_validator("recipients")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _EMAIL.match(v)]
        if bad:
            raise ValueError(f"not an email address: {bad}")
        if len(set(v.lower() for v in value)) != len(value):
            raise ValueError("a recipient is listed twice")
        return value

    @property
    def display_title(self) -> str:
        if self.title:
            return self.title
        if self.scope is None:
            return "Organisation"
        return f"{self.scope.segment_value} ({self.scope.segment_type.replace('_', ' ')})"


class SmtpServer(_Strict):
    """The plain smtplib path, used when no Airflow SMTP connection is configured."""

    host: str = "localhost"
    port: int = Field(25, ge=0, le=65535)
    starttls: bool = False
    ssl: bool = False
    timeout_seconds: float = Field(30.0, gt=0)
    username_env: str | None = Field(None, description="environment variable holding the SMTP user")
    password_env: str | None = Field(None, description="environment variable holding the SMTP password")


class Delivery(_Strict):
    sender: str = Field("esn-metrics@localhost", description="From: address")
    reply_to: str | None = None
    transport: str = Field("auto", pattern=r"^(auto|airflow|smtp)$",
                           description="auto: the Airflow connection when it is defined, else `smtp`")
    smtp: SmtpServer = Field(default_factory=lambda: SmtpServer.model_validate({}))
    max_attempts: int = Field(3, ge=1, le=10, description="tries per recipient before it is reported failed")
    backoff_seconds: float = Field(2.0, ge=0, description="wait before the second try; multiplied each time")
    backoff_factor: float = Field(2.0, ge=1)
    retry_permanent_failures: bool = Field(
        True, description="also retry 5xx answers (some relays answer 550 for transient reasons); "
                          "set false to follow RFC 5321 strictly")

    @field_validator("sender", "reply_to")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"not an email address: {value!r}")
        return value


class PlanMetric(_Strict):
    metric: str = Field(..., pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$",
                        description="a catalogue metric: a column name (participation_rate) or table.column")
    target: float
    direction: str = Field("min", pattern="^(min|max)$", description="min: value >= target; max: value <= target")


class Objective(_Strict):
    """What the network is for (knowledge sharing, cross-silo collaboration, leadership visibility,
    onboarding ...), the metrics that show it with their targets, and the technology that carries it."""

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_-]*$")
    title: str = Field(..., min_length=1)
    metrics: list[PlanMetric] = Field(..., min_length=1)
    sources: list[str] = Field(default_factory=list, description="technology: the sources (platforms) that "
                                                                 "carry this objective; default all")


class Relationships(_Strict):
    """The relationships that should grow: pairs of departments whose ties should increase, and the
    departments whose leaders should be reachable."""

    grow_ties: list[tuple[str, str]] = Field(default_factory=list)
    leaders_reachable: list[str] = Field(default_factory=list)


class Plan(_Strict):
    """The ESN action plan: objectives (each with metrics, targets and technology) and relationships."""

    objectives: list[Objective] = Field(default_factory=list)
    relationships: Relationships = Field(default_factory=Relationships)
    history_periods: int = Field(6, ge=2, le=26, description="periods of the scorecard history shown")

    @model_validator(mode="after")
    def _unique(self) -> Plan:
        names = [o.name for o in self.objectives]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"objective names must be unique, repeated: {dup}")
        return self


class Tables(_Strict):
    """Where each section reads from. A section whose table does not exist is left out.

    Several candidates may be given for marts still being named; the first that exists is used.
    """

    engagement: list[str] = Field(default_factory=lambda: ["mart_engagement_daily"])
    alerts: list[str] = Field(default_factory=lambda: ["mart_alerts"])
    questions: list[str] = Field(default_factory=lambda: [
        "mart_knowledge_sharing", "mart_knowledge_sharing_daily", "mart_knowledge_daily", "mart_questions_daily"])
    unanswered: list[str] = Field(default_factory=lambda: [
        "mart_unanswered_backlog", "mart_knowledge_unanswered_backlog", "mart_unanswered_questions",
        "mart_knowledge_backlog"])
    containers: list[str] = Field(default_factory=lambda: ["stg_containers"])
    network_org: list[str] = Field(default_factory=lambda: ["mart_network_org"])
    network_department: list[str] = Field(default_factory=lambda: ["mart_network_department"])
    influence_tiers: list[str] = Field(default_factory=lambda: ["mart_network_influence_tiers"])
    person_network: list[str] = Field(default_factory=lambda: ["fct_person_network"])
    network_ties: list[str] = Field(default_factory=lambda: ["fct_network_ties"])


class ReportsConfig(_Strict):
    audiences: list[Audience] = Field(default_factory=list)
    organisation_name: str = "the organisation"
    docs_base_url: str | None = Field(
        None, description="absolute http(s) URL of the published metric docs (docs/metrics.md rendered, or "
                          "the dbt docs site): figures link to <docs_base_url>#<metric anchor>. Unset (or a "
                          "relative path, which no mail client can open): the definitions are inlined at "
                          "the end of each email and the links point there")
    catalogue_path: Path = Field(Path("catalogue/metrics.yaml"), description="metric catalogue (name, table, column)")
    names_file: Path | None = Field(
        None, description="YAML mapping person_key -> display name; people are named only when this file "
                          "exists AND privacy.allow_named_leaderboards is true")
    leaderboard_size: int = Field(10, ge=1, le=50)
    small_base: int = Field(20, ge=0, description="the small-bases rule: a count whose previous value, or a rate "
                                                  "of a group, under this many shows its change as a count "
                                                  "(rates: neutral points), never as a percentage; 0: off")
    trend_days: int = Field(91, ge=14, le=730, description="days shown in trend charts")
    weekly_on: int = Field(6, ge=0, le=6, description="weekday (0 = Monday, or its name) whose date closes a "
                                                      "weekly period; an audience may set its own `weekday`")
    static_report_frequency: Frequency = Field(Frequency.weekly, description="period of the organisation-wide "
                                                                             "report.html written with each run "
                                                                             "(daily, weekly or monthly)")
    output_dir: Path = Field(Path("output/reports"), description="where each run writes report.html, .eml, .html")
    delivery: Delivery = Field(default_factory=lambda: Delivery.model_validate({}))
    tables: Tables = Field(default_factory=Tables)
    freshness: Freshness = Field(default_factory=lambda: Freshness.model_validate({}))
    plan: Plan | None = Field(None, description="the ESN action plan; unset: the default plan "
                                                "(pipelines.reports.plan.DEFAULT_OBJECTIVES, the scorecard's targets)")

    def on_incomplete(self, audience: Audience) -> OnIncomplete:
        return audience.on_incomplete or self.freshness.on_incomplete

    def weekday_of(self, audience: Audience) -> int:
        """The weekday whose date closes a weekly audience's week (its own, else reports.weekly_on)."""
        return self.weekly_on if audience.weekday is None else audience.weekday

    def is_due(self, audience: Audience, as_of: dt.date) -> bool:
        """Whether the audience's period closes on `as_of`: its email goes out in the run as of that day."""
        return is_due(audience.frequency, as_of, self.weekday_of(audience))

    def due_audiences(self, as_of: dt.date) -> list[Audience]:
        """The audiences a (daily) run as of `as_of` sends: each exactly once per period, on its last day."""
        return [a for a in self.audiences if self.is_due(a, as_of)]

    @field_validator("weekly_on", mode="before")
    @classmethod
    def _weekly_on(cls, value: Any) -> Any:
        return weekday_number(value)

    @model_validator(mode="after")
    def _unique_names(self) -> ReportsConfig:
        names = [a.name for a in self.audiences]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"audience names must be unique, repeated: {dup}")
        return self

    def audience(self, name: str) -> Audience:
        for a in self.audiences:
            if a.name == name:
                return a
        raise ConfigError(f"no audience named {name!r} (have {[a.name for a in self.audiences]})")


def is_due(frequency: Frequency, as_of: dt.date, weekly_on: int = 6) -> bool:
    """Whether a period of this frequency closes on `as_of` (daily: every day; weekly: the configured weekday;
    monthly: the month's last day)."""
    if frequency is Frequency.daily:
        return True
    if frequency is Frequency.weekly:
        return as_of.weekday() == weekly_on
    return (as_of + dt.timedelta(days=1)).day == 1


def _format(err: ValidationError, origin: str) -> str:
    lines = [f"invalid reports configuration in {origin}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  reports.{where}: {e['msg']}")
    return "\n".join(lines)


def parse_reports_config(data: Any, origin: str = "reports") -> ReportsConfig:
    if isinstance(data, ReportsConfig):
        return data
    try:
        return ReportsConfig.model_validate(data or {})
    except ValidationError as err:
        raise ConfigError(_format(err, origin)) from None


def load_reports_config(settings: Settings, path: str | Path | None = None) -> ReportsConfig:
    """The `reports` section of the settings if it has one, else `path` (or $ESN_REPORTS_CONFIG), else defaults."""
    section = getattr(settings, "reports", None)
    if section is not None and path is None:
        return parse_reports_config(section, "settings")
    from pipelines.config import DuplicateKeyError, yaml_load  # config imports this module

    path = path or os.environ.get(REPORTS_CONFIG_ENV)
    if not path:
        return ReportsConfig.model_validate({})
    try:
        data = yaml_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"reports configuration file {path} does not exist") from None
    except DuplicateKeyError as exc:
        raise ConfigError(f"invalid reports configuration in {path}:\n  {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"reports configuration file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"reports configuration file {path} must hold a mapping")
    if "reports" in data:
        data = data["reports"]
    return parse_reports_config(data, str(path))


def load_names(settings: Settings, config: ReportsConfig) -> dict[str, str]:
    """person_key -> display name, or {} unless named leaderboards are allowed AND the mapping file exists."""
    if not settings.privacy.allow_named_leaderboards or config.names_file is None:
        return {}
    if not config.names_file.exists():
        return {}
    from pipelines.config import yaml_load  # config imports this module

    try:
        data = yaml_load(config.names_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"names file {config.names_file} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"names file {config.names_file} must map person keys to display names")
    return {str(k): str(v) for k, v in data.items() if v}
