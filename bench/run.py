"""`make bench`: the product over HTTP against the floor, as the data grows to a million cases.

One run, on a scratch PostgreSQL database that is dropped at the end:

1. migrate, load the demo data (bodies, accounts, a few dozen cases made through the services)
   and clone its cases up to the first size (bench/seed.py, which leaves the database vacuumed,
   analysed and checkpointed after each step);
2. start the service as a user would (`mediation serve`, uvicorn, --workers) and the floor app
   (bench/floor_app.py: the same SQL with asyncpg, nothing else), each in its own processes;
3. drive them with wrk (a separate, compiled load generator; Lua scripts in bench/wrk/) on
   127.0.0.1: intake and a lifecycle action (accept, with If-Match) at full load on the product
   and on the floor, taking turns for --rounds rounds, then on the product paced to half its
   maximum for the latency target; and
   PostgreSQL's own limit for the same two transactions with pgbench;
4. read paths at each size: get one case, list (first page, filtered first page, a page 10,000
   rows deep by the cursor), statistics overview, triage, event feed page;
5. the reads compared across sizes again, side by side: a service on a copy of the smallest size's
   database and one on the largest, run at once and read in turn (`side_by_side`), for the
   targets that compare them;
6. the peak RSS of every worker, and a report (Markdown and JSON) with the machine's description:
   docs/benchmarks.md and docs/benchmarks.json unless --out says otherwise.

Exits 1 when a target of the issue is missed; the report says which.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import seed

from mediation.core.clock import Clock
from mediation.core.db import Database
from mediation.core.pii import PiiCipher, generate_key
from mediation.core.settings import Settings
from mediation.demo import seed_accounts, seed_demo
from mediation.migrate import upgrade
from mediation.stats.service import refresh

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WRK_DIR = HERE / "wrk"
PRODUCT_PORT, FLOOR_PORT, SMALL_PORT = 18701, 18702, 18703
# The local server the benchmarks make their scratch databases on (`make bench` passes PG_ADMIN_DSN).
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--admin-dsn", default=ADMIN_DSN)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="uvicorn workers for each app")
    p.add_argument("--sizes", default="10000,100000,1000000", help="case counts to measure the reads at")
    p.add_argument("--duration", type=int, default=10, help="seconds per write run")
    p.add_argument(
        "--rounds",
        type=int,
        choices=range(1, 5),  # each round takes two pools of cases; the copies' numbers stay under a million
        default=3,
        metavar="1-4",
        help="full-load write runs per scenario, product and floor taking turns; figures are over all rounds",
    )
    p.add_argument("--read-duration", type=int, default=5, help="seconds per read scenario")
    p.add_argument("--connections", type=int, default=16, help="wrk connections at full load")
    p.add_argument("--read-connections", type=int, default=4, help="wrk connections for the reads")
    p.add_argument("--pool", type=int, default=10, help="database connections per worker (both apps)")
    p.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks", help="report path without suffix"
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument(
        "--notes",
        type=Path,
        default=HERE / "FINDINGS.md",
        help="hand-written findings appended to the Markdown report (what the figures show, what was changed)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        help="record the product's workers with py-spy during the write runs, into this folder",
    )
    return p.parse_args()


# ---- processes ------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    dsn: str = ""

    def workers(self) -> list[int]:
        """uvicorn's worker processes (or the process itself when it runs alone)."""
        pids: list[int] = []
        tasks = Path(f"/proc/{self.process.pid}/task")
        for task in tasks.iterdir() if tasks.exists() else []:
            with contextlib.suppress(OSError):
                pids += [int(p) for p in (task / "children").read_text().split()]
        # uvicorn spawns its workers with multiprocessing (`spawn_main`); its resource tracker is
        # a child too, and no worker.
        return [p for p in pids if _is_worker(p)] or [self.process.pid]

    def peak_rss_mib(self) -> list[float]:
        return [_vm(pid, "VmHWM") / 1024 for pid in self.workers()]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _is_worker(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def _vm(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])  # kB
    return 0.0


def start(name: str, command: list[str], env: dict[str, str], port: int, workdir: Path) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code in (200, 404):
                return Server(name, port, process, log)
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not start; see {log}:\n{log.read_text()[-3000:]}")


# ---- load -----------------------------------------------------------------------------------------


@dataclass
class Result:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non_2xx: int
    socket_errors: int
    connections: int = 0
    paced_delay_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def wrk(
    script: str,
    port: int,
    *,
    seconds: int,
    connections: int,
    auth: tuple[str, str],
    env: dict[str, str] | None = None,
    delay_ms: float = 0.0,
    apps: Sequence[int] = (),
) -> Result:
    """One wrk run. With `apps` (the pids of the app's workers), the CPU time the app, PostgreSQL
    and wrk itself spent meanwhile is reported per request, in `extra["cpu_ms_per_request"]`."""
    threads = min(2, connections)
    run_env = {
        **os.environ,
        "BENCH_LUA_DIR": str(WRK_DIR),
        "BENCH_THREADS": str(threads),
        "BENCH_AUTH_HEADER": auth[0],
        "BENCH_AUTH_VALUE": auth[1],
        "BENCH_DELAY_MS": f"{delay_ms:.3f}",
        **(env or {}),
    }
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_DIR / script),
        f"http://127.0.0.1:{port}",
    ]
    before = _cpu_times()
    spent = _Spent(apps) if apps else None
    out = subprocess.run(command, env=run_env, capture_output=True, check=True).stdout.decode(
        errors="replace"
    )
    stolen = _steal_share(before, _cpu_times())
    for row in out.splitlines():
        if row.startswith("BENCH_ERROR "):
            print("      " + row, flush=True)
    line = next(row for row in out.splitlines() if row.startswith("BENCH_RESULT "))
    result = Result(
        **json.loads(line.removeprefix("BENCH_RESULT ")), connections=connections, paced_delay_ms=delay_ms
    )
    if stolen is not None:
        result.extra["cpu_steal_percent"] = stolen
    if spent is not None and result.requests:
        result.extra["cpu_ms_per_request"] = {
            who: round(seconds * 1000 / result.requests, 2) for who, seconds in spent.since().items()
        }
    return result


_TICK = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> int:
    """A process's user and system CPU time so far, in clock ticks (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th fields


def _postgres() -> list[int]:
    """PostgreSQL's processes on this machine: the backends serving the apps, and its own."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


class _Spent:
    """CPU time spent from now on by the app's workers, PostgreSQL, and the load generator (this
    process's children that end meanwhile: the wrk run). Where the product's time goes next to the
    floor's, measured on the running processes rather than profiled."""

    def __init__(self, apps: Sequence[int]) -> None:
        self.apps = list(apps)
        self.app = sum(_ticks(p) for p in self.apps)
        self.database = {p: _ticks(p) for p in _postgres()}
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)

    def since(self) -> dict[str, float]:
        # A backend that ended meanwhile is missed (its time is gone with it); a new one started at 0.
        database = sum(max(0, _ticks(p) - self.database.get(p, 0)) for p in _postgres())
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "app": (sum(_ticks(p) for p in self.apps) - self.app) / _TICK,
            "postgres": database / _TICK,
            "wrk": children.ru_utime + children.ru_stime - self.children.ru_utime - self.children.ru_stime,
        }


def _cpu_times() -> list[int] | None:
    """The machine's CPU time counters (/proc/stat's first line), where the kernel has them."""
    try:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None


def _steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of CPU time the hypervisor gave to other machines meanwhile (the 8th counter,
    "steal"): on a shared virtual machine, what makes two identical runs differ."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    spent = sum(after) - sum(before)
    return round(100 * (after[7] - before[7]) / spent, 1) if spent > 0 else None


# A p99 is its run's slowest 1%. Ten seconds of intake at half its maximum (about 40 req/s) make
# some 400 requests, whose p99 is the fourth-slowest one and moved by tens of milliseconds between
# identical runs; a paced run lasts until about this many requests have had their answer.
PACED_REQUESTS = 2_000


def paced(
    script: str,
    port: int,
    target_rps: float,
    *,
    seconds: int,
    auth: tuple[str, str],
    env: dict[str, str],
    calibration: dict[str, str],
    apps: Sequence[int] = (),
) -> Result:
    """A run held near `target_rps`: few connections, each waiting between requests. The delay is
    set from the latency seen in a short first run at that rate (with its own cases), so the
    offered load is close to the target."""
    connections = 8
    delay = max(0.0, 1000 * connections / target_rps)
    result = wrk(script, port, seconds=3, connections=connections, auth=auth, env=calibration, delay_ms=delay)
    delay = max(0.0, 1000 * connections / target_rps - result.mean_ms)
    return wrk(
        script, port, seconds=seconds, connections=connections, auth=auth, env=env, delay_ms=delay, apps=apps
    )


@contextlib.contextmanager
def profiled(folder: Path | None, label: str, server: Server | None, seconds: int) -> Iterator[None]:
    """py-spy on every worker of `server` while the block runs: collapsed stacks (flamegraph.pl or
    speedscope read them) and the 25 frames with the most samples, printed."""
    if folder is None or server is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    waits: dict[str, int] = {}
    sampler = threading.Thread(
        target=lambda: asyncio.run(_sample_waits(server.dsn, stop, waits)), daemon=True
    )
    sampler.start()
    slug = label.replace(" ", "-").replace(",", "")
    spies = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "200",
                "--duration",
                str(seconds),
                "--format",
                "raw",
                "--output",
                str(folder / f"{slug}-{pid}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in server.workers()
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait(seconds + 30)
        stop.set()
        sampler.join()
    print(f"      database sessions of {label}, sampled every 20 ms (wait event: query):")
    for what, count in sorted(waits.items(), key=lambda kv: -kv[1])[:12]:
        print(f"        {count:6d}  {what}")
    inclusive: dict[str, int] = {}
    total = 0
    for path in folder.glob(f"{slug}-*.txt"):
        for line in path.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not samples.isdigit():  # a frame name with a line break in it
                continue
            total += int(samples)
            for frame in set(stack.split(";")):
                inclusive[frame] = inclusive.get(frame, 0) + int(samples)
    print(f"      profile {label}: {total} samples; most time under:")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:25]:
        print(f"        {100 * count / max(total, 1):5.1f}%  {frame[:150]}")


async def _sample_waits(dsn: str, stop: threading.Event, waits: dict[str, int]) -> None:
    """What the app's database sessions are doing: active ones by wait event and statement."""
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT coalesce(wait_event_type || '/' || wait_event, 'running') AS w, left(query, 90) AS q "
                "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state <> 'idle'"
            )
            for row in rows:
                key = f"{row['w']}: {' '.join(row['q'].split())}"
                waits[key] = waits.get(key, 0) + 1
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


def write_lines(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# ---- pgbench --------------------------------------------------------------------------------------

# The floor's transactions (floor_app.py), statement for statement, as pgbench scripts. pgbench
# replaces ":name" even inside quotes, so the scripts spell a colon as chr(58).
PGBENCH_ACCEPT = """\
\\set k random(1, :pool)
\\set events 1
BEGIN;
SELECT id AS did FROM bench_pgbench_pool WHERE n = :k::int \\gset
SELECT * FROM disputes WHERE id = :did::uuid AND region_code LIKE '330681%' FOR UPDATE OF disputes;
SELECT * FROM parties WHERE dispute_id = ANY(ARRAY[:did::uuid]) ORDER BY position;
SELECT * FROM case_clocks WHERE dispute_id = :did::uuid AND stopped_at IS NULL ORDER BY started_at, name;
UPDATE case_clocks SET stopped_at = now(), outcome = 'met', history = history || '[{"what": "stopped"}]'::jsonb
  WHERE dispute_id = :did::uuid AND stopped_at IS NULL;
UPDATE disputes SET status = 'accepted', version = version + 1, updated_at = now(), accepted_at = now(),
  clock = 'null', clock_level = NULL, clock_due_at = NULL WHERE id = :did::uuid;
INSERT INTO timeline_entries (id, dispute_id, seq, action, from_status, to_status, actor_role, actor_id, payload,
  occurred_at) VALUES (gen_random_uuid(), :did::uuid, 2 + (random() * 1e9)::int, 'accept', 'registered',
  'accepted', 'clerk', 'pgbench', '{"note": null}', now());
"""

# Each case's town and category vary with its serial as in bench/wrk/intake.lua, so the category
# waves fill up, and each intake past the threshold joins its wave's alert, as in the apps.
_CATEGORIES = ", ".join(
    f"'{c}'"
    for c in (
        "neighbour",
        "marriage_family",
        "debt",
        "contract",
        "labour",
        "property_management",
        "land_forest",
        "damages",
        "consumer",
        "traffic_accident",
        "housing_homestead",
        "medical",
    )
)
_TOWNS = ", ".join(
    f"'{t}'"
    for t in (
        "330681001",
        "330681002",
        "330681101",
        "330681102",
        "330681103",
        "330681104",
        "330681105",
        "330681106",
    )
)
_IDENTITY = (
    "CASE WHEN p.id_number_index IS NOT NULL AND p.id_number_index != '' THEN 'id' || chr(58) || p.id_number_index "
    "WHEN p.kind = 'organisation' AND p.name_key IS NOT NULL AND p.name_key != '' THEN 'name' || chr(58) || p.name_key "
    "WHEN p.phone_index IS NOT NULL AND p.phone_index != '' THEN 'phone' || chr(58) || p.phone_index ELSE NULL END"
)


def _category_wave_and_claimants(until: str) -> str:
    """pgbench's reading of a town's category wave up to `until` (as :wave and :wave_n), and, from
    fifteen cases, the count of their distinct claimants (as :claimants), as the service reads them;
    the caller closes the `\\if`."""
    return f"""\
SELECT coalesce(array_agg(d.id), '{{}}') AS wave, count(*) AS wave_n FROM disputes d WHERE d.region_code LIKE '330681%'
  AND d.created_at >= now() - interval '3 days' AND d.created_at <= {until} AND substr(d.region_code, 1, 9) = :town
  AND d.category = :category \\gset
\\if :wave_n >= 15
SELECT count(*) AS claimants FROM (SELECT DISTINCT coalesce((SELECT {_IDENTITY} FROM parties p
  WHERE p.dispute_id = d.id AND p.role = 'applicant' AND {_IDENTITY} IS NOT NULL ORDER BY p.position LIMIT 1),
  CAST(d.id AS VARCHAR)) AS claimant FROM disputes d WHERE d.id = ANY(:wave::uuid[]) LIMIT 15) AS claimants \\gset"""


PGBENCH_INTAKE = f"""\
\\set serial random(1, 1000000000)
\\set c :serial % 12 + 1
\\set t :serial % 8 + 1
\\set events 1
\\set v 1
\\set joined 0
\\set wave_n 0
\\set current 0
BEGIN;
SELECT * FROM triage_rule_sets ORDER BY version DESC LIMIT 1;
SELECT gen_random_uuid() AS did, (ARRAY[{_CATEGORIES}])[:c::int] AS category, (ARRAY[{_TOWNS}])[:t::int] AS town \\gset
SELECT :town::text || lpad((200 + :serial::int % 20)::text, 3, '0') AS region \\gset
INSERT INTO disputes (id, case_number, query_code_hash, category, subject_matters, description, channel, region_code,
  amount_in_dispute, people_involved, severity, is_group, is_risk, tier, status, version, complexity, applied_on,
  created_by, created_at, updated_at, ever_overdue, clock, clock_level, clock_due_at) VALUES (:did::uuid,
  '~' || left(replace(:did::text, '-', ''), 31), '~' || left(replace(:did::text, '-', ''), 31), :category, '[]',
  '双方因合同履行发生争执, 申请调解。', 'window', :region, 1200, 2, 'ordinary', false, false, 'village', 'registered', 1,
  'general', current_date, 'pgbench', now(), now(), false, '{{}}', 'normal', now() + interval '1 day');
INSERT INTO parties (id, dispute_id, position, role, kind, name, id_type, id_number_enc, id_number_masked,
  id_number_index, phone_enc, phone_masked, phone_index, address, region_code, consent, name_key) VALUES
  (gen_random_uuid(), :did::uuid, 0, 'applicant', 'person', '王伟', 'resident_id', md5(:serial::text || 'a'), '3306**',
   md5(:serial::text || 'ia'), md5(:serial::text || 'pa'), '139****', md5(:serial::text || 'qa'), '诸暨', :region, 'pending',
   md5(:serial::text || 'na')),
  (gen_random_uuid(), :did::uuid, 1, 'respondent', 'person', '李娜', 'resident_id', md5(:serial::text || 'b'), '3306**',
   md5(:serial::text || 'ib'), md5(:serial::text || 'pb'), '139****', md5(:serial::text || 'qb'), '诸暨', :region, 'pending',
   md5(:serial::text || 'nb'));
SELECT count(*) FILTER (WHERE open_key LIKE concat_ws(chr(58), 'cluster', 'category', '%')) AS open_n,
  (SELECT coalesce(max(last_value), 0) FROM case_number_counters WHERE region = '330681' AND year = 2026) AS counted
  FROM alerts WHERE open_key = ANY(ARRAY[
  concat_ws(chr(58), 'cluster', 'respondent', '330681', 'id', md5(:serial::text || 'ib')),
  concat_ws(chr(58), 'cluster', 'category', '330681', 'category', :town::text, :category::text)]) \\gset
SELECT coalesce(array_agg(d.id), '{{}}') AS resp, count(*) AS resp_n FROM disputes d WHERE d.region_code LIKE '330681%'
  AND d.created_at >= now() - interval '7 days' AND d.created_at <= now() AND EXISTS (SELECT * FROM parties p
  WHERE p.dispute_id = d.id AND p.role = 'respondent' AND p.id_number_index = md5(:serial::text || 'ib')) \\gset
\\set joined 1
\\if :open_n = 0
{_category_wave_and_claimants("now()")}
\\if :claimants >= 15
\\set joined 2
\\endif
\\endif
\\endif
SELECT d.id FROM disputes d WHERE d.id != :did::uuid AND d.created_at >= now() - interval '365 days'
  AND d.status IN ('closed', 'archived')
  AND EXISTS (SELECT * FROM parties p1 WHERE p1.dispute_id = d.id AND p1.id_number_index = md5(:serial::text || 'ia'))
  AND EXISTS (SELECT * FROM parties p2 WHERE p2.dispute_id = d.id AND p2.id_number_index = md5(:serial::text || 'ib'));
SELECT d.* FROM disputes d WHERE d.region_code LIKE '330681%' AND d.id != :did::uuid AND EXISTS (SELECT * FROM parties p1,
  parties p2 WHERE p1.dispute_id = d.id AND p2.dispute_id = :did::uuid AND (p1.id_number_index IS NOT NULL AND
  p1.id_number_index = p2.id_number_index OR p1.phone_index IS NOT NULL AND p1.phone_index = p2.phone_index OR
  p1.name_key IS NOT NULL AND p1.name_key = p2.name_key AND p1.role = 'respondent' AND p2.role = 'respondent' AND
  (p1.id_number_index IS NULL OR p2.id_number_index IS NULL))) ORDER BY d.created_at DESC, d.id DESC LIMIT 20;
INSERT INTO case_clocks (id, dispute_id, name, rule_id, source, unit, length, pausable, started_at, due_on, due_at,
  warn_at, provisional, extended_by, level, history) VALUES (gen_random_uuid(), :did::uuid, 'acceptance', 'acceptance',
  'pgbench', 'working_days', 1, false, now(), current_date + 1, now() + interval '1 day', now() + interval '18 hours',
  false, 0, 'normal', '[]');
INSERT INTO timeline_entries (id, dispute_id, seq, action, from_status, to_status, actor_role, actor_id, payload,
  occurred_at) VALUES (gen_random_uuid(), :did::uuid, 1, 'register', NULL, 'registered', 'clerk', 'pgbench', '{{}}', now());
UPDATE case_number_counters SET last_value = last_value + 1 WHERE region = '330681' AND year = 2026
  RETURNING last_value AS number \\gset
SELECT count(*) FILTER (WHERE open_key LIKE concat_ws(chr(58), 'cluster', 'category', '%')) AS locked,
  coalesce(max(id::text) FILTER (WHERE open_key LIKE concat_ws(chr(58), 'cluster', 'category', '%')), '') AS aid FROM (SELECT id, open_key FROM
  alerts WHERE open_key = ANY(ARRAY[concat_ws(chr(58), 'cluster', 'respondent', '330681', 'id', md5(:serial::text || 'ib')),
  concat_ws(chr(58), 'cluster', 'category', '330681', 'category', :town::text, :category::text)]) ORDER BY open_key
  FOR UPDATE) AS a \\gset
\\set moved :number - 1 - :counted
\\if :moved > 0 AND :resp_n + :moved >= 5
SELECT d.id FROM disputes d WHERE d.region_code LIKE '330681%' AND d.created_at >= now() - interval '7 days'
  AND d.created_at <= now() + interval '1 minute' AND EXISTS (SELECT * FROM parties p WHERE p.dispute_id = d.id AND p.role = 'respondent'
  AND p.id_number_index = md5(:serial::text || 'ib'));
\\endif
\\if :open_n = 0 AND :joined = 1 AND :locked = 0 AND :moved > 0 AND :wave_n + :moved >= 15
{_category_wave_and_claimants("now() + interval '1 minute'")}
\\if :claimants >= 15
\\set joined 2
\\set current 1
\\endif
\\endif
\\endif
\\set fresh 0
\\if :joined = 2 AND :locked = 0
WITH raised AS (INSERT INTO alerts (id, kind, key, open_key, level, region_code, title, details, status, case_count,
  raised_at, last_seen_at, version) VALUES (gen_random_uuid(), 'cluster', concat_ws(chr(58), 'cluster', 'category',
  '330681', 'category', :town::text, :category::text), concat_ws(chr(58), 'cluster', 'category', '330681', 'category',
  :town::text, :category::text), 'high', '330681', 'pgbench', '{{}}', 'open', 0, now(), now(), 1)
  ON CONFLICT (open_key) DO NOTHING RETURNING id)
  SELECT count(*) AS fresh, coalesce(max(id::text), '') AS aid FROM raised \\gset
\\if :fresh = 0
SELECT 1 AS locked, id::text AS aid FROM alerts WHERE open_key = concat_ws(chr(58), 'cluster', 'category', '330681',
  'category', :town::text, :category::text) FOR UPDATE \\gset
\\else
\\set locked 1
\\endif
\\endif
\\if :locked
\\if :joined = 2 AND :fresh = 1
\\if :current = 0
SELECT coalesce(array_agg(d.id), '{{}}') AS wave FROM disputes d WHERE d.region_code LIKE '330681%'
  AND d.created_at >= now() - interval '3 days' AND d.created_at <= now() + interval '1 minute' AND substr(d.region_code, 1, 9) = :town
  AND d.category = :category \\gset
\\endif
\\else
SELECT ARRAY[:did::uuid]::text AS wave \\gset
\\endif
\\if :fresh = 0 AND :joined = 2
SELECT dispute_id FROM alert_cases WHERE alert_id = :aid::uuid AND dispute_id = ANY(:wave::uuid[]);
\\endif
INSERT INTO alert_cases (id, alert_id, dispute_id, matched, added_at) SELECT gen_random_uuid(), :aid::uuid, w, '{{}}',
  now() FROM unnest(:wave::uuid[]) AS w WHERE NOT EXISTS (SELECT * FROM alert_cases a WHERE a.alert_id = :aid::uuid
  AND a.dispute_id = w);
INSERT INTO timeline_entries (id, dispute_id, seq, action, from_status, to_status, actor_role, actor_id, payload,
  occurred_at) VALUES (gen_random_uuid(), :did::uuid, 2, 'alert_raised', 'registered', 'registered', 'system', 'system',
  jsonb_build_object('alert_id', :aid::text), now());
UPDATE alerts SET case_count = case_count + 1, last_seen_at = now(), version = version + 1,
  details = '{{"rule": "category"}}' WHERE id = :aid::uuid;
\\set events 2
\\set v 2
\\endif
INSERT INTO document_blobs (sha256, size, media_type, created_at) VALUES (md5(:did::text) || md5(:did::text), 444,
  'text/html', now()) ON CONFLICT (sha256) DO NOTHING;
UPDATE disputes SET case_number = '330681-2026-P' || :number::text, query_code_hash = md5(:did::text), version = :v::int,
  updated_at = now() WHERE id = :did::uuid AND version = 1;
INSERT INTO documents (id, dispute_id, kind, original_name, sha256, size, media_type, submitted_by_kind, submitted_by,
  submitted_role, stage, generated, contains_personal_data, late, status, created_at) VALUES (gen_random_uuid(),
  :did::uuid, 'receipt', 'receipt.html', md5(:did::text) || md5(:did::text), 444, 'text/html', 'center', 'pgbench', 'clerk',
  'registered', true, true, false, 'active', now());
"""


def pgbench_journal(first_event: str) -> str:
    """What every write does last (floor_app._journal): the journal head with the subscribers'
    version, its events written with their positions (`:events` of them: the first of type
    `first_event`, then the alert joined), the audit record chained."""
    return f"""\
SELECT seq AS seq, hash AS prev, last_position AS pos,
  (SELECT token FROM webhook_subscribers_version WHERE id = 1) AS token
  FROM audit_chain_head WHERE id = 1 FOR UPDATE OF audit_chain_head \\gset
UPDATE audit_chain_head SET seq = :seq::bigint + 1, hash = md5(:prev::text) || md5(:prev::text),
  last_position = :pos::bigint + :events::int WHERE id = 1;
INSERT INTO outbox_events (id, type, source, subject, dispute_id, body_id, target_id, data, created_at, published_at,
  position)
  SELECT gen_random_uuid(), CASE k WHEN 1 THEN 'cn.mediation.dispute.{first_event}'
  ELSE 'cn.mediation.dispute.alert_raised' END, '/mediation/disputes', 'pgbench', :did::uuid, NULL, NULL,
  jsonb_build_object('action', '{first_event}'), now(), now(), :pos::bigint + k
  FROM generate_series(1, :events::int) AS k;
INSERT INTO audit_records (seq, occurred_at, actor_kind, actor_role, actor_id, organisation_id, action, object_type,
  object_id, outcome, status_code, request_id, client_address, details, prev_hash, hash) VALUES (:seq::bigint + 1, now(),
  'user', 'clerk', 'pgbench', NULL, 'pgbench', 'dispute', 'x', 'success', 200, 'r', '127.0.0.1', '{{}}', :prev::text,
  md5(:prev::text) || md5(:prev::text));
END;
"""


def pgbench(
    dsn: str, script: str, workdir: Path, *, seconds: int, clients: int, pool: int = 0
) -> dict[str, Any]:
    path = workdir / "pgbench.sql"
    path.write_text(script)
    command = [
        "pgbench",
        "-n",
        "-M",
        "prepared",
        "-f",
        str(path),
        "-c",
        str(clients),
        "-j",
        "2",
        "-T",
        str(seconds),
        "-r",
    ]
    command += ["-D", f"pool={pool}", dsn]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    figures: dict[str, Any] = {"clients": clients}
    for line in out.stdout.splitlines():
        if line.startswith("tps ="):
            figures["tps"] = float(line.split()[2])
        elif line.startswith("latency average"):
            figures["latency_avg_ms"] = float(line.split()[3])
        elif line.startswith("number of failed transactions"):
            figures["failed"] = int(line.split(":")[1].split()[0])
    return figures


# ---- the run --------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024 / 1024
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version.split(" Copyright")[0].strip(),
    }


async def prepare(admin_dsn: str, workdir: Path) -> tuple[str, str, Settings]:
    name = f"mediation_bench_{os.getpid()}"
    conn = await asyncpg.connect(admin_dsn, timeout=5)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = admin_dsn.rsplit("/", 1)[0]
    dsn = f"{base}/{name}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://")
    settings = Settings(
        database_url=url,
        secrets_file=workdir / "secrets.json",
        jwt_secret="bench-secret-" + uuid.uuid4().hex,
        pii_encryption_keys=f"k1:{generate_key()}",
        pii_index_key=generate_key(),
        documents_dir=workdir / "documents",
        relay_in_app=False,
        clock_in_app=False,
    )
    await asyncio.to_thread(upgrade, url)
    await seed_demo(settings)
    await seed_accounts(settings)
    return name, dsn, settings


def product_env(settings: Settings, pool: int) -> dict[str, str]:
    """The service configured as a center would run it; only the rate limit is lifted (one client
    sends everything here) and the clock scheduler runs as its own process (not needed here)."""
    return {
        "MEDIATION_DATABASE_URL": settings.database_url,
        "MEDIATION_SECRETS_FILE": str(settings.secrets_file),
        "MEDIATION_JWT_SECRET": str(settings.jwt_secret),
        "MEDIATION_PII_ENCRYPTION_KEYS": str(settings.pii_encryption_keys),
        "MEDIATION_PII_INDEX_KEY": str(settings.pii_index_key),
        "MEDIATION_DOCUMENTS_DIR": str(settings.documents_dir),
        "MEDIATION_RATE_LIMIT_PER_MINUTE": "100000000",
        "MEDIATION_ACCESS_TOKEN_MINUTES": "600",
        "MEDIATION_CLOCK_IN_APP": "false",
        "MEDIATION_DB_POOL_SIZE": str(pool),
    }


def sign_in(username: str, port: int = PRODUCT_PORT) -> tuple[str, str]:
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/auth/token",
        json={"username": username, "password": f"{username}-demo-2026"},
        timeout=30,
    )
    response.raise_for_status()
    return ("Authorization", f"Bearer {response.json()['access_token']}")


def pages(
    path: str,
    auth: tuple[str, str],
    count: int,
    key: str = "next_cursor",
    param: str = "cursor",
    port: int = PRODUCT_PORT,
) -> Iterator[str]:
    """`count` consecutive pages' URLs, following the cursor from `path`."""
    url = path
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=[auth], timeout=60) as client:
        for _ in range(count):
            yield url
            body = client.get(url).raise_for_status().json()
            cursor = body.get(key)
            if not cursor:
                return
            url = str(httpx.URL(path).copy_merge_params({param: cursor}))


async def _refresh_stats(settings: Settings) -> None:
    db = Database(settings)
    try:
        await refresh(db, Clock(), settings)
    finally:
        await db.dispose()


def reads(
    dsn: str,
    settings: Settings,
    workdir: Path,
    args: argparse.Namespace,
    clerk: tuple[str, str],
    supervisor: tuple[str, str],
) -> dict[str, Result]:
    sample = asyncio.run(_sample(dsn))
    get_paths = write_lines(workdir / "get.txt", [f"/v1/disputes/{i}" for i in sample["cases"]])
    triage_paths = write_lines(
        workdir / "triage.txt", [f"/v1/disputes/{i}/triage" for i in sample["accepted"]]
    )
    feed = list(pages("/v1/events?limit=100", clerk, 50))
    scenarios: dict[str, tuple[str, tuple[str, str]]] = {
        "get one case": (get_paths, clerk),
        "list, first page": (write_lines(workdir / "list.txt", ["/v1/disputes?limit=20"]), clerk),
        "list, filtered first page": (
            write_lines(
                workdir / "filtered.txt",
                [
                    f"/v1/disputes?limit=20&status={s}&category=neighbour"
                    for s in ("mediating", "closed", "accepted")
                ],
            ),
            clerk,
        ),
        "list, page 10,000 rows deep": (deep_page(workdir / "deep.txt", clerk), clerk),
        "statistics overview": (write_lines(workdir / "overview.txt", ["/v1/stats/overview"]), supervisor),
        "triage": (triage_paths, clerk),
        "event feed page (100 events)": (write_lines(workdir / "feed.txt", feed), clerk),
    }
    # After a bulk load the statistics rollup is rebuilt once, as the scheduler would, so that the
    # overview is timed as it runs day to day (bench/bench_stats.py times the rebuild itself).
    asyncio.run(_refresh_stats(settings))
    results = {}
    for label, (paths, auth) in scenarios.items():
        env = {"BENCH_PATHS": paths}
        wrk("get.lua", PRODUCT_PORT, seconds=1, connections=args.read_connections, auth=auth, env=env)  # warm
        results[label] = wrk(
            "get.lua",
            PRODUCT_PORT,
            seconds=args.read_duration,
            connections=args.read_connections,
            auth=auth,
            env=env,
        )
        print(f"    {label:32s} {_line(results[label])}", flush=True)
    return results


def deep_page(path: Path, clerk: tuple[str, str], port: int = PRODUCT_PORT) -> str:
    """The page 10,000 rows deep: follow the cursor through 100 pages of 100, then ask for that page."""
    deep = list(pages("/v1/disputes?limit=100", clerk, 101, port=port))
    if len(deep) < 101:
        raise RuntimeError("fewer than 10,000 cases visible to the clerk")
    return write_lines(path, [str(httpx.URL(deep[-1]).copy_set_param("limit", "20"))])


# The reads whose cost at the largest size is compared with their cost at the smallest (targets).
SCALED = ("get one case", "list, first page", "list, page 10,000 rows deep")


def side_by_side(
    small: Settings, large: Settings, workdir: Path, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """The reads compared across sizes, measured side by side: a service on a copy of the smallest
    size's database and one on the largest run at once, and each read runs on the one then on the
    other, twice over (small, large, large, small), so a change in the machine's speed meets both.
    Measured apart, the smallest size's reads come first and the largest's some twenty minutes
    later, after the writes and the bulk load: a shared machine changes speed more than that in
    twenty minutes (the reads' figures at a million moved from 0.95x to 1.79x of those at 10,000
    over runs with no change to their code), and the comparison measured the hour, not the data."""
    servers = [
        start("product-small", _serve(args, SMALL_PORT), product_env(small, args.pool), SMALL_PORT, workdir),
        start(
            "product-large", _serve(args, PRODUCT_PORT), product_env(large, args.pool), PRODUCT_PORT, workdir
        ),
    ]
    try:
        ports = {"small": SMALL_PORT, "large": PRODUCT_PORT}
        clerks = {side: sign_in("clerk", port) for side, port in ports.items()}
        paths: dict[tuple[str, str], str] = {}
        for side, port in ports.items():
            url = str((small if side == "small" else large).database_url)
            sample = asyncio.run(_sample(url.replace("postgresql+asyncpg://", "postgresql://")))
            paths[side, "get one case"] = write_lines(
                workdir / f"get-{side}.txt", [f"/v1/disputes/{i}" for i in sample["cases"]]
            )
            paths[side, "list, first page"] = write_lines(workdir / "list.txt", ["/v1/disputes?limit=20"])
            paths[side, "list, page 10,000 rows deep"] = deep_page(
                workdir / f"deep-{side}.txt", clerks[side], port
            )
        runs: dict[tuple[str, str], list[Result]] = {}
        for label in SCALED:
            for side in ("small", "large", "large", "small"):
                env = {"BENCH_PATHS": paths[side, label]}
                wrk(
                    "get.lua",
                    ports[side],
                    seconds=1,
                    connections=args.read_connections,
                    auth=clerks[side],
                    env=env,
                )
                run = wrk(
                    "get.lua",
                    ports[side],
                    seconds=args.read_duration,
                    connections=args.read_connections,
                    auth=clerks[side],
                    env=env,
                )
                runs.setdefault((side, label), []).append(run)
            for side in ("small", "large"):
                print(f"    {label:32s} {side:5s} {_line(combined(runs[side, label]))}", flush=True)
        return {
            side: {label: vars(combined(runs[side, label])) for label in SCALED}
            for side in ("small", "large")
        }
    finally:
        for server in servers:
            server.stop()


async def _sample(dsn: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        cases = await conn.fetch("SELECT id FROM disputes TABLESAMPLE SYSTEM (5) LIMIT 2000")
        if len(cases) < 100:
            cases = await conn.fetch("SELECT id FROM disputes ORDER BY random() LIMIT 2000")
        accepted = await conn.fetch(
            "SELECT id FROM disputes WHERE status = 'accepted' ORDER BY random() LIMIT 500"
        )
        return {"cases": [str(r["id"]) for r in cases], "accepted": [str(r["id"]) for r in accepted]}
    finally:
        await conn.close()


def _line(r: Result) -> str:
    bad = f"  non-2xx {r.non_2xx}" if r.non_2xx or r.socket_errors else ""
    stolen = r.extra.get("cpu_steal_percent")
    return (
        f"{r.rps:8.1f} req/s  p50 {r.p50_ms:7.2f}  p95 {r.p95_ms:7.2f}  p99 {r.p99_ms:7.2f} ms"
        f"{bad}{'  socket errors ' + str(r.socket_errors) if r.socket_errors else ''}"
        f"{f'  (CPU steal {stolen}%)' if stolen else ''}"
        f"{'  CPU ms/request: ' + _spent(cpu) if (cpu := r.extra.get('cpu_ms_per_request')) else ''}"
    )


def _spent(cpu: dict[str, float]) -> str:
    return f"app {cpu['app']:.2f}, PostgreSQL {cpu['postgres']:.2f}, wrk {cpu['wrk']:.2f}"


def combined(runs: list[Result]) -> Result:
    """One figure for several runs of a scenario: the rate over their total time; the latency
    percentiles are each run's weighted by its requests (wrk reports percentiles, not histograms, so
    this approximates those of the runs taken together), the maximum is the largest."""
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)

    def weighted(name: str) -> float:
        total: float = sum(getattr(r, name) * r.requests for r in runs)
        return round(total / max(requests, 1), 3)

    stolen = [r.extra["cpu_steal_percent"] for r in runs if "cpu_steal_percent" in r.extra]
    extra: dict[str, Any] = {"rounds_rps": [round(r.rps, 1) for r in runs]}
    if stolen:
        extra["cpu_steal_percent"] = round(max(stolen), 1)
    spent = [r for r in runs if "cpu_ms_per_request" in r.extra]
    if spent:
        counted = sum(r.requests for r in spent)
        extra["cpu_ms_per_request"] = {
            who: round(sum(r.extra["cpu_ms_per_request"][who] * r.requests for r in spent) / counted, 2)
            for who in spent[0].extra["cpu_ms_per_request"]
        }
    return Result(
        requests=requests,
        seconds=round(seconds, 3),
        rps=round(requests / seconds, 2) if seconds else 0.0,
        p50_ms=weighted("p50_ms"),
        p95_ms=weighted("p95_ms"),
        p99_ms=weighted("p99_ms"),
        max_ms=max(r.max_ms for r in runs),
        mean_ms=weighted("mean_ms"),
        non_2xx=sum(r.non_2xx for r in runs),
        socket_errors=sum(r.socket_errors for r in runs),
        connections=runs[0].connections,
        extra=extra,
    )


def pools(dsn: str, cipher: PiiCipher, workdir: Path, args: argparse.Namespace) -> dict[str, str]:
    """Registered cases for the accept runs, one pool per run (each round's own), each larger than a
    run can use; and one for pgbench, in a table its script reads."""
    budget = args.duration * 800 + 1_000  # above the floor's rate here (up to about 450/s); past it, 404s
    rounds = [f"{who}-{r}" for r in range(args.rounds) for who in ("product", "floor")]
    ids = {
        # 40,000 copies apart: more than a pool takes, and the 11 pools of four rounds stay under a
        # million copies (the case numbers' width).
        who: asyncio.run(seed.pool(dsn, cipher, "registered", budget, seed.POOL_FIRST_COPY + k * 40_000))
        for k, who in enumerate((*rounds, "paced", "calibration", "pgbench"))
    }
    asyncio.run(_pgbench_pool(dsn, ids["pgbench"]))
    return {
        who: write_lines(workdir / f"ids-{who}.txt", [f"{i} {v}" for i, v in got]) for who, got in ids.items()
    }


def writes(
    floor_dsn: str,
    files: dict[str, str],
    workdir: Path,
    args: argparse.Namespace,
    clerk: tuple[str, str],
    product: Server,
    floor: Server,
) -> tuple[dict[str, Result], dict[str, Any]]:
    results: dict[str, Result] = {}
    nobody = ("X-Bench", "floor")
    # Product and floor take turns, round after round: on a shared machine the speed drifts over
    # minutes, and a ratio of two runs minutes apart measures the drift as much as the apps.
    rounds: dict[str, list[Result]] = {}
    for r in range(args.rounds):
        for label, port, auth, env in (
            ("intake, product", PRODUCT_PORT, clerk, {"BENCH_SEED": str(1 + 10 * r)}),
            ("intake, floor", FLOOR_PORT, nobody, {"BENCH_SEED": str(2 + 10 * r)}),
            (
                "accept, product",
                PRODUCT_PORT,
                clerk,
                {"BENCH_IDS": files[f"product-{r}"], "BENCH_ACTION": "accept"},
            ),
            (
                "accept, floor",
                FLOOR_PORT,
                nobody,
                {"BENCH_IDS": files[f"floor-{r}"], "BENCH_ACTION": "accept"},
            ),
        ):
            script = "intake.lua" if label.startswith("intake") else "action.lua"
            with profiled(
                args.profile, f"{label} {r + 1}", product if port == PRODUCT_PORT else None, args.duration
            ):
                got = wrk(
                    script,
                    port,
                    seconds=args.duration,
                    connections=args.connections,
                    auth=auth,
                    env=env,
                    apps=(product if port == PRODUCT_PORT else floor).workers(),
                )
            rounds.setdefault(label, []).append(got)
            print(f"    {label:32s} {_line(got)}  (round {r + 1})", flush=True)
    for label, runs in rounds.items():
        results[label] = combined(runs)
        print(f"    {label:32s} {_line(results[label])}  (all rounds)", flush=True)
    accept_at = {"BENCH_ACTION": "accept"}
    for kind, script, env, calibration in (
        ("intake", "intake.lua", {"BENCH_SEED": "3"}, {"BENCH_SEED": "4"}),
        (
            "accept",
            "action.lua",
            {**accept_at, "BENCH_IDS": files["paced"]},
            {**accept_at, "BENCH_IDS": files["calibration"]},
        ),
    ):
        target = results[f"{kind}, product"].rps / 2
        results[f"{kind}, product at half its maximum"] = paced(
            script,
            PRODUCT_PORT,
            target,
            seconds=max(args.duration, math.ceil(PACED_REQUESTS / max(target, 1.0))),
            auth=clerk,
            env=env,
            calibration=calibration,
            apps=product.workers(),
        )
    for label in ("intake, product at half its maximum", "accept, product at half its maximum"):
        print(f"    {label:32s} {_line(results[label])}", flush=True)
    # PostgreSQL alone: the same transactions from pgbench, as many clients as the apps' pools, on
    # the floor's copy of the data.
    pool_size = len(Path(files["pgbench"]).read_text().splitlines())
    clients = args.pool * args.workers
    pg = {
        "intake": pgbench(
            floor_dsn,
            PGBENCH_INTAKE + pgbench_journal("registered"),
            workdir,
            seconds=args.duration,
            clients=clients,
        ),
        "accept": pgbench(
            floor_dsn,
            PGBENCH_ACCEPT + pgbench_journal("accepted"),
            workdir,
            seconds=args.duration,
            clients=clients,
            pool=pool_size,
        ),
    }
    for label, figures in pg.items():
        print(f"    pgbench {label:24s} {figures}", flush=True)
    return results, pg


async def _pgbench_pool(dsn: str, ids: list[tuple[uuid.UUID, int]]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_pgbench_pool (n int PRIMARY KEY, id uuid NOT NULL)")
        await conn.copy_records_to_table(
            "bench_pgbench_pool", records=[(n, case) for n, (case, _) in enumerate(ids, start=1)]
        )
    finally:
        await conn.close()


def main() -> int:
    args = parse()
    if shutil.which("wrk") is None or shutil.which("pgbench") is None:
        print(
            "make bench needs wrk and pgbench (Debian: apt-get install wrk postgresql-client)",
            file=sys.stderr,
        )
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="mediation-bench-"))
    started = datetime.now(UTC)
    name, dsn, settings = asyncio.run(prepare(args.admin_dsn, workdir))
    cipher = PiiCipher.from_secrets(str(settings.pii_encryption_keys), str(settings.pii_index_key))
    servers: list[Server] = []
    report: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "machine": machine(),
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("admin_dsn", "out", "profile", "notes")
        },
        "sizes": {},
    }
    try:
        report["machine"]["postgresql"] = asyncio.run(_server_version(dsn))
        load_seconds: dict[int, float] = {}
        rss: dict[str, list[float]] = {}

        def measure_reads(size: int) -> None:
            if size not in load_seconds:
                print(f"growing to {size:,} cases ...", flush=True)
                began = time.perf_counter()
                asyncio.run(seed.grow(dsn, cipher, size))
                load_seconds[size] = round(time.perf_counter() - began, 1)
            total = asyncio.run(_count(dsn))
            print(f"reads at {total:,} cases ({args.read_connections} connections)", flush=True)
            clerk, supervisor = sign_in("clerk"), sign_in("supervisor")
            results = reads(dsn, settings, workdir, args, clerk, supervisor)
            report["sizes"][str(size)] = {
                "cases": total,
                "load_seconds": load_seconds[size],
                "reads": {k: vars(v) for k, v in results.items()},
            }

        def stop(server: Server) -> None:
            rss.setdefault(server.name, []).extend(server.peak_rss_mib())
            server.stop()
            servers.remove(server)

        print(f"loading {sizes[0]:,} cases ...", flush=True)
        began = time.perf_counter()
        asyncio.run(seed.grow(dsn, cipher, sizes[0]))
        load_seconds[sizes[0]] = round(time.perf_counter() - began, 1)
        # The first size is read before the write runs add their cases.
        servers.append(start_product(settings, args, workdir))
        measure_reads(sizes[0])
        stop(servers[0])
        # Kept as it was read, to read it again beside the largest size at the end.
        small_dsn = asyncio.run(_copy_database(args.admin_dsn, name, name + "_small"))

        files = pools(dsn, cipher, workdir, args)
        # The floor and pgbench write to their own copy of the data: their rows are not the
        # product's (no encryption, no receipts), and the product's reads must not meet them.
        floor_dsn = asyncio.run(_copy_database(args.admin_dsn, name, name + "_floor"))
        product = start_product(settings, args, workdir)
        floor = start_floor(floor_dsn, args, workdir)
        servers += [product, floor]
        product.dsn, floor.dsn = dsn, floor_dsn
        print(f"writes ({args.workers} workers each, {args.connections} connections)", flush=True)
        write_results, pg = writes(floor_dsn, files, workdir, args, sign_in("clerk"), product, floor)
        report["writes"] = {k: vars(v) for k, v in write_results.items()}
        report["writes_at_cases"] = asyncio.run(_count(floor_dsn))
        report["pgbench"] = pg
        stop(floor)
        for size in sizes[1:]:
            measure_reads(size)
        stop(product)
        if len(sizes) > 1:
            print(f"side by side: {sizes[0]:,} and {sizes[-1]:,} cases", flush=True)
            small = settings.model_copy(
                update={"database_url": small_dsn.replace("postgresql://", "postgresql+asyncpg://")}
            )
            report["side_by_side"] = side_by_side(small, settings, workdir, args)
        report["peak_rss_mib"] = {k: [round(m, 1) for m in v if m] for k, v in rss.items()}
    finally:
        for server in servers:
            server.stop()
        if not args.keep:
            asyncio.run(_drop(args.admin_dsn, name))
            asyncio.run(_drop(args.admin_dsn, name + "_floor"))
            asyncio.run(_drop(args.admin_dsn, name + "_small"))
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["targets"] = targets(report, sizes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    notes = args.notes.read_text() if args.notes and args.notes.is_file() else ""
    args.out.with_suffix(".md").write_text(markdown(report, sizes) + ("\n" + notes if notes else ""))
    print(f"report: {args.out.with_suffix('.md')} and .json")
    missed = [t["target"] for t in report["targets"] if not t["met"]]
    for target in report["targets"]:
        print(f"  {'ok    ' if target['met'] else 'MISSED'} {target['target']}: {target['figure']}")
    return 1 if missed else 0


def _serve(args: argparse.Namespace, port: int) -> list[str]:
    return [sys.executable, "-m", "mediation", "serve", "--port", str(port), "--workers", str(args.workers)]


def start_product(settings: Settings, args: argparse.Namespace, workdir: Path) -> Server:
    return start(
        "product", _serve(args, PRODUCT_PORT), product_env(settings, args.pool), PRODUCT_PORT, workdir
    )


def start_floor(floor_dsn: str, args: argparse.Namespace, workdir: Path) -> Server:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "floor_app:app",
        "--app-dir",
        str(HERE),
        "--port",
        str(FLOOR_PORT),
    ]
    command += ["--workers", str(args.workers), "--no-access-log", "--log-level", "warning"]
    env = {"MEDIATION_BENCH_DSN": floor_dsn, "MEDIATION_BENCH_FLOOR_POOL": str(args.pool)}
    return start("floor", command, env, FLOOR_PORT, workdir)


async def _copy_database(admin_dsn: str, source: str, target: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    finally:
        await conn.close()
    return f"{admin_dsn.rsplit('/', 1)[0]}/{target}"


async def _server_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM disputes"))
    finally:
        await conn.close()


async def _drop(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def targets(report: dict[str, Any], sizes: list[int]) -> list[dict[str, Any]]:
    w = report.get("writes", {})
    out: list[dict[str, Any]] = []

    def add(target: str, met: bool, figure: str) -> None:
        out.append({"target": target, "met": bool(met), "figure": figure})

    for kind in ("intake", "accept"):
        product, floor = w.get(f"{kind}, product"), w.get(f"{kind}, floor")
        if product and floor:
            ratio = product["rps"] / floor["rps"]
            add(
                f"{kind}: throughput at least 0.7x the floor's",
                ratio >= 0.7,
                f"{product['rps']:.0f} / {floor['rps']:.0f} req/s = {ratio:.2f}x",
            )
        half = w.get(f"{kind}, product at half its maximum")
        if half:
            add(
                f"{kind}: p99 under 50 ms at half the maximum throughput",
                half["p99_ms"] < 50,
                f"p99 {half['p99_ms']:.1f} ms at {half['rps']:.0f} req/s",
            )
    small, large = str(min(sizes)), str(max(sizes))
    paired = report.get("side_by_side")
    if small != large and small in report["sizes"] and large in report["sizes"]:
        for label in SCALED:
            # Side by side where measured (side_by_side); else each size's own reads.
            a = paired["small"][label] if paired else report["sizes"][small]["reads"][label]
            b = paired["large"][label] if paired else report["sizes"][large]["reads"][label]
            ratio = b["p50_ms"] / a["p50_ms"]
            add(
                f"{label}: latency at {int(large):,} within 1.5x of {int(small):,}",
                ratio <= 1.5,
                f"p50 {a['p50_ms']:.2f} -> {b['p50_ms']:.2f} ms ({ratio:.2f}x); "
                f"p99 {a['p99_ms']:.2f} -> {b['p99_ms']:.2f} ms{', side by side' if paired else ''}",
            )
    if large in report["sizes"]:
        overview = report["sizes"][large]["reads"]["statistics overview"]
        add(
            f"statistics overview under 200 ms at {int(large):,}",
            overview["p99_ms"] < 200,
            f"p99 {overview['p99_ms']:.1f} ms",
        )
    return out


def _cpu_cell(extra: dict[str, Any]) -> str:
    cpu = extra.get("cpu_ms_per_request")
    return "" if cpu is None else f"{cpu['app']:.2f} / {cpu['postgres']:.2f} / {cpu['wrk']:.2f}"


def markdown(report: dict[str, Any], sizes: list[int]) -> str:
    m = report["machine"]
    s = report["settings"]
    w = report.get("writes", {})
    lines = [
        "# Benchmarks",
        "",
        f"The latest `make bench` run, on commit `{report['commit']}`, {report['started_at']} to "
        f"{report['finished_at']}. The figures are this machine's; `bench/run.py` says how each is made.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gib']} GiB; Linux {m['kernel']}",
        f"- PostgreSQL {m.get('postgresql', '?')}, Python {m['python']}, {m['wrk']}",
        f"- The service (`mediation serve`) and the floor app each ran {s['workers']} uvicorn workers with "
        f"{s['pool']} database connections per worker. Load generator, apps and PostgreSQL share the machine.",
        "",
        "## Targets",
        "",
        "| target | figure | met |",
        "|---|---|---|",
    ]
    lines += [
        f"| {t['target']} | {t['figure']} | {'yes' if t['met'] else '**no**'} |" for t in report["targets"]
    ]
    lines += [
        "",
        f"## Writes (at {report.get('writes_at_cases', 0):,} cases; {s['duration']} s per run)",
        "",
        "Full load is wrk with "
        f"{s['connections']} connections; the paced runs hold about half the product's maximum with 8 "
        f"connections, for at least {s['duration']} s and about {PACED_REQUESTS:,} requests (here: "
        + ", ".join(
            f"{label.split(',')[0]} {w[label]['requests']:,}"
            for label in ("intake, product at half its maximum", "accept, product at half its maximum")
            if label in w
        )
        + "). The floor runs the same SQL as the product with asyncpg and nothing else.",
        "",
        f"At full load each scenario ran {s.get('rounds', 1)} times, product and floor taking turns "
        "(intake product, intake floor, accept product, accept floor, then again), so a drift in the "
        "machine's speed meets both; the rate is over all rounds, the last column lists each round's. "
        "The percentiles are the rounds' weighted by their requests.",
        "",
        "CPU steal is the share of the machine's CPU time the hypervisor gave to other "
        "machines during the run: on a shared virtual machine, what makes two identical "
        "runs differ.",
        "",
        "CPU per request is the CPU time each kind of process spent during the run over the requests "
        "it answered: the app's workers, PostgreSQL's processes, and wrk. A scenario that keeps all "
        f"{m['cores']} cores busy manages about {1000 * (m['cores'] or 1):,} / (their sum) requests a second.",
        "",
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | max ms | non-2xx | CPU steal "
        "| CPU ms per request: app / PostgreSQL / wrk | rounds, req/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in report.get("writes", {}).items():
        stolen = r.get("extra", {}).get("cpu_steal_percent")
        each = ", ".join(f"{x:.0f}" for x in r.get("extra", {}).get("rounds_rps", []))
        lines.append(
            f"| {label} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['max_ms']:.1f} | {r['non_2xx'] + r['socket_errors']} | "
            f"{'' if stolen is None else f'{stolen}%'} | {_cpu_cell(r.get('extra', {}))} | {each} |"
        )
    lines += ["", "PostgreSQL alone (pgbench, the same statements in one transaction each):", ""]
    for label, figures in report.get("pgbench", {}).items():
        lines.append(
            f"- {label}: {figures.get('tps', 0):.0f} transactions/s with {figures['clients']} clients, "
            f"average latency {figures.get('latency_avg_ms', 0):.1f} ms, failed {figures.get('failed', 0)}"
        )
    lines += [
        "",
        f"## Reads as the data grows ({s['read_connections']} connections, {s['read_duration']} s each)",
        "",
    ]
    labels = list(next(iter(report["sizes"].values()))["reads"]) if report["sizes"] else []
    header = (
        "| scenario | " + " | ".join(f"{int(k):,} cases: req/s, p50 / p99 ms" for k in report["sizes"]) + " |"
    )
    lines += [header, "|---|" + "---|" * len(report["sizes"])]
    for label in labels:
        cells = []
        for size in report["sizes"].values():
            r = size["reads"][label]
            cells.append(f"{r['rps']:.0f}, {r['p50_ms']:.1f} / {r['p99_ms']:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Loading (clones of the demo's cases with their parties, timelines, events and assignments): "
        + ", ".join(
            f"{int(k):,} cases in {v['load_seconds']} s ({v['cases']:,} in the database)"
            for k, v in report["sizes"].items()
        ),
        "",
    ]
    if paired := report.get("side_by_side"):
        small, large = (f"{int(k):,}" for k in (min(sizes), max(sizes)))
        lines += [
            f"### {small} and {large} cases side by side",
            "",
            f"The targets compare these: at the end of the run a service on a copy of the {small} cases' "
            f"database (as it was read above, before the writes) and one on the {large} ran at once, and "
            "each read ran on the one, then the other, twice over (small, large, large, small; "
            f"{s['read_duration']} s each), so that both met the machine at the same speed.",
            "",
            f"| scenario | {small} cases: req/s, p50 / p99 ms | {large} cases: req/s, p50 / p99 ms | p50 ratio |",
            "|---|---|---|---|",
        ]
        for label in SCALED:
            a, b = paired["small"][label], paired["large"][label]
            lines.append(
                f"| {label} | {a['rps']:.0f}, {a['p50_ms']:.1f} / {a['p99_ms']:.1f} | "
                f"{b['rps']:.0f}, {b['p50_ms']:.1f} / {b['p99_ms']:.1f} | {b['p50_ms'] / a['p50_ms']:.2f}x |"
            )
        lines.append("")
    lines += [
        "## Memory",
        "",
    ]
    for server, rss in report.get("peak_rss_mib", {}).items():
        lines.append(f"- {server}: peak RSS per worker " + ", ".join(f"{r:.0f} MiB" for r in rss))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
