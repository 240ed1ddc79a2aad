"""A workflow with a task in a named image: the code refers to the image by name, and
workflow.toml (or deploy.toml's [images] named) says which image that is."""

from flytekit import task, workflow


@task(container_image="{{.image.batch.fqn}}:{{.image.batch.version}}")
def crunch(n: int) -> int:
    return sum(range(n))


@task
def double(x: int) -> int:
    return 2 * x


@workflow
def batch_wf(n: int = 10) -> int:
    return double(x=crunch(n=n))
