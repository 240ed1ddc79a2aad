"""flyte-deploy's long-lived serializer, run with a serialization environment's Python.

One process serializes every workflow of its environment, one after another, writing for
each exactly what `pyflyte --pkgs P package --image IMG [--image NAME=URI] --copy all
--source CODE_DIR --force -o OUT` writes: it calls the flytekit functions that command
calls (flytekit.tools.repo.serialize_and_package) with the settings it builds, so the
interpreter and flytekit start once per environment instead of once per workflow.

Protocol (the tool on the other end is crates/flyte-deploy/src/artifacts/serializer.rs): frames of a 4-byte
big-endian length and that many bytes of UTF-8 JSON, on the stdin and stdout the process
started with (user code gets /dev/null as stdin, and its output goes to stderr, or to the
request's log file while it is served).
- First frame, from here: {"flytekit": VERSION, "supported": bool, "pid": int} and, when
  flytekit itself cannot be imported, "error": [exception chain]. Unsupported: the process
  exits, and the tool runs one `pyflyte package` per workflow.
- Then per workflow, from the tool: {"packages": [..], "code_dir": DIR, "image": IMG,
  "images": {NAME: URI}, "out": PATH, "log": PATH}; the answer: {"ok": bool, "report":
  [exception chain] or null, "exit": status or null, "rss_kib": peak resident KiB}.
  The chain has the shape flyte_deploy_pyflyte.chain writes, so errors name the user's
  files alike on both paths.
- End of input: the process exits.

Isolation, per workflow, so that nothing of one reaches the next:
- the code dir goes first on sys.path (where PYTHONPATH put it for pyflyte), is the working
  folder, PYTHONPATH and a fresh HOME are set; afterwards sys.path, sys.meta_path,
  sys.path_hooks, the importer cache, os.environ, the working folder, sys.argv, the warning
  filters, sys.stdin/stdout/stderr, the exception and display hooks and the root logger's
  handlers and level are put back as they were;
- every module imported while serving it is removed from sys.modules, except the standard
  library's and installed packages' (flytekit's own lazily loaded parts, plugins, pandas:
  the same files for every workflow of the environment, and kept so they load once); a
  module of the code dir, or of any folder outside the installation, always goes, and so
  does an installed module that declared Flyte entities (its import must run again for the
  next workflow that imports it, as in a fresh pyflyte); and before the import, an installed
  module an earlier workflow loaded whose name is a package of this code set is unloaded, so
  that the workflow's own package of that name is the one imported;
- flytekit's process-wide state is put back to what it was at start-up: the entity list
  (FlyteEntities.entities, what serialization walks), the launch-plan cache
  (LaunchPlan.CACHE, which would hand a later workflow an earlier one's default launch
  plan), the context stack, the real-name map of ImageSpec images, the module-name cache of
  the tracker, the file-hash cache of fast packaging and the config-file cache; entries the
  removed modules put into flytekit's registries (type transformers, structured-dataset
  handlers, task plugins, schema handlers, image builders, connectors) are dropped.
Not undone: threads the workflow's code started keep running, signal handlers it set stay,
and changes it made to installed modules' own state stay (as they would for the rest of a
pyflyte process, but here for the next workflows too).
"""

import importlib
import importlib.metadata
import inspect
import json
import linecache
import logging
import os
import resource
import shutil
import struct
import sys
import sysconfig
import tempfile
import typing
import warnings

SUPPORTED = ("1.16.",)
"""The flytekit versions whose state and `pyflyte package` this file was checked against."""

MAX_FRAME = 64 << 20


def _read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_frame(stream):
    head = _read_exact(stream, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    if size > MAX_FRAME:
        raise ValueError(f"a request of {size} bytes")
    body = _read_exact(stream, size)
    return None if body is None else json.loads(body)


def write_frame(stream, value):
    body = json.dumps(value).encode()
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


def _real(path):
    return os.path.realpath(path)


def _under(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Installation:
    """Where the environment's own modules live: the standard library and site-packages."""

    def __init__(self):
        roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            try:
                roots.add(sysconfig.get_paths()[key])
            except KeyError:
                pass
        self.roots = sorted({_real(r) for r in roots if r})

    def holds(self, path):
        path = _real(path)
        return any(_under(path, root) for root in self.roots)


def _files_of(module):
    """The files (or, for a namespace package, folders) a module was loaded from; None when
    it was not loaded from the file system (built-in, frozen, made in memory)."""
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) if spec is not None else None
    if origin in ("built-in", "frozen"):
        return []
    if origin and origin != "namespace" and os.path.isabs(origin):
        return [origin]
    locations = getattr(spec, "submodule_search_locations", None) if spec is not None else None
    if locations is None:
        locations = getattr(module, "__path__", None)
    if locations:
        return [str(p) for p in list(locations)]
    file = getattr(module, "__file__", None)
    if file:
        return [file]
    return None


def _entity_module(entity):
    """The module that declared a Flyte entity (task, workflow, launch plan)."""
    for attr in ("_instantiated_in",):
        name = getattr(entity, attr, None)
        if name:
            return name
    workflow = getattr(entity, "_workflow", None)
    if workflow is not None and workflow is not entity:
        return _entity_module(workflow)
    function = getattr(entity, "task_function", None) or getattr(entity, "_workflow_function", None)
    return getattr(function, "__module__", None)


def _owner(value):
    if isinstance(value, type) or inspect.isfunction(value) or inspect.ismodule(value):
        return getattr(value, "__name__", None) if inspect.ismodule(value) else getattr(value, "__module__", None)
    return type(value).__module__


def _owned(value, removed, depth=0):
    """True when a registry key or value comes from a removed module."""
    if depth > 4:
        return False
    if _owner(value) in removed:
        return True
    if isinstance(value, dict):
        return any(_owned(k, removed, depth + 1) or _owned(v, removed, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_owned(v, removed, depth + 1) for v in value)
    args = typing.get_args(value) if not isinstance(value, (str, bytes)) else ()
    return any(_owned(a, removed, depth + 1) for a in args)


def _sweep(container, removed):
    """Drops what removed modules put into a registry (a dict or a list), in place."""
    if isinstance(container, dict):
        for key in [k for k, v in container.items() if _owned(k, removed) or _owned(v, removed)]:
            del container[key]
    elif isinstance(container, list):
        container[:] = [v for v in container if not _owned(v, removed)]


class Flytekit:
    """flytekit's functions `pyflyte package` calls, and its process-wide state."""

    def __init__(self):
        from flytekit.clis.sdk_in_container import pyflyte  # noqa: F401  (what pyflyte loads, plugins' CLI hooks included)
        from flytekit.clis.sdk_in_container.utils import validate_package
        from flytekit.configuration import (
            DEFAULT_RUNTIME_PYTHON_INTERPRETER,
            FastSerializationSettings,
            ImageConfig,
            SerializationSettings,
        )
        from flytekit.constants import CopyFileDetection
        from flytekit.core import context_manager, launch_plan, tracker
        from flytekit.image_spec.image_spec import ImageBuildEngine
        from flytekit.loggers import get_level_from_cli_verbosity, logger
        from flytekit.tools import repo, script_mode
        from flytekit.tools.fast_registration import FastPackageOptions

        self.validate_package = validate_package
        self.validate_image = ImageConfig.validate_image
        self.SerializationSettings = SerializationSettings
        self.FastSerializationSettings = FastSerializationSettings
        self.interpreter = DEFAULT_RUNTIME_PYTHON_INTERPRETER
        self.copy_all = CopyFileDetection.ALL
        self.FastPackageOptions = FastPackageOptions
        self.serialize_and_package = repo.serialize_and_package
        self.NoSerializableEntitiesError = repo.NoSerializableEntitiesError
        self.quiet_level = get_level_from_cli_verbosity
        self.logger = logger
        self.context = context_manager
        self.LaunchPlan = launch_plan.LaunchPlan
        self.tracker = tracker
        self.ImageBuildEngine = ImageBuildEngine
        self.script_mode = script_mode
        self.start = self._state()

    def registries(self):
        """The registries code may add to at import: dicts and lists, swept per workflow."""
        found = []

        def add(module, cls, *attrs):
            mod = sys.modules.get(module)
            owner = getattr(mod, cls, None) if mod is not None else None
            for attr in attrs:
                value = getattr(owner, attr, None)
                if isinstance(value, (dict, list)):
                    found.append(value)

        add("flytekit.core.type_engine", "TypeEngine", "_REGISTRY", "_RESTRICTED_TYPES")
        add(
            "flytekit.types.structured.structured_dataset",
            "StructuredDatasetTransformerEngine",
            "ENCODERS",
            "DECODERS",
            "DEFAULT_PROTOCOLS",
            "DEFAULT_FORMATS",
            "Renderers",
        )
        add("flytekit.core.task", "TaskPlugins", "_PYTHONFUNCTION_TASK_PLUGINS")
        add("flytekit.types.schema.types", "SchemaEngine", "_SCHEMA_HANDLERS")
        add("flytekit.image_spec.image_spec", "ImageBuildEngine", "_REGISTRY")
        add("flytekit.extend.backend.base_connector", "ConnectorRegistry", "_REGISTRY", "_METADATA")
        # The transformers' own caches keyed by type (the dataclass transformer's encoders).
        engine = getattr(sys.modules.get("flytekit.core.type_engine"), "TypeEngine", None)
        transformers = list(getattr(engine, "_REGISTRY", {}).values())
        transformers.append(getattr(engine, "_DATACLASS_TRANSFORMER", None))
        for t in transformers:
            for value in list(getattr(t, "__dict__", {}).values()):
                if isinstance(value, dict):
                    found.append(value)
        return found

    def _state(self):
        return {
            "entities": list(self.context.FlyteEntities.entities),
            "launch_plans": dict(self.LaunchPlan.CACHE),
            "contexts": self.context.FlyteContextManager.size(),
            "signal_handlers": list(self.context.FlyteContextManager.signal_handlers),
            "image_names": dict(self.ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME),
        }

    def new_entities(self):
        known = {id(e) for e in self.start["entities"]}
        return [e for e in self.context.FlyteEntities.entities if id(e) not in known]

    def reset(self, removed):
        """Puts flytekit's process-wide state back to what it was at start-up."""
        start = self.start
        manager = self.context.FlyteContextManager
        while manager.size() > start["contexts"]:
            manager.pop_context()
        self.context.FlyteEntities.entities[:] = start["entities"]
        self.LaunchPlan.CACHE.clear()
        self.LaunchPlan.CACHE.update(start["launch_plans"])
        manager.signal_handlers[:] = start["signal_handlers"]
        self.ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME.clear()
        self.ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME.update(start["image_names"])
        self.tracker._mod_sanitizer._module_cache.clear()
        self.script_mode.hash_file.cache_clear()
        config_file = getattr(sys.modules.get("flytekit.configuration.file"), "get_config_file", None)
        if hasattr(config_file, "cache_clear"):
            config_file.cache_clear()
        for registry in self.registries():
            _sweep(registry, removed)

    def package(self, request, code_dir, out):
        """What `pyflyte --pkgs .. package --image .. --copy all --source CODE_DIR --force -o OUT`
        does once its options are parsed (flytekit/clis/sdk_in_container/package.py)."""
        pkgs = self.validate_package(None, "pkgs", list(request["packages"]))
        images = [request["image"]] + [f"{name}={uri}" for name, uri in sorted(request.get("images", {}).items())]
        settings = self.SerializationSettings(
            image_config=self.validate_image(None, "image", tuple(images)),
            fast_serialization_settings=self.FastSerializationSettings(enabled=True, destination_dir="/root"),
            python_interpreter=self.interpreter,
            env=None,
        )
        self.logger.setLevel(self.quiet_level(0))
        options = self.FastPackageOptions([], copy_style=self.copy_all, show_files=False)
        try:
            self.serialize_and_package(pkgs, settings, code_dir, out, False, fast_options=options)
        except self.NoSerializableEntitiesError:
            import click

            click.secho(f"No flyte objects found in packages {pkgs}", fg="yellow")


def _pyflyte_argv(request, code_dir, out):
    argv = ["pyflyte"]
    for p in request["packages"]:
        argv += ["--pkgs", p]
    argv += ["package", "--image", request["image"]]
    for name, uri in sorted(request.get("images", {}).items()):
        argv += ["--image", f"{name}={uri}"]
    return argv + ["--copy", "all", "--source", code_dir, "--force", "-o", out]


class Serializer:
    def __init__(self, flytekit, chain, scratch):
        self.flytekit = flytekit
        self.chain = chain
        self.scratch = scratch
        self.installation = Installation()
        self.count = 0
        # The modules loaded at start-up: flytekit, its dependencies, the standard library.
        self.baseline = set(sys.modules)

    def _keep(self, name, module, code_dir, code_names):
        """Whether a module imported while serializing a workflow may stay loaded."""
        if name.partition(".")[0] in code_names:
            return False
        files = _files_of(module)
        if files is None:
            return None  # decided by its top-level package
        for f in files:
            real = _real(f)
            if _under(real, code_dir) or not self.installation.holds(real):
                return False
        return True

    def _unload(self, before, code_dir, code_names, entity_modules):
        """Removes what serving a workflow imported, except the installation's modules that
        declared no entity; returns the names removed."""
        new = [n for n in list(sys.modules) if n not in before]
        decided = {n: self._keep(n, sys.modules.get(n), code_dir, code_names) for n in new}

        def stays(name):
            keep = decided.get(name)
            if keep is not None:
                return keep
            # Not from a file: it goes with its top-level package (new and made in memory: goes).
            top = name.partition(".")[0]
            if top == name:
                return False
            return top in before or decided.get(top) is True

        removed = {n for n in new if not stays(n) or n in entity_modules}
        for name in removed:
            sys.modules.pop(name, None)
            parent, _, child = name.rpartition(".")
            parent_module = sys.modules.get(parent) if parent else None
            if parent_module is not None and child in getattr(parent_module, "__dict__", {}):
                try:
                    delattr(parent_module, child)
                except AttributeError:
                    pass
        return removed

    def serve(self, request):
        code_dir = _real(request["code_dir"])
        out = _real(request["out"])
        code_names = set()
        for entry in os.listdir(code_dir):
            stem, _, ext = entry.partition(".")
            importable = os.path.isdir(os.path.join(code_dir, entry)) or ext in ("py", "pyc") or ext.endswith("so")
            if stem.isidentifier() and importable:
                code_names.add(stem)
        # What an earlier workflow loaded (an installed package kept for speed) must not
        # shadow this workflow's own package of the same name.
        for name in [n for n in sys.modules if n.partition(".")[0] in code_names and n not in self.baseline]:
            del sys.modules[name]
        before = set(sys.modules)
        saved = {
            "path": list(sys.path),
            "meta_path": list(sys.meta_path),
            "path_hooks": list(sys.path_hooks),
            "importers": set(sys.path_importer_cache),
            "environ": dict(os.environ),
            "cwd": os.getcwd(),
            "argv": list(sys.argv),
            "warnings": list(warnings.filters),
            "streams": (sys.stdin, sys.stdout, sys.stderr),
            "hooks": (sys.excepthook, sys.displayhook),
            "logging": (list(logging.root.handlers), logging.root.level),
        }
        self.count += 1
        home = tempfile.mkdtemp(prefix=f"home-{self.count}-", dir=self.scratch)
        os.environ["HOME"] = home
        os.environ["PYTHONPATH"] = code_dir
        sys.argv = _pyflyte_argv(request, code_dir, out)
        sys.path.insert(0, code_dir)
        os.chdir(code_dir)
        importlib.invalidate_caches()
        answer = {"ok": False, "report": None, "exit": None}
        log = open(request["log"], "wb")
        try:
            with _Redirected(log.fileno()):
                try:
                    self.flytekit.package(request, code_dir, out)
                    answer["ok"] = os.path.isfile(out)
                except SystemExit as stop:
                    # pyflyte would end here too; say so the way its output would.
                    code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
                    answer["exit"] = code
                    if stop.code is not None and not isinstance(stop.code, int):
                        print(stop.code, file=sys.stderr)
                except BaseException as error:  # noqa: B902  (the workflow's own, reported)
                    answer["report"] = list(self.chain(error))
        finally:
            log.close()
            entity_modules = {_entity_module(e) for e in self.flytekit.new_entities()}
            os.chdir(saved["cwd"])
            sys.argv = saved["argv"]
            sys.path[:] = saved["path"]
            sys.meta_path[:] = saved["meta_path"]
            sys.path_hooks[:] = saved["path_hooks"]
            for key in [k for k in sys.path_importer_cache if k not in saved["importers"]]:
                del sys.path_importer_cache[key]
            os.environ.clear()
            os.environ.update(saved["environ"])
            warnings.filters[:] = saved["warnings"]
            getattr(warnings, "_filters_mutated", lambda: None)()
            sys.stdin, sys.stdout, sys.stderr = saved["streams"]
            sys.excepthook, sys.displayhook = saved["hooks"]
            logging.root.handlers[:] = saved["logging"][0]
            logging.root.setLevel(saved["logging"][1])
            removed = self._unload(before, code_dir, code_names, entity_modules)
            self.flytekit.reset(removed)
            linecache.clearcache()
            getattr(inspect, "modulesbyfile", {}).clear()
            getattr(inspect, "_filesbymodname", {}).clear()
            importlib.invalidate_caches()
            shutil.rmtree(home, ignore_errors=True)
        answer["rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return answer


class _Redirected:
    """File descriptors 1 and 2 (and so print, click and logging) into a file."""

    def __init__(self, fd):
        self.fd = fd

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = (os.dup(1), os.dup(2))
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)

    def __exit__(self, *exc):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])
        return False


def main():
    # The protocol keeps the stdin and stdout the process started with; workflow code
    # reads /dev/null and writes to stderr.
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)
    scratch = os.getcwd()

    try:
        version = importlib.metadata.version("flytekit")
    except importlib.metadata.PackageNotFoundError:
        version = None
    hello = {"flytekit": version, "supported": bool(version) and version.startswith(SUPPORTED), "pid": os.getpid()}
    if not hello["supported"]:
        write_frame(answers, hello)
        return 0

    from flyte_deploy_pyflyte import chain, never_build_images

    try:
        import flytekit  # noqa: F401  (flytekit and the plugins it loads import, or say why)

        never_build_images()
        kit = Flytekit()
    except Exception as error:
        hello["error"] = list(chain(error))
        write_frame(answers, hello)
        return 1

    serializer = Serializer(kit, chain, scratch)
    write_frame(answers, hello)
    while True:
        request = read_frame(requests)
        if request is None:
            return 0
        write_frame(answers, serializer.serve(request))


if __name__ == "__main__":
    sys.exit(main())
