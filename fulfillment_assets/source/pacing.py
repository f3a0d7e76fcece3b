"""Pacing to the API's rate limit: the waits it announces, and slowing down before it is reached.

One `RateLimitPacer` is shared by every request of a source (all read-ahead workers send through
the one `PageDeadlineAdapter` that holds it):
- `announced_wait`: the wait a 429 asks for: `Retry-After` (seconds or an HTTP date), else a reset
  header (`X-RateLimit-Reset`, `X-Rate-Limit-Reset`, `RateLimit-Reset`). A reset value is read by
  magnitude: below 10^9 it is seconds until the reset (as IETF's RateLimit-Reset), from 10^9 an
  epoch in seconds (GitHub, Twitter), from 10^12 an epoch in milliseconds. An epoch is read against
  the API's own `Date` header when the two clocks differ by more than 2 s;
- `hold`: no request leaves before the announced wait is over, on any worker;
- `observe`: when a `*-Remaining` header says no more requests are left than are already in
  flight, the next requests wait for the reset, so the limit is met without a 429.
"""

from __future__ import annotations

import re
import threading
import time
from email.utils import mktime_tz, parsedate_tz

import requests

RESET_HEADERS = ("X-RateLimit-Reset", "X-Rate-Limit-Reset", "RateLimit-Reset")
REMAINING_HEADERS = ("X-RateLimit-Remaining", "X-Rate-Limit-Remaining", "RateLimit-Remaining")
_NUMBER = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*$")
_EPOCH_SECONDS = 1e9  # 2001-09-09: no window lasts 31 years, so a larger value is an epoch
_EPOCH_MILLISECONDS = 1e12
_CLOCK_SKEW_SECONDS = 2.0


class AnnouncedWait:
    """A wait the API asked for: how long, and the header that said so (for messages)."""

    def __init__(self, seconds: float, header: str, value: str) -> None:
        self.seconds, self.header, self.value = seconds, header, value

    def __str__(self) -> str:
        return f"{self.seconds:.1f} s ({self.header}: {self.value[:40]})"


def _header(response: requests.Response, names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = response.headers.get(name)
        if value:
            return name, value
    return None


def _server_now(response: requests.Response) -> float:
    """Our clock, or the API's `Date` when the two differ by more than a little."""
    now = time.time()
    date = parsedate_tz(response.headers.get("Date", "") or "")
    if date is not None:
        server = float(mktime_tz(date))
        if abs(server - now) > _CLOCK_SKEW_SECONDS:
            return server
    return now


def reset_in(response: requests.Response) -> AnnouncedWait | None:
    """Seconds until the rate-limit window resets, from a reset header (see the module doc)."""
    found = _header(response, RESET_HEADERS)
    if found is None or not _NUMBER.match(found[1]):
        return None
    value = float(found[1])
    if value >= _EPOCH_MILLISECONDS:
        value = value / 1000 - _server_now(response)
    elif value >= _EPOCH_SECONDS:
        value = value - _server_now(response)
    return AnnouncedWait(max(0.0, value), *found)


def announced_wait(response: requests.Response) -> AnnouncedWait | None:
    """The wait a 429 asks for: `Retry-After` first (as dlt reads it), else a reset header."""
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        if _NUMBER.match(retry_after):
            return AnnouncedWait(float(retry_after), "Retry-After", retry_after)
        date = parsedate_tz(retry_after)
        if date is not None:
            seconds = max(0.0, mktime_tz(date) - _server_now(response))
            return AnnouncedWait(seconds, "Retry-After", retry_after)
    return reset_in(response)


def remaining(response: requests.Response) -> int | None:
    found = _header(response, REMAINING_HEADERS)
    if found is None or not _NUMBER.match(found[1]):
        return None
    return int(float(found[1]))


class RateLimitPacer:
    """The one gate every request of a source passes: holds sends while the API's limit is spent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resume_at = 0.0  # time.monotonic() before which no request leaves
        self._in_flight = 0
        self.waited_seconds = 0.0  # for messages and benchmarks

    def before_send(self) -> None:
        with self._lock:
            delay = self._resume_at - time.monotonic()
            self._in_flight += 1
        if delay > 0:
            time.sleep(delay)

    def after_response(self, response: requests.Response | None) -> None:
        with self._lock:
            self._in_flight -= 1
            others = self._in_flight
        if response is None or response.status_code == 429:
            return
        left = remaining(response)
        if left is None or left > others:
            return
        # The requests already in flight may spend what is left: the next wait for the reset.
        wait = reset_in(response)
        if wait is not None and wait.seconds > 0:
            self.hold(wait.seconds)

    def hold(self, seconds: float) -> None:
        """No request leaves for `seconds` from now (on any worker)."""
        with self._lock:
            resume_at = time.monotonic() + seconds
            if resume_at > self._resume_at:
                self.waited_seconds += resume_at - max(self._resume_at, time.monotonic())
                self._resume_at = resume_at
