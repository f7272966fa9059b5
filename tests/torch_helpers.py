"""PyTorch side of the torch comparisons: the losses of docs/math.md written with torch ops.

Imported only by tests that first call ``pytest.importorskip("torch")``.
"""

import torch


def torch_loss(z, Y, mask, head):
    """Sum over masked steps, mean over sequences; z and Y (B, T, O), mask (B, T) or None (batch-first)."""
    if head == "softmax":
        per_step = -(Y * torch.log_softmax(z, dim=-1)).sum(-1)
    elif head == "sigmoid":
        per_step = torch.nn.functional.binary_cross_entropy_with_logits(z, Y, reduction="none").sum(-1)
    else:
        per_step = 0.5 * ((z - Y) ** 2).sum(-1)
    if mask is not None:
        per_step = per_step * mask
    return per_step.sum() / z.shape[0]


def head_output(z, head):
    if head == "softmax":
        return torch.softmax(z, dim=-1)
    if head == "sigmoid":
        return torch.sigmoid(z)
    return z
