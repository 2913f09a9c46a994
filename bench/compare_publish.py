"""The publish through dbt against the old SQL runner, from two runs of bench/pipeline_bench.py made in
the same session (one after the other, never at once) with the same environment.

  python bench/compare_publish.py --old OLD.json --old-side OLD_SIDE.json \\
      --new bench/results/pipeline_20000p_10M.json --new-side NEW_SIDE.json [--notes NOTES.md]

OLD.json / NEW.json are pipeline_bench.py's results; the *_SIDE.json files are what the wrapper that ran
each of them recorded: the `pipelines` package it imported (proof of which code ran), `uptime` before and
after, and the load average sampled every 15 s. Writes bench/results/publish_dbt_vs_runner.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PHASES = ("load", "dbt", "refresh", "python_metrics")
FULL, INC = "publish (load + models)", "incremental day: publish"


def _load_during(side: dict[str, Any], result: dict[str, Any], step: str) -> dict[str, float] | None:
    """The 1-minute load average sampled while `step` ran (its window reconstructed from the steps'
    durations after the wrapper's start: approximate by the few seconds of set-up before the first step)."""
    t = side["started"]
    for s in result["steps"]:
        if s["step"] == step:
            lo, hi = t, t + s["seconds"]
            break
        t += s["seconds"]
    else:
        return None
    vals = [x[1] for x in side["loadavg_samples"] if lo <= x[0] <= hi + 15]
    if not vals:
        return None
    return {"min": min(vals), "mean": round(sum(vals) / len(vals), 2), "max": max(vals), "samples": len(vals)}


def _run_load(side: dict[str, Any]) -> dict[str, float]:
    vals = [x[1] for x in side["loadavg_samples"]]
    return {"min": min(vals), "mean": round(sum(vals) / len(vals), 2), "max": max(vals), "samples": len(vals)}


def _step(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in result["steps"] if s["step"] == name)


def _models(seconds: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in seconds.items() if k not in PHASES}


def compare(old: dict[str, Any], old_side: dict[str, Any], new: dict[str, Any], new_side: dict[str, Any]
            ) -> dict[str, Any]:
    steps = []
    for s in old["steps"]:
        if not any(x["step"] == s["step"] for x in new["steps"]):
            steps.append({"step": s["step"], "old_seconds": s["seconds"], "new_seconds": None, "delta_seconds": None,
                          "old_peak_rss_gb": s["peak_rss_gb"], "new_peak_rss_gb": None})
            continue
        n = _step(new, s["step"])
        steps.append({"step": s["step"], "old_seconds": s["seconds"], "new_seconds": n["seconds"],
                      "delta_seconds": round(n["seconds"] - s["seconds"], 2),
                      "old_peak_rss_gb": s["peak_rss_gb"], "new_peak_rss_gb": n["peak_rss_gb"]})
    per_model = {}
    for label, key in (("full", "publish_seconds_by_model"), ("incremental", "incremental_publish_seconds_by_model")):
        o, n = _models(old[key]), _models(new[key])
        per_model[label] = sorted(
            ({"model": m, "old": o.get(m), "new": n.get(m),
              "delta": round(n.get(m, 0.0) - o.get(m, 0.0), 2)} for m in sorted(set(o) | set(n))),
            key=lambda r: -abs(r["delta"]))
    return {
        "old_code": {"commit": "031b53f", "pipelines": old_side["pipelines_file"], "when": old["when"],
                     "uptime_before": old_side["uptime_before"], "uptime_after": old_side["uptime_after"],
                     "load_1min_during_run": _run_load(old_side),
                     "load_1min_during_full_publish": _load_during(old_side, old, FULL),
                     "load_1min_during_incremental_publish": _load_during(old_side, old, INC)},
        "new_code": {"pipelines": new_side["pipelines_file"], "when": new["when"],
                     "uptime_before": new_side["uptime_before"], "uptime_after": new_side["uptime_after"],
                     "load_1min_during_run": _run_load(new_side),
                     "load_1min_during_full_publish": _load_during(new_side, new, FULL),
                     "load_1min_during_incremental_publish": _load_during(new_side, new, INC)},
        "machine": new["machine"], "size": new["size"], "old_size": old["size"],
        "steps": steps,
        "publish": {
            "full": {"old_seconds": _step(old, FULL)["seconds"], "new_seconds": _step(new, FULL)["seconds"],
                     "old_peak_rss_gb": _step(old, FULL)["peak_rss_gb"],
                     "new_peak_rss_gb": _step(new, FULL)["peak_rss_gb"]},
            "incremental": {"old_seconds": _step(old, INC)["seconds"], "new_seconds": _step(new, INC)["seconds"],
                            "old_peak_rss_gb": _step(old, INC)["peak_rss_gb"],
                            "new_peak_rss_gb": _step(new, INC)["peak_rss_gb"]},
        },
        "old_publish_seconds": {"full": old["publish_seconds_by_model"],
                                "incremental": old["incremental_publish_seconds_by_model"]},
        "new_publish_breakdown": {"full": new["publish_breakdown"], "incremental": new["incremental_publish_breakdown"]},
        "per_model": per_model,
        # the steps before the publish (extract, stage, validate, land: the same work in both) as a
        # measure of how much CPU each run got on the shared machine
        "control_seconds": {"old": round(sum(s["seconds"] for s in old["steps"][:4]), 1),
                            "new": round(sum(s["seconds"] for s in new["steps"][:4]), 1)},
        "full_run_seconds": {"old": old["full_run_seconds"], "new": new["full_run_seconds"]},
        "incremental_day_seconds": {"old": old["incremental_day_seconds"], "new": new["incremental_day_seconds"]},
        "peak_rss_gb": {"old": old["peak_rss_gb"], "new": new["peak_rss_gb"]},
    }


def _fmt_load(x: dict[str, float] | None) -> str:
    return "n/a" if not x else f"{x['mean']} (min {x['min']}, max {x['max']})"


def markdown(c: dict[str, Any], notes: str) -> str:
    o, n = c["old_code"], c["new_code"]
    lines = [f"# Publish: dbt (new) vs the old SQL runner (031b53f), {c['size']['people']:,} people, "
             f"{c['size']['events']:,} events", "",
             f"Same session, same machine ({c['machine']['cpus']} CPUs, {c['machine']['memory_gb']} GB, shared with "
             "other jobs), same .venv, one run after the other, DuckDB warehouse + local Parquet lake.", "",
             f"- old: `{o['pipelines']}`, finished {o['when']}; `{o['uptime_before']}` -> `{o['uptime_after']}`",
             f"- new: `{n['pipelines']}`, finished {n['when']}; `{n['uptime_before']}` -> `{n['uptime_after']}`", "",
             "1-minute load average (psutil.getloadavg, every 15 s): mean (min, max)", "",
             "| | whole run | full publish | incremental publish |", "|---|---|---|---|",
             f"| old | {_fmt_load(o['load_1min_during_run'])} | {_fmt_load(o['load_1min_during_full_publish'])} | "
             f"{_fmt_load(o['load_1min_during_incremental_publish'])} |",
             f"| new | {_fmt_load(n['load_1min_during_run'])} | {_fmt_load(n['load_1min_during_full_publish'])} | "
             f"{_fmt_load(n['load_1min_during_incremental_publish'])} |", "",
             f"Control (extract + stage + validate + land before the publish, the same work in both runs): old "
             f"{c['control_seconds']['old']} s, new {c['control_seconds']['new']} s.", "",
             "## Publish", "", "| publish | old s | new s | old peak RSS GB | new peak RSS GB |", "|---|---:|---:|---:|---:|"]
    for k, v in c["publish"].items():
        lines.append(f"| {k} | {v['old_seconds']} | {v['new_seconds']} | {v['old_peak_rss_gb']} | {v['new_peak_rss_gb']} |")
    lines += ["", "Peak RSS is the process's (sampled every 20 ms during the step): it includes what earlier steps "
              "left allocated.", ""]
    if notes:
        lines += ["## Findings", "", notes.strip(), ""]
    for label in ("full", "incremental"):
        b = c["new_publish_breakdown"][label]
        lines += [f"## New publish, {label}: phases", "", "| phase | seconds | peak RSS GB |", "|---|---:|---:|"]
        lines += [f"| {p['phase']} | {p['seconds']} | {p.get('peak_rss_gb', '')} |" for p in b["phases"]]
        for call in b["calls"]:
            if call["phase"] == "dbt build":
                lines += ["", f"dbt invocation ({call['which']}): {call['seconds']} s wall, dbt {call['dbt_seconds']} s, "
                          f"parse {call['parse_seconds']} s (manifest cached: {call['manifest_cached']}), "
                          f"nodes: " + ", ".join(f"{k} {v['nodes']} in {v['seconds']} s"
                                                 for k, v in call["by_type"].items())
                          + f", overhead {call['overhead_seconds']} s; slowest tests: "
                          + ", ".join(f"{t['name']} {t['seconds']}" for t in call["tests"][:6])]
        old = c["old_publish_seconds"][label]
        step = c["publish"][label]["old_seconds"]
        rest = round(step - sum(old.values()), 2)
        lines += ["", f"Old publish, {label}: load {old.get('load')}, models (each with its audit) "
                  f"{round(sum(_models(old).values()), 2)}, python_metrics {old.get('python_metrics')}, the rest "
                  f"(suppression, completeness, commit) {rest} s; slowest models: " + ", ".join(
                      f"{k} {v}" for k, v in sorted(_models(old).items(), key=lambda kv: -kv[1])[:8]), ""]
        lines += [f"Per model, {label} (old runner vs dbt node seconds), largest differences:", "",
                  "| model | old s | new s | delta |", "|---|---:|---:|---:|"]
        lines += [f"| {r['model']} | {r['old']} | {r['new']} | {r['delta']} |" for r in c["per_model"][label][:12]]
        lines.append("")
    lines += ["## Every step", "", "| step | old s | new s | delta | old peak RSS | new peak RSS |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {s['step']} | {s['old_seconds']} | {s['new_seconds']} | {s['delta_seconds']} | "
              f"{s['old_peak_rss_gb']} | {s['new_peak_rss_gb']} |" for s in c["steps"]]
    lines += ["", f"Full run: old {c['full_run_seconds']['old']} s, new {c['full_run_seconds']['new']} s; one incremental "
              f"day: old {c['incremental_day_seconds']['old']} s, new {c['incremental_day_seconds']['new']} s; peak RSS "
              f"old {c['peak_rss_gb']['old']} GB, new {c['peak_rss_gb']['new']} GB.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--old-side", type=Path, required=True)
    ap.add_argument("--new", type=Path, default=REPO / "bench" / "results" / "pipeline_20000p_10M.json")
    ap.add_argument("--new-side", type=Path, required=True)
    ap.add_argument("--notes", type=Path, default=None, help="the findings, markdown, put after the publish table")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args()
    c = compare(*(json.loads(p.read_text()) for p in (args.old, args.old_side, args.new, args.new_side)))
    notes = args.notes.read_text() if args.notes else ""
    if notes:
        c["findings"] = notes.strip()
    (args.results / "publish_dbt_vs_runner.json").write_text(json.dumps(c, indent=2) + "\n")
    (args.results / "publish_dbt_vs_runner.md").write_text(markdown(c, notes))
    print((args.results / "publish_dbt_vs_runner.md").read_text())


if __name__ == "__main__":
    main()
