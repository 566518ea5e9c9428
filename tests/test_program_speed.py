"""The bulk path of Program (tuple codes, tensor memo, one Python call per new distinct tuple) gives
what a per-tuple evaluation of the Python function gives; BatchedProgram takes Sequence inputs."""

from __future__ import annotations

import collections
import itertools
import math
import pickle
import warnings
from typing import Any, final

import numpy as np
import pytest
import torch

import blackprop as bp
from blackprop.program import BaseProgram
from blackprop.program.dense_memo import DENSE_CODES, DenseMemo
from blackprop.program.memo import TupleCoder, TupleMemo

DIGIT = bp.Discrete(range(10))


@final
class PerTuple(BaseProgram):
    """The reference: fn run on every row, one by one, in plain Python (no codes, no memo)."""

    def evaluate(self, tuples: torch.Tensor) -> torch.Tensor:
        width = self.output.num_components if isinstance(self.output, bp.Product) else None
        out = []
        for row in tuples.reshape(-1, self.num_variables).tolist():
            try:
                value = self.fn(*self.decode(row))
                index = self.output.index(value) if value is not None else None
            except Exception:  # noqa: BLE001 - a failed tuple
                index = None
            if index is None:
                index = (bp.FAILED,) * width if width else bp.FAILED
            out.append(list(index) if width else index)
        shape = (*tuples.shape[:-1], width) if width else tuples.shape[:-1]
        return torch.tensor(out, dtype=torch.long).reshape(shape)

    def use_executor(self, executor: Any) -> PerTuple:
        return self


def formula(symbols: list[str]) -> float:
    """A small HWF-like program: digits and + - * in turn; raises on a malformed sequence."""
    if not symbols or len(symbols) % 2 == 0:
        raise ValueError("even length")
    return float(eval("".join(symbols)))  # noqa: S307 - symbols are digits and + - * only


def digit_sum(*digits: int) -> int:
    return sum(digits)


def sequence_sum(digits: list[int]) -> int:
    return sum(digits)


def board_parity(cells: list[int]) -> tuple[int, int]:
    if len(cells) < 2:
        raise ValueError("too short")
    return sum(cells) % 2, cells[0] % 2


CASES = {
    "sum4, exact codes": (digit_sum, (DIGIT,) * 4, lambda: bp.Discrete(range(37)), "plain"),
    "formula, Open output": (formula, (bp.Sequence(bp.Discrete(list("123+-*")), 5),),
                             lambda: bp.Open(canonical=lambda v: round(v, 2)), "sequence"),
    "30 digits, hashed codes": (sequence_sum, (bp.Sequence(DIGIT, 30),), lambda: bp.Discrete(range(271)), "sequence"),
    "Product output, hashed": (board_parity, (bp.Sequence(bp.Discrete(range(81)), 40),),
                               lambda: bp.Product(bp.Discrete([0, 1]), bp.Discrete([0, 1])), "sequence"),
}


def beliefs_for(inputs, kind, generator):
    if kind == "plain":
        return [torch.randn(6, s.size, generator=generator).requires_grad_() for s in inputs]
    space = inputs[0]
    logits = torch.randn(6, space.max_len, space.element.size, generator=generator).requires_grad_()
    return [(logits, torch.tensor([1, 3, 5, 2, space.max_len, 4]).clamp(max=space.max_len))]


def loss_and_grad(program, inputs, kind, target_values, rounds=3):
    leaves = beliefs_for(inputs, kind, torch.Generator().manual_seed(7))
    layer = bp.BlackBox(program, bp.ISED(num_samples=40), seed=11)
    losses = []
    for _ in range(rounds):  # later rounds meet the memo
        args = [bp.padded(x.softmax(-1), n) for x, n in leaves] if kind != "plain" else [x.softmax(-1) for x in leaves]
        loss = layer.loss(*args, target=target_values)
        loss.backward()
        losses.append(loss.detach())
    grads = [(x[0] if isinstance(x, tuple) else x).grad for x in leaves]
    return torch.stack(losses), grads


@pytest.mark.parametrize("case", list(CASES))
def test_ised_loss_and_gradient_equal_the_per_tuple_reference(case):
    fn, inputs, make_output, kind = CASES[case]
    output = make_output()
    program = bp.Program(fn, inputs, output, max_failed_batches=None)
    reference = PerTuple(fn, inputs, output, max_failed_batches=None)  # the same output space: same indices
    if isinstance(output, bp.Open):
        target = [3.0, 1.0, 6.0, 2.0, 5.0, 4.0]
    elif isinstance(output, bp.Product):
        target = [(1, 0), (0, 1), (1, 1), (0, 0), (1, 0), (0, 0)]
    else:
        target = [5, 9, 14, 3, 20, 30] if kind == "plain" else [4, 12, 30, 9, 40, 21]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fast = loss_and_grad(program, inputs, kind, target)
        slow = loss_and_grad(reference, inputs, kind, target)
    assert torch.equal(fast[0], slow[0]), (fast[0], slow[0])
    for a, b in zip(fast[1], slow[1], strict=True):
        assert torch.equal(a, b)
    assert program._coder.exact == ("hashed" not in case)
    assert program.stats.hits > 0 and program.stats.calls < program.stats.queries


def test_python_runs_once_per_new_distinct_tuple_and_never_for_cached_ones():
    seen = collections.Counter()

    def counted(a, b, c):
        seen[(a, b, c)] += 1
        return a + b + c

    program = bp.Program(counted, (DIGIT,) * 3, bp.Discrete(range(28)))
    generator = torch.Generator().manual_seed(0)
    first = torch.randint(0, 10, (16, 100, 3), generator=generator)
    out = program.evaluate(first)
    assert torch.equal(out, first.sum(dim=2))
    distinct = len({tuple(r) for r in first.reshape(-1, 3).tolist()})
    assert program.stats.calls == len(seen) == distinct and max(seen.values()) == 1
    second = torch.cat([first[:8], torch.randint(0, 10, (8, 100, 3), generator=generator)])
    assert torch.equal(program.evaluate(second), second.sum(dim=2))
    assert max(seen.values()) == 1 and program.stats.calls == len(seen)
    assert program.stats.queries == 3200


def test_hash_collisions_never_mix_up_tuples():
    """With 9-bit hashed codes many codes are shared, within a batch and with the memo; answers stay
    those of each row, and only rows that own their code are memoised."""
    program = bp.Program(sequence_sum, (bp.Sequence(DIGIT, 6),), bp.Discrete(range(55)))
    program._coder = TupleCoder(program._sizes, hashed=True, bits=9)  # force collisions (a test-only seam)
    program._memo = TupleMemo(program._coder, 1)
    generator = torch.Generator().manual_seed(3)
    seen = set()
    for _ in range(6):
        rows = torch.randint(-1, 10, (300, 6), generator=generator)
        rows = torch.sort(rows, dim=1, descending=True).values  # padding (-1) last
        expected = rows.clamp(min=0).sum(dim=1)
        assert torch.equal(program.evaluate(rows), expected)
        seen |= {tuple(r) for r in rows.tolist()}
    codes = program._coder.codes(torch.tensor(sorted(seen)))
    assert torch.unique(codes).shape[0] < len(seen)  # collisions did happen
    assert 0 < program.cache_size() <= 512  # at most one row per 9-bit code is memoised
    state = program.memo_dict()
    assert all(value == sum(max(i, 0) for i in key) for key, value in state.items())


def test_a_row_hash_collision_with_the_memo_is_run_not_answered_from_it():
    coder = TupleCoder([10, 10], hashed=True, bits=1)
    memo = TupleMemo(coder, 1)
    rows = torch.tensor([[1, 2]])
    memo.insert(coder.codes(rows), rows, torch.tensor([[3]]), torch.tensor([True]))
    other = torch.tensor([[2, 1], [1, 2]])
    found, outputs, ok, clash = memo.lookup(coder.codes(other), other)
    same_code = coder.codes(other) == coder.codes(rows)
    assert found.tolist() == [False, True] and outputs[1].tolist() == [3]
    assert clash.tolist() == [bool(same_code[0]), False]


def test_cache_limit_keeps_the_newest_entries_like_an_ordered_dict():
    limit = 50
    program = bp.Program(digit_sum, (DIGIT,) * 2, bp.Discrete(range(19)), cache_limit=limit)
    model: collections.OrderedDict = collections.OrderedDict()
    generator = torch.Generator().manual_seed(5)
    for _ in range(30):
        rows = torch.randint(0, 10, (int(torch.randint(1, 40, (1,), generator=generator)), 2), generator=generator)
        program.evaluate(rows)
        for key in sorted({tuple(r) for r in rows.tolist()}):  # new entries in code order, as the memo stamps them
            if key not in model:
                model[key] = sum(key)
        while len(model) > limit:
            model.popitem(last=False)
        assert list(program.memo_dict().items()) == list(model.items())


def test_the_memo_keeps_few_shrinking_runs_and_answers_like_a_dict():
    """Batches of new entries of every size: the memo's sorted runs stay disjoint and shrink at least
    fourfold from first to last (so about log4 N of them), and every lookup, ``without`` and
    ``entries`` answer as a dict keyed by the row would."""
    coder = TupleCoder([10] * 6)
    memo = TupleMemo(coder, 1)
    model: dict[tuple[int, ...], int] = {}
    generator = torch.Generator().manual_seed(7)
    for step in range(120):
        size = int(torch.randint(1, 3000 if step % 10 else 30000, (1,), generator=generator))
        rows = torch.unique(torch.randint(0, 10, (size, 6), generator=generator), dim=0)
        codes = coder.codes(rows)
        found, outputs, _, _ = memo.lookup(codes, rows)
        keys = [tuple(r) for r in rows.tolist()]
        assert found.tolist() == [key in model for key in keys]
        assert all(int(o) == model[key] for key, o, f in zip(keys, outputs[:, 0], found, strict=True) if f)
        if step % 17 == 5:  # replace some known entries, as Program.load_state_dict does
            memo.without(codes[found][:5000])
            for key in [k for k, f in zip(keys, found.tolist(), strict=True) if f][:5000]:
                del model[key]
            found = torch.tensor([key in model for key in keys])
        new = ~found
        values = torch.tensor([sum(k) * 7 % 1000 for k in keys]).unsqueeze(1)
        memo.insert(codes[new], rows[new], values[new], torch.ones(int(new.sum()), dtype=torch.bool))
        model.update({key: sum(key) * 7 % 1000 for key, n in zip(keys, new.tolist(), strict=True) if n})
        sizes = [len(run) for run in memo._runs]
        assert len(memo) == len(model) and all(a > 4 * b for a, b in itertools.pairwise(sizes))
        assert len(sizes) <= 2 + math.log(len(model), 4)
    every = torch.cat([run.codes for run in memo._runs])
    assert torch.unique(every).shape[0] == every.shape[0]  # disjoint
    assert all(bool((run.codes[1:] > run.codes[:-1]).all()) for run in memo._runs)  # sorted
    rows, outputs, _ = memo.entries()
    assert dict(zip(map(tuple, rows.tolist()), outputs[:, 0].tolist(), strict=True)) == model


@pytest.mark.parametrize("hashed", [False, True])
def test_a_limited_memo_expires_lazily_and_answers_like_an_ordered_dict(hashed):
    """At a limit, expired entries stay held until limit / 4 of them pile up, yet every lookup, ``len`` and
    ``entries`` answer as an OrderedDict that drops its oldest key past the limit; codes that expired
    come back (an expired copy beside a live one), and the memo never holds more than 1.25 limit plus a
    batch. Hashed: 11-bit codes of 10^5 rows (many clashes, so rows decide)."""
    limit = 1000
    coder = TupleCoder([10] * 5, hashed=hashed, bits=11 if hashed else 64)
    memo = TupleMemo(coder, 1, limit=limit)
    model: collections.OrderedDict = collections.OrderedDict()
    generator = torch.Generator().manual_seed(11)
    held = []
    for _ in range(150):
        rows = torch.unique(torch.randint(0, 10, (int(torch.randint(1, 400, (1,), generator=generator)), 5),
                                          generator=generator), dim=0)
        codes = coder.codes(rows)
        if hashed:  # a batch's codes must be distinct (Program sends clashing rows past the memo)
            _, first = np.unique(codes.numpy(), return_index=True)
            rows, codes = rows[torch.as_tensor(np.sort(first))], codes[torch.as_tensor(np.sort(first))]
        found, outputs, _, clash = memo.lookup(codes, rows)
        keys = [tuple(r) for r in rows.tolist()]
        assert found.tolist() == [key in model for key in keys]
        assert all(int(o) == model[key] for key, o, f in zip(keys, outputs[:, 0], found, strict=True) if f)
        new = ~found & ~clash
        values = torch.tensor([sum(k) * 7 % 1000 for k in keys]).unsqueeze(1)
        order = torch.argsort(codes[new])  # the memo stamps a batch in code order
        memo.insert(codes[new][order], rows[new][order], values[new][order], torch.ones(int(new.sum()), dtype=torch.bool))
        for key in [keys[i] for i in torch.nonzero(new).squeeze(1)[order].tolist()]:
            model[key] = sum(key) * 7 % 1000
        while len(model) > limit:
            model.popitem(last=False)
        held.append(memo._held())
        assert len(memo) == len(model) and memo._held() <= limit * 1.25 + 400
        assert all(bool((run.codes[1:] > run.codes[:-1]).all()) for run in memo._runs)  # no code twice in a run
    assert max(held) > limit  # expired entries were held: the expiry was lazy
    rows, outputs, _ = memo.entries()
    assert list(zip(map(tuple, rows.tolist()), outputs[:, 0].tolist(), strict=True)) == list(model.items())


def picky_sum(a: int, b: int, c: int) -> Any:
    if a == b == c:
        raise ValueError("three of a kind")  # a deterministic failure, memoised
    return (a + b + c, (a * b) % 2)


@pytest.mark.parametrize("product", [False, True])
def test_a_small_spaces_dense_memo_answers_exactly_as_the_sorted_memo(product):
    """Programs over 11^3 codes get a DenseMemo; forced onto a TupleMemo, every output, counter and the
    memo's state (oldest entry first) are the same, batch after batch, failures included."""
    output = bp.Product(bp.Discrete(range(28)), bp.Discrete(range(2))) if product else bp.Open()
    fn = picky_sum if product else (lambda a, b, c: picky_sum(a, b, c)[0])
    dense, sorted_memo = (bp.Program(fn, (DIGIT,) * 3, output, name="p") for _ in range(2))
    assert isinstance(dense._memo, DenseMemo) and dense._coder.span == 11**3 <= DENSE_CODES
    sorted_memo._memo = TupleMemo(sorted_memo._coder, dense._memo.width)
    generator = torch.Generator().manual_seed(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        everything = torch.cartesian_prod(*[torch.arange(10)] * 3)
        batches = [torch.randint(0, 10, (size, 3), generator=generator) for size in (30, 300, 300, 5)]
        for tuples in [*batches, everything, everything.flip(0), batches[1]]:  # the last two: all known
            assert torch.equal(dense.evaluate(tuples), sorted_memo.evaluate(tuples))
            assert dense.stats.as_dict() == sorted_memo.stats.as_dict()
    assert dense.stats.hits > 0 and dense.cache_size() == sorted_memo.cache_size() == 1000  # every tuple, failed too
    assert list(dense.memo_dict().items()) == list(sorted_memo.memo_dict().items())
    reloaded = bp.Program(fn, (DIGIT,) * 3, output, name="p")
    reloaded.load_state_dict(dense.state_dict())
    assert list(reloaded.memo_dict().items()) == list(dense.memo_dict().items())
    dense.clear_cache()
    assert dense.cache_size() == 0 and dense._memo.entries()[0].shape == (0, 3)


def test_the_dense_memo_is_chosen_only_where_it_cannot_grow_past_a_bound():
    assert isinstance(bp.Program(digit_sum, (DIGIT,) * 4, bp.Open())._memo, DenseMemo)  # 14,641 codes
    assert isinstance(bp.Program(digit_sum, (DIGIT,) * 5, bp.Open())._memo, TupleMemo)  # 161,051 codes
    assert isinstance(bp.Program(digit_sum, (DIGIT,) * 2, bp.Open(), cache_limit=50)._memo, TupleMemo)
    assert isinstance(bp.Program(digit_sum, (DIGIT,) * 2, bp.Open(), cache_limit=121)._memo, DenseMemo)
    with pytest.raises(ValueError, match="use TupleMemo"):
        DenseMemo(TupleCoder([10, 10]), 1, limit=10)


def test_memo_merges_many_inserts_and_stays_sorted():
    coder = TupleCoder([1000, 1000])
    memo = TupleMemo(coder, 1)
    generator = torch.Generator().manual_seed(1)
    everything = torch.randperm(10**6, generator=generator)[:20000]
    for block in everything.split(1500):
        rows = torch.stack([block // 1000, block % 1000], dim=1)
        memo.insert(coder.codes(rows), rows, (block % 7).unsqueeze(1), torch.ones_like(block, dtype=torch.bool))
    rows = torch.stack([everything // 1000, everything % 1000], dim=1)
    found, outputs, ok, _ = memo.lookup(coder.codes(rows), rows)
    assert bool(found.all()) and torch.equal(outputs[:, 0], everything % 7) and len(memo) == 20000
    kept, _, _ = memo.entries()
    assert torch.equal(kept, rows)  # oldest first, rows decoded back from exact codes


def test_state_round_trip_of_product_failures_and_a_pre_tensor_pickle():
    output = bp.Product(bp.Discrete([0, 1]), bp.Discrete([0, 1]))
    program = bp.Program(board_parity, (bp.Sequence(bp.Discrete(range(81)), 40),), output)
    rows = torch.full((3, 40), -1)
    rows[0, :3] = torch.tensor([1, 2, 3])
    rows[1, :1] = 5  # too short: a deterministic failure
    rows[2, :2] = torch.tensor([4, 4])
    with pytest.warns(RuntimeWarning, match="too short"):
        first = program.evaluate(rows)
    assert first.tolist() == [[0, 1], [-1, -1], [0, 0]]
    state, view = program.state_dict(), program.memo_dict()
    assert view[tuple(rows[1].tolist())] == bp.FAILED and view[tuple(rows[0].tolist())] == (0, 1)
    fresh = bp.Program(board_parity, (bp.Sequence(bp.Discrete(range(81)), 40),), output)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.evaluate(rows), first) and fresh.stats.calls == program.stats.calls
    # a program pickled when the memo was a dict of tuples (the previous format) loads into tensors
    old = pickle.loads(pickle.dumps(fresh))
    old.__dict__["_memo"] = dict(view)
    copy = pickle.loads(pickle.dumps(old.__dict__ | {"_runner": None}, protocol=4))
    revived = bp.Program.__new__(bp.Program)
    revived.__setstate__(copy)
    assert revived.cache_size() == 3 and torch.equal(revived.evaluate(rows), first)
    assert revived.stats.calls == program.stats.calls  # answered from the converted memo


def test_batched_program_takes_sequence_inputs_as_padded_columns():
    def total(digits, weights):
        return digits.values.sum(dim=1) * weights + digits.lengths

    inputs = (bp.Sequence(DIGIT, 4), bp.Discrete([1, 2]))
    output = bp.Discrete(range(100))
    batched = bp.BatchedProgram(total, inputs, output)
    program = bp.Program(lambda ds, w: sum(ds) * w + len(ds), inputs, output)
    generator = torch.Generator().manual_seed(2)
    digits = torch.randint(0, 10, (200, 4), generator=generator)
    lengths = torch.randint(0, 5, (200,), generator=generator)
    digits = digits.masked_fill(torch.arange(4) >= lengths.unsqueeze(1), -1)
    rows = torch.cat([digits, torch.randint(0, 2, (200, 1), generator=generator)], dim=1)
    assert torch.equal(batched.evaluate(rows), program.evaluate(rows))
    inside = torch.tensor([[3, -1, 4, -1, 1]])  # padding inside: the values are taken in order, as decode does
    assert batched.evaluate(inside).tolist() == program.evaluate(inside).tolist() == [7 * 2 + 2]


@pytest.mark.parametrize("make_estimator", [
    lambda: bp.REINFORCE(num_samples=30), lambda: bp.IndeCateR(num_samples=3),
    lambda: bp.ISED(num_samples=30, weights="importance"), lambda: bp.Exact(),
], ids=["reinforce", "indecater", "ised-importance", "exact"])
def test_other_estimators_give_the_per_tuple_reference_results(make_estimator):
    inputs, output = (DIGIT,) * 3, bp.Discrete(range(28))
    results = []
    for program in (bp.Program(digit_sum, inputs, output), PerTuple(digit_sum, inputs, output)):
        logits = torch.randn(5, 3, 10, generator=torch.Generator().manual_seed(4)).requires_grad_()
        layer = bp.BlackBox(program, make_estimator(), seed=2)
        for _ in range(2):
            loss = layer.loss(*logits.softmax(-1).unbind(1), target=[3, 9, 14, 20, 27])
            loss.backward()
        results.append((loss.detach(), logits.grad.clone()))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_serial_calls_resume_after_a_raising_tuple_and_keep_every_result_in_order():
    """The serial loop runs fn once per new tuple, in order, carrying on after a call that raises."""
    seen = []

    def picky(a, b):
        seen.append((a, b))
        if a == b:
            raise ValueError("equal digits")
        return None if a + b == 3 else (2.0 if a + b == 2 else a + b)

    digit = bp.Discrete(range(10))
    program = bp.Program(picky, (digit, digit), bp.Discrete(range(19)))
    rows = torch.tensor([[1, 4], [2, 2], [0, 3], [5, 1], [0, 2], [7, 7], [1, 4]])
    with pytest.warns(RuntimeWarning):
        outputs = program.evaluate(rows)
    assert outputs.tolist() == [5, -1, -1, 6, 2, -1, 5]  # 2.0 is the output 2; None is a failure
    assert seen == [(0, 2), (0, 3), (1, 4), (2, 2), (5, 1), (7, 7)]  # distinct tuples, in code order
    assert (program.stats.calls, program.stats.failures, set(program.stats.errors)) == (6, 3, {"raised", "returned"})


@pytest.mark.parametrize("inputs", [
    (bp.Discrete(range(10)), bp.Discrete(range(10))),  # the indices themselves
    (bp.Discrete([3, 7, 11]), bp.Discrete(["a", "b"])),  # int values, then an object column
    (bp.Sequence(bp.Discrete(list("+-*/0123")), 5),),  # one Sequence (hwf's layout)
    (bp.Discrete([(1, 2), (3, 4)]), bp.Sequence(bp.Discrete(["x", "y", "z"]), 3), bp.Sequence(bp.Discrete(range(4)), 2)),
])
def test_row_decoder_equals_decode_row_by_row(inputs):
    """The column-wise decoder gives ``decode(row)`` for every row, tuple values whole and padding cut."""
    program = bp.Program(lambda *args: 0, inputs, bp.Discrete([0]))
    generator = torch.Generator().manual_seed(7)
    columns = []
    for space in inputs:
        if isinstance(space, bp.Sequence):
            values = torch.randint(0, space.element.size, (200, space.max_len), generator=generator)
            length = torch.randint(0, space.max_len + 1, (200, 1), generator=generator)
            columns.append(values.masked_fill(torch.arange(space.max_len) >= length, -1))
        else:
            columns.append(torch.randint(0, space.size, (200, 1), generator=generator))
    rows = torch.cat(columns, dim=1)
    assert program.decode_rows(rows) == [program.decode(row) for row in rows.tolist()]


def test_a_checkpoint_holds_the_memo_as_a_compact_table_and_old_dict_states_still_load():
    """state_dict()["memo"] is a table of small tensors (a few bytes per entry, not a dict of Python
    tuples); it round-trips, and the dict of earlier checkpoints loads into the same memo."""
    program = bp.Program(digit_sum, (DIGIT,) * 6, bp.Open())
    rows = torch.randint(0, 10, (20_000, 6), generator=torch.Generator().manual_seed(3))
    first = program.evaluate(rows)
    table = program.state_dict()["memo"]
    assert table["rows"].dtype == torch.int8 and table["outputs"].dtype == torch.int8 and table["ok"].dtype == torch.bool
    count = program.cache_size()
    assert table["rows"].shape == (count, 6) and 10_000 < count <= 20_000
    assert sum(t.numel() * t.element_size() for t in table.values()) <= 8 * count  # 6 + 1 + 1 bytes an entry
    view = program.memo_dict()
    for state in (program.state_dict(), {**program.state_dict(), "memo": view}):  # the table, then the old dict
        fresh = bp.Program(digit_sum, (DIGIT,) * 6, bp.Open())
        fresh.load_state_dict(state)
        assert fresh.memo_dict() == view and torch.equal(fresh.evaluate(rows), first)
        assert fresh.stats.calls == program.stats.calls  # every tuple answered from the loaded memo
    with pytest.raises(ValueError, match=r"a table of rows \[N, 6\], outputs \[N, 1\] and ok \[N\]"):
        bp.Program(digit_sum, (DIGIT,) * 6, bp.Open()).load_state_dict(
            {**program.state_dict(), "memo": {**table, "ok": table["ok"].long()}})
