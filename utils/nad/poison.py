"""NAD poisoning of a labelled image set (NADs paper, Sec. 4).

Every image of class t gets its coefficient along a class-specific unit "carrier" set to
``sign_t * eps``: ``x <- x + (sign_t * eps - <x, c_t>) c_t``. The carrier of class t is a NAD
(index ``nad_index + t // (2 C)``) placed in channel ``t % C`` of a C-channel image (zeros in
the other channels), and its sign is +1 for odd t and -1 for even t; with C = 3 and 10 classes
these are the original's carriers NAD_idx (classes 0-5) and NAD_idx + 1 (classes 6-9). The
poisoned images are not clipped to [0, 1] (neither were the original's).
"""
import numpy as np
import torch


def class_carriers(nads, nad_index=0, num_classes=10, shape=(3, 32, 32)):
    """Carriers [num_classes, C, H, W] (float32, unit norm) and signs [num_classes] (+-1.0) of
    the poisoning, from NADs [k, H*W] (one per row)."""
    channels, h, w = shape
    nads = torch.as_tensor(np.asarray(nads), dtype=torch.float64)
    needed = nad_index + (num_classes - 1) // (2 * channels)
    if nads.shape[1] != h * w or needed >= len(nads):
        raise ValueError(f"poisoning {num_classes} classes of {shape} images needs NADs "
                         f"{nad_index}..{needed} of size {h * w}; got an array "
                         f"{tuple(nads.shape)}")
    carriers = torch.zeros(num_classes, channels, h, w, dtype=torch.float64)
    for t in range(num_classes):
        v = nads[nad_index + t // (2 * channels)]
        carriers[t, t % channels] = (v / v.norm()).view(h, w)
    signs = torch.tensor([1.0 if t % 2 else -1.0 for t in range(num_classes)])
    return carriers.float(), signs


def poison(images, labels, carriers, signs, eps=0.05):
    """Poisoned copy of ``images`` [N, C, H, W]: each image of class ``labels[i]`` moved along
    its class's carrier until its coefficient there is ``signs[label] * eps``.
    carriers [T, C, H, W] of unit norm, signs [T]. Computed in float64, returned in the
    images' dtype."""
    x = images.double()
    c = carriers.double()[labels]
    coef = (x * c).flatten(1).sum(1)
    target = signs.double()[labels] * eps
    return (x + (target - coef).view(-1, 1, 1, 1) * c).to(images.dtype)
