"""Meta's side for bench.py's `webhook` section: signed status webhooks, one status a POST.

Run by bench.py as its own process, so the receiver and the load pay for their own CPU:

    python webhook_load.py post --port PORT --secret S --first I --messages N
                                [--connections C] [--rate R]
    python webhook_load.py ledger --state FOLDER --messages N   (the deliveries, first)
    python webhook_load.py file --out FILE --first I --messages N   (for `campaign ingest`)

For each message I..I+N-1 (wamid `wamid.BENCH<I>`) it posts `sent`, `delivered` and `read`
(3 N POSTs), each a whole Meta payload signed with X-Hub-Signature-256, over C keep-alive
connections (raw HTTP/1.1 on asyncio: the cheapest client, since the machine may have two
cores). Requests are built and signed before the clock starts. Without --rate each
connection posts as soon as its last answer came (the receiver's ceiling); with --rate R
requests are due at R per second whatever the answers (an open loop), and each answer
time counts from when its request was due, waiting for a free connection included.

Prints one JSON line: posted, ok (200s), other answers by code, seconds, and answer-time
percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import hmac
import json
import time
from collections import Counter

STATUSES = ("sent", "delivered", "read")
FIRST_TIMESTAMP = 1_790_000_000  # 2026-09: Unix seconds, as Meta sends them


def phone(i: int) -> str:
    """The I-th recipient, as bench.phone (without the +, as Meta writes wa_ids)."""
    return f"55119{70_000_000 + i:08d}"


def wamid(i: int) -> str:
    return f"wamid.BENCH{i:08d}"


def status_payload(i: int, status: str) -> dict:
    """One status webhook as Meta posts it (one status per payload)."""
    item = {
        "id": wamid(i),
        "status": status,
        "timestamp": str(FIRST_TIMESTAMP + i + STATUSES.index(status)),
        "recipient_id": phone(i),
        "conversation": {"id": f"conv{i % 997:06d}", "origin": {"type": "marketing"}},
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "marketing"},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
        "statuses": [item],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def payloads(first: int, messages: int):
    """The payloads, in waves of a few hundred messages: their sent, then delivered, then
    read (as Meta reports a campaign going out), so a batch rarely holds one wamid twice."""
    wave = 500
    for start in range(first, first + messages, wave):
        end = min(first + messages, start + wave)
        for status in STATUSES:
            for i in range(start, end):
                yield status_payload(i, status)


def requests(port: int, secret: str, first: int, messages: int) -> list[bytes]:
    """Each POST, whole: request line, headers (the signature among them) and body."""
    built = []
    key = secret.encode()
    for doc in payloads(first, messages):
        body = json.dumps(doc, separators=(",", ":")).encode()
        signature = hmac.new(key, body, hashlib.sha256).hexdigest()
        head = (
            f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nUser-Agent: facebookexternalua\r\n"
            f"X-Hub-Signature-256: sha256={signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        built.append(head.encode() + body)
    return built


class Connection:
    """One keep-alive connection: a request, then its whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return int(head.split(b" ", 2)[1])


async def connect(port: int, count: int) -> list[Connection]:
    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    return [Connection(reader, writer) for reader, writer in opened]


async def closed_loop(conns: list[Connection], todo: list[bytes]) -> tuple[Counter, list[float]]:
    """Each connection posts the next request as soon as its last answer came."""
    answers: Counter = Counter()
    times: list[float] = []
    items = iter(todo)

    async def work(conn: Connection) -> None:
        for request in items:
            started = time.perf_counter()
            answers[await conn.post(request)] += 1
            times.append(time.perf_counter() - started)

    await asyncio.gather(*(work(conn) for conn in conns))
    return answers, times


async def open_loop(
    conns: list[Connection], todo: list[bytes], rate: float
) -> tuple[Counter, list[float]]:
    """Requests due at RATE per second; each timed from when it was due."""
    answers: Counter = Counter()
    times: list[float] = []
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for conn in conns:
        free.put_nowait(conn)

    async def one(conn: Connection, request: bytes, due: float) -> None:
        answers[await conn.post(request)] += 1
        times.append(time.perf_counter() - due)
        free.put_nowait(conn)

    tasks: set[asyncio.Task] = set()
    started = time.perf_counter()
    for k, request in enumerate(todo):
        due = started + k / rate
        wait = due - time.perf_counter()
        if wait > 0.001:
            await asyncio.sleep(wait)
        conn = await free.get()
        task = asyncio.create_task(one(conn, request, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return answers, times


def percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main_async(args: argparse.Namespace) -> dict:
    todo = requests(args.port, args.secret, args.first, args.messages)
    conns = await connect(args.port, args.connections)
    # No collector pauses here: they would be counted as the receiver's answer times.
    gc.collect()
    gc.freeze()
    gc.disable()
    started = time.perf_counter()
    if args.rate:
        answers, times = await open_loop(conns, todo, args.rate)
    else:
        answers, times = await closed_loop(conns, todo)
    seconds = time.perf_counter() - started
    for conn in conns:
        conn.writer.close()
    return {
        "posted": len(todo),
        "ok": answers.pop(200, 0),
        "other": {str(code): n for code, n in answers.items()},
        "seconds": seconds,
        "p50_ms": percentile(times, 0.50),
        "p90_ms": percentile(times, 0.90),
        "p99_ms": percentile(times, 0.99),
        "max_ms": 1000 * max(times),
    }


def write_ledger(state: str, messages: int) -> dict:
    """A SQLite ledger in the folder STATE whose campaign sent MESSAGES messages, each with
    its wamid (what a run records), in blocks of one transaction each."""
    from pathlib import Path

    from campaign_runner.ledger.sqlite import SQLiteJournal, ledger_path

    journal = SQLiteJournal(ledger_path(Path(state)), "bench-webhooks")
    started = time.perf_counter()
    try:
        journal.start_run("bench", "2026-09-21T10:00:00.000+00:00")
        for start in range(0, messages, 5_000):
            block = range(start, min(messages, start + 5_000))
            journal.mark_sending([(f"k{i}", i + 1, f"+{phone(i)}") for i in block], "bench")
            for i in block:
                journal.record(f"k{i}", "sent", message_id=wamid(i), http_status=200)
        journal.flush()
    finally:
        journal.close()
    return {"deliveries": messages, "seconds": time.perf_counter() - started}


def write_file(path: str, first: int, messages: int) -> dict:
    """The same payloads as JSON Lines, as a gateway would log them (for `campaign ingest`)."""
    with open(path, "w", encoding="utf-8") as out:
        for doc in payloads(first, messages):
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")
    return {"lines": 3 * messages}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("post", "ledger", "file"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--secret")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, help="requests per second (an open loop)")
    parser.add_argument("--state", help="ledger: the state folder to write")
    parser.add_argument("--out", help="file: the JSON Lines file to write")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.what == "ledger":
        figures = write_ledger(args.state, args.messages)
    elif args.what == "file":
        figures = write_file(args.out, args.first, args.messages)
    else:
        try:  # the cheaper loop, when the receiver's dependencies brought it
            from uvloop import run
        except ImportError:
            from asyncio import run
        figures = run(main_async(args))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
