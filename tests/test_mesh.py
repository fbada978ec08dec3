import numpy as np

from facet_lib.mesh import fan_triangulate
from tests.io.wrl_reference import fan_triangulate as reference


def test_fan_triangulate_fast_path_matches_the_general_one():
    rng = np.random.default_rng(0)
    tris = np.concatenate([rng.integers(0, 50, (200, 3)), -np.ones((200, 1), np.int64)], 1).ravel()
    np.testing.assert_array_equal(fan_triangulate(tris), reference(tris))
    mixed = np.array([0, 1, 2, 3, -1, 4, 5, 6, -1, 7, 8, -1, 9, 10, 11, 12, 13])  # quad, tri, 2-gon, open pentagon
    np.testing.assert_array_equal(fan_triangulate(mixed), reference(mixed))
    assert fan_triangulate(mixed).tolist() == [[0, 1, 2], [0, 2, 3], [4, 5, 6], [9, 10, 11], [9, 11, 12], [9, 12, 13]]
    four = np.array([0, 1, 2, 3, 4, 5, 6, -1])  # size % 4 == 0 but a heptagon
    np.testing.assert_array_equal(fan_triangulate(four), reference(four))
