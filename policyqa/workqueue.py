"""A bounded work queue with admission control: the back-pressure of ``/ask``.

Answering a question takes hundreds of milliseconds of both cores (the reader and the encoders
run several threads each), so running many answers at once only makes every one of them slower.
:class:`WorkQueue` runs at most ``workers`` jobs at once on threads of its own and lets at most
``max_waiting`` more wait. A job is admitted only when it can be expected to start within
``max_wait_s``: the jobs ahead of it times the queue's pace, the time between two jobs' ends
while others wait (their mean, measured under load, so it counts the CPU that other work takes; until it has
been seen a few times, the median run time shared by the workers). Otherwise it is refused at
once with :class:`ServiceBusyError`, which says after how many seconds to retry. Callers wait
for their job with a deadline (:meth:`WorkQueue.run`, or ``asyncio.wrap_future`` on
:meth:`WorkQueue.submit`); a caller whose deadline passes cancels its job, which then never
runs if it has not started.

The clients of a saturated service therefore see either an answer within the deadline or an
immediate 503 with ``Retry-After``, and the throughput stays that of ``workers`` jobs at once.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

__all__ = ["DeadlineExceededError", "ServiceBusyError", "WorkQueue"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Run times (and paces) remembered for the estimates (the median of these).
_RECENT = 32
#: Paces seen before they replace the run-time estimate.
_MIN_PACES = 5


class ServiceBusyError(RuntimeError):
    """The queue is full (or would make the job wait too long): retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class DeadlineExceededError(ServiceBusyError):
    """The job did not finish within its deadline (it is dropped if it has not started)."""


class WorkQueue:
    """At most ``workers`` jobs at once, at most ``max_waiting`` waiting, none waiting longer than
    ``max_wait_s`` (see the module docstring). ``expected_s`` is the run time assumed until jobs
    have been timed. ``nice`` > 0 lowers the scheduling priority of the worker threads (and of
    the threads their libraries start from them, such as torch's OpenMP team), so that the
    server's other work (searches, health checks, refusals) keeps the CPU it needs."""

    def __init__(
        self,
        *,
        workers: int,
        max_waiting: int,
        max_wait_s: float,
        name: str = "work",
        expected_s: float = 0.5,
        nice: int = 0,
    ) -> None:
        if workers < 1 or max_waiting < 0 or max_wait_s <= 0:
            raise ValueError("need workers >= 1, max_waiting >= 0 and max_wait_s > 0")
        self.workers = workers
        self.max_waiting = max_waiting
        self.max_wait_s = max_wait_s
        self.name = name
        self.nice = nice
        self._expected_s = expected_s
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_system = 0  # admitted and not finished (running + waiting)
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._paces: deque[float] = deque(maxlen=_RECENT)  # seconds between ends while jobs waited
        self._last_end: float | None = None
        self._served = 0
        self._refused = 0
        self._expired = 0
        self._closed = False

    # -- state --------------------------------------------------------------------------------
    def _pace(self) -> float:
        """Seconds per finished job while the queue is busy (call with the lock held)."""
        if len(self._paces) >= _MIN_PACES:  # the mean: workers in step end in pairs (0 s, then a run)
            return statistics.fmean(self._paces)
        run_s = statistics.median(self._recent) if self._recent else self._expected_s
        return run_s / self.workers

    @property
    def run_time_s(self) -> float:
        """The run time the admission assumes: the median of the recent jobs' run times."""
        with self._lock:
            return statistics.median(self._recent) if self._recent else self._expected_s

    def stats(self) -> dict[str, Any]:
        """Running, waiting, served, refused and expired counts and the assumed run time."""
        with self._lock:
            running = min(self._in_system, self.workers)
            return {
                "workers": self.workers,
                "running": running,
                "waiting": self._in_system - running,
                "max_waiting": self.max_waiting,
                "max_wait_s": self.max_wait_s,
                "served": self._served,
                "refused": self._refused,
                "expired": self._expired,  # deadline missed
                "run_time_s": round(statistics.median(self._recent) if self._recent else self._expected_s, 4),
                "pace_s": round(self._pace(), 4),
            }

    # -- submitting -----------------------------------------------------------------------------
    def _refusal(self) -> ServiceBusyError | None:
        """Why a job submitted now would be refused, or None (call with the lock held)."""
        if self._closed:
            return ServiceBusyError(f"the {self.name} queue is shut down", retry_after=5)
        ahead = max(0, self._in_system - self.workers + 1)  # jobs to finish before this one starts
        wait_s = ahead * self._pace()
        if self._in_system >= self.workers and (ahead > self.max_waiting or wait_s > self.max_wait_s):
            return ServiceBusyError(
                f"too many {self.name} requests at once ({self._in_system} in progress or waiting); "
                f"retry in {max(1, math.ceil(wait_s))} s",
                retry_after=wait_s,
            )
        return None

    def refusal(self) -> ServiceBusyError | None:
        """Why a job submitted now would be refused (counted as refused), or None. A caller may
        ask this before doing any work for the job (reading its request), so that a refusal
        costs next to nothing; :meth:`submit` decides again."""
        with self._lock:
            refused = self._refusal()
            if refused is not None:
                self._refused += 1
            return refused

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Admit ``fn(*args, **kwargs)`` or raise :class:`ServiceBusyError` at once."""
        with self._lock:
            refused = self._refusal()
            if refused is not None:
                self._refused += 1
                raise refused
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.workers, thread_name_prefix=f"policyqa-{self.name}", initializer=self._init_thread
                )
            self._in_system += 1
            executor = self._executor
        try:
            future = executor.submit(self._run, fn, args, kwargs)
        except RuntimeError:  # the executor shut down meanwhile
            self._finished(None)
            raise ServiceBusyError(f"the {self.name} queue is shut down", retry_after=5) from None
        future.add_done_callback(self._on_done)
        return future

    def run(self, fn: Callable[..., T], *args: Any, deadline_s: float, **kwargs: Any) -> T:
        """Run ``fn`` through the queue and wait for it at most ``deadline_s`` seconds (from now):
        its result, or :class:`ServiceBusyError` (refused at once) or
        :class:`DeadlineExceededError`."""
        future = self.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=deadline_s)
        except FutureTimeout:
            future.cancel()
            raise self.deadline_error(deadline_s) from None

    def deadline_error(self, deadline_s: float) -> DeadlineExceededError:
        """The error of a job that missed its deadline of ``deadline_s`` seconds."""
        with self._lock:
            self._expired += 1
        return DeadlineExceededError(
            f"the {self.name} did not finish within the deadline of {deadline_s:g} s; the server is "
            "busy, retry shortly",
            retry_after=self.run_time_s * 2,
        )

    def close(self) -> None:
        """Refuse new jobs; jobs that have not started are dropped, running ones finish."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- inside -------------------------------------------------------------------------------
    def _init_thread(self) -> None:
        if self.nice > 0:
            try:  # Linux: a thread's own nice value (PRIO_PROCESS with its thread id)
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except (OSError, AttributeError) as exc:  # not permitted, or not Linux: run as is
                logger.debug("cannot lower the priority of %s workers: %s", self.name, exc)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._finished(time.perf_counter() - t0)

    def _finished(self, run_s: float | None) -> None:
        """A job ran for ``run_s`` seconds (None: it never ran)."""
        now = time.monotonic()
        with self._lock:
            if run_s is None:
                return
            self._recent.append(run_s)
            self._served += 1
            if self._in_system > self.workers and self._last_end is not None:
                # others waited: the queue's pace (a gap of idle time before is not pace)
                self._paces.append(min(now - self._last_end, run_s))
            self._last_end = now

    def _on_done(self, future: Future[Any]) -> None:
        with self._lock:
            self._in_system -= 1
