"""Feature extraction using the shared library."""

import typing

from flyte_common import normalise_words
from flytekit import task, workflow


@task
def tokens(text: str) -> typing.List[str]:
    return normalise_words(text)


@task
def counts(words: typing.List[str]) -> typing.Dict[str, int]:
    out: typing.Dict[str, int] = {}
    for w in words:
        out[w] = out.get(w, 0) + 1
    return out


@workflow
def features_wf(text: str = "Flyte flyte, FLYTE!") -> typing.Dict[str, int]:
    return counts(words=tokens(text=text))
