"""The demo history's people, context, synthetic scores and time-ordered runner.

:mod:`ketacare.clinic.demo_history` tells each patient's story as a generator of the
instants it acts at; this module holds what the stories share: the people and staff,
the context that counts what was made, the score trajectories and :func:`run`, which
steps every story in time order. The people and scores are invented.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from ketacare.clinic.audit.service import Actor
from ketacare.infra.settings import Settings

#: the one seed every synthetic number is drawn from
SEED = 20260302

#: ORT: "no" to every item; DAST-10: "no" to every item except item 3 ("able to stop")
ORT_NONE = [False] * 10
DAST_NONE = [False, False, True] + [False] * 7
ESCORTS = (("partner", "A. Partner"), ("friend", "B. Friend"), ("parent", "C. Parent"))


@dataclass(frozen=True)
class Person:
    """One synthetic patient and the course of care the demo gives them."""

    given: str
    family: str
    born: date
    sex: str
    weight: float
    height: float
    conditions: tuple[str, ...]
    medications: tuple[tuple[str, str], ...]
    allergies: tuple[str, ...] = ()
    group: str = "crps"  # crps, fibromyalgia, neuropathic, depression
    intake_days_ago: int = 120
    take_home: bool = False  # oral follow-on with take-home supplies after the IV course
    esketamine: bool = False  # esketamine nasal spray under the SPRAVATO REMS, not IV


@dataclass
class Staff:
    physician: Actor
    physician2: Actor
    nurse: Actor
    therapist: Actor


@dataclass
class Ctx:
    session: Session
    settings: Settings
    staff: Staff
    now: datetime
    rng: random.Random
    patient_ids: dict[int, int] = field(default_factory=dict)  # person index -> patient id
    counts: dict[str, int] = field(default_factory=dict)
    last_alerts: list[int] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


Story = Iterator[datetime]


def run(stories: list[Story], *, now: datetime) -> None:
    """Step every story in time order until each ends (or reaches ``now``).

    A story yields the instant it next acts at and acts when resumed; ties go to the
    story listed first, so the order is fixed.
    """
    queue: list[tuple[datetime, int, Story]] = []
    for order, story in enumerate(stories):
        first = next(story, None)
        if first is not None:
            heapq.heappush(queue, (first, order, story))
    while queue:
        at, order, story = heapq.heappop(queue)
        if at > now:
            continue  # the story's next step is after today: it stops here
        following = next(story, None)
        if following is not None:
            heapq.heappush(queue, (max(following, at), order, story))


# --------------------------------------------------------------------------- scores


def clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def phq9_answers(total: int, rng: random.Random, *, item9: int = 0) -> list[int]:
    """Nine PHQ-9 answers (0-3) summing to ``total`` (item 9 as given)."""
    answers = [0] * 8
    left = max(0, min(24, total - item9))
    while left > 0:
        i = rng.randrange(8)
        if answers[i] < 3:
            answers[i] += 1
            left -= 1
    return [*answers, item9]


def gad7_answers(total: int, rng: random.Random) -> list[int]:
    answers = [0] * 7
    left = max(0, min(21, total))
    while left > 0:
        i = rng.randrange(7)
        if answers[i] < 3:
            answers[i] += 1
            left -= 1
    return answers


@dataclass
class Trajectory:
    """How one patient's scores move: a baseline, the course's effect, its durability."""

    baseline: float
    effect: float  # fraction of the baseline removed at the end of a course
    durable_days: int  # days after a course before the effect starts to fade
    fade_days: int = 35

    def value(
        self, *, sessions_done: int, course_len: int, days_since_course: float | None
    ) -> float:
        if sessions_done == 0:
            return self.baseline
        gained = self.effect * min(1.0, sessions_done / max(1, min(course_len, 6)))
        if days_since_course is not None and days_since_course > self.durable_days:
            faded = min(1.0, (days_since_course - self.durable_days) / self.fade_days)
            gained *= 1 - 0.85 * faded
        return self.baseline * (1 - gained)


def answers_for(measure: str, total: int, rng: random.Random) -> list[int]:
    return phq9_answers(total, rng) if measure == "phq9" else [total]
