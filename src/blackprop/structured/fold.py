"""Fold: a program written as ``step(state, symbol) -> state`` over a sequence of symbols.

    y = finish(step(... step(step(init, x_1), x_2) ..., x_n))

``step`` and ``finish`` stay opaque Python callables: they are only ever *called*, once per
distinct (state, symbol) pair and once per distinct final state, and the answers are kept as a
transition table (a tensor ``[states, symbols]`` of state ids, discovered lazily). With the table,

* ``evaluate(tuples)`` runs the whole program on a batch of symbol tuples with n table look-ups
  (so sampling estimators such as ISED or REINFORCE see a fast black box), and
* ``log_distribution(probs)`` propagates the exact distribution over states, position by position,
  for a batch of examples: alpha_t(s') = sum_{s, x : step(s, x) = s'} alpha_{t-1}(s) p_t(x), a
  scatter-add of outer products over the states alive at t. The cost is linear in n times the
  number of live states; the ``ExactFold`` estimator turns it into p(y) and the loss -log p(y).

A step that raises or returns None / NaN / an unhashable value, a state outside ``states`` (when
given) and a final value outside ``output`` are failures: the mass that reaches them is lost, as a
failed tuple contributes nothing under ``Exact``; they are counted in ``stats`` and reported once
per kind. Calls run serially in this process (no timeout or executor).

Example:
    >>> import torch
    >>> from blackprop.spaces import Discrete
    >>> digit = Discrete(range(10))
    >>> total = Fold(lambda s, x: s + x, 0, element=digit, length=3, output=Discrete(range(28)))
    >>> total.evaluate(torch.tensor([[1, 2, 3], [9, 9, 9]])).tolist()
    [6, 27]
    >>> p = torch.full((1, 3, 10), 0.1)
    >>> round(float(total.log_distribution(p)[0].exp()[0, 27]), 6)   # (1/10)^3: only 9+9+9 gives 27
    0.001

Route 2 of issue 21 (after CTSketch, Choi et al. 2025, which decomposes programs into small
sketched pieces; here the pieces are exact tables of a black-box step).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, final

import torch

from .._math import safe_log
from ..program import FAILED, BaseProgram
from ..spaces import Discrete, Open, OutputSpaceError
from .propagate import propagate

__all__ = ["Fold", "FoldTrace"]

UNKNOWN = -2


@final
@dataclass
class FoldTrace:
    """What the last ``log_distribution`` call did: live states per position (after pruning), the
    largest of them, and the mass each example lost to pruning (``truncated[B]``, an upper bound on
    |p_exact(y) - p(y)| for every output y)."""

    live_states: list[int] = field(default_factory=list)
    truncated: torch.Tensor | None = None

    @property
    def max_live_states(self) -> int:
        return max(self.live_states, default=0)

    @property
    def max_truncated(self) -> float:
        return 0.0 if self.truncated is None else float(self.truncated.max())


def _fold_whole(step: Callable[[Any, Any], Any], init: Any, finish: Callable[[Any], Any] | None, *symbols: Any) -> Any:
    """The program as one call (what ``Program.fn`` holds): finish(reduce(step, symbols, init))."""
    state = functools.reduce(step, symbols, init)
    return state if finish is None else finish(state)


@final
class Fold(BaseProgram):
    """``finish(step(...step(init, x_1)..., x_n))`` with ``x_i`` in ``element``; see the module docstring.

    Args:
        step: ``step(state, symbol) -> state``; states must be hashable (ints, tuples, strings...).
        init: the initial state.
        element: the Discrete space every input symbol belongs to.
        length: n, the number of inputs (the layer takes n probability tensors ``[B, |element|]``).
        output: a Discrete (or Open) space of final values.
        states: optional Discrete space of allowed states; a step leaving it is a failure.
        finish: optional ``finish(state) -> output value`` (default: the final state itself).
        name: shown in messages.
        max_failed_batches: as for every program (``blackprop.program.base``): raise after this many
            consecutive ``evaluate`` calls in which every tuple failed (None: never).
    """

    def __init__(
        self,
        step: Callable[[Any, Any], Any],
        init: Any,
        *,
        element: Discrete,
        length: int,
        output: Discrete | Open,
        states: Discrete | None = None,
        finish: Callable[[Any], Any] | None = None,
        name: str | None = None,
        max_failed_batches: int | None = 5,
    ):
        if not callable(step):
            raise TypeError(f"Fold(step, ...): step must be callable as step(state, symbol), got {type(step).__name__}")
        if finish is not None and not callable(finish):
            raise TypeError(f"Fold(finish=...): give a callable finish(state) or None, got {type(finish).__name__}")
        if not isinstance(element, Discrete):
            raise TypeError(f"Fold(element=...): give a Discrete space of symbols, e.g. bp.Discrete(range(10)); got {element!r}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"Fold(length=...): the number of inputs must be an int >= 1, got {length!r}")
        if states is not None and not isinstance(states, Discrete):
            raise TypeError(f"Fold(states=...): give a Discrete space of states or None, got {states!r}")
        if not isinstance(output, (Discrete, Open)):
            raise TypeError(f"Fold(output=...): give a Discrete or Open space of final values, got {output!r}")
        try:
            hash(init)
        except TypeError:
            raise TypeError(f"Fold(init=...): states must be hashable (a tuple, not a list), got {init!r}") from None
        if states is not None and init not in states.values:
            raise ValueError(f"Fold(init=...): {init!r} is not one of the declared states; add it to states= or drop states=")
        whole = functools.partial(_fold_whole, step, init, finish)
        super().__init__(whole, (element,) * length, output, name=name or getattr(step, "__name__", "fold"),
                         max_failed_batches=max_failed_batches)
        self.step, self.init, self.finish = step, init, finish
        self.element, self.length, self.states = element, length, states
        self._state_values: list[Any] = []
        self._state_ids: dict[Any, int] = {}
        self._table = torch.full((0, element.size), UNKNOWN, dtype=torch.long)
        self._final = torch.full((0,), UNKNOWN, dtype=torch.long)
        self._complete = torch.zeros(0, dtype=torch.bool)  # rows whose every symbol has been called
        for value in states.values if states is not None else (init,):
            self._state_id(value)
        self.init_id = self._state_ids[init]
        self.trace = FoldTrace()

    def __repr__(self) -> str:
        return f"Fold({self.name}, element={self.element!r}, length={self.length}, output={self.output!r})"

    def use_executor(self, executor: Any) -> Fold:
        """A fold calls ``step`` in this process, once per (state, symbol) pair: only "serial" (or None)."""
        if executor not in (None, "serial"):
            raise ValueError(f"{self.name}.use_executor({executor!r}): a Fold calls its step in this process, once per "
                             "(state, symbol) pair; give None or 'serial', or use bp.Program for a slow whole program")
        return self

    # --- the transition table -------------------------------------------------------------
    @property
    def num_states(self) -> int:
        """States discovered so far (all declared ones when ``states`` was given)."""
        return len(self._state_values)

    def state_value(self, state_id: int) -> Any:
        return self._state_values[state_id]

    def transition_table(self) -> torch.Tensor:
        """``[num_states, |element|]`` next-state ids; -1 a failed step, -2 not called yet."""
        return self._table[: self.num_states].clone()

    def _state_id(self, value: Any) -> int:
        known = self._state_ids.get(value)
        if known is not None:
            return known
        index = len(self._state_values)
        self._state_values.append(value)
        self._state_ids[value] = index
        if index >= self._table.shape[0]:  # grow by doubling: amortised O(1) per new state
            extra = max(64, self._table.shape[0])
            self._table = torch.cat([self._table, torch.full((extra, self.element.size), UNKNOWN, dtype=torch.long)])
            self._final = torch.cat([self._final, torch.full((extra,), UNKNOWN, dtype=torch.long)])
            self._complete = torch.cat([self._complete, torch.zeros(extra, dtype=torch.bool)])
        return index

    def expand(self, state_ids: torch.Tensor) -> torch.Tensor:
        """Call ``step`` on every (state, symbol) pair of these states not called yet; their rows."""
        rows = self._table[state_ids]
        if bool(self._complete[state_ids].all()):
            return rows
        missing = (rows == UNKNOWN).nonzero().tolist()
        self._complete[state_ids] = True
        if missing:
            symbols = self.element.values
            for i, k in missing:
                source = int(state_ids[i])
                self._table[source, k] = self._call_step(source, k, symbols[k])
            self.stats.calls += len(missing)
            rows = self._table[state_ids]
        return rows

    def _call_step(self, source: int, k: int, symbol: Any) -> int:
        state = self._state_values[source]
        try:
            value = self.step(state, symbol)
        except Exception as error:  # noqa: BLE001 (any failure of the black box is a failed transition)
            return self._failure("raised", f"step({state!r}, {symbol!r}) raised {type(error).__name__}: {error}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self._failure("returned", f"step({state!r}, {symbol!r}) returned {value!r} (None and NaN are failures)")
        try:
            hash(value)
        except TypeError:
            return self._failure("unhashable", f"step({state!r}, {symbol!r}) returned an unhashable state {value!r}")
        if self.states is not None and value not in self._state_ids:
            return self._failure("outside-states", f"step({state!r}, {symbol!r}) returned {value!r}, not a declared state")
        return self._state_id(value)

    def final_index(self, state_ids: torch.Tensor) -> torch.Tensor:
        """Output index of each final state (``finish`` called once per distinct state), -1 failures."""
        unknown = state_ids[self._final[state_ids] == UNKNOWN].unique().tolist()
        for source in unknown:
            self._final[source] = self._call_finish(source)
        self.stats.calls += len(unknown) if self.finish is not None else 0
        return self._final[state_ids]

    def _call_finish(self, source: int) -> int:
        state = self._state_values[source]
        value = state
        if self.finish is not None:
            try:
                value = self.finish(state)
            except Exception as error:  # noqa: BLE001
                return self._failure("raised", f"finish({state!r}) raised {type(error).__name__}: {error}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self._failure("returned", f"finish({state!r}) returned {value!r} (None and NaN are failures)")
        try:
            return int(self.output.index(value))  # type: ignore[arg-type]  # Discrete and Open give an int
        except OutputSpaceError as error:
            return self._failure("outside-output", f"final state {state!r}: {error}")
        except TypeError as error:
            return self._failure("unhashable", f"finish({state!r}) returned an unhashable value {value!r} ({error})")

    def _failure(self, kind: str, message: str) -> int:
        """A failed transition or final state: counted and reported once per kind (the probability mass
        reaching it is lost; a sampled tuple through it is a failed sample)."""
        self._record_failures(1, kind, message, self.name)
        return FAILED

    # --- evaluation on tuples (what sampling estimators call) ------------------------------
    def evaluate(self, tuples: torch.Tensor) -> torch.Tensor:
        """Output index of each tuple (``[..., n]`` -> ``[...]``), -1 where a step or finish failed."""
        self._check_tuples(tuples)
        lead = tuples.shape[:-1]
        flat = tuples.reshape(-1, self.num_variables).long().cpu()
        self.stats.queries += flat.shape[0]
        if flat.shape[0] == 0:
            return torch.empty(lead, dtype=torch.long, device=tuples.device)
        self._check_range(flat)
        state = torch.full((flat.shape[0],), self.init_id, dtype=torch.long)
        for position in range(self.length):
            alive = state >= 0
            current = state[alive]
            if not bool(self._complete[current].all()):  # a gather is cheaper than finding the distinct states
                self.expand(current.unique())
            step = self._table[state.clamp(min=0), flat[:, position]]
            state = torch.where(alive, step, torch.full_like(step, FAILED))
        out = torch.full_like(state, FAILED)
        alive = state >= 0
        out[alive] = self.final_index(state[alive])
        self._end_batch(out.shape[0], int((out >= 0).sum()))
        return out.reshape(lead).to(tuples.device)

    # --- exact propagation of distributions ---------------------------------------------
    def log_distribution(
        self, probs: torch.Tensor, *, min_mass: float = 0.0, max_states: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(y) ``[B, |output|]`` and the pruned mass ``[B]`` for symbol distributions ``probs[B, n, K]``.

        Exact when ``min_mass`` is 0. Otherwise, after each position, a state is dropped when every
        example of the batch gives it less than ``min_mass``; the mass an example loses so is summed
        in the second result (and in ``self.trace``), and p(y) is then a lower bound within it:
        p_exact(y) - truncated <= p(y) <= p_exact(y). ``max_states`` (None: no cap) also keeps at most
        that many states after each position, those with the largest mass in some example (ranked by
        the batch maximum), so the cost is at most linear in n whatever the state space; the mass it
        drops is counted in the same way. The recursion runs in float64 (tiny
        probabilities of long sequences stay representable down to 1e-308) and is differentiable
        (a hand-written backward, ``blackprop.structured.propagate``).
        """
        if probs.dim() != 3 or probs.shape[1] != self.length or probs.shape[2] != self.element.size:
            raise ValueError(f"{self.name}: probs must be [batch, {self.length}, {self.element.size}], got "
                             f"{tuple(probs.shape)}")
        if not (isinstance(min_mass, (int, float)) and 0.0 <= min_mass < 1.0):
            raise ValueError(f"{self.name}: min_mass must be a number in [0, 1), got {min_mass!r}")
        if max_states is not None and (isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 1):
            raise ValueError(f"{self.name}: max_states must be an int >= 1 or None, got {max_states!r}")
        batch, device = probs.shape[0], probs.device
        alpha, ids, truncated, live_counts = propagate(probs.to(torch.float64), self, float(min_mass), max_states)
        final = self.final_index(ids)
        ok = final >= 0
        size = self.output.size  # after final_index: an Open output may have grown
        out = torch.zeros(batch, size, dtype=torch.float64, device=device).index_add(
            1, final[ok].to(device), alpha[:, ok.to(device)])
        self.trace = FoldTrace(live_states=live_counts, truncated=truncated)
        # p(y) = 0 (a symbol with probability exactly 0, or a pruned state): log is -inf with a zero,
        # never NaN, gradient (a plain log's backward gives 0 * inf = NaN and poisons the network)
        return safe_log(out).to(probs.dtype if probs.is_floating_point() else torch.float32), truncated
