"""Logistic regression of the NAD paper: one linear layer on the flattened image.

The parameter is named ``output_fc`` as in the authors' code, so their checkpoints load.
"""
import torch.nn as nn


class LogReg(nn.Module):
    """x [B, ...] with ``input_dim`` values per sample -> logits [B, num_classes]."""

    def __init__(self, input_dim=1024, num_classes=1):
        super().__init__()
        self.output_fc = nn.Linear(input_dim, num_classes)

    def forward(self, x):
        return self.output_fc(x.flatten(1))
