"""Jobs that log from threads they start, for test_thread_logging.py (importable by a
served runtime and its Dask workers, like jobs.py)."""

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import jobobs

log = logging.getLogger(__name__)  # the job's own package: DEBUG is kept
SHARED = ThreadPoolExecutor(2, thread_name_prefix="shared")  # a pool several jobs use
_gates: dict[str, threading.Event] = {}
left_behind: dict[str, threading.Thread] = {}


def gate(name: str) -> threading.Event:
    return _gates.setdefault(name, threading.Event())


def _item(i: int) -> int:
    log.info("item %d done", i)
    if i == 3:
        log.warning("item %d was odd", i)
    if i == 5:
        log.debug("item %d in detail", i)
    return i


@jobobs.job(name="pooled-logging")
def pooled_logging(ctx, items=8):
    """Logs from a ThreadPoolExecutor it starts, from a thread that one of the pool's
    threads starts, and at DEBUG from its own thread."""
    log.debug("a debug line from the job's own thread")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(_item, range(items)))

    def nested() -> None:
        inner = threading.Thread(target=log.info, args=("from a thread a thread started",))
        inner.start()
        inner.join()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(nested).result()
    with ThreadPoolExecutor(1) as pool, contextlib.suppress(ZeroDivisionError):
        pool.submit(_fail).result()


def _fail() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.exception("a thread failed")
        raise


@jobobs.job(name="shared-pool")
def shared_pool(ctx, name, first=False):
    """Runs tasks on a pool other jobs share; the first job's submissions start its threads
    (then it waits for its gate, so that the second job's tasks run on those threads)."""
    if first:
        both = threading.Barrier(3)
        futures = [SHARED.submit(both.wait) for _ in range(2)]  # two threads, both busy
        both.wait()
        for future in futures:
            future.result()
    for i in range(4):
        SHARED.submit(log.info, "%s task %d", name, i).result()
    if first:
        gate(name).wait(30)


@jobobs.job(name="leaves-a-thread")
def leaves_a_thread(ctx, name):
    """Starts a thread that logs once the job has ended (when its gate opens)."""
    def later() -> None:
        gate(name).wait(30)
        log.warning("%s logs after its job ended", name)

    thread = threading.Thread(target=later, name=f"left-{name}")
    left_behind[name] = thread
    thread.start()
    log.info("%s leaves a thread", name)


@jobobs.job(name="many-warnings", max_rejects=None)
def many_warnings(ctx, threads=8, each=300):
    """Warns and rejects from several threads at once."""
    def work(n: int) -> None:
        for i in range(each):
            log.warning("thread %d warning %d", n, i)
            ctx.reject({"n": n, "i": i}, reason="odd")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))


@jobobs.job(name="library-chatter")
def library_chatter(ctx):
    """Logs as a library would, at DEBUG and INFO, from its own thread and a pool's."""
    chatty = logging.getLogger("some_http_library.connectionpool")
    chatty.debug("Starting new HTTPS connection: /v1/x?token=SECRET")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(chatty.debug, "pooled: /v1/y?token=SECRET").result()
    chatty.info("a library's info line")
    log.debug("the job's own debug line")
