"""Measure campaign-runner on this machine and print the figures against the targets (issue 6).

Run by hand, never by CI (pytest does not collect this folder):

    python tests/benchmarks/bench.py                 # everything, about 4 minutes
    python tests/benchmarks/bench.py --quick         # smaller sizes, under a minute
    python tests/benchmarks/bench.py --only dry-run,sequential --json figures.json
    sudo python tests/benchmarks/bench.py --install-nginx   # apt-get install nginx-light first
    python tests/benchmarks/bench.py --only webhook  # Meta's status webhooks (issue 14)

Every measured run is the real command, `python -m campaign_runner run ...`, in its own
process with a fresh --state folder; throughput is read from the runner's own JSON summary
(messages over `duration_s`) and peak memory from the child's rusage. The gateways (the
sandbox, nginx) run in their own processes so their CPU is not counted as the runner's.
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BARE_LOOP = HERE / "bare_loop.py"
WEBHOOK_LOAD = HERE / "webhook_load.py"
EXAMPLE = REPO / "campaigns" / "abandoned-cart.yaml"
APIKEY_ENV = "BENCH_APIKEY"
APIKEY = "bench-key"
SECTIONS = ("help", "dry-run", "sequential", "plan", "concurrency", "postgres", "nginx", "webhook")
NGINX_ANSWER = (
    '{"messaging_product":"whatsapp","contacts":[{"input":"+5511","wa_id":"5511"}],'
    '"messages":[{"id":"wamid.BENCH"}]}'
)

# The targets.
DRY_RUN_MIN_PER_S = 10_000
DRY_RUN_MAX_PEAK_MB = 150
DRY_RUN_MAX_GROWTH_MB = 20
SEQUENTIAL_MIN_RATIO = 0.85
CONCURRENCY_TARGET = 64
CONCURRENCY_MIN_PER_S = 1_000
LATENCY_MS = 50
HELP_MAX_MS = 300
POSTGRES_MIN_PER_S = 1_000  # issue 13: the PostgreSQL ledger at concurrency 64, 50 ms latency
TWO_WORKERS_MIN_RATIO = 1.8  # issue 13: two workers at concurrency 16 against one
PLAN_MAX_EXTRA_CPU = 0.10  # issue 12: plan + send at most 10% more CPU per message than before
# The last commit before the plan (issue 12): `run` then rendered each row as it sent it.
PLAN_BASELINE = "37dfd3e3de84466a667f09a3956dfcc32d39b446"
WEBHOOK_MIN_PER_S = 3_000  # issue 14: statuses/s into the SQLite ledger (3 per message at 1,000/s)
WEBHOOK_P99_MAX_MS = 50  # issue 14: the 99th-percentile answer, at that rate
WEBHOOK_CONNECTIONS = 64  # keep-alive connections to the receiver, as many as Meta may open
WEBHOOK_SECRET = "bench-app-secret"
BUSY_LOAD = 0.5  # a 1-minute load average above this means something else is running

NAMES = (
    "Ana",
    "Bruno",
    "Carla",
    "Diego",
    "Elisa",
    "Fábio",
    "Gustavo",
    "Helena",
    "Íris",
    "João",
    "Larissa",
    "Márcio",
    "Natália",
    "Otávio",
    "Paula",
    "Conceição",
)


@dataclass(frozen=True)
class Sizes:
    dry_run: tuple[int, ...]
    sequential: int
    repeats: int
    latency: dict[int, int]  # concurrency -> messages, against the sandbox with 50 ms latency
    nginx: dict[int, int]  # concurrency -> messages, against nginx
    webhook: int  # messages sent (3 statuses each): half as fast as it takes, half paced


FULL = Sizes(
    dry_run=(10_000, 100_000, 1_000_000),
    sequential=10_000,  # long enough that the runner's start-up (~0.1 s) weighs little
    repeats=3,
    latency={1: 200, 8: 1_600, 64: 10_000, 256: 10_000},
    nginx={1: 4_000, 8: 8_000, 64: 10_000, 256: 10_000},
    webhook=20_000,
)
QUICK = Sizes(
    dry_run=(10_000, 30_000, 100_000),
    sequential=1_000,
    repeats=2,
    latency={1: 40, 8: 240, 64: 2_000, 256: 2_000},
    nginx={1: 600, 8: 1_000, 64: 2_000, 256: 2_000},
    webhook=4_000,
)


class BenchError(Exception):
    """A measurement that could not be taken (a child failed, a server did not start)."""


@dataclass
class Child:
    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: Path
    stderr: Path

    def tail(self, lines: int = 8) -> str:
        text = self.stderr.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])


# ---- processes -----------------------------------------------------------------------------


class Processes:
    """Starts children in their own process groups and makes sure every one is gone at the end."""

    def __init__(self, folder: Path, env: dict[str, str]):
        self.folder = folder
        self.env = env
        self.alive: list[subprocess.Popen] = []
        self._ids = itertools.count(1)

    def run(
        self,
        argv: list[str],
        timeout_s: float,
        stdout: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Child:
        """Run ARGV to the end (in ENV, default the bench's); wall time, CPU and peak RSS
        come from wait4."""
        n = next(self._ids)
        out = stdout or self.folder / f"child-{n}.out"
        err = self.folder / f"child-{n}.err"
        with open(out, "wb") as out_file, open(err, "wb") as err_file:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out_file,
                stderr=err_file,
                cwd=self.folder,
                env=env or self.env,
                start_new_session=True,
            )
        self.alive.append(proc)
        timer = threading.Timer(timeout_s, self._kill, (proc,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: a measurement cut short is worth nothing; end it now
            self._kill(proc)
            proc.wait()
            self.alive.remove(proc)
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        self.alive.remove(proc)
        if proc.returncode == -signal.SIGKILL and wall >= timeout_s:
            raise BenchError(f"{' '.join(argv[:5])}... took longer than {timeout_s:.0f} s")
        cpu = usage.ru_utime + usage.ru_stime
        return Child(proc.returncode, wall, cpu, usage.ru_maxrss / 1024, out, err)

    def start(
        self, argv: list[str], name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """Start a server in the background (in ENV, default the bench's); its output goes
        nowhere (it logs every request)."""
        err = self.folder / f"{name}.err"
        with open(err, "wb") as err_file:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err_file,
                cwd=self.folder,
                env=env or self.env,
                start_new_session=True,
            )
        self.alive.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                self._kill(proc)
                proc.wait(5)
        if proc in self.alive:
            self.alive.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.alive)):  # clients first, while their servers still answer
            with contextlib.suppress(Exception):
                self.stop(proc)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def cpu_seconds(proc: subprocess.Popen | None) -> float:
    """CPU time (user + system) a running process has used so far, from /proc."""
    if proc is None:
        return 0.0
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(proc: subprocess.Popen, port: int, path: str, what: str, err: Path) -> None:
    """Poll GET PATH on 127.0.0.1:PORT until it answers 200 (10 s at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = err.read_text(errors="replace").strip()[-600:] if err.exists() else ""
            raise BenchError(f"{what} exited with {proc.returncode}: {tail}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"{what} did not answer GET {path} on 127.0.0.1:{port} within 10 s")


# ---- inputs --------------------------------------------------------------------------------


def phone(i: int) -> str:
    """The I-th distinct Brazilian mobile number (São Paulo, 9 7xxx-xxxx), for I < 10,000,000."""
    return f"+55119{70_000_000 + i:08d}"


def check_phones(count: int) -> None:
    """Make sure the generated numbers are valid mobiles (the runner would skip invalid ones)."""
    import phonenumbers

    mobile = {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
    for i in sorted({0, 1, count - 1, *range(0, count, max(1, count // 500))}):
        number = phonenumbers.parse(phone(i))
        if (
            not phonenumbers.is_valid_number(number)
            or phonenumbers.number_type(number) not in mobile
        ):
            raise BenchError(f"generated number {phone(i)} is not a valid mobile number")


def write_recipients(path: Path, count: int) -> Path:
    """COUNT recipients for the abandoned-cart message, streamed to PATH in blocks."""
    if count > 10_000_000:
        raise BenchError("at most 10,000,000 distinct numbers")
    check_phones(count)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("phone,name,cart_id,target_url\n")
        for start in range(0, count, 10_000):
            out.write(
                "".join(
                    f"{phone(i)},{NAMES[i % len(NAMES)]} {i},{100_000 + i},"
                    f"cart/{100_000 + i}?utm_source=whatsapp\n"
                    for i in range(start, min(count, start + 10_000))
                )
            )
    return path


def example_campaign() -> dict:
    """The repository's abandoned-cart campaign (its message, recipients key and version)."""
    import yaml

    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def write_campaign(path: Path, recipients: Path, url: str, concurrency: int = 1) -> Path:
    """The abandoned-cart campaign, pointed at RECIPIENTS and URL: no window, no rate."""
    import yaml

    example = example_campaign()
    spec = example.get("recipients", {})
    campaign = {
        "name": "bench-abandoned-cart",
        "recipients": {
            "file": str(recipients),
            "phone_column": "phone",
            "default_region": spec.get("default_region", "BR"),
        },
        "gateway": {
            "url": url,
            "apikey_env": APIKEY_ENV,
            "version": str(example.get("gateway", {}).get("version", "4.0")),
            "timeout_s": 30,
        },
        "send": {"concurrency": concurrency, "retries": 3},
        "message": example["message"],
    }
    if spec.get("key"):
        campaign["recipients"]["key"] = spec["key"]
    path.write_text(yaml.safe_dump(campaign, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ---- the bench -----------------------------------------------------------------------------


class Bench:
    def __init__(self, folder: Path, sizes: Sizes, runner_pythonpath: str | None):
        env = dict(os.environ)
        env[APIKEY_ENV] = APIKEY
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        if runner_pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [runner_pythonpath, env.get("PYTHONPATH")])
            )
        self.folder = folder
        self.sizes = sizes
        self.procs = Processes(folder, env)
        self._ids = itertools.count(1)
        self._send_csv: Path | None = None
        self.gateway: subprocess.Popen | None = None  # the server under test, for its CPU use
        self.results: dict = {}
        self.targets: list[tuple[str, str, str]] = []

    def check(self, target: str, figure: str, ok: bool) -> str:
        """Record a target's outcome for the closing summary; PASS or MISS."""
        word = "PASS" if ok else "MISS"
        self.targets.append((target, figure, word))
        return word

    # -- helpers ---------------------------------------------------------------------------

    def send_csv(self) -> Path:
        """One CSV large enough for every sending run (each run takes --limit rows)."""
        if self._send_csv is None:
            need = max(
                self.sizes.sequential, *self.sizes.latency.values(), *self.sizes.nginx.values()
            )
            self._send_csv = write_recipients(self.folder / f"send-{need}.csv", need)
        return self._send_csv

    def runner_run(
        self,
        campaign: Path,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        timeout_s: float = 900,
        source: Path | None = None,
        ledger: str | None = None,
    ) -> dict:
        """One `campaign run` in its own process; its summary's figures and its peak memory."""
        n = next(self._ids)
        report = self.folder / f"run-{n}.csv"
        state = self.folder / f"state-{n}"
        argv = [
            sys.executable,
            "-m",
            "campaign_runner",
            "run",
            str(campaign),
            "--report",
            str(report),
            "--state",
            ledger or str(state),
            "--yes",
        ]
        if dry_run:
            argv.append("--dry-run")
        if limit:
            argv += ["--limit", str(limit)]
        env = None
        if source is not None:  # another checkout of the runner (the plan's baseline)
            env = {**self.procs.env, "PYTHONPATH": str(source)}
        gateway_before = cpu_seconds(self.gateway)
        child = self.procs.run(argv, timeout_s, env=env)
        gateway_cpu = cpu_seconds(self.gateway) - gateway_before
        summary_file = report.with_suffix(".json")
        if not summary_file.exists():
            raise BenchError(
                f"campaign run exited with {child.returncode} and no summary:\n{child.tail()}"
            )
        summary = json.loads(summary_file.read_text())
        counts = summary.get("counts", {})
        wanted = "dry-run" if dry_run else "sent"
        done = counts.get(wanted, 0)
        if child.returncode != 0 or done != sum(counts.values()) or (limit and done != limit):
            raise BenchError(
                f"campaign run exited with {child.returncode}, counts {counts}"
                f" ({summary.get('reason')}):\n{child.tail()}"
            )
        # The plan's baseline (SOURCE) kept a journal of another shape: its sending untold.
        sending = None if dry_run or source else answered_span_s(ledger or str(state))
        report.unlink(missing_ok=True)
        shutil.rmtree(state, ignore_errors=True)
        duration = summary["duration_s"]
        return {
            "messages": done,
            "duration_s": duration,
            "per_s": done / duration,
            **({"sending_s": sending, "sending_per_s": done / sending} if sending else {}),
            "wall_s": round(child.wall_s, 3),
            "peak_rss_mb": round(child.peak_rss_mb, 1),
            "cpu_s": round(child.cpu_s, 3),  # the whole process: start-up, plan, send, report
            **self._cpu_shares(child, gateway_cpu, duration),
        }

    def bodies(self, campaign: Path, count: int) -> Path:
        """The exact bodies the runner sends, from `campaign preview --format jsonl`."""
        path = self.folder / f"bodies-{count}.jsonl"
        if not path.exists():
            argv = [
                sys.executable,
                "-m",
                "campaign_runner",
                "preview",
                str(campaign),
                "--format",
                "jsonl",
                "--limit",
                str(count),
            ]
            child = self.procs.run(argv, 300, stdout=path)
            if child.returncode != 0:
                raise BenchError(
                    f"campaign preview exited with {child.returncode}:\n{child.tail()}"
                )
        return path

    def bare_run(self, url: str, bodies: Path, count: int, mode: str, concurrency: int = 1) -> dict:
        """The bare httpx loop over the same bodies, in its own process."""
        argv = [
            sys.executable,
            str(BARE_LOOP),
            "--url",
            url,
            "--bodies",
            str(bodies),
            "--apikey",
            APIKEY,
            "--mode",
            mode,
            "--concurrency",
            str(concurrency),
            "--limit",
            str(count),
        ]
        gateway_before = cpu_seconds(self.gateway)
        child = self.procs.run(argv, 600)
        gateway_cpu = cpu_seconds(self.gateway) - gateway_before
        try:
            figures = json.loads(child.stdout.read_text())
        except ValueError:
            figures = None
        if child.returncode != 0 or not figures or figures["ok"] != count:
            raise BenchError(
                f"bare loop ({mode}) exited with {child.returncode}, {figures}:\n{child.tail()}"
            )
        return {
            "messages": count,
            "duration_s": round(figures["seconds"], 3),
            "per_s": count / figures["seconds"],
            "wall_s": round(child.wall_s, 3),
            **self._cpu_shares(child, gateway_cpu, figures["seconds"]),
        }

    def _cpu_shares(self, child: Child, gateway_cpu: float, active_s: float) -> dict:
        """CPU use while sending, as % of one core: the client's (estimated) and the gateway's.

        The client's start and finish (imports, loading, the summary) are counted as busy
        for their whole wall time and taken off, leaving its CPU over the ACTIVE_S it timed.
        """
        outside = max(0.0, child.wall_s - active_s)
        client = max(0.0, child.cpu_s - outside)
        shares = {"cpu_pct": round(100 * client / active_s, 1)}
        if self.gateway is not None:
            shares["gateway_cpu_pct"] = round(100 * gateway_cpu / active_s, 1)
        return shares

    def sandbox(self, latency_ms: float) -> str:
        """`campaign sandbox` on a free port, in its own process (the gateway); its URL."""
        port = free_port()
        name = f"sandbox-{port}"
        argv = [
            sys.executable,
            "-m",
            "campaign_runner",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--latency-ms",
            f"{latency_ms:g}",
        ]
        self.gateway = self.procs.start(argv, name)
        wait_until_up(self.gateway, port, "/health", "the sandbox", self.folder / f"{name}.err")
        return f"http://127.0.0.1:{port}/api/Messages"

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.procs.stop(self.gateway)
            self.gateway = None

    # -- sections --------------------------------------------------------------------------

    def help_timing(self) -> None:
        runs = 5
        commands = [
            ("python -c pass (interpreter alone)", [sys.executable, "-c", "pass"]),
            (
                "python -m campaign_runner --help",
                [sys.executable, "-m", "campaign_runner", "--help"],
            ),
        ]
        script = Path(sys.executable).parent / "campaign"
        if script.exists():
            commands.append(("campaign --help", [str(script), "--help"]))
        rows, figures = [], {}
        for label, argv in commands:
            times = []
            for _ in range(runs):
                child = self.procs.run(argv, 60)
                if child.returncode != 0:
                    raise BenchError(f"{label} exited with {child.returncode}:\n{child.tail()}")
                times.append(child.wall_s * 1000)
            best = min(times)
            figures[label] = {"best_ms": round(best, 1), "runs_ms": [round(t, 1) for t in times]}
            is_target = "--help" in label
            rows.append(
                [
                    label,
                    f"{best:.0f}",
                    f"{sorted(times)[runs // 2]:.0f}",
                    f"< {HELP_MAX_MS}" if is_target else "",
                    self.check(f"{label} < {HELP_MAX_MS} ms", f"{best:.0f} ms", best < HELP_MAX_MS)
                    if is_target
                    else "",
                ]
            )
        print_table(
            f"campaign --help: wall-clock ms, best of {runs} runs",
            ["command", "best ms", "median ms", "target", ""],
            rows,
        )
        self.results["help"] = figures

    def dry_run(self) -> None:
        rows, figures = [], []
        for count in self.sizes.dry_run:
            csv = write_recipients(self.folder / f"dry-{count}.csv", count)
            campaign = write_campaign(
                self.folder / f"dry-{count}.yaml", csv, "http://127.0.0.1:9/api/Messages"
            )
            run = self.runner_run(campaign, dry_run=True)
            csv.unlink()
            figures.append(run)
            rows.append(
                [
                    f"{count:,}",
                    f"{run['per_s']:,.0f}",
                    f"{run['duration_s']:.1f}",
                    f"{run['peak_rss_mb']:.0f}",
                    self.check(
                        f"dry run, {count:,} rows: >= {DRY_RUN_MIN_PER_S:,} msgs/s",
                        f"{run['per_s']:,.0f} msgs/s",
                        run["per_s"] >= DRY_RUN_MIN_PER_S,
                    ),
                ]
            )
        growth = figures[-1]["peak_rss_mb"] - figures[0]["peak_rss_mb"]
        biggest = figures[-1]
        smallest, largest = self.sizes.dry_run[0], self.sizes.dry_run[-1]
        peak_ok = self.check(
            f"dry run, {largest:,} rows: peak RSS < {DRY_RUN_MAX_PEAK_MB} MB",
            f"{biggest['peak_rss_mb']:.0f} MB",
            biggest["peak_rss_mb"] < DRY_RUN_MAX_PEAK_MB,
        )
        growth_ok = self.check(
            f"dry run: peak RSS {largest:,} rows <= {smallest:,} rows + {DRY_RUN_MAX_GROWTH_MB} MB",
            f"{growth:+.1f} MB",
            growth <= DRY_RUN_MAX_GROWTH_MB,
        )
        print_table(
            "1. dry run of the abandoned-cart template campaign (campaign run --dry-run)",
            ["recipients", "msgs/s", "run s", "peak RSS MB", f">= {DRY_RUN_MIN_PER_S:,}/s"],
            rows,
            notes=[
                f"peak RSS at {largest:,} rows: {biggest['peak_rss_mb']:.0f} MB "
                f"(target < {DRY_RUN_MAX_PEAK_MB} MB): "
                f"{peak_ok}",
                f"growth {largest:,} - {smallest:,} rows: {growth:+.1f} MB "
                f"(target <= {DRY_RUN_MAX_GROWTH_MB} MB): "
                f"{growth_ok}",
                "msgs/s = rows / the summary's duration_s (load CSV, render, validate, journal, "
                "report); peak RSS of the whole process (wait4 ru_maxrss)",
            ],
        )
        self.results["dry_run"] = {"runs": figures, "rss_growth_mb": round(growth, 1)}

    def sequential(self) -> None:
        count, repeats = self.sizes.sequential, self.sizes.repeats
        url = self.sandbox(0)
        try:
            campaign = write_campaign(self.folder / "sequential.yaml", self.send_csv(), url)
            bodies = self.bodies(campaign, count)
            kinds = {"runner": [], "sync": [], "async": []}
            for _ in range(repeats):  # interleaved, so a slow moment hits every kind alike
                kinds["runner"].append(self.runner_run(campaign, limit=count))
                kinds["sync"].append(self.bare_run(url, bodies, count, "sync"))
                kinds["async"].append(self.bare_run(url, bodies, count, "async"))
        finally:
            self.stop_gateway()
        best = {kind: max(runs, key=lambda r: r["per_s"]) for kind, runs in kinds.items()}
        runner = best["runner"]["per_s"]
        ratio_sync = runner / best["sync"]["per_s"]
        ratio_async = runner / best["async"]["per_s"]
        labels = {
            "runner": "campaign run (concurrency 1, journal on)",
            "sync": "bare httpx.Client, sync loop",
            "async": "bare httpx.AsyncClient, sequential loop",
        }
        targets = {
            "runner": ["", "", ""],
            "sync": [
                f"{ratio_sync:.2f}",
                f">= {SEQUENTIAL_MIN_RATIO}",
                self.check(
                    f"sequential send: >= {SEQUENTIAL_MIN_RATIO:.0%} of the bare httpx loop",
                    f"{ratio_sync:.0%}",
                    ratio_sync >= SEQUENTIAL_MIN_RATIO,
                ),
            ],
            "async": [f"{ratio_async:.2f}", "(info)", ""],
        }
        rows = [
            [
                labels[kind],
                f"{best[kind]['per_s']:,.0f}",
                ", ".join(f"{r['per_s']:,.0f}" for r in kinds[kind]),
                cpu_cell(best[kind]),
                *targets[kind],
            ]
            for kind in kinds
        ]
        print_table(
            f"2. sequential send, {count:,} messages to the sandbox with 0 ms latency",
            [
                "client",
                "best msgs/s",
                "each run",
                "CPU client/sandbox",
                "runner/this",
                "target",
                "",
            ],
            rows,
            notes=[
                f"best of {repeats} runs each, interleaved; the same bodies "
                "(campaign preview --format jsonl), headers and sandbox process for all",
                "runner msgs/s from its summary (setup included); bare loops time their POST "
                "loop only (clients built before the clock)",
                CPU_NOTE,
            ],
        )
        self.results["sequential"] = {
            "messages": count,
            "runs": kinds,
            "ratio_vs_sync": round(ratio_sync, 3),
            "ratio_vs_async": round(ratio_async, 3),
        }

    def plan(self) -> None:
        """Issue 12: the plan's cost. The same sequential send, by this runner (plan, then
        send from the plan's spool) and by the last commit before the plan, interleaved."""
        count, repeats = self.sizes.sequential, self.sizes.repeats
        baseline = checkout(PLAN_BASELINE, self.folder / "baseline")
        url = self.sandbox(0)
        try:
            campaign = write_campaign(self.folder / "plan.yaml", self.send_csv(), url)
            kinds: dict[str, list[dict]] = {"before": [], "now": []}
            for _ in range(repeats):
                kinds["before"].append(self.runner_run(campaign, limit=count, source=baseline))
                kinds["now"].append(self.runner_run(campaign, limit=count))
        finally:
            self.stop_gateway()
            remove_checkout(baseline)
        per_message = {
            kind: sorted(1e6 * r["cpu_s"] / r["messages"] for r in runs)[len(runs) // 2]
            for kind, runs in kinds.items()
        }
        extra = per_message["now"] / per_message["before"] - 1
        verdict = self.check(
            f"plan + send: <= {PLAN_MAX_EXTRA_CPU:.0%} more CPU per message than send alone",
            f"{extra:+.1%}",
            extra <= PLAN_MAX_EXTRA_CPU,
        )
        labels = {
            "before": f"send alone (commit {PLAN_BASELINE[:7]}, before the plan)",
            "now": "plan, then send (this checkout)",
        }
        rows = [
            [
                labels[kind],
                f"{per_message[kind]:.0f}",
                ", ".join(f"{r['per_s']:,.0f}" for r in runs),
                f"{extra:+.1%}" if kind == "now" else "",
                f"<= +{PLAN_MAX_EXTRA_CPU:.0%}" if kind == "now" else "",
                verdict if kind == "now" else "",
            ]
            for kind, runs in kinds.items()
        ]
        print_table(
            f"3. the plan's cost: a sequential send of {count:,} messages, CPU per message",
            ["runner", "CPU us/msg", "msgs/s each run", "extra", "target", ""],
            rows,
            notes=[
                f"median of {repeats} runs each, interleaved, same sandbox process and CSV; "
                "CPU = the whole child process (wait4 user + system): start-up, plan, send, "
                "report",
            ],
        )
        self.results["plan"] = {
            "messages": count,
            "baseline": PLAN_BASELINE,
            "runs": kinds,
            "cpu_us_per_message": per_message,
            "extra_cpu": round(extra, 4),
        }

    def postgres(self) -> None:
        """Issue 13: the PostgreSQL ledger (a throwaway server of Debian's package, fsync on)
        at concurrency 64, and two workers at concurrency 16 against one."""
        sys.path.insert(0, str(REPO / "tests" / "acceptance"))
        import pg_server  # the tests' throwaway server

        count = max(self.sizes.latency.values())
        try:
            server_context = pg_server.throwaway_server(settings=pg_server.DURABLE_SETTINGS)
            server = server_context.__enter__()
        except Exception as error:
            raise BenchError(f"no PostgreSQL server could be started: {error}") from None
        url = self.sandbox(LATENCY_MS)
        try:
            figures = self._postgres_runs(server, url, count)
        finally:
            self.stop_gateway()
            server_context.__exit__(None, None, None)
        one64, one16, two16 = figures["one_worker_c64"], figures["one_worker_c16"], figures["two"]
        ratio = two16["sending_per_s"] / one16["sending_per_s"]
        whole_ratio = two16["per_s"] / one16["per_s"]
        rows = [
            [
                "one worker, concurrency 64",
                f"{count:,}",
                f"{one64['per_s']:,.0f}",
                f"{one64['sending_per_s']:,.0f}",
                f">= {POSTGRES_MIN_PER_S:,}",
                self.check(
                    f"PostgreSQL ledger, concurrency 64, {LATENCY_MS} ms: "
                    f">= {POSTGRES_MIN_PER_S:,} msgs/s sending",
                    f"{one64['sending_per_s']:,.0f} msgs/s ({one64['per_s']:,.0f} whole run)",
                    one64["sending_per_s"] >= POSTGRES_MIN_PER_S,
                ),
            ],
            [
                "one worker, concurrency 16",
                f"{count:,}",
                f"{one16['per_s']:,.0f}",
                f"{one16['sending_per_s']:,.0f}",
                "",
                "",
            ],
            [
                "two workers, concurrency 16 each",
                f"{count:,}",
                f"{two16['per_s']:,.0f} ({whole_ratio:.2f}x)",
                f"{two16['sending_per_s']:,.0f} ({ratio:.2f}x)",
                f">= {TWO_WORKERS_MIN_RATIO}x",
                self.check(
                    f"two workers at concurrency 16: >= {TWO_WORKERS_MIN_RATIO}x one, sending",
                    f"{ratio:.2f}x ({whole_ratio:.2f}x whole run)",
                    ratio >= TWO_WORKERS_MIN_RATIO,
                ),
            ],
        ]
        print_table(
            f"5. the PostgreSQL ledger, sandbox with {LATENCY_MS} ms added latency",
            ["runner", "messages", "msgs/s", "sending", "target", ""],
            rows,
            notes=[
                "each run on a fresh database of one throwaway server (fsync on); msgs/s from "
                "the runs' summaries (each worker plans the whole campaign first); two "
                "workers: messages / the time from the first one's start to the last one's "
                "end, and sending from the first answer either recorded to the last",
                SENDING_NOTE,
            ],
        )
        self.results["postgres"] = {
            **figures,
            "two_vs_one": round(whole_ratio, 3),
            "two_vs_one_sending": round(ratio, 3),
        }

    def _postgres_runs(self, server: Any, url: str, count: int) -> dict:
        figures = {}
        for name, level in (("one_worker_c64", 64), ("one_worker_c16", 16)):
            campaign = write_campaign(self.folder / f"pg-{name}.yaml", self.send_csv(), url, level)
            ledger = server.url(server.create_database())
            figures[name] = self.runner_run(campaign, limit=count, ledger=ledger)
        campaign = write_campaign(self.folder / "pg-two.yaml", self.send_csv(), url, 16)
        ledger = server.url(server.create_database())
        started = time.perf_counter()
        workers = [
            self.procs.start(
                [sys.executable, "-m", "campaign_runner", "run", str(campaign), "--yes"]
                + ["--state", ledger, "--limit", str(count)]
                + ["--report", str(self.folder / f"pg-two-{n}.csv")],
                f"pg-worker-{n}",
            )
            for n in (1, 2)
        ]
        codes = [worker.wait(900) for worker in workers]
        wall = time.perf_counter() - started
        sent, starts, ends = 0, [], []
        for n in (1, 2):
            summary = json.loads((self.folder / f"pg-two-{n}.json").read_text())
            sent += summary["counts"].get("sent", 0)
            starts.append(datetime.fromisoformat(summary["started_at"]))
            ends.append(datetime.fromisoformat(summary["ended_at"]))
        if codes != [0, 0] or sent != count:
            raise BenchError(f"two workers exited {codes} and sent {sent} of {count}")
        # As for one worker: from the first run's start to the last one's end, by their own
        # summaries (the interpreters' start-up is outside both).
        span = (max(ends) - min(starts)).total_seconds()
        sending = answered_span_s(ledger)
        figures["two"] = {
            "messages": count,
            "wall_s": round(wall, 3),
            "per_s": count / span,
            "sending_s": sending,
            "sending_per_s": count / sending,
        }
        return figures

    def concurrency(self) -> None:
        url = self.sandbox(LATENCY_MS)
        rows, figures = [], {}
        try:
            for level, count in self.sizes.latency.items():
                campaign = write_campaign(
                    self.folder / f"latency-c{level}.yaml", self.send_csv(), url, level
                )
                run = self.runner_run(campaign, limit=count)
                bare = None
                if level > 1:  # at 1 the ceiling is the latency itself: 20/s for anyone
                    bodies = self.bodies(campaign, max(self.sizes.latency.values()))
                    bare = self.bare_run(url, bodies, count, "async", level)
                ceiling = level / (LATENCY_MS / 1000)
                figures[level] = {"runner": run, "bare_async": bare, "ceiling_per_s": ceiling}
                is_target = level == CONCURRENCY_TARGET
                rows.append(
                    [
                        str(level),
                        f"{count:,}",
                        f"{run['per_s']:,.0f}",
                        f"{run['sending_per_s']:,.0f}",
                        cpu_cell(run),
                        f"{bare['per_s']:,.0f}" if bare else "-",
                        cpu_cell(bare) if bare else "-",
                        f"{ceiling:,.0f}",
                        f"{run['sending_per_s'] / ceiling:.0%}",
                        f">= {CONCURRENCY_MIN_PER_S:,}" if is_target else "",
                        self.check(
                            f"concurrency {level}, {LATENCY_MS} ms latency: "
                            f">= {CONCURRENCY_MIN_PER_S:,} msgs/s sending",
                            f"{run['sending_per_s']:,.0f} msgs/s ({run['per_s']:,.0f} whole run)",
                            run["sending_per_s"] >= CONCURRENCY_MIN_PER_S,
                        )
                        if is_target
                        else "",
                    ]
                )
        finally:
            self.stop_gateway()
        print_table(
            f"4. concurrency against the sandbox with {LATENCY_MS} ms added latency (journal on)",
            [
                "concurrency",
                "messages",
                "runner msgs/s",
                "sending",
                "CPU runner/sandbox",
                "bare async msgs/s",
                "CPU bare/sandbox",
                "ceiling",
                "runner/ceiling",
                "target",
                "",
            ],
            rows,
            notes=[
                "ceiling = concurrency / 0.05 s; bare async = N workers, each its own "
                "single-connection httpx.AsyncClient, same bodies (one run each)",
                SENDING_NOTE,
                CPU_NOTE,
            ],
        )
        self.results["concurrency"] = figures

    def nginx(self, install: bool) -> None:
        binary = find_nginx()
        if binary is None and install:
            binary = install_nginx()
        if binary is None:
            print_section("6. the runner against a plain nginx on loopback")
            print(
                "  skipped: nginx is not installed. Install it with `apt-get install nginx-light`"
                " (as root),\n  or rerun as root with --install-nginx."
            )
            self.results["nginx"] = {"skipped": "nginx not installed"}
            return
        port = free_port()
        conf = write_nginx_conf(self.folder / "nginx", port)
        log = conf.parent / "error.log"
        argv = [binary, "-p", str(conf.parent), "-c", str(conf), "-e", str(log)]
        self.gateway = self.procs.start(argv, "nginx")
        url = f"http://127.0.0.1:{port}/api/Messages"
        rows, figures, sync = [], {}, None
        try:
            wait_until_up(self.gateway, port, "/health", "nginx", self.folder / "nginx.err")
            for level, count in self.sizes.nginx.items():
                campaign = write_campaign(
                    self.folder / f"nginx-c{level}.yaml", self.send_csv(), url, level
                )
                bodies = self.bodies(campaign, max(self.sizes.nginx.values()))
                run = self.runner_run(campaign, limit=count)
                bare = self.bare_run(url, bodies, count, "async", level)
                if level == 1:
                    sync = self.bare_run(url, bodies, count, "sync")
                figures[level] = {"runner": run, "bare_async": bare}
                rows.append(
                    [
                        str(level),
                        f"{count:,}",
                        f"{run['per_s']:,.0f}",
                        cpu_cell(run),
                        f"{run['peak_rss_mb']:.0f}",
                        f"{bare['per_s']:,.0f}",
                        cpu_cell(bare),
                        f"{run['per_s'] / bare['per_s']:.2f}",
                    ]
                )
        finally:
            self.stop_gateway()
        notes = [
            f"nginx {nginx_version(binary)}, 1 worker, `return 200` with a fixed success body: "
            "what is measured is the client's own ceiling (one run each; no target)"
        ]
        if sync:
            figures["bare_sync_sequential"] = sync
            notes.append(
                f"bare httpx.Client sync loop, sequential: {sync['per_s']:,.0f} msgs/s, "
                f"CPU {cpu_cell(sync)} (runner at concurrency 1 / sync loop = "
                f"{figures[1]['runner']['per_s'] / sync['per_s']:.2f})"
            )
        notes.append(CPU_NOTE)
        print_table(
            "6. the runner against a plain nginx on loopback (no latency)",
            [
                "concurrency",
                "messages",
                "runner msgs/s",
                "CPU runner/nginx",
                "runner RSS MB",
                "bare async msgs/s",
                "CPU bare/nginx",
                "runner/bare",
            ],
            rows,
            notes=notes,
        )
        self.results["nginx"] = figures

    # -- issue 14: Meta's status webhooks ---------------------------------------------------

    def webhook(self) -> None:
        """`campaign webhook` taking signed status webhooks (one status a POST, as Meta
        sends them) into a SQLite ledger, from another process; and `campaign ingest` of
        a file of the same payloads."""
        messages = self.sizes.webhook
        half = messages // 2
        pristine = self.folder / "webhook-ledger"
        self._load(["ledger", "--state", str(pristine), "--messages", str(messages)], 300)
        state = self.folder / "webhook-state"
        shutil.copytree(pristine, state)
        env = {**self.procs.env, "WHATSAPP_APP_SECRET": WEBHOOK_SECRET}
        port = free_port()
        argv = [sys.executable, "-m", "campaign_runner", "webhook", "--quiet"]
        self.gateway = self.procs.start(
            [*argv, "--port", str(port), "--state", str(state)], "webhook", env
        )
        try:
            err = self.folder / "webhook.err"
            wait_until_up(self.gateway, port, "/healthz", "campaign webhook", err)
            post = ["post", "--port", str(port), "--secret", WEBHOOK_SECRET]
            post += ["--connections", str(WEBHOOK_CONNECTIONS)]
            fastest = self._post(post + ["--first", "0", "--messages", str(half)])
            rest = ["--first", str(half), "--messages", str(messages - half)]
            paced = self._post(post + rest + ["--rate", str(WEBHOOK_MIN_PER_S)])
        finally:
            self.stop_gateway()
        read = _outcomes(state).get("read", 0)
        if read != messages:
            raise BenchError(f"{read} of {messages} deliveries were read in the ledger")
        ingested = self._ingest(pristine, messages)
        self._webhook_table(messages, fastest, paced, ingested)

    def _load(self, args: list[str], timeout_s: float) -> dict:
        """webhook_load.py ARGS in its own process; its JSON line."""
        child = self.procs.run([sys.executable, str(WEBHOOK_LOAD), *args], timeout_s)
        try:
            figures = json.loads(child.stdout.read_text())
        except ValueError:
            figures = None
        if child.returncode != 0 or not figures:
            raise BenchError(
                f"webhook_load.py {args[0]} exited with {child.returncode}:\n{child.tail()}"
            )
        figures["_child"] = child
        return figures

    def _post(self, args: list[str]) -> dict:
        """One load run against the receiver: statuses/s, answer times, CPU on both sides."""
        before = cpu_seconds(self.gateway)
        figures = self._load(args, 900)
        receiver_cpu = cpu_seconds(self.gateway) - before
        child = figures.pop("_child")
        if figures["ok"] != figures["posted"]:
            raise BenchError(f"the receiver did not answer 200 to every POST: {figures}")
        seconds = figures["seconds"]
        return {
            **figures,
            "per_s": figures["posted"] / seconds,
            **self._cpu_shares(child, receiver_cpu, seconds),
            "receiver_cpu_us_per_status": round(1e6 * receiver_cpu / figures["posted"], 1),
        }

    def _ingest(self, pristine: Path, messages: int) -> dict:
        """`campaign ingest` of the same statuses (3 a message) into a fresh copy of the ledger."""
        state = self.folder / "ingest-state"
        shutil.copytree(pristine, state)
        file = self.folder / "webhooks.jsonl"
        self._load(["file", "--out", str(file), "--messages", str(messages)], 300)
        argv = [sys.executable, "-m", "campaign_runner", "ingest", str(file), "--state", str(state)]
        child = self.procs.run(argv, 900)
        if child.returncode != 0:
            raise BenchError(f"campaign ingest exited with {child.returncode}:\n{child.tail()}")
        read = _outcomes(state).get("read", 0)
        if read != messages:
            raise BenchError(f"ingest: {read} of {messages} deliveries were read in the ledger")
        statuses = 3 * messages
        return {
            "statuses": statuses,
            "wall_s": round(child.wall_s, 3),
            "per_s": statuses / child.wall_s,
            "cpu_pct": round(100 * child.cpu_s / child.wall_s, 1),
            "peak_rss_mb": round(child.peak_rss_mb, 1),
        }

    def _webhook_table(self, messages: int, fastest: dict, paced: dict, ingested: dict) -> None:
        def answer_times(run: dict) -> list[str]:
            return [f"{run['p50_ms']:.1f}", f"{run['p99_ms']:.1f}"]

        rows = [
            [
                f"webhook, as fast as it answers ({WEBHOOK_CONNECTIONS} connections)",
                f"{fastest['posted']:,}",
                f"{fastest['per_s']:,.0f}",
                *answer_times(fastest),
                f"{fastest['cpu_pct']:.0f}% / {fastest['gateway_cpu_pct']:.0f}%",
                f">= {WEBHOOK_MIN_PER_S:,}/s",
                self.check(
                    f"campaign webhook into SQLite: >= {WEBHOOK_MIN_PER_S:,} statuses/s",
                    f"{fastest['per_s']:,.0f} statuses/s",
                    fastest["per_s"] >= WEBHOOK_MIN_PER_S,
                ),
            ],
            [
                f"webhook, {WEBHOOK_MIN_PER_S:,} POSTs/s due (open loop)",
                f"{paced['posted']:,}",
                f"{paced['per_s']:,.0f}",
                *answer_times(paced),
                f"{paced['cpu_pct']:.0f}% / {paced['gateway_cpu_pct']:.0f}%",
                f"p99 < {WEBHOOK_P99_MAX_MS} ms",
                self.check(
                    f"campaign webhook at {WEBHOOK_MIN_PER_S:,}/s: p99 answer "
                    f"< {WEBHOOK_P99_MAX_MS} ms",
                    f"{paced['p99_ms']:.1f} ms",
                    paced["p99_ms"] < WEBHOOK_P99_MAX_MS,
                ),
            ],
            [
                "ingest FILE (whole command)",
                f"{ingested['statuses']:,}",
                f"{ingested['per_s']:,.0f}",
                "-",
                "-",
                f"{ingested['cpu_pct']:.0f}% / -",
                f">= {WEBHOOK_MIN_PER_S:,}/s",
                self.check(
                    f"campaign ingest into SQLite: >= {WEBHOOK_MIN_PER_S:,} statuses/s",
                    f"{ingested['per_s']:,.0f} statuses/s",
                    ingested["per_s"] >= WEBHOOK_MIN_PER_S,
                ),
            ],
        ]
        print_table(
            f"7. Meta's status webhooks into the SQLite ledger ({messages:,} deliveries, "
            "sent + delivered + read each)",
            [
                "way in",
                "statuses",
                "statuses/s",
                "p50 ms",
                "p99 ms",
                "CPU gen/receiver",
                "target",
                "",
            ],
            rows,
            notes=[
                "one status per signed POST, from webhook_load.py in its own process (raw "
                "HTTP/1.1 on asyncio, requests signed before the clock starts); answer times "
                "from the request's write (paced: from when it was due) to its 200; CPU: "
                "the generator's and the receiver's, as shares of one core",
                f"receiver CPU per status: {fastest['receiver_cpu_us_per_status']:.0f} us "
                f"(as fast as it answers), {paced['receiver_cpu_us_per_status']:.0f} us (paced)",
                "ingest: statuses / the command's wall time, start-up and reconcile included",
                "every delivery is checked `read` in the ledger after each way in",
            ],
        )
        self.results["webhook"] = {"fastest": fastest, "paced": paced, "ingest": ingested}


# ---- nginx ---------------------------------------------------------------------------------


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def install_nginx() -> str | None:
    """apt-get install nginx-light (Debian's smallest nginx) when root; None when it cannot."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("  --install-nginx: needs root and apt-get", flush=True)
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("  installing nginx-light with apt-get...", flush=True)
    for attempt in (
        [["apt-get", "install", "-y", "-q", "nginx-light"]],
        [["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "nginx-light"]],
    ):
        if all(
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode == 0
            for cmd in attempt
        ):
            break
    return find_nginx()


def nginx_version(binary: str) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True)
    return (done.stderr or done.stdout).strip().rpartition("/")[2] or "?"


def write_nginx_conf(folder: Path, port: int) -> Path:
    """A one-worker nginx, foreground, everything in FOLDER, answering POST /api/Messages."""
    folder.mkdir(parents=True, exist_ok=True)
    temp = {name: folder / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {folder}/access.log combined buffer=256k flush=5s;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
        location = /api/Messages {{
            default_type application/json;
            return 200 '{NGINX_ANSWER}';
        }}
        location = /health {{
            default_type application/json;
            return 200 '{{"status":"ok"}}';
        }}
    }}
}}
""")
    return conf


# ---- output --------------------------------------------------------------------------------


SENDING_NOTE = (
    "sending = messages / the time from the first answer the ledger recorded to the last "
    "(its deliveries' times), the plan before it left out (its cost per row is the dry "
    "run's, table 2); targets are judged on it, the whole run's figure is beside it"
)
CPU_NOTE = (
    "CPU = share of one core while sending, client (≈: its start-up taken off) / server; "
    "a client near 100% is CPU-bound"
)


def _outcomes(state: Path) -> dict[str, int]:
    """How many deliveries of the ledger in the folder STATE have each outcome."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(state / "ledger.sqlite")) as db:
        return dict(db.execute("SELECT outcome, count(*) FROM deliveries GROUP BY outcome"))


def answered_span_s(ledger: str) -> float:
    """Seconds from the first outcome the run recorded in LEDGER (a fresh one: a state
    folder or a PostgreSQL URL) to the last: its sending, without the plan before it."""
    query = "SELECT min(updated_at), max(updated_at) FROM deliveries"
    if ledger.startswith("postgresql:"):
        import psycopg

        with psycopg.connect(ledger) as db:
            found = db.execute(query).fetchone()
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(Path(ledger) / "ledger.sqlite")) as db:
            found = db.execute(query).fetchone()
    if not found or found[0] is None:
        raise BenchError(f"no delivery recorded in {ledger}")
    first, last = (datetime.fromisoformat(moment) for moment in found)
    return max(0.001, (last - first).total_seconds())


def cpu_cell(run: dict) -> str:
    """`93% / 61%`: the client's CPU use, then the server's, as shares of one core."""
    return f"{run['cpu_pct']:.0f}% / {run.get('gateway_cpu_pct', 0):.0f}%"


def print_section(title: str) -> None:
    print(f"\n{title}", flush=True)


def print_table(
    title: str, headers: list[str], rows: list[list[str]], notes: list[str] | None = None
) -> None:
    """Aligned columns: the first left-aligned, the others right-aligned."""
    print_section(title)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return ("  " + "  ".join(parts)).rstrip()

    print(line(headers))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    for note in notes or []:
        print(f"  {note}")
    sys.stdout.flush()


def machine_facts(runner_where: str) -> dict:
    model = "?"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                memory = f"{int(text.split()[1]) / 1024 / 1024:.1f} GB"
    commit = "?"
    with contextlib.suppress(OSError):
        done = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        )
        commit = done.stdout.strip() or "?"
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "memory": memory,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "runner": runner_where,
        "commit": commit,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def checkout(commit: str, where: Path) -> Path:
    """The runner's source at COMMIT, in a detached git worktree at WHERE."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), commit],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BenchError(f"cannot check out {commit[:7]} (a git clone is needed): {done.stderr}")
    return where


def remove_checkout(where: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], capture_output=True
    )


def locate_runner() -> tuple[str, str | None]:
    """Where `python -m campaign_runner` comes from; the source tree when not installed."""
    spec = importlib.util.find_spec("campaign_runner")
    if spec is not None and spec.origin:
        return str(Path(spec.origin).parent), None
    if (REPO / "campaign_runner" / "__init__.py").is_file():
        return f"{REPO / 'campaign_runner'} (not installed: source tree via PYTHONPATH)", str(REPO)
    raise SystemExit("campaign-runner is not installed in this Python: pip install . first")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with --only checked against the known sections."""
    parser = argparse.ArgumentParser(
        description="Measure campaign-runner: dry-run throughput and memory, sequential send "
        "against a bare httpx loop, concurrency with 50 ms latency, a plain nginx."
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under a minute)")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--install-nginx",
        action="store_true",
        help="apt-get install nginx-light when nginx is missing (root only; "
        "where services start on install, Debian's nginx starts on port 80)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    args.sections = SECTIONS
    if args.only:
        args.sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = set(args.sections) - set(SECTIONS)
        if unknown:
            parser.error(
                f"unknown section(s) {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(SECTIONS)}"
            )
    return args


def print_machine(facts: dict, quick: bool) -> None:
    """What the figures were measured on, and a warning when the machine is busy."""
    print(f"campaign-runner benchmark ({'quick' if quick else 'full'}), {facts['date']}")
    print(
        f"  cpu:     {facts['cpus']} x {facts['cpu_model']} ({facts['cpus_usable']} usable), "
        f"memory {facts['memory']}"
    )
    print(f"  python:  {facts['python']}")
    print(f"  system:  {facts['platform']}")
    print(f"  runner:  {facts['runner']}, commit {facts['commit']}")
    load = facts["load_average"]
    print(f"  load:    {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)", flush=True)
    if load[0] > BUSY_LOAD:
        print(f"  warning: the machine is busy (load {load[0]:.2f}): figures will be low and noisy")


def run_sections(bench: Bench, sections: tuple[str, ...], install_nginx: bool) -> list[str]:
    """Measure each chosen section in order; the names of those that could not be measured."""
    steps = {
        "help": bench.help_timing,
        "dry-run": bench.dry_run,
        "sequential": bench.sequential,
        "plan": bench.plan,
        "concurrency": bench.concurrency,
        "postgres": bench.postgres,
        "nginx": lambda: bench.nginx(install_nginx),
        "webhook": bench.webhook,
    }
    failed = []
    for name in SECTIONS:
        if name not in sections:
            continue
        try:
            steps[name]()
        except BenchError as error:
            failed.append(name)
            print_section(f"{name}: could not be measured: {error}")
            bench.results[name] = {"error": str(error)}
    return failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    runner_where, pythonpath = locate_runner()
    facts = machine_facts(runner_where)
    print_machine(facts, args.quick)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)  # clean up on `kill` as on Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with `&`
    folder = Path(tempfile.mkdtemp(prefix="campaign-bench-"))
    bench = Bench(folder, sizes, pythonpath)
    bench.results["machine"] = facts
    started = time.monotonic()
    try:
        failed = run_sections(bench, args.sections, args.install_nginx)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything started", file=sys.stderr)
        return 130
    finally:
        bench.procs.stop_all()
        if args.keep:
            print(f"\ntemporary files kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.monotonic() - started
    if bench.targets:
        print_table("targets", ["target", "measured", ""], bench.targets)
        bench.results["targets"] = [
            {"target": t, "measured": m, "verdict": v} for t, m, v in bench.targets
        ]
    print(f"\ndone in {elapsed:.0f} s" + (f"; not measured: {', '.join(failed)}" if failed else ""))
    if args.json:
        bench.results["elapsed_s"] = round(elapsed, 1)
        args.json.write_text(json.dumps(bench.results, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
