"""LeNet-5 of both papers: conv 6@5x5, conv 16@5x5, fc 120, 84, classes (ReLU, 2x2 max-pooling);
and LeNetNoPool, the same without pooling (our experiment on the NAD paper's pooling claim).

Hold me tight! uses ``padding=2`` on 28x28 MNIST; the NAD paper uses ``padding=0`` on 32x32
inputs with one output. Both give a 16x5x5 feature map, so the parameter names and shapes are
those of the authors' checkpoints.
"""
import torch
import torch.autograd.forward_ad as forward_ad
import torch.nn as nn
import torch.nn.functional as F


def max_pool2(x):
    """``F.max_pool2d(x, 2)``: [..., H, W] -> [..., H // 2, W // 2], the same values.

    When no derivative is taken it is the maximum of the four strided views of ``x``, which on
    CPUs is several times faster than PyTorch's pooling kernel (DeepFool's label checks and
    every evaluation run through here). When one is, in reverse mode (autograd, torch.func.grad)
    or forward mode (torch.func.jvp/jacfwd, forward_ad), it is ``F.max_pool2d``, whose
    derivative takes each window's first maximal element; ``torch.maximum`` would split it
    between tied elements, which are common in the first layer on MNIST's flat background."""
    if ((torch.is_grad_enabled() and x.requires_grad)
            or forward_ad.unpack_dual(x).tangent is not None):
        return F.max_pool2d(x, 2)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    return torch.maximum(torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2]),
                         torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]))


class LeNet(nn.Module):
    def __init__(self, num_channels=1, num_classes=10, padding=2):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channels, 6, kernel_size=5, padding=padding)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        """x [B, C, H, W] -> logits [B, num_classes]."""
        # pooling before the ReLU is the same function and the same gradient as the papers'
        # ReLU-then-pool (a monotone function commutes with max), with a ReLU over 4x fewer
        # values
        x = F.relu(max_pool2(self.conv1(x)))
        x = F.relu(max_pool2(self.conv2(x)))
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNetNoPool(nn.Module):
    """LeNet without its two max-poolings, for the NAD paper's claim that pooling makes CNNs
    fail on most Fourier directions: conv 6@5x5 (no padding, stride 1), ReLU, conv 16@5x5
    (stride 1), ReLU, fc 16 * (H - 8) * (W - 8) -> 120, ReLU, fc 84, ReLU, fc classes. On the
    NAD paper's 32x32 inputs the first linear layer has 16 * 24 * 24 = 9,216 inputs (LeNet's
    has 400): the larger layer "compensates the increase of dimensionality", as the authors'
    website puts it. Default initialisation, as LeNet."""

    def __init__(self, num_channels=1, num_classes=1, size=32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channels, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * (size - 8) ** 2, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        """x [B, C, size, size] -> logits [B, num_classes]."""
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
