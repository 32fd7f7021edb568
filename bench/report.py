"""docs/benchmarks.md, rendered from bench/results/*.json (`python -m bench.report`)."""

import json
import re

from bench.harness import BASE_DIR, RESULTS_DIR

DOC_PATH = BASE_DIR / "docs" / "benchmarks.md"
NONE = "-"
ORDER = ["ingest_events", "upsert_contacts", "segments", "send_messages", "journeys", "reporting",
         "personalization"]  # fmt: skip

INTRO = """\
# Benchmarks

Written by `make bench` from `bench/results/*.json`; edit `bench/report.py`, not this file.

Each workload runs against the production server (gunicorn serving `orchestra.wsgi`, as
`orchestra/launcher.py` starts it, pinned to 2 cores) on a fresh database, and in the same
run measures its **raw floor**; for ingest, PostgreSQL storing the same rows into the same
table, with the same indexes, by `COPY` (one stream, one transaction, rows encoded
beforehand). Our figure is given as a ratio to that floor. Absolute rates move with the
machine and whatever else runs on it; the ratio much less, so compare ratios between runs.

The load generator (Python threads on keep-alive connections, request bodies built before
the clock starts) runs on the same machine and **shares its cores** with the server and
PostgreSQL, so every rate here is lower than the server alone would reach. Each figure is
the best of several rounds (noise only ever slows a round down); every round is in the JSON.

The benchmarks run on a database of their own (`orchestra_bench`, dropped afterwards) and
a Redis of their own: ingest queues segment re-evaluation there, and no Celery worker runs
during the ingest workloads, so their figures are of ingest alone.
"""


def _number(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _target(target: dict, unit: str) -> str:
    parts = []
    if target.get("min_rate") is not None:
        parts.append(f"≥ {_number(target['min_rate'])} {unit}")
    if target.get("min_ratio") is not None:
        parts.append(f"ratio ≥ {target['min_ratio']:g}")
    if target.get("max_p95_ms") is not None:
        parts.append(f"p95 < {target['max_p95_ms']:g} ms")
    return ", ".join(parts) or NONE


def _row(item: dict) -> str:
    if item.get("available") is False:
        return f"| {item['name']} | not available | - | - | - | {item['reason']} |"
    unit = item["unit"]
    ours = f"{_number(item['ours'])} {unit} ({item['ours_seconds']:,.2f} s)"
    floor = NONE
    if item.get("floor") is not None and unit == "ms":  # a latency beside a latency
        ours = f"{_number(item['ours'])} ms"
        floor = f"{_number(item['floor'])} ms: {item['floor_what']}"
    elif item.get("floor") is not None:
        seconds = item["floor_seconds"]
        floor = f"{_number(item['floor'])}/s ({seconds:,.2f} s): {item['floor_what']}"
    ratio = f"{item['ratio']:.2f}" if item.get("ratio") is not None else NONE
    result = "**pass**" if item["pass"] else "**FAIL**"
    target = _target(item["target"], unit)
    return f"| {item['name']} | {ours} | {floor} | {ratio} | {target} | {result} |"


def _machine(machine: dict) -> str:
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB; "
        f"{machine['os']}; Python {machine['python']}; PostgreSQL {machine['postgresql']}"
    )


def _workload(result: dict) -> list[str]:
    lines = [f"## {result['title']} (`bench/{result['workload']}.py`)", ""]
    if result.get("note"):
        lines += [f"> {result['note']}", ""]
    lines += [
        "| workload | ours | floor | ratio | target | result |",
        "| --- | --- | --- | --- | --- | --- |",
        *(_row(item) for item in result["figures"]),
        "",
    ]
    commit = f" at commit `{result['commit']}`" if result.get("commit") else ""
    cpus = ",".join(map(str, result.get("server_cpus", [])))
    lines += [
        f"- Command: `{result['command']}`{commit} (scale `{result['scale']}`, "
        f"{result['minutes']} min)",
        f"- Date: {result['date']}",
        f"- Machine: {_machine(result['machine'])}",
        f"- Server: {result['server']} on CPUs {cpus}; load: {result['clients']} client "
        f"connections on the same machine; best of {result['rounds']} rounds",
    ]
    for item in result["figures"]:
        if item.get("note"):
            lines.append(f"- {item['name']}: {item['note']}")
    lines.append("")
    return lines


def _tuning(tuning: dict) -> list[str]:
    lines = [
        "## gunicorn settings tried (`python -m bench --tune`)",
        "",
        f"A short event ingest (SCALE=quick) under each setting, the settings taking turns, "
        f"best of {tuning['rounds']} rounds. Differences within about 15% are noise on a "
        "shared machine.",
        "",
        "| workers | threads | events/s in batches | single events/s | |",
        "| --- | --- | --- | --- | --- |",
    ]
    used = tuning["used"]
    for tried in tuning["tried"]:
        mark = "used by `make bench`" if tried.items() >= used.items() else ""
        lines.append(
            f"| {tried['workers']} | {tried['threads']} | "
            f"{_number(tried['batch_events_per_s'])} | {_number(tried['single_events_per_s'])} "
            f"| {mark} |"
        )
    lines += ["", f"- Command: `{tuning['command']}`; date: {tuning['date']}", ""]
    return lines


def _seconds(value: float) -> str:
    return f"{value:,.2f} s" if value >= 0.1 else f"{value * 1000:,.0f} ms"


def _segments(result: dict) -> list[str]:
    """Times, not rates: lower is better, and the ratio is ours over the floor's (1x = floor)."""
    data, live = result["data"], result["latency"]
    postgres = data.get("postgres", {})
    lines = [f"## {result['title']} (`bench/{result['workload']}.py`)", ""]
    if result.get("note"):
        lines += [f"> {result['note']}", ""]
    lines += [
        f"{data['contacts']:,} contacts, {data['events']:,} events over 90 days, "
        f"{data['consents']:,} consents and {data['list_members']:,} list members, generated "
        f"with COPY ({result['indexes']}; {data['load_seconds']:,.0f} s to load). With their "
        f"indexes, contacts take {data['table_mb']['contacts_contact']:,} MB and events "
        f"{data['table_mb']['contacts_event']:,} MB; PostgreSQL has shared_buffers "
        f"{postgres.get('shared_buffers', NONE)} and work_mem {postgres.get('work_mem', NONE)}.",
        "",
        "### Full evaluation (`apps.segments.services.refresh_segment`)",
        "",
        "The first build starts from no members; the refresh runs again with nothing changed. "
        "Floors: the hand-written SQL for the same question, storing the members with one "
        "`INSERT … SELECT` (for the first build) or only counting them (for the refresh). "
        "Ratio: our time over the floor's. Each time is the best round's; the slowest round's "
        "is in brackets.",
        "",
        "A large segment's first build is mostly the cost of storing its members (each row "
        "goes into six indexes of segments_segmentmembership and is checked against three "
        "deferred foreign keys at commit), which the floor pays too. "
        "Where the time goes beyond the floor: the refresh diffs the members (an "
        "`INSERT … ON CONFLICT` over every member, a `DELETE` of those who left), where the "
        'floor only counts; and an event count ("at least twice") runs one bounded index '
        "probe per contact that has a matching event at all, where the floor's `GROUP BY` "
        "counts them all in one pass (the compiled `EXISTS` narrows the contacts first; see "
        "`apps/segments/rules/compile.py`).",
        "",
        "| segment | members | first build | floor: query + INSERT | ratio | refresh "
        "| floor: query | ratio | target | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for item in result["evaluation"]:
        verdict = {True: "**pass**", False: "**FAIL**", None: "not judged at this scale"}
        first = (
            f"{_seconds(item['first_build_seconds'])} ({_seconds(max(item['rounds']['first']))})"
        )
        again = f"{_seconds(item['refresh_seconds'])} ({_seconds(max(item['rounds']['again']))})"
        lines.append(
            f"| {item['name']} | {item['members']:,} | {first} | "
            f"{_seconds(item['floor_write_seconds'])} | {item['first_build_ratio']:.1f}x | "
            f"{again} | {_seconds(item['floor_query_seconds'])} | "
            f"{item['refresh_ratio']:.1f}x | < {item['target_seconds']:g} s at 1M contacts | "
            f"{verdict[item['pass']]} |"
        )
    loaded, floor = live["under_load"], live["floor"]
    background = loaded["background"]
    lines += [
        "",
        "### Event → membership latency",
        "",
        f"Probe events, {live['probes_per_s']} a second for {live['seconds']} s, each for a new "
        "contact, one request each; a probe's latency runs from the API's answer to the first "
        f"poll (every {live['poll_seconds'] * 1000:.0f} ms) that finds the contact's membership "
        f"committed. Under load: {live['background_target_per_s']:,} events/s asked for, in "
        f"requests of {live['background_batch']} events for existing contacts. Floor: the same "
        "probes with no other load. Worker: " + live["worker"] + ".",
        "",
        "| run | probes | p50 | p95 | p99 | max | background load | backlog (max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, run, load in (("under load", loaded, f"{background['events_per_s']:,} events/s"),
                             ("floor: no load", floor, NONE)):  # fmt: skip
        missed = f" ({run['missed']} missed)" if run["missed"] else ""
        lines.append(
            f"| {label} | {run['probes']}{missed} | {_seconds(run['p50'])} | "
            f"{_seconds(run['p95'])} | {_seconds(run['p99'])} | {_seconds(run['max'])} | "
            f"{load} | {run['dirty_contacts_max']:,} contacts, {run['queued_tasks_max']} tasks |"
        )
    ratio = f"{live['p95_ratio']:.1f}x" if live.get("p95_ratio") is not None else NONE
    result_word = "**pass**" if live["pass"] else "**FAIL**"
    lines += [
        "",
        f"p95 under load: {ratio} the floor's. Target p95 < {live['target_p95_seconds']:g} s "
        f"under load: {result_word}. Backlog: changed contacts waiting in Redis and tasks in "
        "Celery's queue, sampled every 100 ms.",
        "",
    ]
    commit = f" at commit `{result['commit']}`" if result.get("commit") else ""
    lines += [
        f"- Command: `{result['command']}`{commit} (scale `{result['scale']}`, "
        f"{result['minutes']} min)",
        f"- Date: {result['date']}",
        f"- Machine: {_machine(result['machine'])}",
        f"- Server: {result['server']}; evaluation: best of {result['rounds']} rounds",
        "- The machine's 2 cores are shared by the server, the worker, PostgreSQL and the load "
        "generator (and by whatever else runs): single times move by tens of percent between "
        "runs, ratios much less.",
        "",
    ]
    return lines


def _send_messages(result: dict) -> list[str]:
    """Rates beside the plain smtplib loop, then where a message's time goes."""
    lines = [f"## {result['title']} (`bench/{result['workload']}.py`)", ""]
    if result.get("note"):
        lines += [f"> {result['note']}", ""]
    ceiling = result.get("server_ceiling")
    lines += [
        result.get("about", ""),
        "",
    ]
    if ceiling:
        lines += [
            f"The SMTP server itself takes at most about {_number(ceiling['messages_per_s'])} "
            f"messages/s here: {ceiling['connections']} plain smtplib loops side by side, "
            "pre-rendered messages.",
            "",
        ]
    lines += [
        "| workload | ours | floor | ratio | target | result |",
        "| --- | --- | --- | --- | --- | --- |",
        *(_row(item) for item in result["figures"]),
        "",
    ]
    commit = f" at commit `{result['commit']}`" if result.get("commit") else ""
    lines += [
        f"- Command: `{result['command']}`{commit} (scale `{result['scale']}`, "
        f"{result['minutes']} min)",
        f"- Date: {result['date']}",
        f"- Machine: {_machine(result['machine'])}",
        f"- Workers: {result.get('workers', NONE)}; best of {result['rounds']} rounds",
        *(f"- {item['name']}: {item['note']}" for item in result["figures"] if item.get("note")),
        "",
    ]
    profile = result.get("profile")
    if profile:
        lines += [
            f"Where the time goes: `outbox.send_due_messages` run in one process for "
            f"{profile['messages']:,} messages takes {profile['wall_us_per_message']:,} µs a "
            f"message ({profile['cpu_us_per_message']:,} µs of it this process's CPU; the rest "
            "is waiting for PostgreSQL, the SMTP server and the cores). Its parts, as shares of "
            "the whole under `cProfile` (which slows Python code more than C code and waiting):",
            "",
            "| part | share |",
            "| --- | --- |",
            *(f"| {row['stage']} | {row['share']:.0%} |" for row in profile["stages"]),
            "",
        ]
    return lines


def _journeys(result: dict) -> list[str]:
    """(a) due wake-ups beside a plain UPDATE, (b) event-to-email latency beside no load."""
    drain, profile, live = result["drain"], result["profile"], result["latency"]
    lines = [f"## {result['title']} (`bench/{result['workload']}.py`)", ""]
    if result.get("note"):
        lines += [f"> {result['note']}", ""]
    verdict = {True: "**pass**", False: "**FAIL**", None: "not judged at this scale"}
    lines += [
        "### Due wake-ups (`engine.advance_due`, from `advance_due_task`)",
        "",
        result["about"],
        "",
        "| workload | ours | floor | ratio | target | result |",
        "| --- | --- | --- | --- | --- | --- |",
        *(_row(item) for item in result["figures"]),
        "",
        f"Drained by 2 worker processes in {drain['seconds_2_workers']:,.1f} s "
        f"({drain['enrollments']:,} enrollments; target: 1,000,000 in under "
        f"{drain['target_seconds']} s): {verdict[drain['pass']]}. Claim batch "
        f"{result['claim_batch']:,}.",
        "",
        f"In one process, no profiler: {result['in_process']['per_second']:,} wake-ups/s, "
        f"{result['in_process']['cpu_us_per_enrollment']} µs of that process's CPU each (the "
        f"rest of {result['in_process']['wall_us_per_enrollment']} µs is PostgreSQL's); "
        f"before: {result['before']['per_second']:,}/s ({result['before']['note']}).",
        "",
        f"Where the time goes: {profile['enrollments']:,} wake-ups in one process under "
        f"`cProfile` take {profile['us_per_enrollment']:,} µs each (the profiler slows Python "
        "code several times more than waiting for PostgreSQL). By own time:",
        "",
        "| function | calls | own µs a wake-up |",
        "| --- | --- | --- |",
        *(f"| `{row['function']}` | {row['calls']:,} | {row['own_us_per_enrollment']} |"
          for row in profile["top_by_own_time"][:10]),
        "",
    ]  # fmt: skip
    loaded, floor = live["under_load"], live["floor"]
    background = loaded["background"]
    lines += [
        "### Event → email latency",
        "",
        f"Probe purchases, {live['probes_per_s']} a second for {live['seconds']} s, one request "
        "each, for contacts waiting for a purchase in a journey (wait for `purchase`, then a "
        "thank-you email, then exit); a probe's latency runs from the API's answer to the "
        "email's arrival at an SMTP server in a process of its own. Under load: "
        f"{live['background_target_per_s']:,} events/s asked for, in requests of "
        f"{live['background_batch']} events for other contacts (some of them purchases). "
        "Floor: the same probes with no other load. Worker: " + live["worker"] + ".",
        "",
        "| run | probes | p50 | p95 | p99 | max | background load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, run, load in (("under load", loaded, f"{background['events_per_s']:,} events/s"),
                             ("floor: no load", floor, NONE)):  # fmt: skip
        missed = f" ({run['missed']} missed)" if run["missed"] else ""
        lines.append(
            f"| {label} | {run['probes']}{missed} | {_seconds(run['p50'])} | "
            f"{_seconds(run['p95'])} | {_seconds(run['p99'])} | {_seconds(run['max'])} | {load} |"
        )
    lines += [
        "",
        f"Target p95 < {live['target_p95_seconds']:g} s under load: {verdict[live['pass']]}.",
        "",
    ]
    commit = f" at commit `{result['commit']}`" if result.get("commit") else ""
    lines += [
        f"- Command: `{result['command']}`{commit} (scale `{result['scale']}`, "
        f"{result['minutes']} min)",
        f"- Date: {result['date']}",
        f"- Machine: {_machine(result['machine'])}",
        f"- Server: {result['server']}; wake-ups: best of {result['rounds']} rounds",
        *(f"- {item['name']}: {item['note']}" for item in result["figures"] if item.get("note")),
        "",
    ]
    return lines


def _ms(value: float | None) -> str:
    return NONE if value is None else f"{value * 1000:,.0f} ms"


def _explained_chunk(explained: dict) -> list[str]:
    """The slowest rollup source's plan on one chunk, with how much of it was JIT."""
    lines = []
    for plan in explained["plans"]:
        text = "\n".join(plan)
        execution = re.search(r"Execution Time: ([\d.]+) ms", text)
        jit = re.search(r"Timing: .*Total ([\d.]+) ms", text)
        about = ""
        if execution and jit:
            about = (
                f"; of its {float(execution[1]):,.0f} ms, {float(jit[1]):,.0f} ms went to "
                "compiling it (JIT)"
            )
        lines += [
            f"The slowest source, `{explained['table']}`, on one chunk of "
            f"{explained['chunk_ids']:,} ids (EXPLAIN ANALYZE, rolled back{about}):",
            "",
            "```",
            *plan,
            "```",
            "",
        ]
    return lines[:-1]


def _reporting(result: dict) -> list[str]:
    """Rollup refresh rates, then each page's server time beside the raw-SQL floor."""
    data, rollups = result["data"], result["rollups"]
    rows, mb = data["rows"], data["table_mb"]
    postgres = data.get("postgres", {})
    lines = [f"## {result['title']} (`bench/{result['workload']}.py`)", ""]
    if result.get("note"):
        lines += [f"> {result['note']}", ""]
    lines += [
        f"{rows['channels_message']:,} messages with {rows['channels_messageevent']:,} tracking "
        f"events (sent, delivered, opens, clicks, bounces, unsubscribes) on email, SMS and web "
        f"push, {rows['contacts_event']:,} contact events (purchases with revenue, segment "
        f"changes among them), {rows['contacts_contact']:,} contacts with "
        f"{rows['contacts_consent']:,} consents, and {len(data['journeys'])} journeys "
        f"({', '.join(data['journeys'])}; one with a random split and a holdout group) with "
        f"{rows['journeys_enrollment']:,} enrollments and {rows['journeys_journeystep']:,} "
        f"steps; over {data['history_days']} days in {data['timezone']} (the increments below "
        f"included). Generated with COPY ({data['load_seconds']:,.0f} s to load, the production "
        f"indexes in place, VACUUM ANALYZE after). With their indexes, messages take "
        f"{mb['channels_message']:,} MB, their events {mb['channels_messageevent']:,} MB and "
        f"contact events {mb['contacts_event']:,} MB; PostgreSQL has shared_buffers "
        f"{postgres.get('shared_buffers', NONE)} and work_mem {postgres.get('work_mem', NONE)}.",
        "",
        "### Rollup refresh (`apps.reporting.services.rollups.refresh_rollups`)",
        "",
        "From scratch: the rollups and watermarks emptied, then every source counted anew. "
        f"Incremental: {rollups['increment_share']:.0%} more rows of each kind added after a "
        "refresh, then counted from the watermarks. Best round; every round's time in brackets.",
        "",
        "| source | from scratch: rows | time | rows/s | incremental: rows | time | rows/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    scratch, increment = rollups["from_scratch"], rollups["incremental"]
    for source in [*(key for key in scratch if key != "total"), "total"]:
        a, b = scratch[source], increment[source]
        name = "**total**" if source == "total" else f"`{source}`"
        lines.append(
            f"| {name} | {a['rows']:,} | {_seconds(a['seconds'])} "
            f"({', '.join(_seconds(s) for s in a['rounds_seconds'])}) | "
            f"{_number(a['rows_per_s'])} | {b['rows']:,} | {_seconds(b['seconds'])} "
            f"({', '.join(_seconds(s) for s in b['rounds_seconds'])}) | "
            f"{_number(b['rows_per_s'])} |"
        )
    explained = rollups.get("slowest_source_explained")
    if explained:
        lines += ["", *_explained_chunk(explained)]
    floors = result["floors"]
    lines += [
        "",
        "### Pages and report endpoints (server time, warm cache)",
        "",
        f"Server time is measured {result['measured']}; "
        f"{result['requests_per_round']} timed requests per page and round; the best round's "
        "p50 and p95 (every round's p95 is in the JSON). The dashboard and the pages open on "
        "the last 30 days. Pages are opened with a signed-in member's session cookie, the "
        "API with a read-only API key. Queries: the page's SQL queries, counted in-process.",
        "",
        "Floor: the same figures computed with plain SQL straight from the raw tables "
        "(`channels_message`, `channels_messageevent`, `contacts_event`, the journey step log) "
        "in the same run, for the same days (the dashboard's include the previous period it "
        "compares with); best round. Ratio: our p95 over the floor's time. The pages' numbers "
        f"were checked against the floors': {result['agreement']}.",
        "",
        "| page | path | p50 | p95 | max | queries | floor | ratio | target | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for page in result["pages"]:
        count = page.get("queries", {}).get("count", NONE)
        floor = NONE
        if page.get("floor_seconds") is not None:
            floor = f"{_seconds(page['floor_seconds'])} ({page['floor_what']})"
        ratio = f"{page['ratio']:.3f}" if page.get("ratio") is not None else NONE
        lines.append(
            f"| {page['name']} | `{page['path']}` | {_ms(page['p50'])} | {_ms(page['p95'])} | "
            f"{_ms(page['max'])} | {count} | {floor} | {ratio} | "
            f"p95 < {_ms(page['target_p95_seconds'])} | "
            f"{'**pass**' if page['pass'] else '**FAIL**'} |"
        )
    lines += [
        "",
        "The floors (the insight pages' is the snapshot's computation, from the raw tables):",
        "",
        "| floor | what it computes | time (best) | rounds |",
        "| --- | --- | --- | --- |",
        *(
            f"| {key} | {floor['what']} | {_seconds(floor['seconds'])} | "
            f"{', '.join(_seconds(s) for s in floor['rounds'])} |"
            for key, floor in floors.items()
        ),
        "",
    ]
    if result.get("insight_snapshot_seconds") is not None:
        lines += [
            f"The customer insight pages read a snapshot computed by a Celery task; here it "
            f"took {_seconds(result['insight_snapshot_seconds'])} to compute.",
            "",
        ]
    elif result.get("insight_snapshot_error"):
        lines += [f"The insight snapshot failed: `{result['insight_snapshot_error']}`.", ""]
    for page in result["pages"]:
        queries = page.get("queries", {})
        if page["pass"] or "in_process_ms" not in queries:
            continue
        shares = ", ".join(
            f"{name} {share:.0%}"
            for name, share in sorted(
                queries.get("profile_shares", {}).items(), key=lambda item: -item[1]
            )
            if share >= 0.01
        )
        functions = ", ".join(
            f"`{name}` {share:.0%}" for share, name in queries.get("profile_functions", [])[:4]
        )
        lines += [
            f"**{page['name']}** missed its target. Answered in the benchmark's own process "
            f"(no HTTP, the same cache) it takes {_ms(queries['in_process_ms'] / 1000)}, of "
            f"which SQL {_ms(queries['total_ms'] / 1000)} in {queries['count']} queries (the "
            f"slowest {_ms(queries['slowest_ms'] / 1000)}). Its time under cProfile, by "
            f"package: {shares or NONE}; Orchestra's functions with the most of it: "
            f"{functions or NONE}.",
            "",
        ]
        if queries.get("explain"):
            lines += [
                "Its slowest query:",
                "",
                "```sql",
                queries["slowest_sql"],
                "```",
                "",
                "```",
                *queries["explain"],
                "```",
                "",
            ]
    commit = f" at commit `{result['commit']}`" if result.get("commit") else ""
    lines += [
        f"- Command: `{result['command']}`{commit} (scale `{result['scale']}`, "
        f"{result['minutes']} min)",
        f"- Date: {result['date']}",
        f"- Machine: {_machine(result['machine'])}",
        f"- Server: {result['server']}; best of {result['rounds']} rounds",
        "- The machine's 2 cores are shared by the server, PostgreSQL and the load generator "
        "(and whatever else runs): single times move by tens of percent between runs.",
        "",
    ]
    return lines


RENDERERS = {
    "segments": _segments,
    "send_messages": _send_messages,
    "journeys": _journeys,
    "reporting": _reporting,
}


def render() -> str:
    lines = [INTRO]
    results = {}
    for path in sorted(RESULTS_DIR.glob("*.json")):
        results[path.stem] = json.loads(path.read_text())
    for name in sorted(results, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        if name != "server_tuning":
            lines += RENDERERS.get(name, _workload)(results[name])
    if "server_tuning" in results:
        lines += _tuning(results["server_tuning"])
    return "\n".join(lines).rstrip() + "\n"


def write() -> None:
    DOC_PATH.write_text(render())


if __name__ == "__main__":
    write()
