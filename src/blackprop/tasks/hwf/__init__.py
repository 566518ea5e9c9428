"""HWF: hand-written formulas (``task``: data, programs, the task; ``formula``: the evaluator;
``tensor_formula``: the evaluator over batches of tensors, a ``BatchedProgram``).

The networks are in ``blackprop.models`` (``FormulaModel``, ``SymbolNet``).
"""

from __future__ import annotations

from .formula import DIGITS, OPERATORS, FormulaError, evaluate_formula, formula_value, same_value, tolerance_key
from .task import (
    FORMULA_LENGTHS,
    HWF_DEFAULTS,
    MAX_LEN,
    SYMBOLS,
    generate_formulas,
    generated_data,
    hwf_task,
    load_hwf_original,
    make_hwf_program,
    operator_pool,
    typed_formula_value,
)
from .tensor_formula import formula_values, make_hwf_batched_program

__all__ = [
    "DIGITS", "FORMULA_LENGTHS", "HWF_DEFAULTS", "MAX_LEN", "OPERATORS", "SYMBOLS", "FormulaError", "evaluate_formula",
    "formula_value", "formula_values", "generate_formulas", "generated_data", "hwf_task", "load_hwf_original", "make_hwf_batched_program",
    "make_hwf_program",
    "operator_pool", "same_value", "tolerance_key", "typed_formula_value",
]
