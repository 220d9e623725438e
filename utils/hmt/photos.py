"""Natural photographs for the frequency-manipulation examples: scikit-image's sample images
(bundled in its wheel, read offline), centre-cropped to a square and resized to the side of
CIFAR-10 (32) or ImageNet (224) images."""
import torch
import torchvision.transforms.functional as TF

from ..common.errors import UserError

PHOTOS = ("astronaut", "chelsea", "coffee")


def sample_photos(size, names=PHOTOS):
    """scikit-image sample images ``names`` as float32 [N, 3, size, size] in [0, 1]: the
    central square of each, resized with antialiased bilinear interpolation."""
    try:
        import skimage.data
    except ImportError:
        raise UserError("scikit-image is not installed; run 'make setup' (it is in "
                        "requirements.txt)") from None
    out = []
    for name in names:
        loader = getattr(skimage.data, name, None)
        if loader is None:
            raise UserError(f"scikit-image has no sample image {name!r}")
        img = torch.as_tensor(loader()).float().div(255.0)  # [H, W, 3] uint8 -> [0, 1]
        if img.ndim == 2:
            img = img[..., None].expand(-1, -1, 3)
        square = TF.center_crop(img.permute(2, 0, 1)[:3], min(img.shape[:2]))
        out.append(TF.resize(square, [size, size], antialias=True).clamp(0, 1))
    return torch.stack(out)
