"""CPU per request: intake and accept, one at a time, through the app in this process.

Throughput on a small machine is CPU over CPU per request, so this is the figure to watch while
changing the hot paths: it has no load generator, no other process and no queueing in it. The
requests go over ASGI (httpx) with the full stack on, against a scratch PostgreSQL database with
the demo data, and the process's user and system CPU time is divided by the request count (the
test client's share, a millisecond or two, is included); so is PostgreSQL's, read from /proc.

Run: .venv/bin/python bench/cpu.py [--requests 300] [--only intake] [--batches 6] [--admin-dsn ...]
It also reports the collector's pauses by generation: a full collection pauses every request in
the process, so its length matters to the slowest requests.
To see where the time goes: py-spy record -f raw -o out.txt -- .venv/bin/python bench/cpu.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

import httpx
import run
import seed

from mediation.app import create_app
from mediation.core.pii import PiiCipher

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CATEGORIES = ("debt", "contract", "labour", "neighbour", "consumer", "damages")


def resident_id(serial: int) -> str:
    """A valid ID number (GB 11643 check digit) of someone born in 诸暨市 from 1990 on."""
    born = date(1990, 1, 1) + timedelta(days=serial % 9000)
    first = f"330681{born:%Y%m%d}{(serial // 9000) % 1000:03d}"
    return first + "10X98765432"[sum(int(c) * w for c, w in zip(first, WEIGHTS, strict=True)) % 11]


def intake_body(k: int) -> str:
    serial = 700_000 + k

    def party(role: str, n: int) -> dict[str, object]:
        return {
            "role": role,
            "kind": "person",
            "name": "王" + "伟芳娜敏静"[n % 5],
            "id_type": "resident_id",
            "id_number": resident_id(n),
            "phone": f"139{n % 100_000_000:08d}",
            "address": "浙江省诸暨市",
        }

    return json.dumps(
        {
            "category": CATEGORIES[k % len(CATEGORIES)],
            "description": f"双方因{serial}号合同履行发生争执, 申请调解。",
            "channel": "window",
            "region_code": f"330681101{200 + k % 20:03d}",
            "amount_in_dispute": f"{1000 + k}.00",
            "people_involved": 2,
            "parties": [party("applicant", 2 * serial), party("respondent", 2 * serial + 1)],
        }
    )


class Pauses:
    """The collector's pauses by generation, while it is on (gc.callbacks)."""

    def __init__(self) -> None:
        self.by_generation: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.by_generation[info["generation"]].append((time.perf_counter() - self._started) * 1000)

    def line(self) -> str:
        return ", ".join(
            f"gen{g} {len(p)} x (max {max(p, default=0):.2f} ms)" for g, p in self.by_generation.items()
        )


async def measure(label: str, count: int, one: Callable[[int], Awaitable[None]], batches: int = 1) -> None:
    """`count` requests after a warm-up, reported per batch of `count // batches`: a cost that grows
    with the data the requests add (an early-warning wave, say) shows as batches that cost more."""
    for k in range(10):  # warm up: first requests build routes, prepared statements, caches
        await one(k)
    size = max(1, count // batches)
    for batch in range(batches):
        first = 10 + batch * size
        pauses = Pauses()
        gc.callbacks.append(pauses)
        database = run._Spent(())  # PostgreSQL's backends' CPU over the same requests
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        for k in range(first, first + size):
            await one(k)
        wall = (time.perf_counter() - started) / size * 1000
        after = resource.getrusage(resource.RUSAGE_SELF)
        gc.callbacks.remove(pauses)
        user = (after.ru_utime - before.ru_utime) / size * 1000
        system = (after.ru_stime - before.ru_stime) / size * 1000
        postgres = database.since()["postgres"] / size * 1000
        print(
            f"{label:8s} {size} requests: {wall:6.2f} ms each, CPU {user + system:6.2f} ms "
            f"(user {user:.2f}, system {system:.2f}), PostgreSQL {postgres:6.2f} ms",
            flush=True,
        )
        print(f"{'':8s} collector pauses: {pauses.line()}", flush=True)


async def main(args: argparse.Namespace) -> None:
    name, dsn, settings = await run.prepare(args.admin_dsn, Path(tempfile.mkdtemp()))
    try:
        cipher = PiiCipher.from_secrets(str(settings.pii_encryption_keys), str(settings.pii_index_key))
        cases = await seed.pool(dsn, cipher, "registered", args.requests + 20, seed.POOL_FIRST_COPY)
        # One client sends everything: the per-principal rate limit is lifted, as for `make bench`.
        app = create_app(settings.model_copy(update={"rate_limit_per_minute": 100_000_000}))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cpu") as client,
        ):
            token = await client.post(
                "/v1/auth/token", json={"username": "clerk", "password": "clerk-demo-2026"}
            )
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

            async def accept(k: int) -> None:
                case, version = cases[k]
                response = await client.post(
                    f"/v1/disputes/{case}/actions/accept",
                    json={"note": None},
                    headers={**auth, "If-Match": f'"{version}"'},
                )
                assert response.status_code == 200, response.text

            async def intake(k: int) -> None:
                response = await client.post(
                    "/v1/disputes",
                    content=intake_body(k),
                    headers={**auth, "Content-Type": "application/json"},
                )
                assert response.status_code == 201, response.text

            if args.only in (None, "accept"):
                await measure("accept", args.requests, accept, args.batches)
            if args.only in (None, "intake"):
                await measure("intake", args.requests, intake, args.batches)
    finally:
        await run._drop(args.admin_dsn, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-dsn", default=run.ADMIN_DSN)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--only", choices=("accept", "intake"), help="measure one of the two")
    parser.add_argument(
        "--batches", type=int, default=1, help="report the requests in this many batches, in order"
    )
    asyncio.run(main(parser.parse_args()))
