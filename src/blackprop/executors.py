"""Running program calls safely: per-call timeouts, executors, and recovery from dead workers.

A *call* is ``fn(*args)``; its *outcome* is one of

    ("ok", value) | ("error", message) | ("timeout", None) | ("lost", message)

"error" and "timeout" belong to the tuple (the program raised or was too slow) and may be
memoised; "lost" means the infrastructure failed (a worker process died twice in a row) and the
tuple is retried the next time it is sampled.

Timeouts, per call, wherever the call runs:
* on the main thread of a process (serial runs, process-pool workers): ``SIGALRM`` interrupts fn;
* on any other thread (a thread pool, a dask worker, training in a background thread): fn runs in
  a daemon thread and the caller stops waiting after ``timeout`` seconds (the thread is left to
  finish on its own: Python cannot kill a thread);
* process pools also get a hard deadline in the parent: a chunk still running ``2 * timeout *
  len(chunk) + DEADLINE_GRACE_S`` seconds after it started (fn stuck in C code that ignores
  signals) has its pool killed and replaced; the hung calls count as timeouts.

Executors (``ExecutorRunner(spec, fn)``): None/"serial", "process" (a pool of os.cpu_count()
workers), an int (a pool of that size), any ``concurrent.futures.Executor``, or a
``distributed.Client`` (dask; run through ``client.get_executor(pure=False)``). A broken process
pool (a worker died, e.g. ``os._exit`` or the OOM killer) is replaced by a fresh one and the calls
that did not finish are retried once, one call per task; calls lost again are reported "lost".
Other executors are not retried here: dask already re-runs a task whose worker died (up to its
``distributed.scheduler.allowed-failures``) before it gives up with ``KilledWorker``.

Example:
    >>> runner = ExecutorRunner("serial", abs)
    >>> runner.run([[-3], [4]], timeout=None)
    [('ok', 3), ('ok', 4)]
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "DEADLINE_GRACE_S",
    "ExecutorRunner",
    "Outcome",
    "ProgramTimeout",
    "dask_executor",
    "executor_from_spec",
    "executor_parallelism",
    "parse_executor_spec",
    "guarded_call",
    "run_chunk",
]

Outcome = tuple[str, Any]

#: seconds added to a chunk's hard deadline (pool start-up, pickling, scheduling).
DEADLINE_GRACE_S = 5.0


class ProgramTimeout(BaseException):
    """Raised inside fn by SIGALRM; a BaseException so that fn's own ``except Exception`` cannot swallow it."""


# --- one call ------------------------------------------------------------------------------
def guarded_call(fn: Callable[..., Any], args: list[Any], timeout: float | None) -> Outcome:
    """``fn(*args)`` -> ("ok", value) | ("error", message) | ("timeout", None); never raises
    (except KeyboardInterrupt). ``sys.exit()`` inside fn is an error, not the end of training."""
    if timeout is None:
        try:
            return "ok", fn(*args)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - any program error is a failed sample
            return "error", _describe(error)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _call_with_alarm(fn, args, timeout)
    return _call_in_thread(fn, args, timeout)


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r})"
    return f"raised {type(error).__name__}: {error}"


def _call_with_alarm(fn: Callable[..., Any], args: list[Any], timeout: float) -> Outcome:
    def on_alarm(signum: int, frame: Any) -> None:
        raise ProgramTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    began = time.monotonic()
    try:
        try:
            value = fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return "ok", value
    except ProgramTimeout:
        return "timeout", None
    except (Exception, SystemExit) as error:  # noqa: BLE001
        return "error", _describe(error)
    finally:
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # someone else's timer was running: give it back what is left
            left = max(outer_delay - (time.monotonic() - began), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _call_in_thread(fn: Callable[..., Any], args: list[Any], timeout: float) -> Outcome:
    """Off the main thread no signal can interrupt fn: run it in a daemon thread and stop waiting."""
    box: list[Outcome] = []

    def target() -> None:
        box.append(guarded_call(fn, args, None))

    worker = threading.Thread(target=target, daemon=True, name="blackprop-call")
    worker.start()
    worker.join(timeout)
    return box[0] if box else ("timeout", None)


def run_chunk(fn: Callable[..., Any], chunk: list[list[Any]], timeout: float | None) -> list[Outcome]:
    """Guarded calls of one task; values that cannot travel back (not picklable) become errors."""
    outcomes = [guarded_call(fn, args, timeout) for args in chunk]
    try:
        pickle.dumps(outcomes)
    except Exception:  # noqa: BLE001
        outcomes = [_picklable(outcome) for outcome in outcomes]
    return outcomes


def _picklable(outcome: Outcome) -> Outcome:
    try:
        pickle.dumps(outcome)
        return outcome
    except Exception as error:  # noqa: BLE001
        return "error", f"returned a value that cannot be sent between processes ({type(error).__name__}: {error})"


# --- executors -----------------------------------------------------------------------------
def executor_parallelism(executor: Any) -> int:
    """How many calls ``executor`` runs at once: pool size, dask threads, else os.cpu_count()."""
    workers = getattr(executor, "_max_workers", None)
    if isinstance(workers, int) and workers > 0:
        return workers
    client = getattr(executor, "_client", None)
    if client is not None and hasattr(client, "nthreads"):
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a scheduler that cannot answer: fall back
            pass
    return os.cpu_count() or 1


def dask_executor(client_or_address: Any = None) -> cf.Executor:
    """A concurrent.futures executor on a dask cluster: a ``distributed.Client``, a scheduler
    address ("tcp://host:8786"), or None for a local cluster of this machine's cores.

    Tasks are submitted with ``pure=False`` so that a retried chunk really runs again.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(
            "dask_executor: dask.distributed is not installed; pip install 'dask[distributed]' "
            "(or 'blackprop[distributed]')"
        ) from None
    if isinstance(client_or_address, Client):
        return client_or_address.get_executor(pure=False)
    client = Client(client_or_address)
    executor = client.get_executor(pure=False)
    executor._blackprop_closes = [client]  # ours to close with the program
    return executor


def parse_executor_spec(spec: str) -> tuple[str, Any]:
    """Check a command-line executor spec without starting anything: ``(kind, argument)``.

    >>> parse_executor_spec("process:4")
    ('process', 4)
    """
    if not isinstance(spec, str):
        raise TypeError(f"executor spec must be a string such as 'process:4', got {spec!r}")
    kind, _, rest = spec.partition(":")
    if kind == "serial" and not rest:
        return "serial", None
    if kind in ("process", "processes"):
        return "process", _positive(spec, rest) if rest else None
    if kind == "dask" and rest:
        return "dask", rest
    if kind == "dask-local":
        return "dask-local", _positive(spec, rest) if rest else None
    raise ValueError(
        f"executor {spec!r}: expected 'serial', 'process', 'process:N', 'dask:tcp://HOST:PORT' or 'dask-local:N'"
    )


def executor_from_spec(spec: str) -> Any:
    """What ``Program(executor=...)`` takes, from "serial", "process", "process:N", "dask:ADDRESS"
    or "dask-local:N" (a local dask cluster of N single-threaded worker processes).

    >>> executor_from_spec("serial") is None
    True
    """
    kind, argument = parse_executor_spec(spec)
    if kind == "serial":
        return None
    if kind == "process":
        return "process" if argument is None else argument
    if kind == "dask":
        return dask_executor(argument)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return dask_executor()  # raises the install hint
    workers = argument or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    executor = client.get_executor(pure=False)
    executor._blackprop_closes = [client, cluster]
    return executor


def _positive(spec: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"executor {spec!r}: the worker count must be an int >= 1, got {text!r}")
    return int(text)


def _check_picklable(fn: Callable[..., Any]) -> None:
    try:
        pickle.dumps(fn)
    except Exception as error:  # noqa: BLE001
        raise TypeError(
            f"Program(executor=process): fn {fn!r} cannot be sent to worker processes ({error}); "
            "define it as a module-level function (lambdas and closures cannot be pickled), "
            "or use a dask executor, which pickles closures with cloudpickle"
        ) from None


class ExecutorRunner:
    """Runs lists of calls on one executor, replacing a broken process pool and retrying once.

    ``executor`` is the live ``concurrent.futures.Executor`` (None when serial); ``owned`` says
    whether this runner created it (and so shuts it down in ``close``); ``restarts`` counts
    replaced pools; ``events`` collects one line per incident (worker died, hung chunk killed)
    for the caller to report.
    """

    def __init__(self, spec: Any, fn: Callable[..., Any]):
        self.fn = fn
        self.owned = False
        self.restarts = 0
        self.events: list[str] = []
        self.executor: cf.Executor | None = self._make(spec)

    def _make(self, spec: Any) -> cf.Executor | None:
        if spec is None or (isinstance(spec, str) and spec == "serial"):
            return None
        if isinstance(spec, cf.Executor):
            if isinstance(spec, cf.ProcessPoolExecutor):
                _check_picklable(self.fn)
            return spec
        if type(spec).__name__ == "Client" and hasattr(spec, "get_executor"):
            return spec.get_executor(pure=False)
        if isinstance(spec, str) and spec in ("process", "processes"):
            workers: Any = os.cpu_count() or 1
        elif isinstance(spec, int) and not isinstance(spec, bool):
            workers = spec
        else:
            raise ValueError(
                f"Program(executor=...): expected None, 'serial', 'process', a worker count, a "
                f"concurrent.futures.Executor or a distributed.Client; got {spec!r}"
            )
        if workers < 1:
            raise ValueError(f"Program(executor=...): a process pool needs >= 1 worker, got {spec!r}")
        _check_picklable(self.fn)
        self.owned = True
        return cf.ProcessPoolExecutor(max_workers=workers)

    @property
    def replaceable(self) -> bool:
        return isinstance(self.executor, cf.ProcessPoolExecutor)

    def close(self) -> None:
        """Shut down what this runner (or ``executor_from_spec``) started; borrowed executors stay up."""
        if self.owned and self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        for resource in getattr(self.executor, "_blackprop_closes", []):
            resource.close()
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
            if self._is_broken():
                self._replace("the pool was broken before the batch")
            workers = executor_parallelism(self.executor)
            size = max(1, math.ceil(len(pending) / (4 * workers))) if attempt == 1 else 1
            chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
            lost, lost_reason = self._run_chunks(chunks, arguments, outcomes, timeout)
            if self._is_broken():
                self._replace(f"a worker died ({lost_reason})")
            pending = lost
            if not pending or not self.replaceable:  # dask & co. retry lost tasks themselves
                break
        tries = "twice" if self.replaceable else "(the executor's own retries included)"
        for i in pending:
            outcomes[i] = ("lost", f"the worker running it died {tries}: {lost_reason}")
        return [o if o is not None else ("lost", lost_reason) for o in outcomes]

    def _run_chunks(
        self, chunks: list[list[int]], arguments: list[list[Any]], outcomes: list[Outcome | None],
        timeout: float | None,
    ) -> tuple[list[int], str]:
        """Submit chunks, fill ``outcomes``; return the indices to retry and why they failed."""
        assert self.executor is not None
        futures: dict[cf.Future[list[Outcome]], list[int]] = {}
        lost: list[int] = []
        reason = "worker failed"
        for chunk in chunks:
            try:
                future = self.executor.submit(run_chunk, self.fn, [arguments[i] for i in chunk], timeout)
            except Exception as error:  # noqa: BLE001 - a broken or shut-down executor
                reason = f"{type(error).__name__}: {error}"
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
                    reason = f"{type(error).__name__}: {error}".rstrip(": ")
                    lost.extend(chunk)
                    continue
                for i, outcome in zip(chunk, results, strict=True):
                    outcomes[i] = outcome
            if timeout is None or killed_at is not None:
                continue
            now = time.monotonic()
            hung = []
            for future in not_done:
                if future.running():
                    began = started.setdefault(future, now)
                    if now - began > 2 * timeout * len(futures[future]) + DEADLINE_GRACE_S:
                        hung.append(future)
            if hung:
                for future in hung:
                    chunk = futures[future]
                    if len(chunk) == 1 or not self.replaceable:
                        for i in chunk:
                            outcomes[i] = ("timeout", None)
                    else:
                        lost.extend(chunk)  # retried one call per task: only the hung call times out
                    not_done.discard(future)
                    future.cancel()
                if self.replaceable:
                    killed_at = time.monotonic()
                    self._kill_workers()  # the old pool now fails every pending future: collected as lost
                    self._replace(f"hung call(s) ignored the {timeout}s timeout, so its workers were killed")
        return lost, reason

    def _is_broken(self) -> bool:
        return bool(getattr(self.executor, "_broken", False)) or bool(getattr(self.executor, "_shutdown_thread", False))

    def _kill_workers(self) -> None:
        executor = self.executor
        kill = getattr(executor, "kill_workers", None)  # Python >= 3.14
        if callable(kill):
            kill()
            return
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            try:
                process.kill()
            except (OSError, AttributeError):
                pass

    def _replace(self, why: str) -> None:
        """Swap a broken process pool for a fresh one of the same size (ours from now on)."""
        old = self.executor
        if not isinstance(old, cf.ProcessPoolExecutor):
            return
        workers = executor_parallelism(old)
        context = getattr(old, "_mp_context", None)
        try:
            old.shutdown(wait=False, cancel_futures=True)
        except Exception:  # noqa: BLE001 - a broken pool may fail to shut down cleanly
            pass
        self.executor = cf.ProcessPoolExecutor(max_workers=workers, mp_context=context)
        self.owned = True
        self.restarts += 1
        self.events.append(f"process pool replaced: {why}")
