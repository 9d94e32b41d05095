"""A small RGB(A) PNG is one colour image, not a stack of slices (issue 15, class 11)."""

import numpy as np
import pytest

from spinv.data.io import load_images


@pytest.mark.parametrize("channels", [3, 4])
def test_a_short_colour_png_is_one_gray_image(tmp_path, channels):
    import imageio.v3 as iio

    rgb = np.zeros((4, 64, channels), np.uint8)
    rgb[..., 0] = 255
    if channels == 4:
        rgb[..., 3] = 255
    iio.imwrite(tmp_path / "wide.png", rgb)
    stack = load_images(tmp_path / "wide.png", normalize="none")
    assert stack.shape == (1, 4, 64)
    assert np.allclose(stack, 0.2125, atol=1e-3)  # rgb2gray's red weight
