"""Offline evaluation and benchmark of "who could answer" (issue 18): precision@5 and recall@5 of the
recommended answerers against the people who actually answered, and against the baseline of the most
active answerers of the container, on the demo organisation and on real Slack Q&A channels.

  python bench/answerers_eval.py --chatterjee ../shared/data/chatterjee-slack-disentangled
  python bench/answerers_eval.py --no-demo --chatterjee DIR       # the real channels only

Each dataset's last `--holdout-days` are hidden: the model and the baselines see only the answers given
before the cutoff, then rank candidates for every question asked after it that someone answered.
- The demo: the default organisation of `esn demo` (3,000 people, 184 days), generated in memory;
  groups are departments.
- The Chatterjee et al. archives: parsed by the file import's `chatterjee_xml` preset (a conversation's first
  message is the post, a question when the question rules say so; the others reply to it), topic ids from
  each message's prose with the skills taxonomy `bench/answerers/taxonomy.yaml`, as the extraction computes
  them; no text is kept. There is no directory: "similar askers" are the asker's neighbours.
It also times `esn experts` on the demo warehouse when `--demo-warehouse` names one (after `esn demo`).

Results: bench/results/answerers_eval.json and .md (with the machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.answerers import Evaluation, evaluate  # noqa: E402
from pipelines.sources.file_import_presets import PresetInput, chatterjee_xml  # noqa: E402
from pipelines.topics import TopicRules  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TAXONOMY = ROOT / "bench" / "answerers" / "taxonomy.yaml"


def demo_activities(people: int = 3000, days: int = 184, seed: int = 7) -> tuple[pd.DataFrame, dict[str, str]]:
    """The demo organisation's activities (clear emails, in memory only) and each person's department."""
    from pipelines.sources.demo_org import build_org, simulate

    org = build_org(people, days, dt.date(2026, 5, 1), seed)
    frames = [acts for _, acts in simulate(org)]
    acts = pd.concat(frames, ignore_index=True).rename(columns={"actor_email": "actor_key"})
    acts["source"] = "demo"
    acts["topic_ids"] = None
    return acts, dict(zip(org.people["email"], org.people["department"], strict=True))


def chatterjee_activities(path: Path, rules: TopicRules) -> pd.DataFrame:
    """A Chatterjee et al. XML file as canonical activities, as the file import's `chatterjee_xml` preset
    parses it: topic ids from each message's prose with `rules`, the text dropped."""
    parsed = chatterjee_xml(PresetInput(path=path, departments=None, recipients=None, core=None,
                                        synthetic_date=dt.date(2019, 1, 1), edge_verb="message", container_id=None,
                                        topics=rules))
    acts = parsed.activities.copy()
    acts["source"] = "file"
    return acts.rename(columns={"actor_id": "actor_key"})


def pooled(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The datasets' figures as one: each score is a mean over questions, so the pooled one is the mean
    weighted by each dataset's questions."""
    n = sum(r["questions"] for r in rows)

    def mean(get: Any) -> dict[str, float]:
        keys = get(rows[0]).keys()
        return {k: round(sum(get(r)[k] * r["questions"] for r in rows) / n, 4) for k in keys}

    return {"dataset": name, "questions": n, "cutoff": "per channel", "end": "per channel",
            "answerers_per_question": round(sum(r["answerers_per_question"] * r["questions"] for r in rows) / n, 3),
            "known_answerers": round(sum(r["known_answerers"] * r["questions"] for r in rows) / n, 4),
            "model": mean(lambda r: r["model"]), "baseline": mean(lambda r: r["baseline"]),
            "baseline_recent": mean(lambda r: r["baseline_recent"]), "fitted": mean(lambda r: r["fitted"]),
            "ablations": {a: mean(lambda r, a=a: r["ablations"][a]) for a in rows[0]["ablations"]},
            "seconds": round(sum(r["seconds"] for r in rows), 2)}


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": psutil.cpu_count(), "memory_gb":
            round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform()}


def _md(results: list[dict[str, Any]], experts: dict[str, Any] | None) -> str:
    lines = ["# Who could answer: offline evaluation (precision@5, recall@5)", "",
             "Made by `python bench/answerers_eval.py` (see its docstring for the protocol). Each dataset's last",
             "weeks are hidden; lists are ranked from the answers before the cutoff; the truth is who answered.", "",
             "| dataset | questions | model P@5 | model R@5 | baseline P@5 | baseline R@5 | baseline 90d P@5 | "
             "baseline 90d R@5 | model hit@5 | baseline hit@5 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        m, b, b90 = r["model"], r["baseline"], r["baseline_recent"]
        lines.append(f"| {r['dataset']} | {r['questions']} | {m['precision']:.4f} | {m['recall']:.4f} | "
                     f"{b['precision']:.4f} | {b['recall']:.4f} | {b90['precision']:.4f} | {b90['recall']:.4f} | "
                     f"{m['hit_rate']:.4f} | {b['hit_rate']:.4f} |")
    lines += ["", "Weights fitted on the four weeks before the cutoff (`pipelines.answerers.fit`) instead of the defaults, "
              "and the model without each of its parts (P@5 / R@5):", "",
              "| dataset | fitted | " + " | ".join(results[0]["ablations"]) + " |",
              "|---|---:|" + "---:|" * len(results[0]["ablations"])]
    for r in results:
        lines.append(f"| {r['dataset']} | {r['fitted']['precision']:.4f} / {r['fitted']['recall']:.4f} | "
                     + " | ".join(f"{v['precision']:.4f} / {v['recall']:.4f}" for v in r["ablations"].values()) + " |")
    lines += ["", "| dataset | cutoff | end | answerers per question | answerers seen before the cutoff | "
              "evaluation seconds |", "|---|---|---|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['dataset']} | {r['cutoff']} | {r['end']} | {r['answerers_per_question']} | "
                     f"{r['known_answerers']:.1%} | {r['seconds']} |")
    if experts:
        lines += ["", f"`esn experts {experts['query']}` on the demo warehouse: {experts['seconds']} s "
                  f"(best of {experts['repeats']}, {experts['people']} people listed)."]
    return "\n".join(lines) + "\n"


def time_experts(warehouse: Path, query: str, repeats: int = 3) -> dict[str, Any]:
    """Wall time of `esn experts QUERY` in a fresh process (start-up included), best of `repeats`."""
    import subprocess

    best = None
    out = ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", "experts", query, "--json",
                              "--warehouse-url", f"duckdb:///{warehouse}"], check=True, capture_output=True,
                             text=True, cwd=ROOT).stdout
        best = min(best or 1e9, time.perf_counter() - t0)
    people = len(json.loads(out)["people"])
    return {"query": query, "seconds": round(best or 0.0, 3), "repeats": repeats, "people": people}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chatterjee", type=Path, default=None,
                    help="folder of the Chatterjee et al. XML files (default: the repository's sample only)")
    ap.add_argument("--holdout-days", type=int, default=28, help="days hidden at the end of each dataset")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo organisation")
    ap.add_argument("--demo-warehouse", type=Path, default=None,
                    help="a demo warehouse (after `esn demo`) to time `esn experts` on")
    ap.add_argument("--out", type=Path, default=RESULTS / "answerers_eval")
    args = ap.parse_args(argv)

    rules = TopicRules.model_validate(yaml.safe_load(TAXONOMY.read_text(encoding="utf-8")))
    results: list[dict[str, Any]] = []

    def record(ev: Evaluation, seconds: float) -> None:
        row = ev.as_dict() | {"seconds": round(seconds, 2)}
        results.append(row)
        m, b = row["model"], row["baseline"]
        print(f"{ev.dataset}: {ev.questions} questions, model P@5 {m['precision']:.4f} R@5 {m['recall']:.4f}; "
              f"baseline P@5 {b['precision']:.4f} R@5 {b['recall']:.4f} ({seconds:.1f} s)", flush=True)

    if not args.no_demo:
        t0 = time.perf_counter()
        acts, groups = demo_activities()
        record(evaluate(acts, holdout_days=args.holdout_days, dataset="demo (3,000 people, 184 days)",
                        groups=groups), time.perf_counter() - t0)
    files = sorted(args.chatterjee.glob("*.xml")) if args.chatterjee else []
    if not files:
        print("no Chatterjee et al. files given (--chatterjee DIR): the real Slack Q&A data is skipped")
    for path in files:
        t0 = time.perf_counter()
        acts = chatterjee_activities(path, rules)
        record(evaluate(acts, holdout_days=args.holdout_days, dataset=path.stem), time.perf_counter() - t0)
    if len(files) > 1:
        results.append(pooled([r for r in results if not r["dataset"].startswith("demo")],
                              f"Chatterjee et al., the {len(files)} channels pooled"))
    experts = time_experts(args.demo_warehouse, "container:C-ask-it") if args.demo_warehouse else None
    payload = {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
               "holdout_days": args.holdout_days, "results": results, "experts": experts}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(_md(results, experts), encoding="utf-8")
    print(f"written {args.out.with_suffix('.json')} and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
