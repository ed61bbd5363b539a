"""Tell a chat channel about incidents: Slack-compatible JSON POSTs from a background thread.

The agent's request only puts a message on a queue; one daemon thread sends it, with a timeout
per attempt and retries with growing waits, and logs what failed. A webhook that is down never
slows or fails a suggestion.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)
FIRST_WAIT = 1.0  # seconds before the first retry; doubled before each next one


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What became of one message: delivered or not, after how many attempts."""

    text: str
    delivered: bool
    attempts: int


class Webhook:
    """Send messages to one URL in order, off the caller's thread."""

    def __init__(self, url: str, *, timeout: float, retries: int,
                 first_wait: float = FIRST_WAIT) -> None:
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.first_wait = first_wait
        self.deliveries: list[Delivery] = []  # the latest few, for the console and tests
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def send(self, text: str) -> None:
        """Queue `text` for the channel; returns at once."""
        if not self.url:
            return
        self._queue.put(text)
        with self._start_lock:
            # Started on first use, so each gunicorn worker (after the fork) has its own.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="incident-webhook",
                                                daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued message was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _run(self) -> None:
        while True:
            text = self._queue.get()
            try:
                self._deliver(text)
            except Exception:  # the thread must outlive any one message
                log.exception("incident webhook: could not send %r", text[:80])
            finally:
                self._queue.task_done()

    def _deliver(self, text: str) -> None:
        body = json.dumps(_slack_message(text), ensure_ascii=False).encode("utf-8")
        wait = self.first_wait
        for attempt in range(1, self.retries + 2):
            try:
                self._post(body)
            except (OSError, urllib.error.URLError) as exc:
                log.warning("incident webhook: attempt %d of %d to %s failed: %s", attempt,
                            self.retries + 1, self.url, exc)
                if attempt <= self.retries:
                    time.sleep(wait)
                    wait *= 2
                continue
            self._remember(Delivery(text=text, delivered=True, attempts=attempt))
            return
        log.error("incident webhook: gave up on %s after %d attempts; the message was: %s",
                  self.url, self.retries + 1, text)
        self._remember(Delivery(text=text, delivered=False, attempts=self.retries + 1))

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            response.read()

    def _remember(self, delivery: Delivery) -> None:
        self.deliveries = [*self.deliveries[-49:], delivery]


def _slack_message(text: str) -> dict[str, object]:
    """Slack's incoming-webhook shape: `text` for notifications, one mrkdwn block to read."""
    return {"text": text, "blocks": [{"type": "section",
                                      "text": {"type": "mrkdwn", "text": text}}]}
