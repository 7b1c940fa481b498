"""Budget periods: the current one from a duration and budget_reset_at, without a database write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.limits.periods import budget_period
from llm_gateway.budget_durations import next_reset

NOW = datetime(2025, 3, 15, 10, 30, tzinfo=UTC)


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


@pytest.mark.parametrize("duration", ["", "0d", "0mo"])
def test_a_budget_without_a_duration_is_a_lifetime_budget(duration):
    assert budget_period(duration, at(2025, 3, 20), NOW) == (None, None)


def test_a_reset_time_still_ahead_ends_the_period():
    assert budget_period("1d", at(2025, 3, 16, 5), NOW) == (at(2025, 3, 15, 5), at(2025, 3, 16, 5))
    assert budget_period("1mo", at(2025, 4, 2), NOW) == (at(2025, 3, 2), at(2025, 4, 2))


def test_a_reset_time_set_further_ahead_than_a_duration_still_ends_the_period():
    # The spend of the database row runs until budget_reset_at, whatever the duration says.
    assert budget_period("1d", at(2025, 3, 20), NOW) == (at(2025, 3, 19), at(2025, 3, 20))


def test_a_stale_reset_time_steps_forward_by_whole_periods():
    assert budget_period("1d", at(2025, 3, 10, 5), NOW) == (at(2025, 3, 15, 5), at(2025, 3, 16, 5))
    assert budget_period("1h", at(2025, 3, 15, 10), NOW) == (at(2025, 3, 15, 10), at(2025, 3, 15, 11))


def test_a_reset_time_years_behind_steps_forward_without_looping():
    start, end = budget_period("30s", at(2015, 1, 1), NOW)

    assert (start, end) == (at(2025, 3, 15, 10, 30), at(2025, 3, 15, 10, 30, 30))


def test_the_reset_instant_itself_belongs_to_the_next_period():
    assert budget_period("1d", NOW, NOW) == (NOW, NOW + timedelta(days=1))


def test_months_step_forward_as_the_reset_task_does():
    # 31 January -> 28 February -> 28 March: each step is next_reset of the previous one.
    start, end = budget_period("1mo", at(2025, 1, 31), NOW)

    assert end == next_reset("1mo", next_reset("1mo", at(2025, 1, 31))) == at(2025, 3, 28)
    assert start == at(2025, 2, 28)


def test_the_period_keeps_its_end_when_the_database_catches_up():
    stale = budget_period("1mo", at(2025, 1, 31), NOW)

    caught_up = budget_period("1mo", stale[1], NOW)  # what the reset task stores

    assert caught_up == stale


def test_without_a_reset_time_periods_align_on_the_epoch():
    assert budget_period("1d", None, NOW) == (at(2025, 3, 15), at(2025, 3, 16))
    assert budget_period("1w", None, NOW) == (at(2025, 3, 13), at(2025, 3, 20))  # 1970-01-01 was a Thursday
    assert budget_period("1mo", None, NOW) == (at(2025, 3, 1), at(2025, 4, 1))
    assert budget_period("3mo", None, NOW) == (at(2025, 1, 1), at(2025, 4, 1))


@pytest.mark.parametrize("duration", ["30s", "10m", "1h", "1d", "1w", "1mo", "2mo"])
@pytest.mark.parametrize("reset_at", [None, at(2024, 11, 30, 23), at(2025, 3, 15, 10, 30, 20)])
def test_the_period_contains_now_and_is_the_same_for_every_moment_in_it(duration, reset_at):
    start, end = budget_period(duration, reset_at, NOW)

    assert start <= NOW < end
    assert budget_period(duration, reset_at, start) == (start, end)
    assert budget_period(duration, reset_at, end - timedelta(microseconds=1)) == (start, end)
    assert budget_period(duration, reset_at, end)[0] == end


def test_an_aware_time_in_another_zone_gets_the_same_period():
    paris = NOW.astimezone(datetime.now().astimezone().tzinfo)

    assert budget_period("1mo", None, paris) == budget_period("1mo", None, NOW)


@pytest.mark.parametrize(
    ("duration", "reset_at"),
    [("1mo", at(2025, 1, 31)), ("1d", at(2025, 3, 10, 5)), ("1h", None), ("2mo", None), ("1d", None)],
)
def test_a_remembered_period_is_what_computing_it_again_gives(duration, reset_at):
    # Walk forward through months in uneven steps (clamped month ends included), each answer given
    # from memory when it can be, and compare with a fresh computation at the same moment.
    from billing.limits import periods

    moment = at(2025, 1, 30, 23)
    while moment < at(2025, 7, 1):
        remembered = budget_period(duration, reset_at, moment)
        periods._periods.clear()
        assert remembered == budget_period(duration, reset_at, moment), moment
        budget_period(duration, reset_at, moment - timedelta(hours=7))  # an earlier moment asks too
        moment += timedelta(hours=13, minutes=17)
