"""Small log-space helpers shared by the estimators."""

from __future__ import annotations

import torch


def safe_log(x: torch.Tensor) -> torch.Tensor:
    """log x with -inf where x <= 0, and a zero (never NaN) gradient there."""
    zero = x <= 0  # NaN stays NaN
    return torch.where(zero, float("-inf"), torch.where(zero, 1.0, x).log())


def log1mexp(log_x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(log_x)) for log_x <= 0, accurate near 0 and -inf."""
    log_x = log_x.clamp(max=-1e-7)
    return torch.where(log_x > -0.6931, torch.log(-torch.expm1(log_x)), torch.log1p(-torch.exp(log_x)))
