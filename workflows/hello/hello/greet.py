"""A code-only workflow: it runs on the default flytekit image."""

from flytekit import task, workflow


@task
def greeting(name: str) -> str:
    return f"Hello, {name}!"


@task
def shout(text: str) -> str:
    return text.upper()


@workflow
def hello_wf(name: str = "Flyte") -> str:
    return shout(text=greeting(name=name))
