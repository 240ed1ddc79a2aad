"""A workflow with its own image: see the Dockerfile and requirements.txt beside it."""

import typing

from flytekit import task, workflow


@task
def extract(n: int) -> typing.List[int]:
    return list(range(n))


@task
def transform(rows: typing.List[int]) -> typing.List[int]:
    return [r * r for r in rows]


@task
def load(rows: typing.List[int]) -> int:
    return sum(rows)


@workflow
def etl_wf(n: int = 10) -> int:
    return load(rows=transform(rows=extract(n=n)))
