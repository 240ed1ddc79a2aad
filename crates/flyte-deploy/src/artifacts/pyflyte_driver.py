"""flyte-deploy's entry to pyflyte, run with the workflow environment's Python.

argv: REPORT_PATH, then pyflyte's own arguments. Before pyflyte starts:
- ImageSpec images are never built or pushed: flyte-deploy decides what is built, after
  serialization, from the images the tasks name (image names and tags are still computed).
- An exception pyflyte would print as a rich traceback is written to REPORT_PATH as JSON
  (type, message and frames of each exception in the chain), so the tool can name the
  user's own files and lines.

The long-lived serializer (flyte_deploy_serializer.py) imports this file for `chain` and
`never_build_images`; run as a script, it is the one-process-per-workflow path.
"""

import json
import sys
import traceback


def chain(error):
    """The exceptions of a chain, outermost first, as the tool reads them."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        kind = type(error)
        name = kind.__qualname__
        if kind.__module__ not in ("builtins", "__main__"):
            name = kind.__module__ + "." + name
        frames = [
            {"file": f.filename, "line": f.lineno or 0, "function": f.name}
            for f in traceback.extract_tb(error.__traceback__)
        ]
        yield {"type": name, "message": str(error), "frames": frames}
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)


def never_build_images():
    """ImageSpec images are named, never built or pushed."""
    try:
        from flytekit.image_spec.image_spec import ImageBuildEngine

        ImageBuildEngine.build = classmethod(lambda cls, *args, **kwargs: None)
    except ImportError:
        pass


def main():
    report_path = sys.argv[1]
    sys.argv = ["pyflyte"] + sys.argv[2:]

    def report(error, verbosity=0):
        try:
            import click
        except ImportError:
            click = None

        if click is not None and isinstance(error, (click.exceptions.Exit, click.ClickException)):
            raise error
        with open(report_path, "w") as out:
            json.dump(list(chain(error)), out)

    try:
        import flytekit  # noqa: F401  (flytekit and the plugins it loads import, or say why)
    except Exception as error:
        report(error)
        sys.exit(1)

    never_build_images()

    try:
        from flytekit.clis.sdk_in_container import utils

        utils.pretty_print_exception = report
    except (ImportError, AttributeError):
        pass

    try:
        from flytekit.clis.sdk_in_container.pyflyte import main as pyflyte
    except Exception as error:  # flytekit itself does not import: say why
        report(error)
        sys.exit(1)

    try:
        pyflyte()
    except SystemExit:
        raise
    except Exception as error:
        report(error)
        sys.exit(1)


if __name__ == "__main__":
    main()
