"""A seeded generator of a realistic enterprise and its activity on an enterprise social network.

It is the default source of the main job and the data generator of the benchmark. Planted patterns,
which the metrics and alerts must find:
  - Engineering adopts strongly and keeps growing;
  - Sales shows early enthusiasm, then declines week after week;
  - Legal stays silent;
  - a handful of true influencers (their posts draw replies and reactions) and brokers (they talk
    across departments) exist in known places (`DemoOrg.influencers`, `DemoOrg.brokers`);
  - questions get answers after realistic delays, some never do, and a share get an accepted answer;
  - a tenth of the other posts are idea posts (`is_idea`, as Socialcast's idea type): the replies and
    across-department replies they draw are the idea mart's build-ons (statuses come from idea platforms,
    which the UserVoice emulator serves from the same organisation);
  - Internal Audit is smaller than the default min_group_size, so its aggregates are suppressed.
Everything is heavy-tailed (lognormal activity rates, a quarter of people never act). The generator
only produces identities in clear inside memory; `pipelines.sources.demo` pseudonymises them before
anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# name, share of headcount, adoption pattern
DEPARTMENTS: tuple[tuple[str, float, str], ...] = (
    ("Engineering", 0.24, "strong"),
    ("Sales", 0.17, "declining"),
    ("Customer Support", 0.14, "steady"),
    ("Operations", 0.12, "steady"),
    ("Marketing", 0.10, "steady"),
    ("Finance", 0.08, "steady"),
    ("Human Resources", 0.06, "steady"),
    ("Product", 0.05, "steady"),
    ("Legal", 0.04, "silent"),
)
SMALL_DEPARTMENT = ("Internal Audit", 4)
LOCATIONS = ("London", "Paris", "New York", "Singapore", "Remote")
LOCATION_P = (0.3, 0.2, 0.25, 0.1, 0.15)
#: one post in IDEA_EVERY (not questions) is an idea post
IDEA_EVERY = 10
ORG_WIDE_CHANNELS = ("general", "announcements", "ask-it", "ask-hr", "random", "cross-team")
QA_CHANNELS = ("ask-it", "ask-hr")
VERB_BASE = np.array([0.20, 0.30, 0.40, 0.06, 0.04])  # post, reply, reaction, mention, share
VERB_NAMES = np.array(["post", "reply", "reaction", "mention", "share"])
POOL_DAYS = 7
SOURCE = "demo"


@dataclass
class DemoOrg:
    people: pd.DataFrame  # clear identities: email, employee_id, department, ...
    containers: pd.DataFrame
    start: dt.date
    days: int
    seed: int
    influencers: list[int] = field(default_factory=list)  # person indices
    brokers: list[int] = field(default_factory=list)
    # per person arrays used by the activity simulation
    rate: np.ndarray = field(default_factory=lambda: np.zeros(0))
    adopt_day: np.ndarray = field(default_factory=lambda: np.zeros(0))
    verb_p: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    cross_p: np.ndarray = field(default_factory=lambda: np.zeros(0))
    appeal: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)


def build_org(people: int = 3000, days: int = 184, start: dt.date = dt.date(2026, 5, 1), seed: int = 7,
              events_per_person_day: float = 1.0) -> DemoOrg:
    """The organisation: directory, hierarchy, containers and each person's behaviour."""
    if people < 60:
        raise ValueError(f"the demo organisation needs at least 60 people (got {people})")
    rng = np.random.default_rng(seed)
    small_name, small_n = SMALL_DEPARTMENT
    n_main = people - small_n - 1  # minus the CEO
    shares = np.array([d[1] for d in DEPARTMENTS])
    sizes = np.floor(shares / shares.sum() * n_main).astype(int)
    sizes[0] += n_main - sizes.sum()

    rows: list[dict] = []
    ceo = 0
    rows.append(dict(department="Executive Office", level="C-level", manager=-1, pattern="steady"))
    dept_members: dict[str, list[int]] = {}
    for (name, _, pattern), size in zip(DEPARTMENTS, sizes, strict=True):
        base = len(rows)
        idx = list(range(base, base + size))
        dept_members[name] = idx
        n_dir = max(1, size // 60)
        n_mgr = max(1, size // 9)
        vp = base
        dirs = list(range(base + 1, base + 1 + n_dir))
        mgrs = list(range(base + 1 + n_dir, base + 1 + n_dir + n_mgr))
        for i in idx:
            if i == vp:
                rows.append(dict(department=name, level="VP", manager=ceo, pattern=pattern))
            elif i in dirs:
                rows.append(dict(department=name, level="Director", manager=vp, pattern=pattern))
            elif i in mgrs:
                rows.append(dict(department=name, level="Manager", manager=int(rng.choice(dirs)), pattern=pattern))
            else:
                level = "Senior" if rng.random() < 0.3 else "Associate"
                rows.append(dict(department=name, level=level, manager=int(rng.choice(mgrs)), pattern=pattern))
    base = len(rows)
    for j in range(small_n):
        rows.append(dict(department=small_name, level="Director" if j == 0 else "Senior",
                         manager=ceo if j == 0 else base, pattern="steady"))
    df = pd.DataFrame(rows)
    n = len(df)
    df["employee_id"] = [f"E{100000 + i}" for i in range(n)]
    df["email"] = [f"person{i:06d}@demo-corp.example" for i in range(n)]
    df["manager_email"] = [df["email"].iat[m] if m >= 0 else None for m in df["manager"]]
    df["location"] = rng.choice(LOCATIONS, size=n, p=LOCATION_P)
    df["is_leader"] = df["level"].isin(["C-level", "VP", "Director"])
    tenure_days = rng.exponential(4 * 365, size=n).astype(int)
    hire = np.array([start - dt.timedelta(days=int(t) + 1) for t in tenure_days])
    new_hires = rng.random(n) < 0.05
    hire[new_hires] = [start + dt.timedelta(days=int(x)) for x in rng.integers(0, days, new_hires.sum())]
    df["hire_date"] = hire
    leavers = (rng.random(n) < 0.03) & ~df["is_leader"].to_numpy()
    term = np.full(n, None, dtype=object)
    term[leavers] = [start + dt.timedelta(days=int(x)) for x in rng.integers(days // 3, days, leavers.sum())]
    df["termination_date"] = term

    # behaviour: heavy-tailed rates, a quarter never act
    rate = rng.lognormal(mean=0.0, sigma=1.1, size=n)
    rate *= events_per_person_day / np.exp(1.1**2 / 2) / 0.75
    rate[rng.random(n) < 0.25] = 0.0
    pattern = df["pattern"].to_numpy()
    adopt = np.where(pattern == "declining", rng.exponential(6, n),
                     np.where(pattern == "strong", rng.exponential(25, n), rng.exponential(35, n)))
    silent = pattern == "silent"
    rate[silent] = 0.0
    adopt_day = adopt.astype(int)
    leaders = df["is_leader"].to_numpy()
    rate[leaders] = np.maximum(rate[leaders], 0.3 * events_per_person_day)

    verb_p = rng.dirichlet(VERB_BASE * 20, size=n)
    cross_p = np.full(n, 0.18)
    appeal = np.ones(n)

    active_candidates = np.flatnonzero((rate > 0) & ~silent & (df["department"] != small_name).to_numpy()
                                       & ~leaders)
    k_inf = max(3, n // 300)
    k_brk = max(3, n // 500)
    chosen = rng.choice(active_candidates, size=k_inf + k_brk, replace=False)
    influencers = sorted(int(i) for i in chosen[:k_inf])
    brokers = sorted(int(i) for i in chosen[k_inf:])
    rate[influencers] = np.maximum(rate[influencers], 3 * events_per_person_day)
    verb_p[influencers] = [0.45, 0.25, 0.2, 0.06, 0.04]
    appeal[influencers] = 25.0
    rate[brokers] = np.maximum(rate[brokers], 3 * events_per_person_day)
    verb_p[brokers] = [0.2, 0.5, 0.2, 0.06, 0.04]
    cross_p[brokers] = 0.85
    appeal[brokers] = 4.0
    adopt_day[influencers + brokers] = 0

    containers: list[dict[str, object]] = []
    for name in [d[0] for d in DEPARTMENTS] + [small_name, "Executive Office"]:
        slug = name.lower().replace(" ", "-")
        size = int((df["department"] == name).sum())
        for ch in ("team", "projects", "social"):
            containers.append(dict(container_id=f"C-{slug}-{ch}", kind="channel",
                                   visibility="private" if ch == "team" else "public",
                                   member_count=size, owner_department=name))
    for ch in ORG_WIDE_CHANNELS:
        containers.append(dict(container_id=f"C-{ch}", kind="channel", visibility="public",
                               member_count=n, owner_department=None))
    cdf = pd.DataFrame(containers)
    cdf["created_at"] = pd.Timestamp(start - dt.timedelta(days=400), tz="UTC")

    return DemoOrg(people=df.drop(columns=["manager", "pattern"]).assign(pattern=pattern),
                   containers=cdf, start=start, days=days, seed=seed, influencers=influencers,
                   brokers=brokers, rate=rate, adopt_day=adopt_day, verb_p=verb_p, cross_p=cross_p,
                   appeal=appeal)


def _multiplier(pattern: np.ndarray, day: int, days: int) -> np.ndarray:
    t = day / max(days - 1, 1)
    m = np.ones(len(pattern))
    m[pattern == "strong"] = 0.7 + 0.6 * t
    decline = 1.6 * np.exp(-max(day - 30, 0) / 30.0) + 0.08
    m[pattern == "declining"] = decline if day >= 30 else 1.6
    return m


def simulate(org: DemoOrg, until: dt.date | None = None) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Yield (day, activities in clear) for each day from the start to `until` (default: the end).

    Deterministic for a given organisation: day k's events do not depend on `until`.
    """
    until = min(until or org.end, org.end)
    rng = np.random.default_rng(org.seed + 1)
    people = org.people
    n = len(people)
    dept_codes, dept_names = pd.factorize(people["department"])
    pattern = people["pattern"].to_numpy()
    hire = pd.to_datetime(people["hire_date"]).dt.date.to_numpy()
    term = people["termination_date"].to_numpy()
    dept_channel = np.array([f"C-{d.lower().replace(' ', '-')}" for d in people["department"]], dtype=object)
    email = people["email"].to_numpy()
    pool: pd.DataFrame | None = None
    seq = 0
    day_idx = 0
    day = org.start
    while day <= until:
        day_start = int(pd.Timestamp(day, tz="UTC").timestamp())  # epoch seconds; timestamps at the end
        end_of_day = day_start + 86399
        employed = (hire <= day) & np.array([t is None or t > day for t in term])
        weekday = 0.12 if day.weekday() >= 5 else 1.0
        lam = org.rate * _multiplier(pattern, day_idx, org.days) * weekday
        lam[(org.adopt_day > day_idx) | ~employed] = 0.0
        counts = rng.poisson(lam)
        actors = np.repeat(np.arange(n), counts)
        m = len(actors)
        # verb per event from the actor's own mix
        u = rng.random(m)
        cum = np.cumsum(org.verb_p[actors], axis=1)
        verb_idx = (u[:, None] > cum).sum(axis=1).clip(0, 4)
        hour = np.clip(rng.normal(13.0, 2.8, m), 0.0, 23.98)
        ts = day_start + (hour * 3600.0).astype(np.int64)

        # posts
        is_post = verb_idx == 0
        p_act = actors[is_post]
        n_posts = len(p_act)
        to_org = rng.random(n_posts) < 0.2
        org_ch = rng.choice(ORG_WIDE_CHANNELS, size=n_posts, p=[0.25, 0.05, 0.2, 0.15, 0.15, 0.2])
        sub = rng.choice(["-team", "-projects", "-social"], size=n_posts, p=[0.5, 0.35, 0.15])
        container = np.where(to_org, np.char.add("C-", org_ch.astype(str)),
                             np.char.add(dept_channel[p_act].astype(str), sub.astype(str)))
        is_q = rng.random(n_posts) < np.where(np.isin(container, ["C-ask-it", "C-ask-hr"]), 0.85, 0.12)
        post_ids = np.array([f"demo-{seq + i}" for i in range(n_posts)], dtype=object)
        # idea posts, as platforms that flag them give (Socialcast's idea type): every tenth post that is
        # not a question, by its number (no draw: the other events stay as they were)
        is_idea = ~is_q & ((seq + np.arange(n_posts)) % IDEA_EVERY == 3)
        seq += n_posts
        posts = pd.DataFrame({
            "event_id": post_ids, "occurred_at": ts[is_post], "actor": p_act, "verb": "post",
            "container_id": container, "thread_id": post_ids, "parent_id": None, "target": -1,
            "content_length": rng.lognormal(4.5, 0.9, n_posts).astype(int) + 1, "is_question": is_q,
            "is_idea": is_idea,
        })
        new_pool = pd.DataFrame({"post_id": post_ids, "author": p_act, "dept": dept_codes[p_act],
                                 "container": container, "ts": ts[is_post], "day": day_idx,
                                 "is_question": is_q, "answered": False})
        pool = new_pool if pool is None else pd.concat(
            [pool[pool["day"] > day_idx - POOL_DAYS], new_pool], ignore_index=True)

        frames = [posts]
        # replies, reactions, shares target a post in the pool
        resp = np.isin(verb_idx, [1, 2, 4])
        r_act = actors[resp]
        r_verb = verb_idx[resp]
        r_ts = ts[resp]
        if len(r_act) and len(pool):
            age = day_idx - pool["day"].to_numpy()
            w = org.appeal[pool["author"].to_numpy().astype(int)] * np.exp(-age / 2.0)
            w = w * np.where(pool["is_question"].to_numpy(dtype=bool), 1.6, 1.0)
            pdept = pool["dept"].to_numpy().astype(int)
            cross = rng.random(len(r_act)) < org.cross_p[r_act]
            choice = np.full(len(r_act), -1)
            broker_boost = np.where(np.isin(pool["author"].to_numpy().astype(int), org.brokers), 12.0, 1.0)
            for d in range(len(dept_names)):
                mine = dept_codes[r_act] == d
                for is_cross, mask_pool, weights in (
                    (False, pdept == d, w),
                    (True, pdept != d, w * broker_boost),
                ):
                    sel = np.flatnonzero(mine & (cross == is_cross))
                    cand = np.flatnonzero(mask_pool)
                    if len(sel) == 0 or len(cand) == 0:
                        continue
                    cw = np.cumsum(weights[cand])
                    pick = np.searchsorted(cw, rng.random(len(sel)) * cw[-1])
                    choice[sel] = cand[np.minimum(pick, len(cand) - 1)]
            ok = choice >= 0
            r_act, r_verb, r_ts, choice = r_act[ok], r_verb[ok], r_ts[ok], choice[ok]
            parent = pool.iloc[choice]
            p_ts = parent["ts"].to_numpy().astype(np.int64)
            delay = rng.lognormal(np.log(1.2 * 3600), 1.0, len(choice)).astype(np.int64) + 30
            same_day = parent["day"].to_numpy() == day_idx
            resp_ts = np.where(same_day, np.minimum(p_ts + delay, end_of_day), np.asarray(r_ts))
            ids = np.array([f"demo-{seq + i}" for i in range(len(choice))], dtype=object)
            seq += len(choice)
            responses = pd.DataFrame({
                "event_id": ids, "occurred_at": resp_ts, "actor": r_act, "verb": VERB_NAMES[r_verb],
                "container_id": parent["container"].to_numpy(), "thread_id": parent["post_id"].to_numpy(),
                "parent_id": parent["post_id"].to_numpy(), "target": parent["author"].to_numpy().astype(int),
                "content_length": np.where(r_verb == 1, rng.lognormal(4.0, 0.8, len(choice)).astype(int) + 1, 0),
                "is_question": False,
            })
            responses.loc[responses["verb"] != "reply", "content_length"] = None
            frames.append(responses)
            # accepted answers: the asker accepts a first reply from someone else, now and then
            is_answer = (r_verb == 1) & parent["is_question"].to_numpy(dtype=bool) & \
                ~parent["answered"].to_numpy(dtype=bool) & (parent["author"].to_numpy().astype(int) != r_act)
            answered_ids = set(parent["post_id"].to_numpy()[is_answer])
            first = responses[is_answer].drop_duplicates("thread_id")
            accept = first[(rng.random(len(first)) < 0.35)
                           & np.isin(first["container_id"], ["C-ask-it", "C-ask-hr"])]
            if len(accept):
                acc_ids = np.array([f"demo-{seq + i}" for i in range(len(accept))], dtype=object)
                seq += len(accept)
                frames.append(pd.DataFrame({
                    "event_id": acc_ids,
                    "occurred_at": np.minimum(accept["occurred_at"].to_numpy() + 1200, end_of_day),
                    "actor": accept["target"].to_numpy(), "verb": "answer_accepted",
                    "container_id": accept["container_id"].to_numpy(),
                    "thread_id": accept["thread_id"].to_numpy(), "parent_id": accept["event_id"].to_numpy(),
                    "target": accept["actor"].to_numpy(), "content_length": None, "is_question": False,
                }))
            pool.loc[pool["post_id"].isin(answered_ids), "answered"] = True

        # mentions: mostly of colleagues in the same department, influencers more often
        men = verb_idx == 3
        m_act = actors[men]
        if len(m_act):
            same = rng.random(len(m_act)) < 0.75
            target = rng.integers(0, n, len(m_act))
            for d in range(len(dept_names)):
                members = np.flatnonzero(dept_codes == d)
                sel = np.flatnonzero(same & (dept_codes[m_act] == d))
                if len(sel) and len(members):
                    target[sel] = rng.choice(members, size=len(sel), p=org.appeal[members] / org.appeal[members].sum())
            ids = np.array([f"demo-{seq + i}" for i in range(len(m_act))], dtype=object)
            seq += len(m_act)
            frames.append(pd.DataFrame({
                "event_id": ids, "occurred_at": ts[men], "actor": m_act, "verb": "mention",
                "container_id": np.char.add(dept_channel[m_act].astype(str), "-projects"),
                "thread_id": None, "parent_id": None, "target": target, "content_length": None,
                "is_question": False,
            }))
        out = pd.concat(frames, ignore_index=True)
        out["is_idea"] = out["is_idea"].fillna(False).astype(bool)
        out["actor_email"] = email[out["actor"].to_numpy().astype(int)]
        tgt = out["target"].to_numpy().astype(int)
        out["target_email"] = np.where(tgt >= 0, email[np.maximum(tgt, 0)], None)
        out["occurred_at"] = pd.to_datetime(out["occurred_at"].to_numpy().astype(np.int64), unit="s", utc=True)
        out = out.drop(columns=["actor", "target"]).sort_values(["occurred_at", "event_id"], kind="stable")
        yield day, out.reset_index(drop=True)
        day += dt.timedelta(days=1)
        day_idx += 1
