"""A multilayer perceptron on flattened images (our synthetic experiments of Hold me tight!)."""
import torch.nn as nn


class MLP(nn.Module):
    """x [B, ...] with ``input_dim`` values per sample -> Linear(hidden) + ReLU, twice ->
    logits [B, num_classes]."""

    def __init__(self, input_dim=784, num_classes=10, hidden=500):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = nn.functional.relu(self.fc1(x.flatten(1)))
        x = nn.functional.relu(self.fc2(x))
        return self.fc3(x)
