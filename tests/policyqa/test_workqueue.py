"""The answer queue: at most `workers` at once, a bounded wait, refusals at once, deadlines."""

from __future__ import annotations

import threading
import time

import pytest

from policyqa.workqueue import DeadlineExceededError, ServiceBusyError, WorkQueue


class Gate:
    """Jobs that block until released, so a test controls what runs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def job(self, value: int) -> int:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.release()
        self.release.wait(10)
        with self._lock:
            self.running -= 1
        return value * 2


def test_runs_at_most_workers_at_once_and_returns_results() -> None:
    q = WorkQueue(workers=2, max_waiting=10, max_wait_s=10, name="t", expected_s=0.01)
    gate = Gate()
    futures = [q.submit(gate.job, i) for i in range(6)]
    assert gate.started.acquire(timeout=5) and gate.started.acquire(timeout=5)
    time.sleep(0.05)
    assert gate.running == 2 and q.stats()["running"] == 2 and q.stats()["waiting"] == 4
    gate.release.set()
    assert [f.result(5) for f in futures] == [0, 2, 4, 6, 8, 10]
    assert gate.most == 2
    stats = q.stats()
    assert stats["served"] == 6 and stats["refused"] == 0 and stats["running"] == stats["waiting"] == 0
    q.close()


def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    q = WorkQueue(workers=1, max_waiting=2, max_wait_s=100, name="t", expected_s=1.5)
    gate = Gate()
    admitted = [q.submit(gate.job, i) for i in range(3)]  # one runs, two wait
    assert gate.started.acquire(timeout=5)
    t0 = time.perf_counter()
    with pytest.raises(ServiceBusyError) as refused:
        q.submit(gate.job, 9)
    assert time.perf_counter() - t0 < 0.05  # at once
    # three jobs ahead of it at 1.5 s each, one worker: retry after 5 s (4.5 rounded up)
    assert refused.value.retry_after == 5
    assert q.stats()["refused"] == 1
    gate.release.set()
    assert [f.result(5) for f in admitted] == [0, 2, 4]
    q.close()


def test_a_job_that_would_wait_too_long_is_refused_at_once() -> None:
    # expected run 1 s, two workers: the third job would wait 0.5 s, the fifth 1.5 s
    q = WorkQueue(workers=2, max_waiting=100, max_wait_s=1.0, name="t", expected_s=1.0)
    gate = Gate()
    admitted = [q.submit(gate.job, i) for i in range(4)]  # 2 run; waits 0.5 and 1.0 s: admitted
    with pytest.raises(ServiceBusyError):
        q.submit(gate.job, 4)  # would wait 1.5 s
    gate.release.set()
    assert [f.result(5) for f in admitted] == [0, 2, 4, 6]
    q.close()


def test_the_run_time_estimate_is_the_median_of_recent_jobs() -> None:
    q = WorkQueue(workers=1, max_waiting=1, max_wait_s=1, name="t", expected_s=7.0)
    assert q.run_time_s == 7.0
    for d in (0.01, 0.03, 0.02):
        q.submit(time.sleep, d).result(5)
    assert 0.015 < q.run_time_s < 0.05  # the median, 0.02 s, plus scheduling
    q.close()


def test_a_job_whose_deadline_passed_before_it_started_never_runs() -> None:
    q = WorkQueue(workers=1, max_waiting=5, max_wait_s=5, name="t", expected_s=0.001)
    gate = Gate()
    first = q.submit(gate.job, 1)
    assert gate.started.acquire(timeout=5)
    ran: list[int] = []
    with pytest.raises(DeadlineExceededError):
        q.run(ran.append, 2, deadline_s=0.1)  # stuck behind the first, then given up
    gate.release.set()
    assert first.result(5) == 2
    time.sleep(0.1)
    assert ran == [] and q.stats()["expired"] == 1 and q.stats()["served"] == 1
    assert q.stats()["running"] == q.stats()["waiting"] == 0
    q.close()


def test_the_pace_under_load_replaces_the_run_time_estimate() -> None:
    """Two workers, jobs of 50 ms, six queued: ends come every ~25 ms while others wait."""
    q = WorkQueue(workers=2, max_waiting=50, max_wait_s=50, name="t", expected_s=5.0)
    assert q.stats()["pace_s"] == 2.5  # 5 s shared by 2 workers, before anything ran
    for f in [q.submit(time.sleep, 0.05) for _ in range(8)]:
        f.result(5)
    pace = q.stats()["pace_s"]
    assert 0.015 < pace < 0.05, pace
    q.close()


def test_run_waits_for_the_deadline_only() -> None:
    q = WorkQueue(workers=1, max_waiting=5, max_wait_s=5, name="t", expected_s=0.01)
    gate = Gate()
    t0 = time.perf_counter()
    with pytest.raises(DeadlineExceededError) as late:
        q.run(gate.job, 1, deadline_s=0.2)
    assert 0.2 <= time.perf_counter() - t0 < 1.0
    assert isinstance(late.value, ServiceBusyError) and late.value.retry_after >= 1
    gate.release.set()
    assert q.run(lambda: 42, deadline_s=5) == 42
    q.close()


def test_exceptions_of_the_job_reach_the_caller_and_free_the_slot() -> None:
    q = WorkQueue(workers=1, max_waiting=0, max_wait_s=5, name="t")

    def boom() -> None:
        raise ValueError("bad question")

    with pytest.raises(ValueError, match="bad question"):
        q.run(boom, deadline_s=5)
    assert q.run(lambda: "ok", deadline_s=5) == "ok"  # the slot is free again
    q.close()
    with pytest.raises(ServiceBusyError, match="shut down"):
        q.submit(lambda: None)


def test_bad_sizes_are_refused() -> None:
    for kwargs in (
        {"workers": 0, "max_waiting": 1, "max_wait_s": 1.0},
        {"workers": 1, "max_waiting": -1, "max_wait_s": 1.0},
    ):
        with pytest.raises(ValueError):
            WorkQueue(**kwargs)  # type: ignore[arg-type]
