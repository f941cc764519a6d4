"""results.md and the SVG plots, made from a results document."""

import report
from report import fmt_range, ratio, status_text, table


def find(results, group, tool=None, name_start=""):
    return [r for r in results if r["group"] == group and (tool is None or r["tool"] == tool)
            and r["name"].startswith(name_start)]


def median(entry):
    stats = entry.get("stats") if entry else None
    return stats["median"] if stats and entry["status"] == "ok" else None


def markdown(document):
    results = document["results"]
    m = document["machine"]
    parts = [
        "# seal benchmark results\n\n",
        f"Command: `{document['command']}`{' (quick smoke run)' if document['quick'] else ''}"
        f", started {document['started']}.\n\n",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, kernel {m['kernel']}, "
        f"{m['os']}, cgroups {m['cgroups']}; load average (1, 5, 15 min) "
        f"{' '.join(m['load_average'])} before, "
        f"{' '.join(document.get('load_average_after', []))} after.\n\n",
        "Versions: " + ", ".join(f"{k} `{v}`" for k, v in document["versions"].items())
        + ".\n\n",
        "Figures are medians with (min-max) over the repetitions.\n\n",
    ]
    parts += [start_md(results), workflow_md(results), compute_md(results),
              unpack_md(results), targets_md(results)]
    if document["notes"]:
        parts.append("## Notes\n\n" + "".join(f"- {n}\n" for n in document["notes"]))
    return "".join(p for p in parts if p)


def start_md(results):
    rows = find(results, "start")
    if not rows:
        return ""
    seal = median(next((r for r in rows if r["name"].startswith("seal runtime")), None))
    floor = median(next((r for r in rows if "(floor)" in r["name"]), None))
    body = [[r["name"], fmt_range(report.stats_of(r)), ratio(median(r), seal),
             ratio(median(r), floor), n_of(r), status_text(r)] for r in rows]
    return ("## 1. Container start (`/bin/true` in a busybox image, rootless unless noted)\n\n"
            + table(["what", "ms", "vs seal runtime", "vs floor", "runs", "note"], body)
            + "\n![container start](start.svg)\n\n")


def n_of(entry):
    stats = report.stats_of(entry)
    return stats["n"] if stats else "-"


def per_step(results):
    """Added wall time per step over each tool's one-step run, by (tool, name)."""
    added = {}
    for entry in find(results, "workflow"):
        if entry.get("shape") not in ("fanout", "chain") or entry["steps"] <= 1:
            continue
        one = next((r for r in find(results, "workflow", entry["tool"], "one")), None)
        if median(entry) is not None and median(one) is not None:
            added[(entry["tool"], entry["name"])] = (
                (median(entry) - median(one)) / (entry["steps"] - 1))
    return added


def workflow_md(results):
    rows = [r for r in find(results, "workflow") if r.get("shape") != "plan"]
    if not rows:
        return ""
    added = per_step(results)
    body = []
    for r in rows:
        step = added.get((r["tool"], r["name"]))
        seal_step = added.get(("seal", r["name"]))
        body.append([r["name"], r["tool"], fmt_range(report.stats_of(r), 1.0, 2),
                     f"{step * 1000:.2f}" if step is not None else "-",
                     ratio(step, seal_step) if r["tool"] != "seal" else "1.00x",
                     n_of(r), status_text(r)])
    text = ("## 2. Workflow overhead (trivial steps; seal in containers, the others without)"
            "\n\nPer-step overhead is (wall of the workflow - wall of the same tool's one-step "
            "workflow) / (steps - 1): the wall time each extra step adds on this machine's "
            "cores.\n\n"
            + table(["workflow", "tool", "wall s", "per step ms", "per step vs seal", "runs",
                     "note"], body))
    return text + seal_overhead_md(results) + "\n![per-step overhead](workflow.svg)\n\n"


def seal_overhead_md(results):
    plan = next((r for r in find(results, "workflow", "seal", "seal validate")), None)
    big = [r for r in find(results, "workflow", "seal", "fan-out") if median(r)]
    if not plan or not big or median(plan) is None or not big[0].get("container"):
        return ""
    run, steps = big[0], big[0]["steps"]
    plan_ms = median(plan) / steps * 1000
    wall = median(run)
    containers = run["container"]["per_core_seconds"]
    rest_ms = (wall - containers) / steps * 1000
    verdict = "under" if plan_ms + rest_ms < 1 else "NOT under"
    return (f"\nseal's own overhead for the {steps}-step fan-out: load + plan (`seal validate`)"
            f" {median(plan):.3f} s = {plan_ms:.3f} ms per step; the run took {wall:.1f} s, "
            f"its containers (init to exit, summed from provenance, divided by "
            f"{round(run['container']['sum_seconds'] / containers)} cores) {containers:.1f} s,"
            f" leaving {rest_ms:.3f} ms per step for everything else (starting each "
            f"container's monitor process, sandboxes, mounts of inputs, hashing and "
            f"publishing outputs, provenance). Planning plus that remainder is "
            f"{plan_ms + rest_ms:.3f} ms per step: {verdict} 1 ms.\n")


def compute_md(results):
    rows = find(results, "compute")
    if not rows:
        return ""
    body = []
    for name in dict.fromkeys(r["name"] for r in rows):
        bare = next((r for r in rows if r["name"] == name and r["tool"] == "bare"), None)
        seal = next((r for r in rows if r["name"] == name and r["tool"] == "seal"), None)
        cpu = [report.summary(e.get("cpu") or []) if e else None for e in (bare, seal)]
        body.append([name, fmt_range(report.stats_of(bare), 1.0, 3),
                     fmt_range(report.stats_of(seal), 1.0, 3) if seal["status"] == "ok"
                     else status_text(seal), percent(median(seal), median(bare)),
                     fmt_range(cpu[0], 1.0, 3), fmt_range(cpu[1], 1.0, 3),
                     percent(cpu[1] and cpu[1]["median"], cpu[0] and cpu[0]["median"]),
                     n_of(bare)])
    return ("## 3. Compute overhead (same busybox binary, bare vs in seal's container)\n\n"
            + table(["job", "bare wall s", "seal wall s", "wall diff", "bare CPU s",
                     "seal CPU s", "CPU diff", "runs"], body) + "\n")


def percent(value, reference):
    if not value or not reference:
        return "-"
    return f"{(value - reference) / reference * 100:+.2f}%"


def unpack_md(results):
    rows = find(results, "unpack")
    if not rows:
        return ""
    seal = median(rows[0])
    limit = median(next((r for r in rows if r["tool"] == "limit"), None))
    image = rows[0].get("image", {})
    size = image.get("uncompressed_bytes", 0)
    body = [[r["name"], fmt_range(report.stats_of(r), 1.0, 3),
             f"{size / median(r) / 1e6:.0f}" if median(r) else "-",
             ratio(median(r), seal), ratio(median(r), limit), n_of(r), status_text(r)]
            for r in rows]
    head = (f"## 4. Unpacking a 3-layer image ({size / 1e6:.1f} MB in "
            f"{image.get('files', '?')} files, {image.get('compressed_bytes', 0) / 1e6:.1f} MB"
            " gzip) into a root file system, rootless\n\n")
    return (head + table(["what", "s", "MB/s", "vs seal", "vs limit", "runs", "note"], body)
            + "\n![unpack](unpack.svg)\n\n")


def targets_md(results):
    rows = []
    start = {r["name"]: r for r in find(results, "start")}
    seal = median(next((r for n, r in start.items() if n.startswith("seal runtime")), None))
    floor = median(next((r for n, r in start.items() if "(floor)" in n), None))
    crun = [median(r) for n, r in start.items() if n.startswith("crun") and median(r)]
    if seal and floor:
        rows.append(["start within 2x of the unshare floor", f"{seal / floor:.2f}x",
                     yes(seal <= 2 * floor)])
    if seal and crun:
        rows.append(["start faster than crun", f"seal {seal * 1000:.2f} ms vs crun "
                     f"{min(crun) * 1000:.2f} ms", yes(seal < min(crun))])
    added = per_step(results)
    for (tool, name), value in added.items():
        if tool == "snakemake" and added.get(("seal", name)):
            mine = added[("seal", name)]
            rows.append([f"10x less per-step overhead than Snakemake ({name})",
                         f"{value / mine:.1f}x less", yes(value >= 10 * mine)])
    overhead = seal_overhead_md(results)
    if overhead:
        rows.append(["seal overhead < 1 ms per step (fan-out)",
                     overhead.split("Planning plus that remainder is ")[1].split(":")[0],
                     yes("NOT under" not in overhead)])
    for r in find(results, "compute", "seal"):
        bare = next((b for b in find(results, "compute", "bare") if b["name"] == r["name"]))
        if median(r) and median(bare):
            diff = (median(r) - median(bare)) / median(bare) * 100
            rows.append([f"compute overhead < 1% ({r['name']})", f"{diff:+.2f}%",
                         yes(diff < 1)])
    if not rows:
        return ""
    return "## Targets\n\n" + table(["target", "measured", "met"], rows) + "\n"


def yes(flag):
    return "yes" if flag else "**no**"


def plots(document):
    results = document["results"]
    out = {}
    start = [(r["name"], *triple(r, 1000)) for r in find(results, "start") if median(r)]
    if start:
        out["start.svg"] = report.bar_chart("Container start, /bin/true", "ms", start)
    added = per_step(results)
    if added:
        bars = [(f"{tool}: {name}", v * 1000, v * 1000, v * 1000)
                for (tool, name), v in sorted(added.items(), key=lambda kv: kv[0][1])]
        out["workflow.svg"] = report.bar_chart("Wall time added per step", "ms per step",
                                               bars)
    unpack = [(r["name"], *triple(r, 1)) for r in find(results, "unpack") if median(r)]
    if unpack:
        out["unpack.svg"] = report.bar_chart("Unpack of a 3-layer image", "s", unpack)
    return out


def triple(entry, scale):
    stats = report.stats_of(entry)
    return stats["median"] * scale, stats["min"] * scale, stats["max"] * scale
