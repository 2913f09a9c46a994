"""The content of an emulated Bitrix24 portal: the demo organisation as users, the department tree,
workgroups with their members, Feed posts (a few of them "important", with their readers, a few drafts)
and comments, rendered as the REST methods answer them.

Built once from `pipelines.sources.demo_org.build_org/simulate`; what exists depends on the data clock
(epoch seconds), so new posts, late comments and new readers appear between runs. Mapping of the demo:
  - people -> `user.get` rows (string `ID`s, `EMAIL`, made-up `NAME`/`LAST_NAME`, `ACTIVE`,
    `USER_TYPE: employee`, `UF_DEPARTMENT` as an array of ints) plus two extranet users who never post;
  - departments -> a tree: the company root (no `PARENT`), one top-level department per demo
    department, and under the larger ones two teams ("<name> Team A/B") holding everyone but the
    leaders, so that a person's leaf department differs from the top-level one;
  - channels -> where a post goes: `general` and `announcements` to all users (`UA`,
    `HAS_SOCNET_ALL: Y`; every announcement is "important" and is read over the next days by about a
    third of the users), a department's `team` channel to the department (`DR<id>`: restricted), every
    other channel is a workgroup (`SG<id>`; `projects` groups are projects, visible but closed); a
    `cross-team` post also goes to its author's department `projects` group (a post in two groups);
  - post -> a Feed post (`?` at the end for a question); mention -> a post in the author's `projects`
    group whose text holds `[USER=<id>]Name[/USER]`; reply -> a flat comment on the post (the
    administrator, the webhook's user, is the most active commenter; their comments name the post's
    author with the same BBCode, and are the only comments whose text an administrator's read
    returns); one post event in 25 is a draft (`PUBLISH_STATUS: D`, never listed, never commented);
    reactions, shares and accepted answers have no REST read and are left out.
Ids are disjoint number ranges (users 73xxxxx, posts 21xxxx, Feed entries 6xxxxx, log comments 4xxxxxx,
blog comments 3xxxxxx, departments and groups below 1000) so that a raw id found on disk is recognisable.
`LOG_UPDATE` is the time of the latest visible comment (or the post's own). Clear identities exist here
only because this is synthetic demo data.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field
from typing import Any

from pipelines.sources.demo_org import DemoOrg, simulate

USER_BASE, USER_STEP = 7_300_001, 113
POST_BASE = 210_000
LOG_ENTRY_BASE = 600_000
COMMENT_BASE = 3_000_000  # the blog comment id (`comment_id`)
LOG_COMMENT_BASE = 4_000_000  # the Feed comment id (`id`)
ROOT_DEPARTMENT = 1
TO_ALL = ("C-general", "C-announcements")
IMPORTANT = "C-announcements"
TEAM_MIN = 10  # a top-level department at least this large gets two teams
WORDS = ("the", "plan", "review", "budget", "deploy", "customer", "launch", "roadmap", "ticket", "idea", "team")


def user_id(i: int) -> int:
    return USER_BASE + USER_STEP * i


def fmt_time(epoch_s: float, offset_h: int, style: str = "iso") -> str:
    """A portal time: ISO 8601 with the server's offset, or the old portal format without one."""
    t = dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone(dt.timedelta(hours=offset_h)))
    return t.strftime("%d.%m.%Y %H:%M:%S") if style == "portal" else t.replace(microsecond=0).isoformat()


def _words(length: int, salt: int) -> str:
    out: list[str] = []
    i = salt
    while sum(len(w) + 1 for w in out) < max(length, 3):
        out.append(WORDS[i % len(WORDS)])
        i += 7
    return " ".join(out)[:max(length, 3)]


@dataclass
class Comment:
    log_id: int  # `id`: the Feed comment (the FIRST_ID / LAST_ID cursor)
    comment_id: int
    post_id: int
    author: int
    created: float
    text: str


@dataclass
class Post:
    id: int
    log_id: int  # the post's Feed entry
    author: int
    created: float
    text: str
    rights: frozenset[str]  # UA, SG<id>, DR<id>, U<id>
    important: bool = False
    draft: bool = False
    comments: list[Comment] = field(default_factory=list)
    readers: list[tuple[float, int]] = field(default_factory=list)  # (read at, user id)

    def log_update(self, now: float) -> float:
        return max([self.created, *(c.created for c in self.comments if c.created <= now)])

    def render(self, now: float, offset_h: int, style: str = "iso") -> dict[str, Any]:
        comments = sum(1 for c in self.comments if c.created <= now)
        return {
            "ID": str(self.id), "BLOG_ID": "1", "PUBLISH_STATUS": "D" if self.draft else "P", "TITLE": "",
            "AUTHOR_ID": str(self.author), "ENABLE_COMMENTS": "Y", "NUM_COMMENTS": str(comments), "CODE": None,
            "MICRO": "Y", "DETAIL_TEXT": self.text, "DATE_PUBLISH": fmt_time(self.created, offset_h, style),
            "CATEGORY_ID": "", "HAS_SOCNET_ALL": "Y" if "UA" in self.rights else "N", "HAS_TAGS": "N",
            "HAS_IMAGES": "N", "HAS_PROPS": "Y", "HAS_COMMENT_IMAGES": None,
            "UF_BLOG_POST_IMPRTNT": {"ID": "83", "ENTITY_ID": "BLOG_POST", "FIELD_NAME": "UF_BLOG_POST_IMPRTNT",
                                     "USER_TYPE_ID": "integer", "MULTIPLE": "N",
                                     "VALUE": "1" if self.important else None, "ENTITY_VALUE_ID": self.id},
            "UF_BLOG_POST_FILE": {"ID": "19", "ENTITY_ID": "BLOG_POST", "FIELD_NAME": "UF_BLOG_POST_FILE",
                                  "USER_TYPE_ID": "disk_file", "MULTIPLE": "Y", "VALUE": False,
                                  "ENTITY_VALUE_ID": self.id},
        }


@dataclass
class Portal:
    users: list[dict[str, Any]]
    departments: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    members: dict[int, list[tuple[int, str]]]  # group id -> [(user id, role A/E/K)]
    posts: list[Post]
    admin_id: int
    start: dt.date
    end: dt.date
    offset_h: int = 3  # the server's time zone: dates are written with +03:00
    sub_departments: dict[int, list[int]] = field(default_factory=dict)  # department -> its descendants

    def user(self, uid: int) -> dict[str, Any] | None:
        return self._users.get(uid)

    def __post_init__(self) -> None:
        self._users = {int(u["ID"]): u for u in self.users}

    def name(self, uid: int) -> str:
        u = self._users.get(uid) or {}
        return f"{u.get('NAME', '')} {u.get('LAST_NAME', '')}".strip()

    def comments(self) -> list[Comment]:
        return [c for p in self.posts for c in p.comments]


def build_portal(org: DemoOrg, *, draft_every: int = 25, offset_h: int = 3) -> Portal:
    people = org.people
    uid_of = {e: user_id(i) for i, e in enumerate(people["email"])}
    # the department tree
    names = list(dict.fromkeys(people["department"]))
    departments: list[dict[str, Any]] = [{"ID": str(ROOT_DEPARTMENT), "NAME": "Demo Corp", "SORT": 500}]
    top_of: dict[str, int] = {}
    teams_of: dict[str, tuple[int, int]] = {}
    for k, name in enumerate(names):
        top = 10 + k
        top_of[name] = top
        departments.append({"ID": str(top), "NAME": name, "SORT": 500, "PARENT": str(ROOT_DEPARTMENT)})
        if int((people["department"] == name).sum()) >= TEAM_MIN:
            a, b = 100 + 2 * k, 101 + 2 * k
            teams_of[name] = (a, b)
            departments += [{"ID": str(a), "NAME": f"{name} Team A", "SORT": 500, "PARENT": str(top)},
                            {"ID": str(b), "NAME": f"{name} Team B", "SORT": 500, "PARENT": str(top)}]
    sub: dict[int, list[int]] = {int(d["ID"]): [] for d in departments}
    parent_of = {int(d["ID"]): int(d["PARENT"]) for d in departments if d.get("PARENT")}
    for d in departments:
        up = parent_of.get(int(d["ID"]))
        while up is not None:
            sub[up].append(int(d["ID"]))
            up = parent_of.get(up)
    users: list[dict[str, Any]] = []
    dept_of_user: dict[int, int] = {}
    for i, p in enumerate(people.itertuples(index=False)):
        uid = uid_of[p.email]
        teams = teams_of.get(p.department)
        dept = top_of[p.department] if teams is None or p.is_leader else teams[i % 2]
        dept_of_user[uid] = dept
        hired = dt.datetime(p.hire_date.year, p.hire_date.month, p.hire_date.day, tzinfo=dt.UTC).timestamp()
        users.append({"ID": str(uid), "XML_ID": "", "ACTIVE": p.termination_date is None,
                      "NAME": f"Given{i:04d}", "LAST_NAME": f"Family{i:04d}", "SECOND_NAME": "", "EMAIL": p.email,
                      "LAST_LOGIN": fmt_time(hired + 3600, offset_h), "DATE_REGISTER": fmt_time(hired, offset_h),
                      "TIME_ZONE": "", "IS_ONLINE": "N", "TIMESTAMP_X": {}, "LAST_ACTIVITY_DATE": {},
                      "PERSONAL_GENDER": "", "PERSONAL_BIRTHDAY": "", "WORK_POSITION": str(p.level),
                      "UF_EMPLOYMENT_DATE": "", "UF_DEPARTMENT": [dept], "USER_TYPE": "employee"})
    n = len(users)
    for j in range(2):  # extranet guests of the portal: listed, never posting
        users.append({"ID": str(user_id(n + j)), "ACTIVE": True, "NAME": f"Extranet{j:02d}", "LAST_NAME": "Guestq",
                      "EMAIL": f"guest{j}@partner-corp.example", "UF_DEPARTMENT": [], "USER_TYPE": "extranet",
                      "TIMESTAMP_X": {}, "LAST_ACTIVITY_DATE": {}})
    # workgroups: every channel but the company-wide and the department team ones
    groups: list[dict[str, Any]] = []
    group_of: dict[str, int] = {}
    members: dict[int, list[tuple[int, str]]] = {}
    created = dt.datetime(org.start.year, org.start.month, org.start.day, tzinfo=dt.UTC).timestamp() - 400 * 86400
    for j, c in enumerate(org.containers.itertuples(index=False)):
        cid = str(c.container_id)
        if cid in TO_ALL or _is_team(cid):
            continue
        gid = 3 + 2 * j
        group_of[cid] = gid
        project = cid.endswith("-projects")
        owner = c.owner_department if isinstance(c.owner_department, str) else None
        who = [uid_of[e] for e, d in zip(people["email"], people["department"], strict=True)
               if owner is None or d == owner]
        members[gid] = [(u, "A" if k == 0 else "E" if k == 1 else "K") for k, u in enumerate(who)]
        groups.append({"ID": str(gid), "SITE_ID": "s1", "NAME": cid.removeprefix("C-"), "DESCRIPTION": None,
                       "DATE_CREATE": fmt_time(created, offset_h), "DATE_UPDATE": fmt_time(created, offset_h),
                       "ACTIVE": "Y", "VISIBLE": "Y", "OPENED": "N" if project else "Y", "CLOSED": "N",
                       "SUBJECT_ID": "1", "OWNER_ID": str(who[0]) if who else "", "KEYWORDS": None,
                       "NUMBER_OF_MEMBERS": str(len(who)), "DATE_ACTIVITY": fmt_time(created, offset_h),
                       "SUBJECT_NAME": "Workgroups", "PROJECT": "Y" if project else "N", "IS_EXTRANET": "N"})
    dept_slug = {name: "C-" + name.lower().replace(" ", "-") for name in names}
    dept_by_email = dict(zip(people["email"], people["department"], strict=True))
    names_by_uid = {int(u["ID"]): f"{u['NAME']} {u['LAST_NAME']}" for u in users}
    # the Feed
    posts: list[Post] = []
    post_of: dict[str, Post] = {}
    n_post = n_comment = 0
    for _day, events in simulate(org):
        for ev in events.itertuples(index=False):
            sec = float(ev.occurred_at.timestamp())
            actor = uid_of[ev.actor_email]
            length = int(ev.content_length) if ev.content_length == ev.content_length and ev.content_length else 24
            if ev.verb in ("post", "mention"):
                n_post += 1
                author_dept = str(dept_by_email[ev.actor_email])
                container = str(ev.container_id)
                if ev.verb == "mention":
                    target = uid_of[ev.target_email]
                    text = f"[USER={target}]{names_by_uid[target]}[/USER] {_words(length, n_post)}"
                    container = f"{dept_slug[author_dept]}-projects"
                else:
                    text = _words(length, n_post) + ("?" if bool(ev.is_question) else ".")
                rights = {f"U{actor}"}
                if container in TO_ALL:
                    rights.add("UA")
                elif _is_team(container):
                    rights.add(f"DR{top_of[author_dept] if container == dept_slug[author_dept] + '-team' else ROOT_DEPARTMENT}")
                else:
                    rights.add(f"SG{group_of[container]}")
                    if container == "C-cross-team":
                        rights.add(f"SG{group_of[dept_slug[author_dept] + '-projects']}")
                post = Post(POST_BASE + n_post, LOG_ENTRY_BASE + n_post, actor, sec, text, frozenset(rights),
                            important=container == IMPORTANT, draft=n_post % draft_every == 0)
                posts.append(post)
                post_of[ev.event_id] = post
                continue
            if ev.verb != "reply":
                continue  # reactions, shares, accepted answers: no REST read (module doc)
            parent = post_of.get(ev.parent_id)
            if parent is None or parent.draft:
                continue
            n_comment += 1
            parent.comments.append(Comment(LOG_COMMENT_BASE + n_comment, COMMENT_BASE + n_comment, parent.id, actor,
                                           max(sec, parent.created + 1), _words(length, n_comment)))
            post_of[ev.event_id] = parent
    # the webhook's administrator: the most active commenter, so that some comments keep their text
    by_author: dict[int, int] = {}
    for c in (c for x in posts for c in x.comments):
        by_author[c.author] = by_author.get(c.author, 0) + 1
    admin = max(sorted(by_author), key=lambda u: by_author[u]) if by_author else int(users[0]["ID"])
    for x in posts:
        for c in x.comments:
            if c.author == admin and x.author != admin:
                c.text = f"[USER={x.author}]{names_by_uid[x.author]}[/USER] {c.text}"
    active = [int(u["ID"]) for u in users if u.get("ACTIVE") and u.get("USER_TYPE") == "employee"]
    for post in posts:
        if post.important and not post.draft:
            for uid in active:
                h = zlib.crc32(f"{post.id}:{uid}".encode())
                if uid != post.author and h % 3 == 0:
                    post.readers.append((post.created + 3600 * (1 + h % 72), uid))
    return Portal(users=users, departments=departments, groups=groups, members=members, posts=posts,
                  admin_id=admin, start=org.start, end=org.end, offset_h=offset_h, sub_departments=sub)


def _is_team(container: str) -> bool:
    """A department's own `team` channel (posted to the department), not the company's `cross-team`."""
    return container.endswith("-team") and container != "C-cross-team"
