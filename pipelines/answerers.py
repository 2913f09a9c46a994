"""Who could answer: for a question, a short ranked list of the people likely to answer it (issue 18).

Evidence per candidate, from the replies given before the moment of ranking, each weighted by its age
(half-life `half_life_days`; an answer is a reply by someone other than the asker to a question post):
  - **container**: answers the candidate gave in the question's container (channel, group, community);
  - **activity**: replies the candidate gave in the container, in any thread;
  - **topic**: answers the candidate gave on the question's topics (taxonomy topics and platform tags) and
    in all; their ratio against the organisation's, shrunk toward it by `LIFT_PRIOR` answers, is the
    candidate's *lift* on these topics (2: twice as likely as the average answer to be on them);
  - **asker**: the candidate's replies to the asker's posts, and half of the asker's to the candidate's
    (people who already talk to each other);
  - **similar askers**: answers the candidate gave to askers like this one: the asker's group (department)
    when the directory gives one, else the asker's neighbours in the reply network;
  - **availability**: the candidate's replies by hour of the day (UTC): their share within an hour of the
    question's hour against everyone's is their availability lift (time zones, working hours).
Then

    score = container * topic_lift ** t * availability_lift ** v + activity * A + asker * T + similar * S

with the defaults t 0.5, v 0.5, activity 0, asker 0.5, similar 0.25, half-life 90 days (`Weights`): set on
development windows (the four weeks before each dataset's hidden weeks, never the hidden weeks
themselves; docs/expertise.md tells how), not fitted per dataset. `fit` chooses weights on an
organisation's own past instead (the weeks before a cutoff); the evaluation reports both. The asker is never on their own list; when groups
are known, a list made only of the asker's own group takes the best candidate from outside it as its last
entry (when one has topic or container evidence), so that a question reaches beyond the asker's team.

`evaluate` is the offline evaluation (`bench/answerers_eval.py`, docs/expertise.md): it hides the last weeks
of activity, ranks candidates for each question asked in them from the history before, and measures whether
the people on the list are the people who actually answered (precision@k, recall@k), against the baseline
of the most active answerers of the container.

Everything here is person-level and internal: the lists go to the people allowed to see them
(pipelines/answer_suggestions.py), never into a mart.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

CONTAINER_PREFIX = "container:"


@dataclass(frozen=True)
class Weights:
    """score = container * lift ** topic + activity * A + asker * T + similar * S (see the module's doc)."""

    container: float = 1.0
    activity: float = 0.0
    topic: float = 0.5  # the exponent of the topic lift
    availability: float = 0.5  # the exponent of the availability lift (the hour of the day)
    asker: float = 0.5
    similar: float = 0.25
    half_life_days: float = 90.0

    def without(self, part: str) -> Weights:
        """These weights with `part` off (the ablations of the evaluation)."""
        return replace(self, **{part: 0.0})

    def vector(self) -> np.ndarray:
        """The weights of the linear parts (LINEAR), the container's lifted by the topics first."""
        return np.array([getattr(self, p) for p in LINEAR], dtype="float64")


#: the grid `fit` searches (the container's weight stays 1: the others are relative to it)
GRID = {"activity": (0.0, 0.25, 0.5), "topic": (0.0, 0.5, 1.0), "availability": (0.0, 0.5, 1.0),
        "asker": (0.0, 0.25, 0.5, 1.0), "similar": (0.0, 0.25, 0.5), "half_life_days": (30.0, 90.0, 365.0)}

#: the evidence per candidate: answers in the container, replies in it (any thread), answers on the
#: question's topics and in all (for the lift), ties with the asker, answers to similar askers
EVIDENCE = ("container", "activity", "topic", "answers", "asker", "similar", "hour_replies", "replies")
#: the parts the score is linear in, `container` lifted by the topics
LINEAR = ("container", "activity", "asker", "similar")
PARTS = ("container", "activity", "topic", "availability", "asker", "similar")
#: the prior strength of the topic lift: a candidate's rate of answers on the topics is shrunk toward the
#: organisation's by this many answers' worth
LIFT_PRIOR = 5.0
#: the hours either side of a question's hour (UTC) that count as "around" for the availability lift
HOUR_WINDOW = 1


def _lift(hits: np.ndarray, total: np.ndarray, share: float) -> np.ndarray:
    """A candidate's rate (hits of total) against the organisation's `share`, shrunk toward it by
    LIFT_PRIOR: 1 for someone with no record, above 1 for a specialist."""
    return ((hits + LIFT_PRIOR * share) / (total + LIFT_PRIOR)) / share


def design(ev: pd.DataFrame, topic_exponent: float, availability_exponent: float = 0.0) -> np.ndarray:
    """The linear parts of an evidence frame, the container's answers multiplied by two lifts:
    - the topic lift ** topic_exponent: the candidate's share of answers on the question's topics against
      the share of all answers on them (`ev.attrs["topic_share"]`); 1 when the question has no known topic;
    - the availability lift ** availability_exponent: the candidate's share of replies given within
      HOUR_WINDOW hours of the question's hour of the day against everyone's (`ev.attrs["hour_share"]`):
      who is usually around at that time (time zones, working hours); 1 when the time is not known."""
    values = ev[list(LINEAR)].to_numpy(dtype="float64", copy=True)
    share = float(ev.attrs.get("topic_share", 0.0))
    if topic_exponent and share > 0:
        values[:, 0] *= _lift(ev["topic"].to_numpy(), ev["answers"].to_numpy(), share) ** topic_exponent
    hours = float(ev.attrs.get("hour_share", 0.0))
    if availability_exponent and hours > 0:
        values[:, 0] *= _lift(ev["hour_replies"].to_numpy(), ev["replies"].to_numpy(), hours) ** availability_exponent
    return values


def _topics(value: Any) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ()
    ids = value.split(" ") if isinstance(value, str) else list(value)
    return tuple(t for t in ids if t and not t.startswith(CONTAINER_PREFIX))


def questions_and_answers(acts: pd.DataFrame, actor: str = "actor_key") -> tuple[pd.DataFrame, pd.DataFrame]:
    """From canonical activities (stg_activities' columns; `actor` names the person column): the question
    posts (question_id, asker, container_id, topics, asked_at) and the replies to other people's posts (one
    row per thread and replier: the first reply, with the thread's author as `asker`, its container and
    topics, `is_answer` when the thread is a question: an answer).

    A reply's thread is its `thread_id` (its `parent_id` when there is none); deleted messages count as
    neither."""
    live = acts[~acts["is_deleted"].fillna(False).astype(bool)] if "is_deleted" in acts else acts
    posts = live[(live["verb"] == "post") & live["is_question"].fillna(False).astype(bool)]
    questions = pd.DataFrame({
        "question_id": posts["event_id"].astype(str).to_numpy(),
        "source": posts["source"].to_numpy() if "source" in posts else "",
        "asker": posts[actor].to_numpy(),
        "container_id": posts["container_id"].to_numpy(),
        "topics": [_topics(v) for v in (posts["topic_ids"] if "topic_ids" in posts else [None] * len(posts))],
        "asked_at": pd.to_datetime(posts["occurred_at"], utc=True).array,
    })
    replies = live[live["verb"] == "reply"]
    thread = replies["thread_id"].where(replies["thread_id"].notna(), replies["parent_id"]).astype("string")
    reply = pd.DataFrame({"question_id": thread.to_numpy(), "source": replies["source"].to_numpy()
                          if "source" in replies else "", "answerer": replies[actor].to_numpy(),
                          "answered_at": pd.to_datetime(replies["occurred_at"], utc=True).array})
    roots = live[live["verb"] == "post"]
    threads = pd.DataFrame({
        "question_id": roots["event_id"].astype(str).to_numpy(),
        "source": roots["source"].to_numpy() if "source" in roots else "",
        "asker": roots[actor].to_numpy(), "container_id": roots["container_id"].to_numpy(),
        "topics": [_topics(v) for v in (roots["topic_ids"] if "topic_ids" in roots else [None] * len(roots))],
        "is_answer": roots["is_question"].fillna(False).astype(bool).to_numpy()})
    answers = reply.merge(threads, on=["source", "question_id"], how="inner")
    answers = answers[answers["answerer"].notna() & (answers["answerer"] != answers["asker"])]
    answers = (answers.sort_values(["question_id", "answerer", "answered_at"], kind="stable")
               .drop_duplicates(["source", "question_id", "answerer"]).reset_index(drop=True))
    return questions.reset_index(drop=True), answers


@dataclass
class Suggestion:
    person: str
    score: float
    evidence: dict[str, float]  # each part's weighted count of answers (the age weights applied)
    group: str | None = None


class AnswererModel:
    """Ranks candidates for a question from the replies (`questions_and_answers`) given up to `as_of` (those
    after are ignored)."""

    def __init__(self, answers: pd.DataFrame, as_of: pd.Timestamp | dt.datetime, *,
                 weights: Weights | None = None, groups: Mapping[str, str] | None = None):
        self.weights = weights or Weights()
        self.as_of = pd.Timestamp(as_of)
        if self.as_of.tzinfo is None:
            self.as_of = self.as_of.tz_localize("UTC")
        self.groups = dict(groups or {})
        past = answers[pd.to_datetime(answers["answered_at"], utc=True) <= self.as_of]
        age = (self.as_of - pd.to_datetime(past["answered_at"], utc=True)).dt.total_seconds() / 86400.0
        w = np.power(0.5, age.to_numpy() / self.weights.half_life_days)
        every = past.assign(w=w)
        past = every[every["is_answer"]]
        self.people = set(every["answerer"]) | set(every["asker"])
        self._activity = {c: s.droplevel(0) for c, s in
                          every.groupby(["container_id", "answerer"])["w"].sum().groupby(level=0)}
        ties = every.groupby(["asker", "answerer"])["w"].sum()
        self._tie_to = {a: s.droplevel(0) for a, s in ties.groupby(level=0)}  # author -> repliers
        self._tie_from = {a: s.droplevel(1) for a, s in ties.groupby(level=1)}  # replier -> authors
        # per topic, the rows of the answers on it (an answer on two of a question's topics counts once)
        past = past.reset_index(drop=True)
        self._w = past["w"].to_numpy()
        self._answerer = past["answerer"].to_numpy()
        self._total = float(self._w.sum())
        by_topic: dict[str, list[int]] = {}
        for row, ts in enumerate(past["topics"]):
            for t in ts:
                by_topic.setdefault(t, []).append(row)
        self._topic_rows = {t: np.asarray(rows, dtype="int64") for t, rows in by_topic.items()}
        self._answers = past.groupby("answerer")["w"].sum()
        # each person's replies per hour of the day (UTC), not age-weighted: a habit, not a record
        hours = pd.to_datetime(every["answered_at"], utc=True).dt.hour.to_numpy()
        self._hours = (pd.crosstab(every["answerer"].to_numpy(), hours).reindex(columns=range(24), fill_value=0)
                       .astype("float64") if len(every) else pd.DataFrame(columns=range(24), dtype="float64"))
        self._hours_total = self._hours.sum(axis=1)
        self._all_hours = self._hours.sum(axis=0).to_numpy()
        self._container = {c: s.droplevel(0) for c, s in
                           past.groupby(["container_id", "answerer"])["w"].sum().groupby(level=0)}
        pair = past.groupby(["asker", "answerer"])["w"].sum()
        self._helped = {a: s.droplevel(0) for a, s in pair.groupby(level=0)}  # asker -> answerer weights
        if self.groups:
            g = past.assign(group=past["asker"].map(self.groups)).dropna(subset=["group"])
            self._group = {k: s.droplevel(0) for k, s in g.groupby(["group", "answerer"])["w"].sum().groupby(level=0)}
        else:
            self._group = {}
        # the answer network without weights, for the neighbours of an asker without a group
        self._neighbours: dict[str, set[str]] = {}
        for a, b in zip(past["asker"], past["answerer"], strict=True):
            self._neighbours.setdefault(a, set()).add(b)
            self._neighbours.setdefault(b, set()).add(a)

    def _similar(self, asker: str) -> pd.Series:
        group = self.groups.get(asker)
        if group is not None:
            return self._group.get(group, pd.Series(dtype="float64"))
        parts = [self._helped[n] for n in sorted(self._neighbours.get(asker, ())) if n in self._helped]
        if not parts:
            return pd.Series(dtype="float64")
        return pd.concat(parts).groupby(level=0).sum()

    def evidence(self, asker: str, container_id: str | None, topics: Iterable[str],
                 at: pd.Timestamp | None = None) -> pd.DataFrame:
        """The evidence per candidate (rows; EVIDENCE columns), the asker excluded; `attrs["topic_share"]`: the
        share of all answers (age-weighted) that were on the question's topics; `attrs["hour_share"]`: the
        share of all replies given within HOUR_WINDOW hours of the hour of `at` (0 when `at` is None)."""
        found = [self._topic_rows[t] for t in dict.fromkeys(topics) if t in self._topic_rows]
        rows = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype="int64")
        on_topic = (pd.Series(self._w[rows]).groupby(self._answerer[rows]).sum() if len(rows)
                    else pd.Series(dtype="float64"))
        cols = {
            "topic": on_topic,
            "container": self._container.get(container_id, pd.Series(dtype="float64")),
            "activity": self._activity.get(container_id, pd.Series(dtype="float64")),
            "asker": self._tie_to.get(asker, pd.Series(dtype="float64")).add(
                0.5 * self._tie_from.get(asker, pd.Series(dtype="float64")), fill_value=0.0),
            "similar": self._similar(asker),
        }
        frame = pd.DataFrame(cols).reindex(columns=list(EVIDENCE))
        frame["answers"] = self._answers.reindex(frame.index)
        hour_share = 0.0
        if at is not None and self._all_hours.sum() > 0:
            hour = pd.Timestamp(at).tz_convert("UTC").hour if pd.Timestamp(at).tzinfo else pd.Timestamp(at).hour
            bins = [(hour + d) % 24 for d in range(-HOUR_WINDOW, HOUR_WINDOW + 1)]
            frame["hour_replies"] = self._hours[bins].sum(axis=1).reindex(frame.index)
            hour_share = float(self._all_hours[bins].sum() / self._all_hours.sum())
        frame["replies"] = self._hours_total.reindex(frame.index)
        frame = frame.fillna(0.0).drop(index=[asker], errors="ignore")
        frame.attrs["topic_share"] = float(self._w[rows].sum() / self._total) if len(rows) and self._total else 0.0
        frame.attrs["hour_share"] = hour_share
        return frame

    def rank(self, asker: str, container_id: str | None, topics: Iterable[str] = (), k: int = 5,
             at: pd.Timestamp | None = None) -> list[Suggestion]:
        ev = self.evidence(asker, container_id, topics, at)
        top = pick(ev, self.weights, k, asker, self.groups)
        score = (design(ev, self.weights.topic, self.weights.availability) @ self.weights.vector() if len(ev)
                 else np.zeros(0))
        at = {p: i for i, p in enumerate(ev.index)}
        return [Suggestion(str(p), round(float(score[at[p]]), 6), {c: round(float(ev.at[p, c]), 6) for c in EVIDENCE},
                           self.groups.get(p)) for p in top]


def pick(ev: pd.DataFrame, weights: Weights, k: int, asker: str | None = None,
         groups: Mapping[str, str] | None = None) -> list[str]:
    """The k best candidates of an evidence frame (`AnswererModel.evidence`) under `weights`: highest
    score first, ties by key; nobody without evidence; a list all from the asker's group takes the best
    candidate from outside it (with container or topic evidence) as its last entry."""
    if ev.empty:
        return []
    score = design(ev, weights.topic, weights.availability) @ weights.vector()
    keep = score > 0
    people = ev.index.to_numpy()[keep]
    score = score[keep]
    order = np.lexsort((people.astype(str), -score))
    ranked = people[order]
    top = list(ranked[:k])
    groups = groups or {}
    mine = groups.get(asker) if asker is not None else None
    if mine is not None and len(top) == k and all(groups.get(p) == mine for p in top):
        for p in ranked[k:]:
            if groups.get(p) != mine and (ev.at[p, "topic"] > 0 or ev.at[p, "container"] > 0):
                top[-1] = p
                break
    return [str(p) for p in top]


def container_baseline(answers: pd.DataFrame, as_of: pd.Timestamp, asker: str, container_id: str | None,
                       k: int = 5, since: pd.Timestamp | None = None) -> list[str]:
    """The baseline: the k people with the most answers in the container before `as_of` (from `since` when
    given), the asker excluded; ties by key."""
    at = pd.to_datetime(answers["answered_at"], utc=True)
    mask = answers["is_answer"] & (answers["container_id"] == container_id) & (at <= as_of) & (answers["answerer"] != asker)
    if since is not None:
        mask &= at > since
    counts = answers.loc[mask, "answerer"].value_counts()
    frame = pd.DataFrame({"n": counts.to_numpy(), "p": counts.index.astype(str)})
    return frame.sort_values(["n", "p"], ascending=[False, True], kind="stable")["p"].head(k).tolist()


@dataclass
class Scores:
    precision: float
    recall: float
    hit_rate: float  # share of questions with at least one actual answerer on the list

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def _scores(lists: Sequence[Sequence[str]], truths: Sequence[set[str]], k: int) -> Scores:
    hits = np.array([len(set(lst[:k]) & t) for lst, t in zip(lists, truths, strict=True)], dtype="float64")
    sizes = np.array([len(t) for t in truths], dtype="float64")
    if not len(hits):
        return Scores(float("nan"), float("nan"), float("nan"))
    return Scores(float(np.mean(hits / k)), float(np.mean(hits / sizes)), float(np.mean(hits > 0)))


def _test_set(questions: pd.DataFrame, answers: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
              ) -> tuple[pd.DataFrame, list[set[str]]]:
    """The questions asked in (start, end] that someone answered by `end`, and who answered each."""
    asked = questions[(questions["asked_at"] > start) & (questions["asked_at"] <= end)]
    given = answers[answers["is_answer"] & (pd.to_datetime(answers["answered_at"], utc=True) <= end)
                    & answers["question_id"].isin(set(asked["question_id"]))]
    truth = given.groupby(["source", "question_id"])["answerer"].agg(set)
    asked = asked.set_index(["source", "question_id"]).loc[truth.index].reset_index()
    return asked, [truth[(s, q)] for s, q in zip(asked["source"], asked["question_id"], strict=True)]


def _evidence(model: AnswererModel, asked: pd.DataFrame) -> list[pd.DataFrame]:
    return [model.evidence(a, c, t, at) for a, c, t, at in
            zip(asked["asker"], asked["container_id"], asked["topics"], asked["asked_at"], strict=True)]


def _lists(evs: Sequence[pd.DataFrame], weights: Weights, asked: pd.DataFrame, k: int,
           groups: Mapping[str, str] | None) -> list[list[str]]:
    return [pick(ev, weights, k, a, groups) for ev, a in zip(evs, asked["asker"], strict=True)]


def _hits(ev: pd.DataFrame, truth: set[str], exponents: tuple[float, float], weights: np.ndarray, k: int,
          asker: str, groups: Mapping[str, str] | None) -> np.ndarray:
    """Hits of `pick`'s top k for each column of `weights` (LINEAR x m, with this topic exponent) at once:
    the same lists `pick` makes, vectorised for `fit`'s grid."""
    if ev.empty:
        return np.zeros(weights.shape[1])
    attrs = dict(ev.attrs)
    ev = ev.sort_index()
    ev.attrs.update(attrs)
    people = ev.index.astype(str).to_numpy()
    values = ev[list(EVIDENCE)].to_numpy()
    score = design(ev, *exponents) @ weights  # n x m
    order = np.argsort(-score, axis=0, kind="stable")  # rows sorted by key: ties by key, as `pick`
    ranked = np.take_along_axis(score, order, 0) > 0
    is_truth = np.isin(people, list(truth))
    kk = min(k, len(people))
    hits = (is_truth[order[:kk]] & ranked[:kk]).sum(axis=0)
    groups = groups or {}
    mine = groups.get(asker)
    if mine is None or len(people) <= k:
        return hits
    same = np.array([groups.get(p) == mine for p in people])[order]
    eligible = ((values[:, EVIDENCE.index("topic")] > 0) | (values[:, EVIDENCE.index("container")] > 0))[order]
    full_same = ranked[:k].all(axis=0) & same[:k].all(axis=0)
    outsider = ~same[k:] & eligible[k:] & ranked[k:]
    swap = full_same & outsider.any(axis=0)
    if swap.any():
        cols = np.flatnonzero(swap)
        out = order[k + outsider[:, cols].argmax(axis=0), cols]
        last = order[k - 1, cols]
        hits[cols] += is_truth[out].astype(int) - is_truth[last].astype(int)
    return hits


def fit(questions: pd.DataFrame, answers: pd.DataFrame, cutoff: pd.Timestamp, *, holdout_days: int, k: int = 5,
        groups: Mapping[str, str] | None = None, max_questions: int = 600) -> tuple[Weights, Scores, int]:
    """Weights for an organisation, chosen on its own past: the `holdout_days` before `cutoff` are hidden in
    turn, every weighting of `GRID` ranks their questions from the answers before them, and the one with the
    best recall@k (then precision@k; then the earliest of the grid, the simplest) wins. At most
    `max_questions` of the window's questions are used (every n-th, in time order). Nothing after `cutoff` is
    read. Returns the weights, their validation scores and the number of validation questions; the defaults
    (and no score) when the validation window has no answered question."""
    start = cutoff - pd.Timedelta(days=holdout_days)
    asked, truths = _test_set(questions, answers, start, cutoff)
    if asked.empty:
        return Weights(), Scores(float("nan"), float("nan"), float("nan")), 0
    if len(asked) > max_questions:
        step = len(asked) / max_questions
        keep = sorted({int(i * step) for i in range(max_questions)})
        asked = asked.iloc[keep].reset_index(drop=True)
        truths = [truths[i] for i in keep]
    combos = list(itertools.product(GRID["activity"], GRID["asker"], GRID["similar"]))
    matrix = np.array([[1.0, a, t, g] for a, t, g in combos]).T  # LINEAR x m
    sizes = np.array([len(t) for t in truths], dtype="float64")
    history = answers[pd.to_datetime(answers["answered_at"], utc=True) <= start]
    best: tuple[float, float] | None = None
    chosen = Weights()
    chosen_scores = None
    for half_life in GRID["half_life_days"]:
        model = AnswererModel(history, start, weights=Weights(half_life_days=half_life), groups=groups)
        evs = _evidence(model, asked)
        for topic, availability in itertools.product(GRID["topic"], GRID["availability"]):
            hits = np.array([_hits(ev, t, (topic, availability), matrix, k, a, groups) for ev, t, a in
                             zip(evs, truths, asked["asker"], strict=True)])  # questions x m
            precision = (hits / k).mean(axis=0)
            recall = (hits / sizes[:, None]).mean(axis=0)
            hit_rate = (hits > 0).mean(axis=0)
            for c, (activity, asker, similar) in enumerate(combos):
                if best is None or (recall[c], precision[c]) > best:
                    best = (float(recall[c]), float(precision[c]))
                    chosen = Weights(container=1.0, activity=activity, topic=topic, availability=availability,
                                     asker=asker, similar=similar, half_life_days=half_life)
                    chosen_scores = Scores(float(precision[c]), float(recall[c]), float(hit_rate[c]))
    assert chosen_scores is not None
    return chosen, chosen_scores, len(asked)


@dataclass
class Evaluation:
    dataset: str
    cutoff: str
    end: str
    k: int
    questions: int  # test questions (asked after the cutoff, answered by someone)
    answerers_per_question: float
    known_answerers: float  # share of actual answerers who had answered before the cutoff
    model: Scores
    baseline: Scores  # most active answerers of the container, all history before the cutoff
    baseline_recent: Scores  # the same over the 90 days before the cutoff
    fitted: Scores | None = None  # the model with weights fitted on the weeks before the cutoff (`fit`)
    ablations: dict[str, Scores] = field(default_factory=dict)  # the model without one part
    weights: Weights = field(default_factory=Weights)  # the model's (the defaults)
    fitted_weights: Weights | None = None
    validation: Scores | None = None  # the fitted weights' scores on the weeks they were fitted on
    validation_questions: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("model", "baseline", "baseline_recent",
                                                                  "ablations", "weights", "fitted",
                                                                  "fitted_weights", "validation")}
        out["answerers_per_question"] = round(self.answerers_per_question, 3)
        out["known_answerers"] = round(self.known_answerers, 4)
        out["model"] = self.model.as_dict()
        out["baseline"] = self.baseline.as_dict()
        out["baseline_recent"] = self.baseline_recent.as_dict()
        out["fitted"] = self.fitted.as_dict() if self.fitted else None
        out["fitted_weights"] = asdict(self.fitted_weights) if self.fitted_weights else None
        out["validation"] = self.validation.as_dict() if self.validation else None
        out["ablations"] = {k: v.as_dict() for k, v in self.ablations.items()}
        out["weights"] = asdict(self.weights)
        return out


def evaluate(acts: pd.DataFrame, *, holdout_days: int, dataset: str, k: int = 5, actor: str = "actor_key",
             groups: Mapping[str, str] | None = None, ablations: bool = True) -> Evaluation:
    """Hide the last `holdout_days` of `acts`; rank candidates for every question asked in the hidden days
    that someone answered, from the replies given before the cutoff only; compare with who answered. The
    same for the baselines, for weights fitted on the `holdout_days` before the cutoff (`fit`) and for the
    model without each of its parts."""
    questions, answers = questions_and_answers(acts, actor)
    if questions.empty:
        raise ValueError(f"{dataset}: no question posts to evaluate on")
    end = pd.to_datetime(acts["occurred_at"], utc=True).max()
    cutoff = (end - pd.Timedelta(days=holdout_days)).normalize()
    asked, truths = _test_set(questions, answers, cutoff, end)
    if asked.empty:
        raise ValueError(f"{dataset}: no answered question after the cutoff {cutoff.date()}")
    fitted, validation, n_validation = fit(questions, answers, cutoff, holdout_days=holdout_days, k=k, groups=groups)
    history = answers[pd.to_datetime(answers["answered_at"], utc=True) <= cutoff]
    known = set(history.loc[history["is_answer"], "answerer"])
    results: dict[str, Scores] = {}
    by_half_life: dict[float, list[pd.DataFrame]] = {}
    variants = {"model": Weights(), "fitted": fitted}
    if ablations:
        variants |= {f"without_{p}": Weights().without(p) for p in PARTS if p != "container"}
    for name, wts in variants.items():
        if wts.half_life_days not in by_half_life:
            by_half_life[wts.half_life_days] = _evidence(
                AnswererModel(history, cutoff, weights=wts, groups=groups), asked)
        results[name] = _scores(_lists(by_half_life[wts.half_life_days], wts, asked, k, groups), truths, k)
    base = [container_baseline(history, cutoff, a, c, k) for a, c in zip(asked["asker"], asked["container_id"],
                                                                        strict=True)]
    recent = [container_baseline(history, cutoff, a, c, k, since=cutoff - pd.Timedelta(days=90))
              for a, c in zip(asked["asker"], asked["container_id"], strict=True)]
    all_truth = [p for t in truths for p in t]
    return Evaluation(
        dataset=dataset, cutoff=str(cutoff.date()), end=str(end.date()), k=k, questions=len(asked),
        answerers_per_question=float(np.mean([len(t) for t in truths])),
        known_answerers=float(np.mean([p in known for p in all_truth])),
        model=results.pop("model"), baseline=_scores(base, truths, k), baseline_recent=_scores(recent, truths, k),
        fitted=results.pop("fitted"), ablations=results, weights=Weights(), fitted_weights=fitted,
        validation=validation, validation_questions=n_validation)
