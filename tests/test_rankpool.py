import numpy as np
import pytest

from facet_lib.errors import ConfigError
from facet_lib.rankpool import dynamic_image, rank_pool_weights, sample_uniform, summarize


def test_weights_closed_form_T4():
    # H_0..H_4 = 0, 1, 3/2, 11/6, 25/12; α_t = 2(T−t+1) − (T+1)(H_T − H_{t−1})
    expected = [8 - 5 * 25 / 12, 6 - 5 * (25 / 12 - 1), 4 - 5 * (25 / 12 - 3 / 2), 2 - 5 * (25 / 12 - 11 / 6)]
    np.testing.assert_allclose(rank_pool_weights(4), expected)


@pytest.mark.parametrize("T", [2, 3, 10, 50, 100])
def test_weights_sum_to_zero_and_later_frames_dominate(T):
    a = rank_pool_weights(T)
    assert abs(a.sum()) < 1e-9 * T * T
    assert a[0] < 0 < a[-1]


def test_static_sequence_is_flat_and_motion_is_signed():
    frame = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    flat = dynamic_image(np.repeat(frame[None], 12, axis=0))
    assert flat.min() == flat.max()
    ramp = np.zeros((12, 8, 8, 3), np.uint8)
    ramp[:, :4] = np.linspace(0, 200, 12)[:, None, None, None].astype(np.uint8)  # top half brightens
    di = dynamic_image(ramp)
    assert di[:4].mean() > di[4:].mean()


def test_alternative_summaries_and_sampling():
    seq = np.zeros((5, 4, 4, 3), np.uint8)
    seq[3] = 90
    assert summarize(seq, "apex").max() == 90 and summarize(seq, "mean").max() == 18
    with pytest.raises(ConfigError, match="render.temporal"):
        summarize(seq, "max")
    assert sample_uniform(100, 5).tolist() == [0, 25, 50, 74, 99]
    assert sample_uniform(3, 16).tolist() == [0, 1, 2]
