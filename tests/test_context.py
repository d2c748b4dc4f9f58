import numpy as np
import pytest

from lcodec.codec import context


def smooth_planes(rng, c=4, h=24, w=20):
    """Latent-like planes: a smooth first channel, sparse detail channels."""
    yy, xx = np.mgrid[:h, :w]
    base = np.round(40 * np.sin(yy / 5.0) + 30 * np.cos(xx / 7.0)).astype(np.int64)
    detail = np.round(rng.laplace(0, 1.2, (c - 1, h, w))).astype(np.int64)
    return np.concatenate([base[None], detail]).clip(-127, 127)


@pytest.fixture(scope="module")
def coder():
    rng = np.random.default_rng(0)
    return context.LatentCoder(context.fit([smooth_planes(rng) for _ in range(4)], 4, 127))


@pytest.mark.parametrize("shape", [(4, 24, 20), (4, 1, 1), (4, 1, 9), (4, 2, 2), (4, 3, 5), (4, 17, 33)])
def test_round_trip_any_shape(coder, shape):
    rng = np.random.default_rng(sum(shape))
    planes = rng.integers(-127, 128, size=shape)
    assert np.array_equal(coder.decode(coder.encode(planes), shape), planes)


def test_prediction_is_chosen_for_the_smooth_channel_only(coder):
    assert list(coder.predict) == [True, False, False, False]


def test_context_coding_beats_a_fixed_length_code(coder):
    planes = smooth_planes(np.random.default_rng(9))
    data = coder.encode(planes)
    assert np.array_equal(coder.decode(data, planes.shape), planes)
    assert len(data) * 8 < 0.5 * planes.size * 8


def test_out_of_table_values_escape(coder):
    planes = np.zeros((4, 8, 8), dtype=np.int64)
    planes[0, 3, 3], planes[2, 5, 1] = 100000, -70000
    assert np.array_equal(coder.decode(coder.encode(planes), planes.shape), planes)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 17), (17, 2), (1, 1000), (3, 3), (5, 40)])
def test_plans_cover_every_position_once_and_use_only_coded_neighbours(shape):
    stages = context.plan(*shape)
    order = np.concatenate([pos for pos, _ in stages])
    assert sorted(order.tolist()) == list(range(shape[0] * shape[1]))
    done = set()
    for pos, nb in stages:
        assert nb is None or set(nb.ravel().tolist()) <= done
        done |= set(pos.tolist())


def test_thin_planes_are_interpolated_not_coded_raw(coder):
    ramp = np.round(60 * np.sin(np.arange(2000) / 40.0)).astype(np.int64)[None, None, :]
    planes = np.concatenate([ramp, np.zeros((3, 1, 2000), dtype=np.int64)])
    data = coder.encode(planes)
    assert np.array_equal(coder.decode(data, planes.shape), planes)
    shuffled = planes.copy()
    shuffled[0, 0] = np.random.default_rng(0).permutation(shuffled[0, 0])
    assert len(data) < 0.5 * len(coder.encode(shuffled))   # smoothness along the row is used
