#!/usr/bin/env python3
"""Turns the raw JSON of bench.py into the dated markdown table and SVG chart, and puts the
table into the README between its bench-results markers.

    report.py RAW.json --markdown OUT.md --svg OUT.svg [--readme README.md] [--performance docs/PERFORMANCE.md]
Stdlib only: the chart is written as SVG by hand.
"""

import argparse
import html
import json
import os
import re
import sys

GOALS = {
    "batch_write": 0.9,     # entries/s ÷ redis-benchmark SET/s, at least
    "l1_vs_nginx": 0.9,     # requests/s, at least
    "redis_vs_webdis": 1.0,  # requests/s, at least
    "p99_vs_nginx": 1.5,    # p99 latency, at most
}

READ_LABELS = {
    "nginx": "nginx, static file (1 worker)",
    "l1_hit": "chat-service, L1 hit",
    "webdis": "webdis, GET of the key (1 thread)",
    "redis_hit": "chat-service, Redis hit (L1 off)",
}


def fmt_int(value):
    return "–" if value is None else f"{value:,.0f}"


def fmt_ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def ms(microseconds):
    return "–" if microseconds is None else f"{microseconds / 1000:.2f} ms"


def mib(kib):
    return "–" if kib is None else f"{kib / 1024:.0f} MiB"


def verdict(value, goal, at_least=True):
    if value is None:
        return "not measured"
    met = value >= goal if at_least else value <= goal
    return "**met**" if met else "**not met**"


def goal_rows(results):
    rows = []
    batch = results.get("batch_write")
    if batch:
        rows.append(("batch write: entries/s ÷ redis-benchmark SET/s", batch["ratio"], f"≥ {GOALS['batch_write']}×",
                     verdict(batch["ratio"], GOALS["batch_write"])))
    read = results.get("read_path")
    if read:
        nginx, l1, webdis, redis = (read[k] for k in ("nginx", "l1_hit", "webdis", "redis_hit"))
        l1_ratio = l1["requests_per_second"] / nginx["requests_per_second"]
        redis_ratio = redis["requests_per_second"] / webdis["requests_per_second"]
        rows.append(("L1 hit: requests/s ÷ nginx", l1_ratio, f"≥ {GOALS['l1_vs_nginx']}×",
                     verdict(l1_ratio, GOALS["l1_vs_nginx"])))
        rows.append(("Redis hit: requests/s ÷ webdis", redis_ratio, f"≥ {GOALS['redis_vs_webdis']}×",
                     verdict(redis_ratio, GOALS["redis_vs_webdis"])))
        for key, label in (("l1_hit", "L1 hit"), ("redis_hit", "Redis hit")):
            ratio = read[key]["p99_us"] / nginx["p99_us"] if nginx["p99_us"] else None
            rows.append((f"{label}: p99 ÷ nginx p99", ratio, f"≤ {GOALS['p99_vs_nginx']}×",
                         verdict(ratio, GOALS["p99_vs_nginx"], at_least=False)))
    return rows


def load_note(results):
    loads = results.get("load_average", {})
    start = loads.get("start", [0, 0, 0])[0]
    cores = results.get("machine", {}).get("cores") or 1
    parts = [f"{moment.replace('_', ' ')} {values[0]:.1f}" for moment, values in loads.items()]
    note = "load average (1 min): " + ", ".join(parts) + "."
    if start > 0.75 * cores:
        note += (f" **The machine was busy when the run started ({start:.1f} on {cores} cores): other work "
                 "competed for the CPU, so absolute figures are low and ratios noisier than usual.**")
    return note


def markdown_table(results, chart_name=None):
    settings = results.get("settings", {})
    machine = results.get("machine", {})
    lines = []
    lines.append(f"Run of {results.get('started_at', '?')} on {machine.get('cores', '?')} cores "
                 f"({machine.get('cpu', '?')}), commit `{machine.get('commit', '?')}`; every figure is the median "
                 f"of {settings.get('repeats', '?')} runs taken round robin; {load_note(results)}")
    lines.append("")
    rows = goal_rows(results)
    if rows:
        lines += ["| goal | measured | target | |", "| --- | --- | --- | --- |"]
        lines += [f"| {name} | {fmt_ratio(value)} | {target} | {met} |" for name, value, target, met in rows]
        lines.append("")

    read = results.get("read_path")
    if read:
        nginx = read["nginx"]
        lines.append(f"Read path: `wrk -t{settings.get('threads')} -c{settings.get('connections')} "
                     f"-d{settings.get('duration')}s`, the same `Authorization: Bearer <JWT>` header on every "
                     f"target, one chat, {read.get('response_bytes')}-byte JSON body.")
        lines.append("")
        lines += ["| target | requests/s | ÷ nginx | p50 | p99 | p99 ÷ nginx |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for key in ("nginx", "l1_hit", "webdis", "redis_hit"):
            row = read[key]
            lines.append(
                f"| {READ_LABELS[key]} | {fmt_int(row['requests_per_second'])} | "
                f"{fmt_ratio(row['requests_per_second'] / nginx['requests_per_second'])} | {ms(row['p50_us'])} | "
                f"{ms(row['p99_us'])} | {fmt_ratio(row['p99_us'] / nginx['p99_us'] if nginx['p99_us'] else None)} |")
        errors = sum(read[k]["errors"] for k in READ_LABELS)
        if errors:
            lines.append(f"\n**{errors} non-2xx answers or socket errors during the read runs.**")
        lines.append("")

    batch = results.get("batch_write")
    if batch:
        lines.append(f"Batch write: batches of {batch['batch_size']} entries of {batch['entry_bytes']} bytes "
                     f"(20 participants), {batch['in_flight']} batches in flight on one connection, against "
                     f"`redis-benchmark -P {batch['batch_size']} -d {batch['entry_bytes']} -t set` "
                     f"({batch['redis_benchmark_clients']} clients).")
        lines.append("")
        lines += ["| writer | per second | ratio |", "| --- | ---: | ---: |",
                  f"| chat-service `ParticipantsCache.storeBatch` | {fmt_int(batch['entries_per_second'])} entries | "
                  f"{fmt_ratio(batch['ratio'])} |",
                  f"| redis-benchmark | {fmt_int(batch['redis_benchmark_sets_per_second'])} SETs | 1.00× |", ""]

    sync = results.get("sync")
    if sync:
        lines.append("Sync: a full refresh (`POST /internal/participants/refresh`) from the stub upstream, "
                     "default batch size and batches in flight, `PARTICIPANTS_L1_SIZE="
                     f"{settings.get('l1_size')}`; CPU is the service's user + system time.")
        lines.append("")
        lines += ["| chats | seconds | chats/s | CPU s per 1k chats | peak RSS (VmHWM) | stub CPU s |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for run in sync:
            lines.append(f"| {run['chats']:,} | {run['seconds']:.1f} | {fmt_int(run['chats_per_second'])} | "
                         f"{run['cpu_seconds_per_1k']:.3f} | {mib(run['peak_rss_kib'])} | "
                         f"{run['stub_cpu_seconds']:.1f} |")
        failed = [r for r in sync if r.get("state") != "completed" or r.get("chats_refreshed") != r["chats"]]
        for run in failed:
            lines.append(f"\n**{run['chats']:,} chats: the run ended `{run.get('state')}` with "
                         f"{run.get('chats_refreshed')} refreshed.**")
        if 1_000_000 not in [r["chats"] for r in sync]:
            lines.append("\n1M chats: not in this run (`BENCH_FULL=1` adds them).")
        lines.append("")

    memory = results.get("memory")
    if memory:
        lines += ["| memory | RSS |", "| --- | ---: |", f"| idle, after start | {mib(memory.get('idle_rss_kib'))} |"]
        if memory.get("l1_full_rss_kib") is not None:
            lines.append(f"| {memory.get('l1_entries') or 0:,} chats in the L1 | {mib(memory['l1_full_rss_kib'])} |")
        lines.append("")
    if chart_name:
        lines.append(f"![read path and sync]({chart_name})")
        lines.append("")
    return "\n".join(lines)


# MARK: SVG

class Svg:
    def __init__(self, width, height):
        self.width, self.height = width, height
        self.items = []

    def rect(self, x, y, w, h, fill):
        self.items.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"/>')

    def line(self, x1, y1, x2, y2, stroke="#999", width=1):
        self.items.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                          f'stroke="{stroke}" stroke-width="{width}"/>')

    def text(self, x, y, content, size=12, anchor="start", weight="normal", fill="#222"):
        self.items.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'font-weight="{weight}" fill="{fill}">{html.escape(str(content))}</text>')

    def render(self):
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="Helvetica, Arial, sans-serif">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.items) + "\n</svg>\n")


def bar_panel(svg, x, y, width, height, title, bars, unit, palette):
    """Horizontal bars: (label, value, note) tuples; the note is printed after the value."""
    svg.text(x, y, title, size=14, weight="bold")
    if not bars:
        return
    top = y + 14
    label_width = 230
    bar_area = width - label_width - 150
    row = min(34, (height - 20) / len(bars))
    biggest = max(value for _, value, _ in bars if value is not None) or 1
    for index, (label, value, note) in enumerate(bars):
        row_y = top + index * row
        svg.text(x + label_width - 8, row_y + row * 0.62, label, size=12, anchor="end")
        length = 0 if value is None else bar_area * value / biggest
        svg.rect(x + label_width, row_y + 4, max(length, 1), row - 8, palette[index % len(palette)])
        shown = "–" if value is None else f"{value:,.0f} {unit}"
        svg.text(x + label_width + length + 6, row_y + row * 0.62, shown + (f"  {note}" if note else ""), size=11)
    svg.line(x + label_width, top, x + label_width, top + row * len(bars))


def chart(results):
    read = results.get("read_path")
    sync = results.get("sync") or []
    batch = results.get("batch_write")
    panels = []
    if read:
        nginx = read["nginx"]
        panels.append(("Read path: requests/s (ratio to nginx)", [
            (READ_LABELS[k], read[k]["requests_per_second"],
             fmt_ratio(read[k]["requests_per_second"] / nginx["requests_per_second"])) for k in READ_LABELS], "req/s"))
        panels.append(("Read path: p99 latency in µs (p50 in brackets)", [
            (READ_LABELS[k], read[k]["p99_us"], f"(p50 {read[k]['p50_us']:,.0f})") for k in READ_LABELS], "µs"))
    if batch:
        panels.append(("Batch write: entries/s vs redis-benchmark SET/s", [
            ("chat-service storeBatch", batch["entries_per_second"], fmt_ratio(batch["ratio"])),
            ("redis-benchmark", batch["redis_benchmark_sets_per_second"], "")], "/s"))
    if sync:
        panels.append(("Sync: chats/s of a full refresh (CPU s per 1k chats, peak RSS)", [
            (f"{run['chats']:,} chats", run["chats_per_second"],
             f"({run['cpu_seconds_per_1k']:.3f} CPU s/1k, {mib(run['peak_rss_kib'])})") for run in sync], "chats/s"))
    width = 900
    heights = [40 + 34 * len(bars) for _, bars, _ in panels]
    svg = Svg(width, 50 + sum(heights) + 20 * len(panels))
    svg.text(20, 28, f"chat-service benchmarks, {results.get('started_at', '')}", size=16, weight="bold")
    y = 60
    palette = ["#8c8c8c", "#2f6fb0", "#b7b7b7", "#5a9bd5"]
    for (title, bars, unit), height in zip(panels, heights):
        bar_panel(svg, 20, y, width - 40, height, title, bars, unit, palette)
        y += height + 20
    return svg.render()


def update_readme(readme, table):
    with open(readme) as f:
        text = f.read()
    pattern = re.compile(r"(<!-- bench-results:begin -->\n).*?(<!-- bench-results:end -->)", re.S)
    if not pattern.search(text):
        print(f"report.py: no bench-results markers in {readme}; left unchanged", file=sys.stderr)
        return
    text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    with open(readme, "w") as f:
        f.write(text)


def goals_table(results):
    """The goal rows alone, for docs/PERFORMANCE.md."""
    lines = ["| goal | measured | target | |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {fmt_ratio(value)} | {target} | {met} |" for name, value, target, met in goal_rows(results)]
    return "\n".join(lines)


def update_performance(path, results, results_name):
    """Fills the generated parts of docs/PERFORMANCE.md, between its `<!-- bench-NAME:begin/end -->`
    markers: `goals` (the goal table) and `summary` (the whole table of the run)."""
    with open(path) as f:
        text = f.read()
    parts = {
        "goals": f"From [{results_name}](../Benchmarks/results/{results_name}):\n\n{goals_table(results)}\n",
        "summary": markdown_table(results) + "\n",
    }
    for name, content in parts.items():
        pattern = re.compile(rf"(<!-- bench-{name}:begin -->\n).*?(<!-- bench-{name}:end -->)", re.S)
        if not pattern.search(text):
            print(f"report.py: no bench-{name} markers in {path}; that part left unchanged", file=sys.stderr)
            continue
        text = pattern.sub(lambda m: m.group(1) + content + m.group(2), text)
    with open(path, "w") as f:
        f.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw")
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--svg", required=True)
    parser.add_argument("--readme")
    parser.add_argument("--performance", help="docs/PERFORMANCE.md: fill its generated parts from this run")
    args = parser.parse_args()
    with open(args.raw) as f:
        results = json.load(f)
    with open(args.svg, "w") as f:
        f.write(chart(results))
    svg_name = os.path.basename(args.svg)
    table = markdown_table(results, chart_name=svg_name)
    with open(args.markdown, "w") as f:
        f.write(f"# Benchmarks, {results.get('started_at', '')}\n\n{table}\n"
                f"Raw figures: [{os.path.basename(args.raw)}]({os.path.basename(args.raw)}). "
                f"Reproduce with `make bench` (see docs/PERFORMANCE.md).\n")
    if args.readme:
        relative = os.path.relpath(args.svg, os.path.dirname(os.path.abspath(args.readme)))
        update_readme(args.readme, markdown_table(results, chart_name=relative))
    if args.performance:
        update_performance(args.performance, results, os.path.basename(args.markdown))
    print(args.markdown)


if __name__ == "__main__":
    main()
