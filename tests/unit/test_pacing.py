"""A turn in the rate budget is used at its time or given up (docs/contract.md §10, "One rate budget")."""

import pytest
from engage_contact.engage.pacing import LATE_SECONDS, wait_for_turn


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.oversleep: list[float] = []  # how much later than asked each sleep wakes up

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + (self.oversleep.pop(0) if self.oversleep else 0.0)


class Budget:
    """Turns every 1/45 s from the clock's start; records the turns handed out."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.next, self.given = clock, clock.now, []

    def acquire(self, within: float) -> float:
        turn = max(self.next, self.clock.now)
        self.next = turn + 1 / 45
        self.given.append(turn)
        return turn - self.clock.now


def test_a_turn_woken_up_for_in_time_is_used():
    clock = Clock()
    budget = Budget(clock)
    budget.next += 0.2
    clock.oversleep = [LATE_SECONDS / 2]
    assert wait_for_turn(budget, lambda: 2.0, clock.sleep, clock) == 0
    assert len(budget.given) == 1


def test_a_turn_woken_up_for_too_late_is_given_up_and_the_next_one_taken():
    clock = Clock()
    budget = Budget(clock)
    budget.next += 0.2
    clock.oversleep = [0.3]  # the thread did not get the CPU back in time
    assert wait_for_turn(budget, lambda: 2.0, clock.sleep, clock) == 1
    assert len(budget.given) == 2
    # the request goes out no earlier than the second turn, and within LATE_SECONDS of it
    assert budget.given[1] <= clock.now <= budget.given[1] + LATE_SECONDS


def test_a_turn_due_now_is_used_without_sleeping():
    clock = Clock()
    slept = []
    assert wait_for_turn(Budget(clock), lambda: 2.0, slept.append, clock) == 0
    assert slept == []


def test_how_long_the_caller_may_wait_is_asked_again_for_every_turn():
    clock = Clock()
    budget = Budget(clock)
    budget.next += 0.5
    clock.oversleep = [0.4]
    asked = []

    def within() -> float:
        asked.append(clock.now)
        return 2.0

    wait_for_turn(budget, within, clock.sleep, clock)
    assert asked == pytest.approx([100.0, 100.9])
