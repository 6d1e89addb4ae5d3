import numpy as np
import pytest

from angioseg.data.motion import CardiacBreathingMotion, MotionParams, cardiac_waveform
from angioseg.warp import warp_backward


@pytest.fixture
def motion():
    params = MotionParams(contraction=0.09, twist_deg=5, wobble_px=6, breathing_px=15, heart_rate_bpm=90)
    return CardiacBreathingMotion(params, height=64, width=80, seed=3)


def test_waveform_range_and_peak():
    phase = np.linspace(0, 1, 1001)
    wave = cardiac_waveform(phase)
    assert wave.min() >= 0 and wave.max() <= 1
    assert wave[0] == pytest.approx(0)
    assert phase[np.argmax(wave)] == pytest.approx(0.35, abs=1e-3)


def test_identity_at_time_zero(motion):
    grid = motion.pixel_grid()
    for layer in ("vessel", "background"):
        assert np.array_equal(motion.to_frame(grid, 0.0, layer), grid)


def test_inverse_is_exact(motion):
    grid = motion.pixel_grid()
    for t in (0.1, 0.23, 0.61):
        canonical = motion.to_canonical(grid, t, "vessel")
        assert np.abs(canonical - grid).max() > 0.5  # it really moves
        assert np.abs(motion.to_frame(canonical, t, "vessel") - grid).max() < 1e-4


def test_background_moves_less_than_vessels(motion):
    grid = motion.pixel_grid()
    vessel = np.abs(motion.displacement(grid, 0.3, "vessel")).max()
    background = np.abs(motion.displacement(grid, 0.3, "background")).max()
    assert background < vessel


def test_flows_are_consistent(motion):
    times = np.array([0.0, 0.2, 0.4])
    forward, backward = motion.flows(times, "vessel")
    assert forward.shape == backward.shape == (2, 64, 80, 2)
    # a point moved forward then backward returns to where it started (away from borders)
    grid = motion.pixel_grid()
    moved = grid + forward[0]
    ys, xs = np.round(moved[..., 1]).astype(int), np.round(moved[..., 0]).astype(int)
    inside = (ys >= 0) & (ys < 64) & (xs >= 0) & (xs < 80)
    back = moved[inside] + backward[0][ys[inside], xs[inside]]
    assert np.median(np.abs(back - grid[inside])) < 0.5


def test_warp_backward_moves_a_square_by_a_known_shift():
    image = np.zeros((20, 20), bool)
    image[5:9, 5:9] = True
    flow = np.zeros((20, 20, 2), np.float32)
    flow[..., 0] = -3.0  # frame t+1 at x sees frame t at x - 3: content moved 3 px right
    warped = warp_backward(image, flow, nearest=True)
    expected = np.zeros_like(image)
    expected[5:9, 8:12] = True
    assert np.array_equal(warped, expected)
