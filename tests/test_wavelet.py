import pytest
import torch

from lcodec.models import wavelet


@pytest.mark.parametrize("shape,levels", [((2, 3, 64, 96), 3), ((1, 1, 8, 8), 3), ((1, 3, 40, 24), 2)])
def test_packet_2d_is_exactly_invertible(shape, levels):
    x = torch.randn(*shape, dtype=torch.float64)
    w = wavelet.packet_forward_2d(x, levels)
    assert w.shape == (shape[0], shape[1] * 4 ** levels, shape[2] >> levels, shape[3] >> levels)
    assert (wavelet.packet_inverse_2d(w, levels) - x).abs().max() < 1e-12


def test_packet_1d_is_exactly_invertible():
    x = torch.randn(2, 2, 4096, dtype=torch.float64)
    w = wavelet.packet_forward_1d(x, 8)
    assert w.shape == (2, 512, 16)
    assert (wavelet.packet_inverse_1d(w, 8) - x).abs().max() < 1e-12


def test_constant_image_goes_to_the_lowpass_band_only():
    x = torch.ones(1, 1, 32, 32, dtype=torch.float64)
    w = wavelet.packet_forward_2d(x, 3)
    assert torch.allclose(w[0, 0], torch.full((4, 4), 8.0, dtype=torch.float64))
    assert w[0, 1:].abs().max() < 1e-9


def test_transform_is_nearly_orthonormal():
    x = torch.randn(4, 3, 64, 64, dtype=torch.float64)
    ratio = (wavelet.packet_forward_2d(x, 3) ** 2).sum() / (x ** 2).sum()
    assert 0.8 < ratio < 1.3
