"""A scheduled workflow: its launch plan `training_nightly` runs every night at 02:00."""

import typing

from flyte_common import normalise_words
from flytekit import CronSchedule, LaunchPlan, task, workflow


@task
def vocabulary(corpus: str) -> typing.List[str]:
    return sorted(set(normalise_words(corpus)))


@task
def fit(vocab: typing.List[str]) -> float:
    return float(len(vocab))


@workflow
def training_wf(corpus: str = "the quick brown fox") -> float:
    return fit(vocab=vocabulary(corpus=corpus))


training_nightly = LaunchPlan.get_or_create(
    workflow=training_wf,
    name="training_nightly",
    schedule=CronSchedule(schedule="0 2 * * *"),
)
