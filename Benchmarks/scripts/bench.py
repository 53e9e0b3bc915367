#!/usr/bin/env python3
"""Runs the end-to-end benchmarks of `make bench` and writes the raw figures as JSON.

Everything runs on 127.0.0.1, on free ports, with configuration in a temporary directory that
is removed at the end; every process started here is stopped here, also on error or Ctrl-C.

Sections (each figure is the median of BENCH_REPEATS runs, taken round robin so that a change
of machine load hits every target alike):
  batch_write  bench-batch-write (the real ParticipantsCache.storeBatch, N batches in flight)
               against `redis-benchmark -P <batch size> -d <entry size> -t set` (50 clients)
  read_path    wrk against GET /v1/chats/chat-1/participants (L1 hit; Redis hit with the L1
               off), nginx (1 worker) serving the same JSON as a static file, and webdis
               (1 thread) doing a GET of the same Redis key
  sync         a full refresh of N chats from the stub upstream, for each N of BENCH_SYNC_SIZES;
               memory: RSS idle and with 100k chats in the L1
Stdlib only; report.py turns the JSON into the markdown table and the SVG chart.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"
READ_CHAT = "chat-1"
READ_PATH = f"/v1/chats/{READ_CHAT}/participants"
ADMIN_TOKEN = "bench-admin-token"
JWT_SECRET = "bench-jwt-secret"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Processes:
    """Every child started by the run; stopped in reverse order, always."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.children = []

    def start(self, name, argv, env=None):
        logfile = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        process = subprocess.Popen(
            argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True)
        self.children.append((name, process))
        return process

    def stop(self, process, timeout=10):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.children = [(n, p) for (n, p) in self.children if p is not process]

    def stop_all(self):
        for _, process in reversed(list(self.children)):
            self.stop(process)

    def log_tail(self, name, lines=20):
        try:
            with open(os.path.join(self.workdir, f"{name}.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http(method, url, headers=None, timeout=10):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until(what, check, timeout, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not ready within {timeout} s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0])
    return values


def median(values):
    return statistics.median(values) if values else None


def command_output(argv):
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (result.stdout + result.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.processes = Processes(workdir)
        settings = vars(args).copy()
        settings["sections"] = sorted(settings["sections"])
        self.results = {"settings": settings, "load_average": {}}

    # MARK: Servers

    def start_redis(self):
        port = free_port()
        process = self.processes.start("redis", [
            "redis-server", "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", self.workdir, "--daemonize", "no", "--protected-mode", "yes"])
        wait_until("redis-server", lambda: self.redis_cli(port, "PING") == "PONG", 10, process)
        self.redis_port = port
        return process

    def redis_cli(self, port, *command):
        return subprocess.run(["redis-cli", "-h", HOST, "-p", str(port), *command],
                              capture_output=True, text=True, timeout=30).stdout.strip()

    def start_stub(self, chats):
        port = free_port()
        process = self.processes.start(f"stub-{chats}", [
            self.args.chat_service, "stub-upstream", "--host", HOST, "--port", str(port),
            "--chats", str(chats), "--participants-per-chat", str(self.args.participants), "--log-level", "warning"])
        url = f"http://{HOST}:{port}"
        wait_until("stub upstream", lambda: http("GET", f"{url}/admin/stats")[0] == 200, 30, process)
        return process, url

    def start_service(self, name, upstream_url, extra_env):
        port = free_port()
        env = {
            "REDIS_URL": f"redis://{HOST}:{self.redis_port}/0",
            "HTTP_HOST": HOST, "HTTP_PORT": str(port),
            # Several instances run at once: gRPC on any free port, so they do not clash.
            "GRPC_HOST": HOST, "GRPC_PORT": "0",
            "PARTICIPANTS_API_URL": upstream_url,
            "JWT_SECRET": JWT_SECRET, "ADMIN_TOKEN": ADMIN_TOKEN,
            "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false",
            "LOG_LEVEL": "warning", "INSTANCE_ID": name,
            **extra_env,
        }
        process = self.processes.start(name, [self.args.chat_service, "serve"], env)
        url = f"http://{HOST}:{port}"
        try:
            wait_until(f"chat-service {name}", lambda: http("GET", f"{url}/ready")[0] == 200, 30, process)
        except RuntimeError:
            log(self.processes.log_tail(name))
            raise
        return process, url

    def admin(self, method, url):
        status, body = http(method, url, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
        if status >= 300:
            raise RuntimeError(f"{method} {url}: {status} {body[:200]!r}")
        return json.loads(body)

    def note_load(self, moment):
        self.results["load_average"][moment] = list(os.getloadavg())

    # MARK: Batch write

    def batch_write(self):
        args = self.args
        log(f"batch write: {args.repeats} × (bench-batch-write, redis-benchmark), batches of {args.batch_size}, "
            f"{args.in_flight} in flight")
        ours, reference, raw = [], [], []
        entry_bytes = None
        for round_number in range(args.repeats):
            self.redis_cli(self.redis_port, "FLUSHALL")
            output = subprocess.run([
                args.bench_batch_write, "--host", HOST, "--port", str(self.redis_port),
                "--batch-size", str(args.batch_size), "--in-flight", str(args.in_flight),
                "--seconds", str(args.batch_seconds), "--participants", str(args.participants)],
                capture_output=True, text=True, timeout=120 + 2 * args.batch_seconds)
            if output.returncode != 0:
                raise RuntimeError(f"bench-batch-write failed: {output.stderr.strip()}")
            measured = json.loads(output.stdout.strip().splitlines()[-1])
            entry_bytes = measured["entry_bytes"]
            ours.append(measured["entries_per_second"])
            self.redis_cli(self.redis_port, "FLUSHALL")
            requests = max(100_000, int(measured["entries_per_second"] * args.batch_seconds))
            csv = subprocess.run([
                "redis-benchmark", "-h", HOST, "-p", str(self.redis_port), "-P", str(args.batch_size),
                "-d", str(entry_bytes), "-t", "set", "-n", str(requests), "--csv"],
                capture_output=True, text=True, timeout=600).stdout
            row = [line for line in csv.splitlines() if line.startswith('"SET"')]
            if not row:
                raise RuntimeError(f"redis-benchmark printed no SET line: {csv[-300:]}")
            reference.append(float(row[0].split(",")[1].strip('"')))
            raw.append({"ours": measured, "redis_benchmark_rps": reference[-1], "redis_benchmark_requests": requests})
            log(f"  round {round_number + 1}: {ours[-1]:,.0f} entries/s vs redis-benchmark {reference[-1]:,.0f} SET/s")
        self.redis_cli(self.redis_port, "FLUSHALL")
        self.results["batch_write"] = {
            "entries_per_second": median(ours), "redis_benchmark_sets_per_second": median(reference),
            "ratio": median(ours) / median(reference), "entry_bytes": entry_bytes,
            "batch_size": args.batch_size, "in_flight": args.in_flight, "redis_benchmark_clients": 50,
            "runs": raw,
        }

    # MARK: Read path

    def read_path(self):
        args = self.args
        stub, stub_url = self.start_stub(1000)
        l1_service, l1_url = self.start_service("serve-l1", stub_url, {})
        redis_service, redis_url = self.start_service("serve-redis", stub_url, {"PARTICIPANTS_L1_SIZE": "0"})
        token = subprocess.run([args.chat_service, "mint-token", "--subject", "bench", "--ttl", "86400"],
                               env={**os.environ, "JWT_SECRET": JWT_SECRET},
                               capture_output=True, text=True, check=True).stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}

        # First read fetches from upstream and writes Redis and the L1; the next ones are hits.
        for _ in range(2):
            status, body = http("GET", l1_url + READ_PATH, auth)
        if status != 200 or json.loads(body)["source"] != "memory":
            raise RuntimeError(f"L1 read: {status} {body[:200]!r}")
        l1_body = body
        status, body = http("GET", redis_url + READ_PATH, auth)
        if status != 200 or json.loads(body)["source"] != "cache":
            raise RuntimeError(f"Redis read: {status} {body[:200]!r}")
        redis_key = f"participants:v1:{{{READ_CHAT}}}"

        nginx_url = self.start_nginx(l1_body)
        webdis_url = self.start_webdis(redis_key)
        targets = {
            "nginx": nginx_url + READ_PATH,
            "l1_hit": l1_url + READ_PATH,
            "webdis": webdis_url + "/GET/" + urllib.request.quote(redis_key, safe="") + "?type=application/json",
            "redis_hit": redis_url + READ_PATH,
        }
        for name, url in targets.items():
            status, body = http("GET", url, auth)
            if status != 200 or not body.startswith(b"{"):
                raise RuntimeError(f"{name} at {url}: {status} {body[:200]!r}")
        log(f"read path: {args.repeats} rounds of wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
            f"over {', '.join(targets)}")
        runs = {name: [] for name in targets}
        for round_number in range(args.repeats):
            for name, url in targets.items():
                result = self.wrk(url, token)
                runs[name].append(result)
                log(f"  round {round_number + 1} {name}: {result['requests_per_second']:,.0f} req/s, "
                    f"p50 {result['p50_us']} µs, p99 {result['p99_us']} µs")
        summary = {}
        for name, results in runs.items():
            summary[name] = {
                "requests_per_second": median([r["requests_per_second"] for r in results]),
                "p50_us": median([r["p50_us"] for r in results]),
                "p99_us": median([r["p99_us"] for r in results]),
                "errors": sum(r["non_2xx"] + r["socket_errors"] for r in results),
                "runs": results,
            }
        summary["response_bytes"] = len(l1_body)
        summary["service_rss_kib"] = {"l1": memory_kib(l1_service.pid)["VmRSS"],
                                      "redis": memory_kib(redis_service.pid)["VmRSS"]}
        self.results["read_path"] = summary
        for process in (l1_service, redis_service, stub):
            self.processes.stop(process)

    def wrk(self, url, token):
        args = self.args
        output = subprocess.run([
            "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "2s",
            "-s", os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk-report.lua"),
            "-H", f"Authorization: Bearer {token}", url],
            capture_output=True, text=True, timeout=args.duration + 60)
        lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
        if output.returncode != 0 or not lines:
            raise RuntimeError(f"wrk {url} failed: {output.stdout[-500:]} {output.stderr[-500:]}")
        return json.loads(lines[-1])

    def start_nginx(self, body):
        root = os.path.join(self.workdir, "nginx")
        document = os.path.join(root, "www", *READ_PATH.strip("/").split("/"))
        os.makedirs(os.path.dirname(document))
        with open(document, "wb") as f:
            f.write(body)
        for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(root, temp))
        # The worker may run as nobody: it must be able to reach the document.
        os.chmod(self.workdir, 0o755)
        for directory, _, files in os.walk(root):
            os.chmod(directory, 0o755)
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
        port = free_port()
        config = os.path.join(root, "nginx.conf")
        with open(config, "w") as f:
            f.write(f"""
worker_processes 1;
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    server {{
        listen {HOST}:{port};
        root {root}/www;
        default_type application/json;
    }}
}}
""")
        process = self.processes.start("nginx", ["nginx", "-e", f"{root}/error.log", "-p", root, "-c", config])
        url = f"http://{HOST}:{port}"
        wait_until("nginx", lambda: http("GET", url + READ_PATH)[0] == 200, 10, process)
        return url

    def start_webdis(self, key):
        port = free_port()
        config = os.path.join(self.workdir, "webdis.json")
        with open(config, "w") as f:
            json.dump({
                "redis_host": HOST, "redis_port": self.redis_port, "http_host": HOST, "http_port": port,
                "threads": 1, "daemonize": False, "database": 0, "verbosity": 1,
                "logfile": os.path.join(self.workdir, "webdis-own.log"),
            }, f)
        process = self.processes.start("webdis", ["webdis", config])
        url = f"http://{HOST}:{port}"
        quoted = urllib.request.quote(key, safe="")
        wait_until("webdis", lambda: http("GET", f"{url}/GET/{quoted}?type=application/json")[0] == 200, 10, process)
        return url

    # MARK: Sync

    def sync(self):
        args = self.args
        runs = []
        for chats in args.sync_sizes:
            self.redis_cli(self.redis_port, "FLUSHALL")
            stub, stub_url = self.start_stub(chats)
            service, url = self.start_service(f"serve-sync-{chats}", stub_url, {
                "PARTICIPANTS_L1_SIZE": str(args.l1_size),
            })
            time.sleep(1)
            if "idle_rss_kib" not in self.results.setdefault("memory", {}):
                self.results["memory"]["idle_rss_kib"] = memory_kib(service.pid)["VmRSS"]
            log(f"sync: full refresh of {chats:,} chats")
            cpu_before, stub_cpu_before = cpu_seconds(service.pid), cpu_seconds(stub.pid)
            started = time.monotonic()
            job = self.admin("POST", f"{url}/internal/participants/refresh")["job_id"]
            deadline = started + 120 + chats / 500
            while True:
                run = self.admin("GET", f"{url}/internal/participants/refresh/{job}")
                if run.get("state") != "running":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sync of {chats} chats did not finish in {deadline - started:.0f} s: {run}")
                time.sleep(0.05)
            seconds = time.monotonic() - started
            cpu = cpu_seconds(service.pid) - cpu_before
            stub_cpu = cpu_seconds(stub.pid) - stub_cpu_before
            memory = memory_kib(service.pid)
            counts = run.get("counts", {})
            refreshed = counts.get("chats_refreshed", 0)
            status = self.admin("GET", f"{url}/internal/participants/status")
            result = {
                "chats": chats, "state": run.get("state"), "seconds": seconds,
                "chats_refreshed": refreshed, "chats_failed": counts.get("chats_failed"),
                "chats_per_second": refreshed / seconds if seconds > 0 else None,
                "cpu_seconds": cpu, "cpu_seconds_per_1k": cpu / (chats / 1000),
                "stub_cpu_seconds": stub_cpu,
                "peak_rss_kib": memory["VmHWM"], "rss_after_kib": memory["VmRSS"],
                "l1_entries": status.get("cache", {}).get("l1_entries"),
                "redis_keys": int(self.redis_cli(self.redis_port, "DBSIZE") or 0),
            }
            runs.append(result)
            log(f"  {chats:,} chats: {seconds:.1f} s, {result['chats_per_second']:,.0f} chats/s, "
                f"{result['cpu_seconds_per_1k']:.3f} CPU s per 1k, peak RSS {memory['VmHWM'] / 1024:.0f} MiB")
            if result["state"] != "completed" or refreshed != chats:
                log(f"  warning: run ended {result['state']} with {refreshed} of {chats} refreshed: {run}")
            if chats == args.l1_size or (chats >= args.l1_size and "l1_full_rss_kib" not in self.results["memory"]):
                self.results["memory"]["l1_full_rss_kib"] = memory["VmRSS"]
                self.results["memory"]["l1_entries"] = result["l1_entries"]
            self.processes.stop(service)
            self.processes.stop(stub)
        self.redis_cli(self.redis_port, "FLUSHALL")
        self.results["sync"] = runs

    # MARK: Run

    def describe_machine(self):
        cpu = ""
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
        except OSError:
            pass
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        commit = command_output(["git", "-C", root, "rev-parse", "--short", "HEAD"])
        dirty = command_output(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"])
        self.results["machine"] = {
            "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "swift": command_output(["swift", "--version"]).splitlines()[0] if shutil.which("swift") else "",
            "redis": command_output(["redis-server", "--version"]),
            "nginx": command_output(["nginx", "-v"]),
            "webdis": "webdis " + (command_output(["dpkg-query", "-W", "-f=${Version}", "webdis"]) or "?"),
            "wrk": command_output(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else "",
            "commit": commit + ("-dirty" if dirty else ""),
        }

    def run(self):
        started = datetime.datetime.now(datetime.timezone.utc)
        self.results["started_at"] = started.isoformat(timespec="seconds")
        self.describe_machine()
        self.note_load("start")
        busy = os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1)
        if busy:
            log(f"warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores before the run; "
                "figures will be noisy")
        self.start_redis()
        sections = self.args.sections
        if "batch" in sections:
            self.batch_write()
            self.note_load("after_batch_write")
        if "read" in sections:
            self.read_path()
            self.note_load("after_read_path")
        if "sync" in sections:
            self.sync()
            self.note_load("after_sync")
        self.results["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return self.results


def parse_arguments():
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chat-service", required=True, help="release chat-service binary")
    parser.add_argument("--bench-batch-write", required=True, help="release bench-batch-write binary")
    parser.add_argument("--output", required=True, help="where the raw JSON goes")
    parser.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "10")), help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=int(env("BENCH_REPEATS", "3")))
    parser.add_argument("--threads", type=int, default=int(env("BENCH_WRK_THREADS", "2")))
    parser.add_argument("--connections", type=int, default=int(env("BENCH_WRK_CONNECTIONS", "64")))
    parser.add_argument("--batch-size", type=int, default=int(env("BENCH_BATCH_SIZE", "50")))
    parser.add_argument("--in-flight", type=int, default=int(env("BENCH_IN_FLIGHT", "50")))
    parser.add_argument("--batch-seconds", type=float, default=float(env("BENCH_BATCH_SECONDS", "5")))
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--l1-size", type=int, default=100_000, help="PARTICIPANTS_L1_SIZE of the sync runs")
    default_sizes = "10000 100000 1000000" if env("BENCH_FULL") == "1" else "10000 100000"
    parser.add_argument("--sync-sizes", type=lambda s: [int(x) for x in s.split()],
                        default=[int(x) for x in env("BENCH_SYNC_SIZES", default_sizes).split()])
    parser.add_argument("--sections", default=env("BENCH_SECTIONS", "batch read sync"),
                        type=lambda s: set(s.split()))
    return parser.parse_args()


def main():
    args = parse_arguments()
    workdir = tempfile.mkdtemp(prefix="chat-bench.")
    bench = Bench(args, workdir)
    interrupted = []

    def on_signal(number, _frame):
        interrupted.append(number)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        results = bench.run()
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        log(f"raw results: {args.output}")
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    except Exception as error:  # noqa: BLE001 - report, clean up, fail
        log(f"error: {error}")
        if os.environ.get("BENCH_KEEP_WORKDIR") == "1":
            log(f"logs kept in {workdir}")
            workdir = None
        return 1
    finally:
        bench.processes.stop_all()
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
