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
  flight, the next requests wait for the reset, so the limit is met without a 429. A reset
  further away than `max_wait` (the source's `max_retry_wait`) is not waited for: the next
  request fails with `WaitTooLong` instead of sleeping past the page deadline (an API that says
  `Remaining: 0` with a reset a day away); a walk that needs no further request is not failed.
"""

from __future__ import annotations

import math
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


class WaitTooLong(Exception):
    """The API's limit is spent and its reset is further away than the pacer may wait."""

    def __init__(self, wait: AnnouncedWait, spent: str, max_wait: float) -> None:
        super().__init__(f"{spent}; the reset is {wait} away, over {max_wait:g} s")
        self.wait, self.spent, self.max_wait = wait, spent, max_wait


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


def remaining_header(response: requests.Response) -> tuple[str, int] | None:
    """The header that says how many requests are left, and the number."""
    found = _header(response, REMAINING_HEADERS)
    if found is None or not _NUMBER.match(found[1]):
        return None
    return found[0], int(float(found[1]))


def remaining(response: requests.Response) -> int | None:
    found = remaining_header(response)
    return None if found is None else found[1]


class RateLimitPacer:
    """The one gate every request of a source passes: holds sends while the API's limit is spent."""

    def __init__(self, max_wait: float = math.inf) -> None:
        self._lock = threading.Lock()
        self._resume_at = 0.0  # time.monotonic() before which no request leaves
        self._in_flight = 0
        self.max_wait = max_wait  # the longest reset waited for; past it, `WaitTooLong`
        # A reset past `max_wait`: the next request before it fails (not waited for).
        self._refused: tuple[AnnouncedWait, str] | None = None
        self._refused_until = 0.0
        self.waited_seconds = 0.0  # for messages and benchmarks

    def before_send(self) -> None:
        with self._lock:
            if self._refused is not None and time.monotonic() < self._refused_until:
                raise WaitTooLong(*self._refused, self.max_wait)
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
        left = remaining_header(response)
        if left is None or left[1] > others:
            return
        # The requests already in flight may spend what is left: the next wait for the reset.
        wait = reset_in(response)
        if wait is None or wait.seconds <= 0:
            return
        if wait.seconds > self.max_wait:
            spent = f"{left[0]}: {left[1]}"
            with self._lock:
                self._refused = (wait, spent)
                self._refused_until = time.monotonic() + wait.seconds
            return
        self.hold(wait.seconds)

    def hold(self, seconds: float) -> None:
        """No request leaves for `seconds` from now (on any worker)."""
        with self._lock:
            resume_at = time.monotonic() + seconds
            if resume_at > self._resume_at:
                self.waited_seconds += resume_at - max(self._resume_at, time.monotonic())
                self._resume_at = resume_at
