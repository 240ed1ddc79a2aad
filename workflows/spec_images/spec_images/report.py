"""A workflow whose task declares its image in code with ImageSpec. flyte-deploy never
builds it during serialization: the image is named by flytekit's hash of the spec, listed
in the deploy report, and checked against its registry."""

from flytekit import ImageSpec, task, workflow

report_image = ImageSpec(
    name="spec-images-report",
    registry="localhost:5000/flyte",
    packages=["tabulate==0.9.0"],
    python_version="3.11",
)


@task(container_image=report_image)
def render(rows: list[str]) -> str:
    from tabulate import tabulate  # only in the image, so imported where the task runs

    return tabulate([[r] for r in rows], headers=["row"])


@workflow
def report_wf(rows: list[str] = ["a", "b"]) -> str:
    return render(rows=rows)
