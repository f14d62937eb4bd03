"""The yardstick for bench.py: POST pre-built bodies with a bare httpx client, nothing else.

Run by bench.py as its own process (like the runner) so both pay for their own CPU:

    python bare_loop.py --url URL --bodies FILE.jsonl --apikey KEY
                        [--mode sync|async] [--concurrency N] [--limit N]

FILE.jsonl holds one request body per line (what `campaign preview --format jsonl` prints).
Prints one JSON line: how many were posted, how many got a 200, and the seconds the POST loop
took (clients are built before the clock starts, with one shared TLS context, as the runner does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
import uuid

import httpx


def read_requests(path: str, limit: int | None) -> list[tuple[bytes, dict[str, str]]]:
    """Each body as the bytes to send, with the per-request header the runner also sends."""
    requests = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and len(requests) >= limit:
                break
            body = json.dumps(json.loads(line), ensure_ascii=False, separators=(",", ":")).encode()
            requests.append((body, {"Idempotency-Key": str(uuid.uuid4())}))
    return requests


def post_sync(url: str, headers: dict[str, str], requests) -> tuple[int, float]:
    """One `httpx.Client`, one keep-alive connection, one request after the other."""
    ok = 0
    with httpx.Client(headers=headers, timeout=30, trust_env=False) as client:
        started = time.perf_counter()
        for body, extra in requests:
            ok += client.post(url, content=body, headers=extra).status_code == 200
        return ok, time.perf_counter() - started


async def post_async(url: str, headers: dict[str, str], requests, concurrency: int):
    """CONCURRENCY workers, each with its own single-connection `httpx.AsyncClient`."""
    queue = iter(requests)
    ok = 0
    tls = ssl.create_default_context()  # one for all: building one costs ~30 ms
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(headers=headers, timeout=30, limits=limits, verify=tls, trust_env=False)
        for _ in range(concurrency)
    ]

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        for body, extra in queue:  # a shared iterator: each request goes to one worker
            response = await client.post(url, content=body, headers=extra)
            ok += response.status_code == 200

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    seconds = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    return ok, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--apikey", required=True)
    parser.add_argument("--version", default="4.0")
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    headers = {"apikey": args.apikey, "version": args.version, "Content-Type": "application/json"}
    requests = read_requests(args.bodies, args.limit)
    if args.mode == "sync":
        ok, seconds = post_sync(args.url, headers, requests)
    else:
        ok, seconds = asyncio.run(post_async(args.url, headers, requests, args.concurrency))
    json.dump({"posted": len(requests), "ok": ok, "seconds": seconds}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
