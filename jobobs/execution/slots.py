"""The runtime's slots: the threads that take queued jobs, one at a time each, and the queue
they take them from; and the jobs queued for later (``Later``)."""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable


class Slots:
    """``count`` threads, each calling ``take(job_id)`` for the next queued job; a thread
    ends when ``take`` returns True (it was abandoned with a hung job, and replaced)."""

    def __init__(self, count: int, take: Callable[[int], bool]):
        self._take = take
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._made = 0
        for _ in range(count):
            self.add()

    def put(self, job_id: int) -> None:
        """Queue a job for the next free slot."""
        self._queue.put(job_id)

    def add(self) -> None:
        """One more slot thread (one replaces each thread abandoned with a hung job)."""
        self._made += 1
        thread = threading.Thread(target=self._run, daemon=True,
                                  name=f"jobobs-worker-{self._made - 1}")
        self._threads.append(thread)
        thread.start()

    def replace(self, thread: threading.Thread | None) -> None:
        """Let go of a thread abandoned with a hung job (a close does not wait for it), and
        add one in its place."""
        if thread in self._threads:
            self._threads.remove(thread)
        self.add()

    def drain(self) -> list[int]:
        """Take the jobs no slot has taken yet off the queue."""
        drained = []
        while True:
            try:
                job_id = self._queue.get_nowait()
            except queue.Empty:
                return drained
            if job_id is not None:
                drained.append(job_id)

    def stop(self, deadline: float) -> None:
        """Let each thread end once its job has (waiting until ``deadline``, monotonic)."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while (job_id := self._queue.get()) is not None:
            if self._take(job_id):
                return


class Later:
    """Jobs to queue at a time of the runtime's clock (retries waiting for their delay)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def add(self, at: float, job_id: int) -> None:
        with self._lock:
            heapq.heappush(self._heap, (at, job_id))

    def due(self, now: float) -> list[int]:
        """The jobs whose time has come, taken off the list."""
        taken = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                taken.append(heapq.heappop(self._heap)[1])
        return taken
