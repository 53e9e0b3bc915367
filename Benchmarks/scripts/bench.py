#!/usr/bin/env python3
"""Runs the end-to-end benchmarks of `make bench` and writes the raw figures as JSON.

Everything runs on 127.0.0.1, on free ports, with configuration in a temporary directory that
is removed at the end; every process started here is stopped here, also on error or Ctrl-C.

Sections (each figure is the median of BENCH_REPEATS runs, taken round robin so that a change
of machine load hits every target alike):
  batch_write  bench-batch-write (the real ParticipantsCache.storeBatch, N batches in flight)
               against `redis-benchmark -P <batch size> -d <entry size> -t set` (50 clients and 1),
               and against redis-benchmark sending our command (1 client, `SET key value EX`
               over 20,000 keys) for scale
  batch_write_cluster
               (section `batch-cluster`) the same writer in cluster mode (`--cluster`: RedisCluster
               and its front supervisor, one pipeline per primary per batch) against a Redis
               Cluster of BENCH_CLUSTER_PRIMARIES primaries (3; BENCH_CLUSTER_REPLICAS replicas
               each, 0) started on free ports, and `redis-benchmark --cluster -P <batch size>
               -d <entry size> -t set` with `-c <primaries>` (one connection per primary, as
               ours) and with its default 50 clients
  read_path    wrk against GET /v1/chats/chat-1/participants (L1 hit; Redis hit with the L1
               off), nginx (1 worker) serving the same JSON as a static file, and webdis
               (1 thread) doing a GET of the same Redis key
  sync         a full refresh of N chats from the instant stub upstream, for each N of
               BENCH_SYNC_SIZES: wall time, chats/s, CPU of the service, the stub and redis-server,
               the busiest of the three and wall ÷ its CPU; memory: RSS idle and with 100k chats
               in the L1. With BENCH_BASELINE_BINARY, the same with that binary, alternating.
  sync_latency a full refresh of BENCH_LATENCY_CHATS chats from the stub at 50 ms ± 10 ms per
               call: adaptive batch concurrency (the default), then fixed in-flight settings
               (BENCH_INFLIGHT_SWEEP), round robin; and the baseline binary's default
  sync_multi   three `serve` instances on one Redis, one full refresh asked of one of them: how
               many times the stub served each chat (GET /admin/stats), wall time, chats/s
  lines        lines of Sources/Actors/Sync and Sources/Actors/Coordination, now and at
               BENCH_LINES_BASE
A section that fails (a process died, a deadline passed) is recorded with its error and the
log tail of the process; the others still run, the JSON is written and the exit status is 3.
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
# Variables of `chat-service serve` (Sources/Main/ChatService/Configuration): never inherited from
# the caller's environment, so a run sets exactly what it means to (e.g. the adaptive run leaves
# PARTICIPANTS_MAX_BATCHES_IN_FLIGHT at the service's default).
SERVICE_ENV_PREFIXES = ("PARTICIPANTS_", "REDIS_", "HTTP_", "GRPC_", "CHAT_", "JWT_", "LOG_", "INSTANCE_ID",
                        "ADMIN_TOKEN", "SHUTDOWN_TIMEOUT")
SYNC_STATES_ENDED = {"completed", "failed", "cancelled"}
SYNC_STATES_GOING = {"queued", "running"}
SYNC_DIRECTORIES = ("Sources/Actors/Sync", "Sources/Actors/Coordination")


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Processes:
    """Every child started by the run; stopped in reverse order, always."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.children = []

    def start(self, name, argv, env=None, clean_env=False):
        """Starts argv with its output in <workdir>/<name>.log. With clean_env, the service's own
        variables are not inherited from this environment: only `env` sets them."""
        inherited = dict(os.environ)
        if clean_env:
            inherited = {k: v for k, v in inherited.items() if not k.startswith(SERVICE_ENV_PREFIXES)}
        logfile = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        process = subprocess.Popen(
            argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**inherited, **(env or {})}, start_new_session=True)
        logfile.close()
        self.children.append((name, process))
        return process

    def name_of(self, process):
        return next((n for (n, p) in self.children if p is process), "?")

    def check_alive(self, processes):
        """Raises, with the log tail, when one of `processes` has exited."""
        for process in processes:
            if process.poll() is not None:
                name = self.name_of(process)
                raise RuntimeError(f"{name} exited with {process.returncode}; its log ends:\n"
                                   f"{self.log_tail(name)}")

    def wait_ready(self, name, process, check, timeout):
        """wait_until, with the process's log tail in the error."""
        try:
            wait_until(name, check, timeout, process)
        except RuntimeError as error:
            raise RuntimeError(f"{error}; {name}'s log ends:\n{self.log_tail(name)}") from None

    def stop_after(self, mark):
        """Stops every child started after the first `mark` children."""
        for _, process in reversed(self.children[mark:]):
            self.stop(process)

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


def http(method, url, headers=None, timeout=10, body=None):
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
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


# Sync runs up to this size refresh their chats twice more, for the RSS a refresh leaves behind.
LATER_REFRESH_MAX_CHATS = 100_000

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


def median_run(runs, key="seconds"):
    """The run whose `key` is the median (the lower one of an even count): a real, self-consistent
    run rather than medians of each field taken from different runs."""
    ordered = sorted(runs, key=lambda r: (r.get(key) is None, r.get(key) or 0))
    return ordered[(len(ordered) - 1) // 2]


def find_dict_with(value, key):
    """The first object, depth first, that has `key` (status JSON shapes differ between builds)."""
    if isinstance(value, dict):
        if key in value:
            return value
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = find_dict_with(child, key)
        if found is not None:
            return found
    return None


def find_value(value, key):
    found = find_dict_with(value, key)
    return None if found is None else found[key]


def repository_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary_commit(binary):
    """The commit of the work tree a binary was built in (it sits under <tree>/.build), if any."""
    folder = os.path.dirname(os.path.realpath(binary))
    while folder != os.path.dirname(folder):
        if os.path.exists(os.path.join(folder, ".git")):
            commit = command_output(["git", "-C", folder, "rev-parse", "--short", "HEAD"])
            dirty = command_output(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"])
            return commit + ("-dirty" if dirty else "")
        folder = os.path.dirname(folder)
    return None


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
        self.processes.wait_ready("redis", process, lambda: self.redis_cli(port, "PING") == "PONG", 10)
        self.redis_port = port
        self.redis = process
        return process

    def ensure_redis(self):
        """A section starts with a live redis-server (a new one if the last section's died)."""
        if getattr(self, "redis", None) is None or self.redis.poll() is not None:
            if getattr(self, "redis", None) is not None:
                log(f"redis-server had exited; its log ends:\n{self.processes.log_tail('redis')}")
                self.processes.stop(self.redis)
            self.start_redis()

    def redis_cli(self, port, *command):
        return subprocess.run(["redis-cli", "-h", HOST, "-p", str(port), *command],
                              capture_output=True, text=True, timeout=30).stdout.strip()

    def start_stub(self, chats, name=None):
        """The stub upstream of the --chat-service binary (the same stub for every build compared)."""
        port = free_port()
        name = name or f"stub-{chats}"
        process = self.processes.start(name, [
            self.args.chat_service, "stub-upstream", "--host", HOST, "--port", str(port),
            "--chats", str(chats), "--participants-per-chat", str(self.args.participants), "--log-level", "warning"])
        url = f"http://{HOST}:{port}"
        self.processes.wait_ready(name, process, lambda: http("GET", f"{url}/admin/stats")[0] == 200,
                                  30 + chats / 20_000)
        return process, url

    def start_service(self, name, upstream_url, extra_env, binary=None):
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
        process = self.processes.start(name, [binary or self.args.chat_service, "serve"], env, clean_env=True)
        url = f"http://{HOST}:{port}"
        self.processes.wait_ready(name, process, lambda: http("GET", f"{url}/ready")[0] == 200, 30)
        return process, url

    def admin(self, method, url, body=None):
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body).encode()
        status, answer = http(method, url, headers, timeout=30, body=body)
        if status >= 300:
            raise RuntimeError(f"{method} {url}: {status} {answer[:200]!r}")
        return json.loads(answer)

    def note_load(self, moment):
        self.results["load_average"][moment] = list(os.getloadavg())

    # MARK: Batch write

    def batch_write(self):
        args = self.args
        log(f"batch write: {args.repeats} × (bench-batch-write, redis-benchmark), batches of {args.batch_size}, "
            f"{args.in_flight} in flight")
        ours, reference, reference_one, reference_same, raw = [], [], [], [], []
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
            # Two references on the same payload: one client (one pipelined connection, as ours)
            # and redis-benchmark's default of 50 clients.
            requests = max(100_000, int(measured["entries_per_second"] * args.batch_seconds))
            measured_reference = {}
            for clients in (1, 50):
                self.redis_cli(self.redis_port, "FLUSHALL")
                csv = subprocess.run([
                    "redis-benchmark", "-h", HOST, "-p", str(self.redis_port), "-P", str(args.batch_size),
                    "-c", str(clients), "-d", str(entry_bytes), "-t", "set", "-n", str(requests), "--csv"],
                    capture_output=True, text=True, timeout=600).stdout
                row = [line for line in csv.splitlines() if line.startswith('"SET"')]
                if not row:
                    raise RuntimeError(f"redis-benchmark -c {clients} printed no SET line: {csv[-300:]}")
                measured_reference[clients] = float(row[0].split(",")[1].strip('"'))
            # A third, with one client sending our command's shape: as many distinct keys as
            # bench-batch-write writes (its 20,000 chats), each value with an expiry. The `-t set`
            # references overwrite one key without one, which costs redis-server about half.
            self.redis_cli(self.redis_port, "FLUSHALL")
            csv = subprocess.run([
                "redis-benchmark", "-h", HOST, "-p", str(self.redis_port), "-P", str(args.batch_size), "-c", "1",
                "-n", str(requests), "-r", "20000", "--csv",
                "SET", "participants:v1:{chat-__rand_int__}", "x" * entry_bytes, "EX", "90000"],
                capture_output=True, text=True, timeout=600).stdout
            row = [line for line in csv.splitlines() if line.startswith('"SET')]
            if not row:
                raise RuntimeError(f"redis-benchmark with our SET printed no line: {csv[-300:]}")
            same_command = float(row[0].split('","')[1].strip('"'))
            reference.append(measured_reference[50])
            reference_one.append(measured_reference[1])
            reference_same.append(same_command)
            raw.append({"ours": measured, "redis_benchmark_rps": measured_reference[50],
                        "redis_benchmark_one_client_rps": measured_reference[1],
                        "redis_benchmark_same_command_rps": same_command, "redis_benchmark_requests": requests})
            log(f"  round {round_number + 1}: {ours[-1]:,.0f} entries/s vs redis-benchmark {reference[-1]:,.0f} SET/s "
                f"(50 clients), {reference_one[-1]:,.0f} SET/s (1 client), {reference_same[-1]:,.0f} SET/s "
                f"(1 client, our SET ... EX over 20,000 keys)")
        self.redis_cli(self.redis_port, "FLUSHALL")
        self.results["batch_write"] = {
            "entries_per_second": median(ours), "redis_benchmark_sets_per_second": median(reference),
            "ratio": median(ours) / median(reference), "entry_bytes": entry_bytes,
            "redis_benchmark_one_client_sets_per_second": median(reference_one),
            "ratio_one_client": median(ours) / median(reference_one),
            "redis_benchmark_same_command_sets_per_second": median(reference_same),
            "ratio_same_command": median(ours) / median(reference_same),
            "batch_size": args.batch_size, "in_flight": args.in_flight, "redis_benchmark_clients": 50,
            "runs": raw,
        }

    # MARK: Batch write, cluster mode

    def start_cluster(self, primaries, replicas):
        """A Redis Cluster on free loopback ports (client port and cluster bus port each), formed with
        `redis-cli --cluster create`; returns once every node says cluster_state:ok, knows every
        node, and every replica's link is up. Its processes are stopped with the section's."""
        count = primaries * (1 + replicas)
        taken = set()

        def port():
            while True:
                candidate = free_port()
                if candidate not in taken:
                    taken.add(candidate)
                    return candidate

        ports = []
        for index in range(count):
            client_port, bus_port = port(), port()
            directory = os.path.join(self.workdir, f"cluster-{index}")
            os.makedirs(directory, exist_ok=True)
            name = f"cluster-{index}"
            process = self.processes.start(name, [
                "redis-server", "--bind", HOST, "--port", str(client_port), "--save", "", "--appendonly", "no",
                "--dir", directory, "--daemonize", "no", "--protected-mode", "yes",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                # The bus port is the client port + 10000 unless set: that one may be taken.
                "--cluster-port", str(bus_port), "--cluster-announce-ip", HOST])
            self.processes.wait_ready(name, process, lambda p=client_port: self.redis_cli(p, "PING") == "PONG", 10)
            ports.append(client_port)
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"{HOST}:{p}" for p in ports],
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=120)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {(created.stdout + created.stderr)[-500:]}")

        def formed():
            for p in ports:
                info = self.redis_cli(p, "CLUSTER", "INFO")
                if "cluster_state:ok" not in info or f"cluster_known_nodes:{count}" not in info:
                    return False
                replication = self.redis_cli(p, "INFO", "replication")
                if "role:slave" in replication and "master_link_status:up" not in replication:
                    return False
            return True

        wait_until("the Redis Cluster forms", formed, 60)
        primary_ports = [p for p in ports if self.redis_cli(p, "ROLE").startswith("master")]
        if len(primary_ports) != primaries:
            raise RuntimeError(f"expected {primaries} primaries, found {len(primary_ports)}")
        return ports, primary_ports

    def batch_write_cluster(self):
        args = self.args
        primaries, replicas = args.cluster_primaries, args.cluster_replicas
        log(f"batch write, cluster mode: {primaries} primaries ({replicas} replicas each), {args.repeats} × "
            f"(bench-batch-write --cluster, redis-benchmark --cluster -c {primaries} and -c 50), "
            f"batches of {args.batch_size}, {args.in_flight} in flight")
        ports, primary_ports = self.start_cluster(primaries, replicas)
        seeds = ",".join(f"{HOST}:{p}" for p in primary_ports)

        def flush():
            # FLUSHALL empties one node: every primary (their replicas follow).
            for p in primary_ports:
                self.redis_cli(p, "FLUSHALL")

        ours, per_primary, fifty, raw = [], [], [], []
        entry_bytes = None
        for round_number in range(args.repeats):
            flush()
            output = subprocess.run([
                args.bench_batch_write, "--cluster", seeds,
                "--batch-size", str(args.batch_size), "--in-flight", str(args.in_flight),
                "--seconds", str(args.batch_seconds), "--participants", str(args.participants)],
                capture_output=True, text=True, timeout=120 + 2 * args.batch_seconds)
            if output.returncode != 0:
                raise RuntimeError(f"bench-batch-write --cluster failed: {output.stderr.strip()}")
            measured = json.loads(output.stdout.strip().splitlines()[-1])
            if measured.get("cluster_primaries") != primaries:
                raise RuntimeError(f"bench-batch-write wrote to {measured.get('cluster_primaries')} primaries, "
                                   f"not {primaries}")
            if measured.get("deferred_batches"):
                log(f"  warning: {measured['deferred_batches']} batches deferred (refused or failed writes)")
            entry_bytes = measured["entry_bytes"]
            ours.append(measured["entries_per_second"])
            # In cluster mode redis-benchmark gives each client a node, round robin, and hash-tags
            # its keys to that node's slots: -c <primaries> is one pipelined connection per
            # primary, as ours.
            requests = max(100_000, int(measured["entries_per_second"] * args.batch_seconds))
            measured_reference = {}
            for clients in (primaries, 50):
                flush()
                csv = subprocess.run([
                    "redis-benchmark", "--cluster", "-h", HOST, "-p", str(primary_ports[0]),
                    "-P", str(args.batch_size), "-c", str(clients), "-d", str(entry_bytes), "-t", "set",
                    "-n", str(requests), "--csv"],
                    capture_output=True, text=True, timeout=600)
                row = [line for line in csv.stdout.splitlines() if line.startswith('"SET"')]
                if not row:
                    raise RuntimeError(f"redis-benchmark --cluster -c {clients} printed no SET line: "
                                       f"{(csv.stdout + csv.stderr)[-300:]}")
                measured_reference[clients] = float(row[0].split(",")[1].strip('"'))
            per_primary.append(measured_reference[primaries])
            fifty.append(measured_reference[50])
            raw.append({"ours": measured, "redis_benchmark_per_primary_rps": measured_reference[primaries],
                        "redis_benchmark_rps": measured_reference[50], "redis_benchmark_requests": requests})
            log(f"  round {round_number + 1}: {ours[-1]:,.0f} entries/s vs redis-benchmark --cluster "
                f"{per_primary[-1]:,.0f} SET/s (-c {primaries}), {fifty[-1]:,.0f} SET/s (-c 50)")
        flush()
        self.results["batch_write_cluster"] = {
            "entries_per_second": median(ours),
            "redis_benchmark_per_primary_sets_per_second": median(per_primary),
            "ratio_per_primary": median(ours) / median(per_primary),
            "redis_benchmark_sets_per_second": median(fifty),
            "ratio": median(ours) / median(fifty),
            "primaries": primaries, "replicas_per_primary": replicas, "entry_bytes": entry_bytes,
            "batch_size": args.batch_size, "in_flight": args.in_flight,
            "redis_benchmark_clients": [primaries, 50], "runs": raw,
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
        # Each target at the configured load; nginx and the L1 hit also as a new user tries it
        # first, one wrk thread and 32 connections.
        shapes = {name: (url, args.threads, args.connections) for name, url in targets.items()}
        for name in ("nginx", "l1_hit"):
            shapes[f"{name}_t1c32"] = (targets[name], 1, 32)
        log(f"read path: {args.repeats} rounds of wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
            f"over {', '.join(targets)}, and -t1 -c32 over nginx and l1_hit")
        runs = {name: [] for name in shapes}
        for round_number in range(args.repeats):
            for name, (url, threads, connections) in shapes.items():
                result = self.wrk(url, token, threads, connections)
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

    def wrk(self, url, token, threads, connections):
        args = self.args
        output = subprocess.run([
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{args.duration}s", "--timeout", "2s",
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

    def roles(self):
        """The builds the sync sections compare: ours, and the baseline when one is given."""
        return ["new", "baseline"] if self.args.baseline_binary else ["new"]

    def binary(self, role):
        return self.args.baseline_binary if role == "baseline" else self.args.chat_service

    def sync_status(self, url):
        try:
            return self.admin("GET", f"{url}/internal/participants/status")
        except (RuntimeError, OSError, ValueError):
            return {}

    def wait_for_leader(self, urls, watched, timeout=20):
        """Until one of the instances says it leads (the leader produces a manual run's batches);
        a build whose status does not say (no `is_leader` anywhere) is given one second."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.processes.check_alive(watched)
            flags = [find_value(self.sync_status(url), "is_leader") for url in urls]
            if any(flag is True for flag in flags):
                return True
            if all(flag is None for flag in flags):
                time.sleep(1)
                return None
            time.sleep(0.1)
        raise RuntimeError(f"no instance became leader within {timeout} s")

    def full_refresh(self, url, chats, watched):
        """POST /internal/participants/refresh and poll the job until it ends (bounded; every
        process of `watched` must stay alive). Returns the job's last state and the wall seconds."""
        started = time.monotonic()
        job = self.admin("POST", f"{url}/internal/participants/refresh")["job_id"]
        timeout = 120 + chats / 500
        while True:
            self.processes.check_alive(watched)
            run = self.admin("GET", f"{url}/internal/participants/refresh/{job}")
            if run.get("state") in SYNC_STATES_ENDED:
                return run, time.monotonic() - started
            if run.get("state") not in SYNC_STATES_GOING:
                raise RuntimeError(f"the refresh job is in a state this script does not know: {run}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the refresh of {chats} chats did not end within {timeout:.0f} s: {run}")
            time.sleep(0.05)

    def sync_once(self, role, chats, extra_env, stub=None, name=None):
        """One full refresh of `chats` chats by a fresh service of build `role`, Redis emptied first.
        `stub` is (process, url) to reuse a running stub (its counters are reset), else one is started."""
        args = self.args
        self.redis_cli(self.redis_port, "FLUSHALL")
        own_stub = stub is None
        stub_process, stub_url = self.start_stub(chats) if own_stub else stub
        if not own_stub:
            self.admin("POST", f"{stub_url}/admin/reset")
        name = name or f"serve-sync-{role}-{chats}"
        service, url = self.start_service(name, stub_url, {"PARTICIPANTS_L1_SIZE": str(args.l1_size), **extra_env},
                                          binary=self.binary(role))
        watched = [service, stub_process, self.redis]
        try:
            self.wait_for_leader([url], watched)
            idle_rss = memory_kib(service.pid)["VmRSS"]
            before = {n: cpu_seconds(p.pid) for n, p in (("service", service), ("stub", stub_process), ("redis", self.redis))}
            run, seconds = self.full_refresh(url, chats, watched)
            cpu = {n: cpu_seconds(p.pid) - before[n] for n, p in (("service", service), ("stub", stub_process), ("redis", self.redis))}
            memory = memory_kib(service.pid)
            status = self.sync_status(url)
            stub_stats = self.admin("GET", f"{stub_url}/admin/stats")
            # Two more refreshes of the same chats in the same process: what the third adds to the
            # RSS is what a refresh leaves behind (a leak shows as bytes per chat). The second
            # only warms up: the adaptive limit starts where the first left it, with more batches
            # in flight, so the allocator's pools grow once. Up to 100k chats: cheap.
            later_rss = None
            if chats <= LATER_REFRESH_MAX_CHATS:
                self.full_refresh(url, chats, watched)
                warmed = memory_kib(service.pid)["VmRSS"]
                self.full_refresh(url, chats, watched)
                later_rss = (warmed, memory_kib(service.pid)["VmRSS"])
        finally:
            self.processes.stop(service)
            if own_stub:
                self.processes.stop(stub_process)
        counts = run.get("counts", {})
        refreshed = counts.get("chats_refreshed", 0)
        busiest = max(cpu, key=cpu.get)
        batcher = find_dict_with(status, "max_in_flight") or {}
        result = {
            "role": role, "chats": chats, "env": extra_env, "state": run.get("state"), "seconds": seconds,
            # The job's own started_at → finished_at: without the wait for a leader to pick the run up.
            "job_seconds": run.get("duration_seconds"),
            "chats_refreshed": refreshed, "chats_failed": counts.get("chats_failed"),
            "chats_per_second": refreshed / seconds if seconds > 0 else None,
            "cpu_seconds": cpu["service"], "cpu_seconds_per_1k": cpu["service"] / (chats / 1000),
            "stub_cpu_seconds": cpu["stub"], "stub_cpu_seconds_per_1k": cpu["stub"] / (chats / 1000),
            "redis_cpu_seconds": cpu["redis"], "redis_cpu_seconds_per_1k": cpu["redis"] / (chats / 1000),
            "busiest": busiest, "busiest_cpu_seconds": cpu[busiest],
            "wall_per_busiest_cpu": seconds / cpu[busiest] if cpu[busiest] > 0 else None,
            "peak_rss_kib": memory["VmHWM"], "rss_after_kib": memory["VmRSS"], "idle_rss_kib": idle_rss,
            "rss_before_after_a_later_refresh_kib": later_rss,
            "l1_entries": find_value(status, "l1_entries"),
            "redis_keys": int(self.redis_cli(self.redis_port, "DBSIZE") or 0),
            "batcher": {k: batcher.get(k) for k in ("max_in_flight", "peak_in_flight", "batch_size") if k in batcher},
            "stub_ids_requested": stub_stats.get("ids_requested"),
            "stub_batch_requests": stub_stats.get("requests", {}).get("batch_get"),
        }
        if result["state"] != "completed" or refreshed != chats:
            log(f"  warning: {role} run ended {result['state']} with {refreshed} of {chats} refreshed: {run}")
        return result

    def describe_run(self, result):
        return (f"{result['seconds']:.1f} s, {result['chats_per_second'] or 0:,.0f} chats/s, CPU s service "
                f"{result['cpu_seconds']:.2f} / stub {result['stub_cpu_seconds']:.2f} / redis "
                f"{result['redis_cpu_seconds']:.2f}, wall ÷ busiest ({result['busiest']}) "
                f"{result['wall_per_busiest_cpu'] or 0:.2f}, peak RSS {result['peak_rss_kib'] / 1024:.0f} MiB")

    def sync(self):
        """Full refresh per size; with a baseline, both builds per size, the order alternating
        (new, old at one size; old, new at the next; and across repeats)."""
        args = self.args
        roles = self.roles()
        runs = {role: {chats: [] for chats in args.sync_sizes} for role in roles}
        for repeat in range(args.sync_repeats):
            for index, chats in enumerate(args.sync_sizes):
                order = roles if (index + repeat) % 2 == 0 else roles[::-1]
                for role in order:
                    log(f"sync: full refresh of {chats:,} chats, {role} build")
                    result = self.sync_once(role, chats, {})
                    runs[role][chats].append(result)
                    log(f"  {role} {chats:,}: {self.describe_run(result)}")
        self.redis_cli(self.redis_port, "FLUSHALL")
        chosen = {role: [dict(median_run(runs[role][chats])) for chats in args.sync_sizes] for role in roles}
        for role in roles:
            for result, chats in zip(chosen[role], args.sync_sizes):
                if len(runs[role][chats]) > 1:
                    result["repeats"] = runs[role][chats]
        self.results["sync"] = chosen["new"]
        if "baseline" in chosen:
            self.results["sync_baseline"] = {"binary": args.baseline_binary, "runs": chosen["baseline"]}
        memory = self.results.setdefault("memory", {})
        new_runs = chosen["new"]
        memory["idle_rss_kib"] = new_runs[0]["idle_rss_kib"]
        full = [r for r in new_runs if r["chats"] >= args.l1_size]
        if full:
            memory["l1_full_rss_kib"] = full[0]["rss_after_kib"]
            memory["l1_entries"] = full[0]["l1_entries"]

    def sync_latency(self):
        """One size, the stub answering every call after latency ± jitter: the adaptive default,
        the fixed sweep and the baseline's default, round robin over BENCH_LATENCY_REPEATS rounds."""
        args = self.args
        chats = args.latency_chats
        stub = self.start_stub(chats, name=f"stub-latency-{chats}")
        faults = {"latency": args.latency, "latency_jitter": args.latency_jitter}
        answer = self.admin("PUT", f"{stub[1]}/admin/faults", faults)
        if answer.get("latency") in (None, "0s", "0ms") or answer.get("latency_jitter") in (None, "0s", "0ms"):
            raise RuntimeError(f"the stub did not take the latency faults {faults}: {answer}")
        configs = [("adaptive", "new", {"PARTICIPANTS_BATCH_CONCURRENCY": "adaptive"})]
        configs += [(f"fixed-{n}", "new", {"PARTICIPANTS_BATCH_CONCURRENCY": "fixed",
                                           "PARTICIPANTS_MAX_BATCHES_IN_FLIGHT": str(n)}) for n in args.inflight_sweep]
        if args.baseline_binary:
            configs.append(("baseline", "baseline", {"PARTICIPANTS_BATCH_CONCURRENCY": "adaptive"}))
        log(f"sync latency: {chats:,} chats, stub latency {args.latency} ± {args.latency_jitter}, "
            f"{args.latency_repeats} rounds over {', '.join(c[0] for c in configs)}")
        runs = {name: [] for name, _, _ in configs}
        for repeat in range(args.latency_repeats):
            for name, role, env in (configs if repeat % 2 == 0 else configs[::-1]):
                result = self.sync_once(role, chats, env, stub=stub, name=f"serve-latency-{name}")
                runs[name].append(result)
                log(f"  round {repeat + 1} {name}: {self.describe_run(result)}, batcher {result['batcher']}")
        self.processes.stop(stub[0])
        self.redis_cli(self.redis_port, "FLUSHALL")
        summary = {}
        for name, role, env in configs:
            chosen = dict(median_run(runs[name], key="chats_per_second"))
            chosen["chats_per_second_median"] = median([r["chats_per_second"] for r in runs[name]])
            chosen["repeats"] = runs[name]
            summary[name] = chosen
        fixed = {name: summary[name]["chats_per_second_median"] for name in summary if name.startswith("fixed-")}
        best = max(fixed, key=fixed.get) if fixed else None
        adaptive = summary["adaptive"]["chats_per_second_median"]
        self.results["sync_latency"] = {
            "chats": chats, "latency": args.latency, "latency_jitter": args.latency_jitter,
            "repeats": args.latency_repeats, "configs": summary,
            "best_fixed": best, "best_fixed_chats_per_second": fixed.get(best),
            "adaptive_vs_best_fixed": adaptive / fixed[best] if best and fixed[best] else None,
            "baseline_binary": args.baseline_binary,
            "new_vs_baseline": (adaptive / summary["baseline"]["chats_per_second_median"]
                                if "baseline" in summary and summary["baseline"]["chats_per_second_median"] else None),
        }

    def sync_multi(self):
        """Three instances on one Redis and one stub; one full refresh asked of the first. The stub
        counts every chat id named by a call (`ids_requested`); each chat should be fetched once."""
        args = self.args
        chats = args.multi_chats
        self.redis_cli(self.redis_port, "FLUSHALL")
        stub, stub_url = self.start_stub(chats, name=f"stub-multi-{chats}")
        services = []
        for number in range(1, args.multi_instances + 1):
            services.append(self.start_service(f"serve-multi-{number}", stub_url,
                                               {"PARTICIPANTS_L1_SIZE": str(args.l1_size)}))
        processes = [p for p, _ in services]
        urls = [u for _, u in services]
        watched = processes + [stub, self.redis]
        self.wait_for_leader(urls, watched)
        leaders = [self.processes.name_of(p) for p, u in services if find_value(self.sync_status(u), "is_leader") is True]
        self.admin("POST", f"{stub_url}/admin/reset")
        log(f"sync multi: {len(services)} instances, {chats:,} chats, refresh asked of serve-multi-1 "
            f"(leader: {', '.join(leaders) or '?'})")
        named = [("stub", stub), ("redis", self.redis)] + [(self.processes.name_of(p), p) for p in processes]
        before = {n: cpu_seconds(p.pid) for n, p in named}
        run, seconds = self.full_refresh(urls[0], chats, watched)
        cpu = {n: cpu_seconds(p.pid) - before[n] for n, p in named}
        stats = self.admin("GET", f"{stub_url}/admin/stats")
        instances = {}
        for process, url in services:
            consumer = find_dict_with(self.sync_status(url), "batches_settled") or {}
            instances[self.processes.name_of(process)] = {
                "cpu_seconds": cpu[self.processes.name_of(process)],
                "batches_settled": consumer.get("batches_settled"), "batches_read": consumer.get("batches_read"),
                "batches_duplicate": consumer.get("batches_duplicate"),
            }
        for process in processes + [stub]:
            self.processes.stop(process)
        self.redis_cli(self.redis_port, "FLUSHALL")
        counts = run.get("counts", {})
        fetched = stats.get("ids_requested", 0)
        result = {
            "chats": chats, "instances": instances, "asked": "serve-multi-1", "leaders": leaders,
            "state": run.get("state"), "seconds": seconds, "job_seconds": run.get("duration_seconds"),
            "chats_refreshed": counts.get("chats_refreshed"),
            "chats_per_second": (counts.get("chats_refreshed") or 0) / seconds if seconds > 0 else None,
            "ids_requested": fetched, "chats_requested": stats.get("chats_requested"),
            "max_requests_per_chat": stats.get("max_requests_per_chat"),
            "unknown_ids_requested": stats.get("unknown_ids_requested"),
            "stub_requests": stats.get("requests"),
            "fetch_ratio": fetched / chats, "coverage": (stats.get("chats_requested") or 0) / chats,
            "stub_cpu_seconds": cpu["stub"], "redis_cpu_seconds": cpu["redis"],
            "services_cpu_seconds": sum(i["cpu_seconds"] for i in instances.values()),
        }
        log(f"  {seconds:.1f} s, {result['chats_per_second'] or 0:,.0f} chats/s, chats fetched ÷ N "
            f"{result['fetch_ratio']:.3f}, coverage {result['coverage']:.3f}, max per chat "
            f"{result['max_requests_per_chat']}, per instance {instances}")
        self.results["sync_multi"] = result

    def lines_of_code(self):
        """`wc -l` of the Swift files of the sync pipeline's directories: the work tree now, and BENCH_LINES_BASE."""
        root = repository_root()
        base = self.args.lines_base
        result = {"base": base, "base_commit": command_output(["git", "-C", root, "rev-parse", "--short", base]),
                  "directories": {}}
        for directory in SYNC_DIRECTORIES:
            now_files, now_lines = 0, 0
            for folder, _, files in os.walk(os.path.join(root, directory)):
                for name in files:
                    if not name.endswith(".swift"):
                        continue  # editor and build leftovers are not code
                    with open(os.path.join(folder, name), "rb") as f:
                        now_lines += f.read().count(b"\n")
                    now_files += 1
            listing = subprocess.run(["git", "-C", root, "ls-tree", "-r", "--name-only", base, "--", directory],
                                     capture_output=True, text=True, timeout=30)
            if listing.returncode != 0:
                raise RuntimeError(f"git ls-tree {base}: {listing.stderr.strip()}")
            base_files, base_lines = 0, 0
            for path in listing.stdout.splitlines():
                if not path.endswith(".swift"):
                    continue
                blob = subprocess.run(["git", "-C", root, "show", f"{base}:{path}"], capture_output=True, timeout=30)
                base_lines += blob.stdout.count(b"\n")
                base_files += 1
            result["directories"][directory] = {"now": {"files": now_files, "lines": now_lines},
                                                "base": {"files": base_files, "lines": base_lines}}
        for when in ("now", "base"):
            result[f"{when}_lines"] = sum(d[when]["lines"] for d in result["directories"].values())
        self.results["lines"] = result
        log(f"lines: {result['now_lines']:,} now, {result['base_lines']:,} at {base}")

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
        # The binary measured may not be the work tree's build (e.g. a copy): where it was built.
        self.results["machine"]["binary"] = {"path": os.path.abspath(self.args.chat_service),
                                             "commit": binary_commit(self.args.chat_service)}
        if self.args.baseline_binary:
            self.results["machine"]["baseline"] = {"binary": self.args.baseline_binary,
                                                   "commit": binary_commit(self.args.baseline_binary)}

    SECTIONS = (
        ("batch", "batch_write", "batch_write", "after_batch_write"),
        ("batch-cluster", "batch_write_cluster", "batch_write_cluster", "after_batch_write_cluster"),
        ("read", "read_path", "read_path", "after_read_path"),
        ("sync", "sync", "sync", "after_sync"),
        ("sync-latency", "sync_latency", "sync_latency", "after_sync_latency"),
        ("sync-multi", "sync_multi", "sync_multi", "after_sync_multi"),
    )

    def run_section(self, key, method):
        """Runs one section; a failure is recorded (error and log tail) and the run goes on. Every
        process the section started is stopped when it ends, however it ends."""
        mark = len(self.processes.children)
        try:
            self.ensure_redis()
            getattr(self, method)()
        except KeyboardInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 - recorded, reported, exit status 3
            log(f"section {key} failed: {error}")
            self.results.setdefault("failures", {})[key] = str(error)
        finally:
            self.processes.stop_after(mark)

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
        for key, method, _, moment in self.SECTIONS:
            if key in sections:
                self.run_section(key, method)
                self.note_load(moment)
        if sections & {"sync", "sync-latency", "sync-multi"}:
            self.run_section("lines", "lines_of_code")
        self.results["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return self.results


def parse_arguments():
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chat-service", required=True, help="release chat-service binary")
    parser.add_argument("--bench-batch-write", default=None,
                        help="release bench-batch-write binary (needed by the batch sections only)")
    parser.add_argument("--output", required=True, help="where the raw JSON goes")
    parser.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "10")), help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=int(env("BENCH_REPEATS", "3")))
    parser.add_argument("--threads", type=int, default=int(env("BENCH_WRK_THREADS", "2")))
    parser.add_argument("--connections", type=int, default=int(env("BENCH_WRK_CONNECTIONS", "64")))
    parser.add_argument("--batch-size", type=int, default=int(env("BENCH_BATCH_SIZE", "50")))
    parser.add_argument("--in-flight", type=int, default=int(env("BENCH_IN_FLIGHT", "50")))
    parser.add_argument("--batch-seconds", type=float, default=float(env("BENCH_BATCH_SECONDS", "5")))
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--cluster-primaries", type=int, default=int(env("BENCH_CLUSTER_PRIMARIES", "3")),
                        help="primaries of the batch-cluster section's Redis Cluster")
    parser.add_argument("--cluster-replicas", type=int, default=int(env("BENCH_CLUSTER_REPLICAS", "0")),
                        help="replicas per primary of the batch-cluster section's Redis Cluster")
    parser.add_argument("--l1-size", type=int, default=100_000, help="PARTICIPANTS_L1_SIZE of the sync runs")
    default_sizes = "10000 100000 1000000" if env("BENCH_FULL") == "1" else "10000 100000"
    parser.add_argument("--sync-sizes", type=lambda s: [int(x) for x in s.split()],
                        default=[int(x) for x in env("BENCH_SYNC_SIZES", default_sizes).split()])
    parser.add_argument("--sync-repeats", type=int, default=int(env("BENCH_SYNC_REPEATS", "1")),
                        help="full refreshes per size and build (the median by wall time is reported)")
    parser.add_argument("--baseline-binary", default=env("BENCH_BASELINE_BINARY") or None,
                        help="an older chat-service to compare in the sync sections (A/B)")
    parser.add_argument("--latency-chats", type=int, default=int(env("BENCH_LATENCY_CHATS", "20000")))
    parser.add_argument("--latency", default=env("BENCH_LATENCY", "50ms"), help="stub latency per call")
    parser.add_argument("--latency-jitter", default=env("BENCH_LATENCY_JITTER", "10ms"))
    parser.add_argument("--latency-repeats", type=int, default=int(env("BENCH_LATENCY_REPEATS", "3")))
    parser.add_argument("--inflight-sweep", type=lambda s: [int(x) for x in s.split()],
                        default=[int(x) for x in env("BENCH_INFLIGHT_SWEEP", "4 8 16 32 64").split()])
    parser.add_argument("--multi-chats", type=int, default=int(env("BENCH_MULTI_CHATS", "30000")))
    parser.add_argument("--multi-instances", type=int, default=3)
    parser.add_argument("--lines-base", default=env("BENCH_LINES_BASE", "1bc4d36"),
                        help="the commit whose sync pipeline the line counts compare with")
    parser.add_argument("--sections", default=env("BENCH_SECTIONS",
                                                  "batch batch-cluster read sync sync-latency sync-multi"),
                        type=lambda s: set(s.split()))
    args = parser.parse_args()
    known = {key for key, _, _, _ in Bench.SECTIONS}
    if args.sections - known:
        parser.error(f"unknown sections {sorted(args.sections - known)}; known: {' '.join(sorted(known))}")
    if args.sections & {"batch", "batch-cluster"} and not args.bench_batch_write:
        parser.error("the batch and batch-cluster sections need --bench-batch-write")
    if args.cluster_primaries < 3:
        parser.error("a Redis Cluster needs at least 3 primaries (--cluster-primaries)")
    for name in ("chat_service", "bench_batch_write", "baseline_binary"):
        path = getattr(args, name)
        if path and not os.access(path, os.X_OK):
            parser.error(f"--{name.replace('_', '-')} {path}: not an executable file")
    if args.baseline_binary:
        args.baseline_binary = os.path.abspath(args.baseline_binary)
    return args


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
        if results.get("failures"):
            log(f"failed sections: {', '.join(results['failures'])}")
            if os.environ.get("BENCH_KEEP_WORKDIR") == "1":
                log(f"logs kept in {workdir}")
                workdir = None
            return 3
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
