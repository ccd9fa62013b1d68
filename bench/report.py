"""What a benchmark run leaves behind: JSON with every run, a Markdown table, a PNG chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench import instructions

READ_TARGET = 0.5  # throughput, app / baseline
P99_TARGET = 2.0  # p99 latency, app / baseline, at most
WRITE_TARGET = 0.5
DEEP_TARGET = 0.9  # deep cursor page / first page, the app's own throughput

START, END = "<!-- results:start -->", "<!-- results:end -->"


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput: its latencies belong to it, not to other runs."""
    ordered = sorted(runs, key=lambda run: run["rps"])
    return ordered[len(ordered) // 2]


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per endpoint and concurrency: medians per app and the app/baseline ratios."""
    rows = []
    for key, endpoint in results["endpoints"].items():
        for concurrency, apps in endpoint["concurrency"].items():
            row: dict[str, Any] = {"key": key, "title": endpoint["title"], "kind": endpoint["kind"], "c": concurrency}
            for name, runs in apps.items():
                best = median_run(runs)
                row[name] = {
                    "rps": best["rps"],
                    "p50_ms": best["p50_ms"],
                    "p99_ms": best["p99_ms"],
                    "cpu_ms": statistics.median(run["cpu_ms_per_request"] for run in runs),
                    "cpu_range": [
                        min(run["cpu_ms_per_request"] for run in runs),
                        max(run["cpu_ms_per_request"] for run in runs),
                    ],
                    "rps_spread": [round(run["rps"]) for run in runs],
                    "errors": sum(run["non_2xx"] + run["socket_errors"] + run["timeouts"] for run in runs),
                }
            if "app" in row and "baseline" in row and row["baseline"]["rps"] and row["baseline"]["p99_ms"]:
                row["ratio"] = row["app"]["rps"] / row["baseline"]["rps"]
                row["p99_ratio"] = row["app"]["p99_ms"] / row["baseline"]["p99_ms"]
            if "app" in row and "ref" in row and (ab := _ratios(row["app"], row["ref"])):
                row["ab"] = ab
            row["variants"] = {
                name: ratios
                for name in results.get("variants", {})
                if name in row and "app" in row and (ratios := _ratios(row[name], row["app"]))
            }
            rows.append(row)
    return rows


def _variants_table(results: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Each --variant against the app as configured: ratios variant / app."""
    lines = [
        "Variants, as ratios variant / app (throughput above 1.00x, CPU and p99 below 1.00x favour the variant): "
        + "; ".join(
            f"**{name}** = the app with " + (", ".join(f"`{key}={value}`" for key, value in env.items()) or "nothing")
            for name, env in results["variants"].items()
        )
        + ".",
        "",
        "| Endpoint | c | app req/s | app CPU ms/req | app p99 ms | variant | req/s | ratio | CPU ms/req | CPU ratio "
        "| p99 ms | p99 ratio |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        app = row["app"]
        for name, ratio in row["variants"].items():
            variant = row[name]
            cells = [
                row["title"],
                str(row["c"]),
                f"{app['rps']:,.0f}",
                f"{app['cpu_ms']:.2f}",
                f"{app['p99_ms']:.1f}",
                name,
                f"{variant['rps']:,.0f}",
                f"{ratio['rps']:.2f}x",
                f"{variant['cpu_ms']:.2f}",
                f"{ratio['cpu']:.2f}x",
                f"{variant['p99_ms']:.1f}",
                f"{ratio['p99']:.2f}x",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _ratios(run: dict[str, Any], against: dict[str, Any]) -> dict[str, float] | None:
    """`run` / `against` in throughput, CPU per request and p99; None when `against` has a zero."""
    if not (against["rps"] and against["cpu_ms"] and against["p99_ms"]):
        return None
    return {
        "rps": run["rps"] / against["rps"],
        "cpu": run["cpu_ms"] / against["cpu_ms"],
        "p99": run["p99_ms"] / against["p99_ms"],
    }


def _verdict(row: dict[str, Any]) -> str:
    if "ratio" not in row:
        return ""
    if row["kind"] == "login":
        return "(argon2-bound)"
    target = READ_TARGET if row["kind"] == "read" else WRITE_TARGET
    ok = row["ratio"] >= target and (row["kind"] != "read" or row["p99_ratio"] <= P99_TARGET)
    return "met" if ok else "**missed**"


def _machine(results: dict[str, Any]) -> str:
    extra = results["settings"].get("env") or {}
    return (
        f"Run of {results['date']} on {results['machine']['cpus']} cores, PostgreSQL {results['machine']['postgres']}, "
        f"{results['scale']['users']:,} users / {results['scale']['posts']:,} posts / "
        f"{results['scale']['comments']:,} comments; uvicorn (uvloop, httptools, 1 worker), pool of "
        f"{results['settings']['pool_size']}" + "".join(f", {name}={value}" for name, value in extra.items())
    )


def _settings(results: dict[str, Any]) -> str:
    return (
        _machine(results) + f"; wrk, {results['settings']['runs']} interleaved runs of "
        f"{results['settings']['seconds']:g} s per app after a {results['settings']['warmup']:g} s warm-up; "
        "figures are the median run."
    )


def _ab_table(results: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """app against the ref it was compared with (--compare): ratios app / ref."""
    compare = results["compare"]
    subject = compare["subject"] if len(compare["subject"]) <= 80 else compare["subject"][:77].rstrip() + "..."
    lines = [
        f"A/B: **app** is {compare['app']}; **ref** is `{compare['ref']}` ({compare['commit'][:7]}, "
        f'"{subject}"). Ratios are app / ref: throughput above 1.00x, CPU and p99 below 1.00x '
        "favour the app. CPU ms/req is the server's own CPU time per request (median run; the range is every run's).",
        "",
        "| Endpoint | c | app req/s | ref req/s | ratio | app CPU ms/req | ref CPU ms/req | CPU ratio | "
        "app p99 ms | ref p99 ms | p99 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "ab" not in row:
            continue
        app, ref, ab = row["app"], row["ref"], row["ab"]
        cells = [
            row["title"],
            str(row["c"]),
            f"{app['rps']:,.0f}",
            f"{ref['rps']:,.0f}",
            f"{ab['rps']:.2f}x",
            f"{app['cpu_ms']:.2f} ({app['cpu_range'][0]:.2f}-{app['cpu_range'][1]:.2f})",
            f"{ref['cpu_ms']:.2f} ({ref['cpu_range'][0]:.2f}-{ref['cpu_range'][1]:.2f})",
            f"{ab['cpu']:.2f}x",
            f"{app['p99_ms']:.1f}",
            f"{ref['p99_ms']:.1f}",
            f"{ab['p99']:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    differences = compare.get("differences", [])
    lines.append("")
    lines.append(
        f"The ref's answers differ from the app's ({len(differences)} differences, the first `{differences[0]}`): "
        "the two did not do exactly the same work."
        if differences
        else "The ref answered every compared read with the app's body."
    )
    if compare["shared_revisions"]:
        copied = ", ".join(compare["shared_revisions"])
        lines.append(f"The ref ran on the app's schema, with the migrations it lacks copied in: {copied}.")
    return lines


def _baseline_table(rows: list[dict[str, Any]], apps: dict[str, str]) -> list[str]:
    lines = [
        "| Endpoint | c | app req/s | baseline req/s | ratio | app p50 / p99 ms | baseline p50 / p99 ms | p99 ratio |"
        + (" starlette req/s |" if "starlette" in apps else "")
        + " app CPU ms/req | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if "starlette" in apps else "") + "---:|---|",
    ]
    for row in rows:
        app, base = row.get("app"), row.get("baseline")
        cells = [
            row["title"],
            str(row["c"]),
            f"{app['rps']:,.0f}" if app else "",
            f"{base['rps']:,.0f}" if base else "",
            f"{row['ratio']:.2f}x" if "ratio" in row else "",
            f"{app['p50_ms']:.1f} / {app['p99_ms']:.1f}" if app else "",
            f"{base['p50_ms']:.1f} / {base['p99_ms']:.1f}" if base else "",
            f"{row['p99_ratio']:.2f}x" if "p99_ratio" in row else "",
        ]
        if "starlette" in apps:
            cells.append(f"{row['starlette']['rps']:,.0f}" if "starlette" in row else "")
        cells += [f"{app['cpu_ms']:.2f}" if app else "", _verdict(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    if "instructions" in results:  # a count under callgrind, not timed runs
        return "\n".join([_machine(results), "", *instructions.table(results)]) + "\n"
    rows = summarise(results)
    apps = results["apps"]
    lines = [_settings(results), ""]
    if "ref" in apps:
        lines += [*_ab_table(results, rows), ""]
    if results.get("variants"):
        lines += [*_variants_table(results, rows), ""]
    if "baseline" in apps or not ("ref" in apps or results.get("variants")):
        lines += _baseline_table(rows, apps)
    errors = [(row["title"], row["c"], name) for row in rows for name in apps if name in row and row[name]["errors"]]
    lines.append("")
    lines.append(
        "Errors (non-2xx, socket errors, timeouts): "
        + (", ".join(f"{title} c={c} {name}" for title, c, name in errors) if errors else "none in any run.")
    )
    deep = _deep_ratio(rows)
    if deep:
        lines.append("")
        lines.append(
            "Deep cursor page vs first page (app): "
            + ", ".join(f"c={c}: {ratio:.2f}x" for c, ratio in deep.items())
            + f" (target {DEEP_TARGET}x)."
        )
    if results.get("overload"):
        lines += ["", "Overload (c=512, app only):", ""]
        lines += [
            "| Endpoint | req/s | p99 ms | max ms | statuses | socket errors | timeouts |",
            "|---|---:|---:|---:|---|---:|---:|",
        ]
        for item in results["overload"]:
            statuses = ", ".join(f"{status}: {n:,}" for status, n in sorted(item["statuses"].items()))
            lines.append(
                f"| {item['title']} | {item['rps']:,.0f} | {item['p99_ms']:.0f} | {item['max_ms']:.0f} | {statuses} | "
                f"{item['socket_errors']} | {item['timeouts']} |"
            )
    if results.get("soak"):
        soak = results["soak"]
        lines += [
            "",
            f"Soak ({soak['seconds']:g} s of mixed load at c={soak['connections']}, app): "
            f"{soak['requests']:,} requests, {soak['non_2xx']:,} non-2xx; RSS {soak['rss_after_warmup_mib']:.1f} MiB "
            f"after warm-up, {soak['rss_end_mib']:.1f} MiB at the end ({soak['rss_growth_percent']:+.1f}%).",
        ]
    return "\n".join(lines) + "\n"


def _deep_ratio(rows: list[dict[str, Any]]) -> dict[int, float]:
    by_key = {(row["key"], row["c"]): row for row in rows}
    ratios = {}
    for (key, c), row in by_key.items():
        first = by_key.get(("posts_first", c))
        if key == "posts_deep_cursor" and first and "app" in row and "app" in first:
            ratios[c] = row["app"]["rps"] / first["app"]["rps"]
    return ratios


def chart(results: dict[str, Any], path: Path) -> None:
    """Two panels per concurrency: throughput ratio and p99 ratio, app / baseline, per endpoint."""
    import matplotlib  # noqa: PLC0415 -- heavy, and only needed here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = [row for row in summarise(results) if "ratio" in row]
    if not rows:  # no baseline in the run: nothing to draw
        return
    titles = list(dict.fromkeys(row["title"] for row in rows))
    levels = sorted({row["c"] for row in rows})
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    width = 0.8 / max(len(levels), 1)
    for index, level in enumerate(levels):
        by_title = {row["title"]: row for row in rows if row["c"] == level}
        xs = [i + (index - (len(levels) - 1) / 2) * width for i in range(len(titles))]
        top.bar(xs, [by_title[t]["ratio"] if t in by_title else 0 for t in titles], width, label=f"c={level}")
        bottom.bar(xs, [by_title[t]["p99_ratio"] if t in by_title else 0 for t in titles], width, label=f"c={level}")
    top.axhline(READ_TARGET, color="red", linestyle="--", linewidth=1, label=f"target {READ_TARGET}x")
    top.axhline(1.0, color="grey", linewidth=0.5)
    top.set_ylabel("throughput, app / raw asyncpg")
    top.legend(loc="upper right", fontsize=8)
    bottom.axhline(P99_TARGET, color="red", linestyle="--", linewidth=1, label=f"reads: at most {P99_TARGET}x")
    bottom.axhline(1.0, color="grey", linewidth=0.5)
    bottom.set_ylabel("p99 latency, app / raw asyncpg")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.set_xticks(range(len(titles)))
    bottom.set_xticklabels(titles, rotation=30, ha="right", fontsize=8)
    figure.suptitle(f"This app vs FastAPI + raw asyncpg, {results['date']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results: dict[str, Any], stem: Path, benchmarks_md: Path | None) -> list[Path]:
    """`stem`.json and .md (bench/results/<date>...; a second run the same day gets `-2`, ...), a .png
    when the run has a baseline, and the latest table and chart into BENCHMARKS.md; the files written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    first, repeat = stem, 1
    while stem.with_suffix(".json").exists():  # a second run the same day keeps the first
        repeat += 1
        stem = first.with_name(f"{first.name}-{repeat}")
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    stem.with_suffix(".md").write_text(table)
    written = [stem.with_suffix(".json"), stem.with_suffix(".md")]
    if results["endpoints"]:
        chart(results, stem.with_suffix(".png"))
    if stem.with_suffix(".png").exists():
        written.append(stem.with_suffix(".png"))
    # Results written outside the checkout (--output /tmp/...) are a trial: BENCHMARKS.md, which
    # links the chart by a relative path, is left alone.
    inside = benchmarks_md is not None and stem.resolve().is_relative_to(benchmarks_md.parent.resolve())
    if benchmarks_md is not None and inside and benchmarks_md.exists() and START in benchmarks_md.read_text():
        text = benchmarks_md.read_text()
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1] if END in rest else ""
        picture = f"![app / baseline per endpoint]({stem.with_suffix('.png').relative_to(benchmarks_md.parent)})"
        benchmarks_md.write_text(f"{before}{START}\n{table}\n{picture}\n{END}{after}")
        written.append(benchmarks_md)
    return written
