"""A workflow that imports a third-party library at module level: pandas, which flytekit
does not bring. It serializes only in an environment built from its requirements.txt."""

import pandas as pd
from flytekit import task, workflow


@task
def describe(values: list[float]) -> dict[str, float]:
    frame = pd.DataFrame({"value": values})
    stats = frame["value"].describe()
    return {"count": float(stats["count"]), "mean": float(stats["mean"]), "max": float(stats["max"])}


@workflow
def stats_wf(values: list[float] = [1.0, 2.0, 4.0]) -> dict[str, float]:
    return describe(values=values)
