"""How fast a training was still improving when it ended, and when that counts as unfinished."""

import pytest

from arbench.training import convergence


def test_the_rate_is_the_fall_of_the_best_valid_nll_over_the_last_epochs():
    # best so far: 10, 9, 9, 8, 8, 7.5, 7.5 -> over the last 5 epochs it fell from 9 to 7.5
    assert convergence.improvement_rate([10, 9, 9.5, 8, 8.2, 7.5, 7.9]) == pytest.approx(0.3)


def test_a_rising_valid_nll_after_the_best_epoch_is_a_rate_of_zero():
    assert convergence.improvement_rate([5, 4, 3, 3.1, 3.2, 3.3, 3.4, 3.5]) == 0.0


def test_with_sparse_validations_the_rate_spans_the_validated_epochs():
    # validated at epochs 3, 6, 9, 12: the last validation at least 5 epochs before 12 is 6
    nlls = [None, None, 10.0, None, None, 9.0, None, None, 8.5, None, None, 8.2]
    assert convergence.improvement_rate(nlls) == pytest.approx((9.0 - 8.2) / 6)


def test_fewer_epochs_than_the_window_use_all_but_the_first_and_one_epoch_gives_none():
    assert convergence.improvement_rate([10, 8, 7]) == pytest.approx(1.5)
    assert convergence.improvement_rate([10]) is None


def test_the_tolerance_is_relative_to_the_best_valid_nll():
    falling = [10, 9.9, 9.85, 9.82, 9.8, 9.79]
    capped = convergence.network_record(convergence.EPOCH_CAP, falling)
    assert capped["improvement_per_epoch"] == pytest.approx(0.042)
    assert capped["best_valid_nll"] == 9.79
    assert convergence.unfinished(capped)  # 0.042 > 0.05% of 9.79
    scaled = convergence.network_record(convergence.EPOCH_CAP, [100 * v for v in falling])
    on_faces = convergence.network_record(convergence.EPOCH_CAP, [v + 3000 for v in falling])
    assert convergence.unfinished(scaled)
    assert not convergence.unfinished(on_faces)  # 0.042 nats is nothing on 3,000


def test_described_for_the_report():
    resumed = convergence.network_record(convergence.EARLY_STOPPING, [3, 2, 1], resumed=2)
    assert convergence.describe(resumed) == "early stopping after 3 epochs (resumed 2 times)"
    em = convergence.em_record(False, [-5.0, -4.0, -3.5])
    assert convergence.describe(em) == "iteration cap after 3 iterations"
    assert em["improvement_per_epoch"] == pytest.approx(0.5)
    assert convergence.describe(None) == "not recorded"


def test_finished_means_the_curve_has_flattened_whatever_ended_the_run():
    """Early stopping after a learning rate decayed to almost nothing, with the best valid NLL
    still falling faster than the tolerance, is not a finished run; a cap on a flat curve is."""
    falling = [100.0, 90.0, 85.0, 84.0, 83.5, 83.4]
    stopped = convergence.network_record(convergence.EARLY_STOPPING, falling)
    assert stopped["improvement_per_epoch"] > convergence.tolerance(83.4)
    assert convergence.unfinished(stopped)
    flat = [100.0, 90.0, 85.0, 84.99, 84.98, 84.97, 84.96, 84.95]
    assert not convergence.unfinished(convergence.network_record(convergence.EPOCH_CAP, flat))
