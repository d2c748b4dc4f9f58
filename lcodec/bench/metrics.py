"""Image quality metrics on 8-bit reconstructions."""
import math

import numpy as np


def psnr(ref, rec):
    mse = np.mean((ref.astype(np.float64) - rec.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0 ** 2 / mse) if mse > 0 else float("inf")


def ms_ssim(ref, rec):
    """MS-SSIM (pytorch-msssim, 5 scales); NaN for images too small for 5 scales (< 161 px)."""
    if min(ref.shape[:2]) < 161:
        return float("nan")
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim
    a = torch.from_numpy(np.ascontiguousarray(ref)).permute(2, 0, 1)[None].double()
    b = torch.from_numpy(np.array(rec)).permute(2, 0, 1)[None].double()
    return float(_ms_ssim(a, b, data_range=255.0))
