"""Two ways to run the fake gateway: `Sandbox` in a background thread, `serve` in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import signal
import threading
from collections.abc import Callable

from campaign_runner.sandbox.config import SandboxConfig, base_url
from campaign_runner.sandbox.fake_gateway import FakeGateway
from campaign_runner.sandbox.faults import Faults
from campaign_runner.sandbox.messages_api import API_PATH


class Sandbox:
    """A sandbox gateway running in a background thread (its own event loop)."""

    def __init__(self, config: SandboxConfig, echo: Callable[[str], None] | None = None):
        self.config = config
        self._echo = echo
        self._gateway = FakeGateway(config, echo)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> Sandbox:
        """Start serving and return once listening (port 0 binds a free port)."""
        if self._thread is not None:
            return self
        listening = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self._gateway.run(self._stop, lambda port: listening.set())

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # handed to start(), which raises it in the caller
                failure.append(exc)
            finally:
                listening.set()

        self._thread = threading.Thread(target=run, name="sandbox-gateway", daemon=True)
        self._thread.start()
        listening.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        if self._echo is not None:
            for line in self._gateway.banner():
                self._echo(line)
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and the record file; safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        thread.join()

    @property
    def url(self) -> str:
        """The base address, e.g. http://127.0.0.1:8787."""
        if self._gateway.port is None:
            raise RuntimeError("the sandbox is not started")
        return base_url(self.config.host, self._gateway.port)

    @property
    def messages_url(self) -> str:
        """Where a sender posts messages: url + /api/Messages."""
        return self.url + API_PATH

    def messages(self) -> list[dict]:
        """Copies of the accepted messages so far, in arrival order."""
        return copy.deepcopy(self._gateway.records.all())

    def set_faults(self, faults: Faults) -> None:
        """Change the faults while running; the next request sees them (thread-safe)."""
        self._gateway.set_faults(faults)

    def set_idempotency(self, honour: bool) -> None:
        """Start or stop answering a repeated Idempotency-Key with its first answer."""
        self._gateway.api.idempotency = honour

    def message_count(self) -> int:
        """How many messages were accepted so far (cheaper than `messages()`)."""
        return len(self._gateway.records.all())

    def webhooks(self) -> list[dict]:
        """The status webhooks posted so far, the last MAX_LOGGED, oldest first: wamid,
        status, code (of a failed), recipient_id, duplicate, attempts, answer (HTTP status
        or why none), outcome (posted, gave-up, dropped), at. Empty without webhooks."""
        poster = self._gateway.poster
        return poster.log.posts() if poster is not None else []

    def webhook_counts(self) -> dict[str, int]:
        """How many statuses are pending, posted, given up and dropped, and attempts made."""
        poster = self._gateway.poster
        return poster.log.snapshot() if poster is not None else {}

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(config: SandboxConfig, echo: Callable[[str], None]) -> None:
    """Run in the foreground until Ctrl-C or SIGTERM, echoing where it listens and each request."""
    gateway = FakeGateway(config, echo)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Not the main thread, or Windows: Ctrl-C arrives as KeyboardInterrupt.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)

        def announce(port: int) -> None:
            for line in gateway.banner():
                echo(line)

        await gateway.run(stop, announce)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    echo("sandbox stopped")
