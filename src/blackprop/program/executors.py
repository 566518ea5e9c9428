"""Where program calls run: executor specs, pools, dask, and recovery from dead or hung workers.

An executor is given as a spec string, checked by ``parse_executor_spec`` (the one grammar, shared
by ``Program(executor=...)``, ``program.use_executor(...)`` and ``--executor``)::

    serial | process | process:N | thread | thread:N | dask:tcp://HOST:PORT | dask-local | dask-local:N

or as an object: None (serial), an int N (a process pool of N workers), any
``concurrent.futures.Executor``, or a ``distributed.Client``. Pools and clients made from a spec are
the runner's own and are shut down by ``close()``; executors passed in are borrowed and stay up.

Recovery, with public APIs only:

* a process pool whose worker died (``os._exit``, a segfault, the OOM killer) is replaced by a fresh
  pool and the calls that did not finish are retried once, one call per task; calls lost again are
  ``"lost"``. A broken pool of the user's is replaced by one of ``os.cpu_count()`` workers (the
  standard library has no public way to read a pool's size);
* a chunk still running ``2 * timeout * len(chunk) + DEADLINE_GRACE_S`` seconds after it started
  (fn stuck in C code that ignores signals) is a hang: the pool's workers are killed (the runner's
  own pools record their worker pids at start-up; Python >= 3.14 pools have ``kill_workers()``) and
  the pool is replaced; the hung calls are timeouts. A borrowed pool on an older Python cannot be
  killed: it is abandoned (its stuck worker keeps running) and replaced;
* dask re-runs a task whose worker died by itself (``distributed.scheduler.allowed-failures``)
  before it gives up with ``KilledWorker``; such calls are lost, not retried here.

Example:
    >>> parse_executor_spec("process:4")
    ('process', 4)
    >>> runner = ExecutorRunner("serial", abs)
    >>> [tuple(o) for o in runner.run([[-3], [4]], timeout=None)]
    [('ok', 3), ('ok', 4)]
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable
from typing import Any, final

from ..settings import SettingError, coerce
from .calls import LOST, TIMEOUT, Outcome, guarded_call, run_chunk

__all__ = ["DEADLINE_GRACE_S", "EXECUTOR_KINDS", "ExecutorRunner", "parse_executor_spec"]

#: seconds added to a chunk's hard deadline (pool start-up, pickling, scheduling).
DEADLINE_GRACE_S = 5.0

#: spec kinds and whether they take ":ARGUMENT" ("count": an optional worker count, "address": required).
EXECUTOR_KINDS = {"serial": None, "process": "count", "thread": "count", "dask": "address", "dask-local": "count"}
_FORMS = "'serial', 'process', 'process:N', 'thread:N', 'dask:tcp://HOST:PORT' or 'dask-local:N'"


def parse_executor_spec(spec: str) -> tuple[str, Any]:
    """``(kind, argument)`` of a spec string, without starting anything; ValueError naming the forms."""
    if not isinstance(spec, str):
        raise TypeError(f"executor spec must be a string such as 'process:4', got {spec!r}")
    kind, colon, rest = spec.partition(":")
    kind = "process" if kind == "processes" else kind
    if kind not in EXECUTOR_KINDS:
        raise ValueError(f"executor {spec!r}: expected {_FORMS}")
    argument = EXECUTOR_KINDS[kind]
    if argument is None and colon or argument == "address" and not rest:
        raise ValueError(f"executor {spec!r}: expected {_FORMS}")
    if argument == "address":
        return kind, rest
    if not colon:
        return kind, None
    try:
        count = coerce(rest, int, field="executor worker count")
    except SettingError:
        count = 0
    if count < 1 or not rest.isdigit():
        raise ValueError(f"executor {spec!r}: the worker count must be an int >= 1, got {rest!r}")
    return kind, count


def _report_pid(queue: Any) -> None:
    """Process-pool initializer: tell the parent this worker's pid, so a hung worker can be killed."""
    queue.put(os.getpid())


@final
class ExecutorRunner:
    """Runs lists of calls on one executor, replacing a broken process pool and retrying once.

    ``executor`` is the live ``concurrent.futures.Executor`` (None when serial); ``owned`` says
    whether this runner created it (and so shuts it down in ``close``); ``restarts`` counts
    replaced pools; ``events`` collects one line per incident for the caller to report.
    """

    def __init__(self, spec: Any, fn: Callable[..., Any]):
        self.fn = fn
        self.owned = False
        self.restarts = 0
        self.events: list[str] = []
        self.workers: int | None = None  # known for the pools made here
        self._client: Any = None  # a dask client, for its thread count
        self._resources: list[Any] = []  # dask clients / clusters of ours, closed with the runner
        self._pids: Any = None  # queue of our process-pool workers' pids
        self._broken = False
        self.executor: cf.Executor | None = self._make(spec)

    def _make(self, spec: Any) -> cf.Executor | None:
        if spec is None:
            return None
        if isinstance(spec, str):
            kind, argument = parse_executor_spec(spec)
            if kind == "serial":
                return None
            if kind == "process":
                return self._process_pool(argument or os.cpu_count() or 1)
            if kind == "thread":
                self.owned, self.workers = True, argument or os.cpu_count() or 1
                return cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="blackprop")
            return self._dask(kind, argument)
        if isinstance(spec, cf.Executor):
            if isinstance(spec, cf.ProcessPoolExecutor):
                _check_picklable(self.fn)
            return spec
        if type(spec).__name__ == "Client" and hasattr(spec, "get_executor"):
            self._client = spec
            return spec.get_executor(pure=False)
        if isinstance(spec, int) and not isinstance(spec, bool):
            if spec < 1:
                raise ValueError(f"Program(executor=...): a process pool needs >= 1 worker, got {spec!r}")
            return self._process_pool(spec)
        raise ValueError(
            f"Program(executor=...): expected None, a spec string ({_FORMS}), a worker count, "
            f"a concurrent.futures.Executor or a distributed.Client; got {spec!r}"
        )

    def _process_pool(self, workers: int) -> cf.ProcessPoolExecutor:
        _check_picklable(self.fn)
        self._pids = multiprocessing.SimpleQueue()
        self.owned, self.workers, self._broken = True, workers, False
        return cf.ProcessPoolExecutor(max_workers=workers, initializer=_report_pid, initargs=(self._pids,))

    def _dask(self, kind: str, argument: Any) -> cf.Executor:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ImportError(
                f"executor '{kind}': dask.distributed is not installed; pip install 'dask[distributed]' "
                "(or 'blackprop[distributed]')"
            ) from None
        if kind == "dask":
            client = Client(argument)
            self._resources = [client]
        else:
            cluster = LocalCluster(n_workers=argument or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
            self._resources = [client, cluster]
        self._client = client
        return client.get_executor(pure=False)

    @property
    def parallelism(self) -> int:
        """How many calls run at once: the pool size, the dask cluster's threads, else os.cpu_count()."""
        if self._client is not None:
            try:
                return max(1, sum(self._client.nthreads().values()))
            except Exception:  # noqa: BLE001 - a scheduler that cannot answer: fall back
                pass
        return self.workers or os.cpu_count() or 1

    @property
    def replaceable(self) -> bool:
        return isinstance(self.executor, cf.ProcessPoolExecutor)

    def close(self) -> None:
        """Shut down what this runner started; borrowed executors stay up."""
        if self.owned and self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        for resource in self._resources:
            resource.close()
        self._resources = []
        self.executor = None

    # --- running ------------------------------------------------------------------------
    def run(self, arguments: list[list[Any]], timeout: float | None) -> list[Outcome]:
        """One outcome per argument list, in order."""
        if self.executor is None:
            return [guarded_call(self.fn, args, timeout) for args in arguments]
        outcomes: list[Outcome | None] = [None] * len(arguments)
        pending = list(range(len(arguments)))
        lost_reason = "worker failed"
        for attempt in (1, 2):
            if self._broken:
                self._replace("the pool was broken before the batch")
            size = max(1, math.ceil(len(pending) / (4 * self.parallelism))) if attempt == 1 else 1
            chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
            lost, lost_reason = self._run_chunks(chunks, arguments, outcomes, timeout)
            if self._broken:
                self._replace(f"a worker died ({lost_reason})")
            pending = lost
            if not pending or not self.replaceable:  # dask & co. retry lost tasks themselves
                break
        tries = "twice" if self.replaceable else "(the executor's own retries included)"
        for i in pending:
            outcomes[i] = Outcome(LOST, f"the worker running it died {tries}: {lost_reason}")
        return [o if o is not None else Outcome(LOST, lost_reason) for o in outcomes]

    def _run_chunks(
        self, chunks: list[list[int]], arguments: list[list[Any]], outcomes: list[Outcome | None],
        timeout: float | None,
    ) -> tuple[list[int], str]:
        """Submit chunks, fill ``outcomes``; return the indices to retry and why they failed."""
        pool = self.executor
        if pool is None:
            raise RuntimeError("ExecutorRunner._run_chunks: no executor (closed?)")
        futures: dict[cf.Future[list[Outcome]], list[int]] = {}
        lost: list[int] = []
        reason = "worker failed"
        for chunk in chunks:
            try:
                future = pool.submit(run_chunk, self.fn, [arguments[i] for i in chunk], timeout)
            except Exception as error:  # noqa: BLE001 - a broken or shut-down executor
                reason = f"{type(error).__name__}: {error}"
                self._broken = self._broken or (pool is self.executor and self.replaceable)
                lost.extend(chunk)
                continue
            futures[future] = chunk
        started: dict[cf.Future[list[Outcome]], float] = {}
        not_done = set(futures)
        killed_at: float | None = None
        while not_done:
            if killed_at is not None and time.monotonic() - killed_at > DEADLINE_GRACE_S:
                for future in not_done:  # a killed pool that never reported its futures
                    lost.extend(futures[future])
                break
            if timeout is None:  # nothing to watch: wait for everything at once
                done, not_done = cf.wait(not_done, return_when=cf.ALL_COMPLETED)
            else:
                done, not_done = cf.wait(not_done, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for future in done:
                chunk = futures[future]
                try:
                    results = future.result()
                except BaseException as error:  # noqa: BLE001 - BrokenProcessPool, KilledWorker, cancelled
                    if isinstance(error, KeyboardInterrupt):
                        raise
                    if isinstance(error, cf.BrokenExecutor) and pool is self.executor:
                        self._broken = True
                    reason = f"{type(error).__name__}: {error}".rstrip(": ")
                    lost.extend(chunk)
                    continue
                for i, outcome in zip(chunk, results, strict=True):
                    outcomes[i] = outcome
            if timeout is None or killed_at is not None:
                continue
            now = time.monotonic()
            hung = [f for f in not_done if f.running()
                    and now - started.setdefault(f, now) > 2 * timeout * len(futures[f]) + DEADLINE_GRACE_S]
            if hung:
                for future in hung:
                    chunk = futures[future]
                    if len(chunk) == 1 or not self.replaceable:
                        for i in chunk:
                            outcomes[i] = Outcome(TIMEOUT, None)
                    else:
                        lost.extend(chunk)  # retried one call per task: only the hung call times out
                    not_done.discard(future)
                    future.cancel()
                if self.replaceable:
                    killed_at = time.monotonic()
                    killed = self._kill_workers()  # the old pool now fails every pending future: collected as lost
                    self._replace(f"hung call(s) ignored the {timeout}s timeout, so its workers were "
                                  + ("killed" if killed else "abandoned (a borrowed pool's workers cannot be killed)"))
        return lost, reason

    def _kill_workers(self) -> bool:
        """Kill the current pool's workers: by pid for our pools, ``kill_workers()`` on Python >= 3.14."""
        if self.owned and self._pids is not None:
            while not self._pids.empty():
                pid = self._pids.get()
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            return True
        kill = getattr(self.executor, "kill_workers", None)
        if callable(kill):
            kill()
            return True
        return False

    def _replace(self, why: str) -> None:
        """Swap a broken process pool for a fresh one (ours from now on)."""
        old = self.executor
        if not isinstance(old, cf.ProcessPoolExecutor):
            return
        try:
            old.shutdown(wait=False, cancel_futures=True)
        except Exception:  # noqa: BLE001 - a broken pool may fail to shut down cleanly
            pass
        self.executor = self._process_pool(self.workers or os.cpu_count() or 1)
        self.restarts += 1
        self.events.append(f"process pool replaced: {why}")


def _check_picklable(fn: Callable[..., Any]) -> None:
    try:
        pickle.dumps(fn)
    except Exception as error:  # noqa: BLE001
        raise TypeError(
            f"Program(executor=process): fn {fn!r} cannot be sent to worker processes ({error}); "
            "define it as a module-level function (lambdas and closures cannot be pickled), "
            "or use a dask executor, which pickles closures with cloudpickle"
        ) from None
