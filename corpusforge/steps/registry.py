"""The step registry: recipe step names → (params model, builder).

Built-in steps register themselves here; user code registers functions and classes with ``@corpusforge.filter``
and ``@corpusforge.step``; a step name containing ``:`` (``my_pkg.filters:no_code_blocks``) is imported on first use.

A plugin step travels to workers (local processes, Slurm jobs, Ray actors) as a reference — the plugin's file path
or module name, the step name and its params — never as a pickled function of a module that only the parent has
imported: the worker imports the plugin and builds the step again (``_rebuild``).
"""

from __future__ import annotations

import copyreg
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import BaseModel


@dataclass(frozen=True)
class StepSpec:
    name: str
    build: Callable[..., PipelineStep]
    params_model: type[BaseModel] | None = None
    signature: inspect.Signature | None = None  # for plugin functions/classes without a params model
    doc: str = ""

    def validate_params(self, params: dict) -> dict:
        if self.params_model is not None:
            return self.params_model.model_validate(params).model_dump(mode="json")
        if self.signature is not None:
            accepts_any = any(p.kind is p.VAR_KEYWORD for p in self.signature.parameters.values())
            allowed = [
                n for n, p in self.signature.parameters.items() if p.kind is p.KEYWORD_ONLY or p.default is not p.empty
            ]
            for key in params:
                if not accepts_any and key not in allowed:
                    raise ValueError(
                        f"unknown parameter '{key}' for step '{self.name}' (accepted: {allowed or 'none'})"
                    )
        return dict(params)

    def create(self, params: dict) -> PipelineStep:
        if self.params_model is not None:
            return self.build(self.params_model.model_validate(params))
        step = self.build(**params)
        if self.origin[1] is None and ":" not in self.name:
            # registered by code the workers import themselves (an installed module, the user's script): pickled
            # as Python does (by reference, or by value for __main__)
            return step
        step.__corpusforge_ref__ = (self.origin, self.name, dict(params))
        if not isinstance(step, (FunctionFilter, FunctionStep)):
            copyreg.pickle(type(step), _reduce_plugin_step)  # a plugin's own class: pickled by reference too
        return step

    @property
    def origin(self) -> tuple[str, str | None]:
        """Where the step's code lives: (module name, plugin file or None for an importable module)."""
        module = getattr(self.build, "__corpusforge_module__", None) or self.build.__module__
        path = PLUGIN_FILES.get(module)
        return module, path


class StepImportError(Exception):
    """A plugin that cannot be imported: a ``module:function`` step's module (or its missing attribute), or a plugin
    file that ends the process (``sys.exit()``) while it is imported."""


def _exit_at_import(err: SystemExit, what: str) -> StepImportError:
    # sys.exit() in a plugin must fail the recipe, not end the run as if it were done; Ctrl-C stays an interrupt
    return StepImportError(f"{what} called sys.exit({err.code!r}) while being imported")


_REGISTRY: dict[str, StepSpec] = {}


def register_builtin(name: str, params_model: type[BaseModel], build: Callable[[Any], PipelineStep]) -> None:
    _REGISTRY[name] = StepSpec(name, build, params_model, doc=inspect.getdoc(params_model) or "")


# The built-in steps: recipe name → (module, its parameters model, its step class or builder), imported on first
# use. The step modules know nothing of the registry: the arrow points from the index to the steps.
BUILTIN_STEPS = {
    "content": ("corpusforge.steps.content", "ContentParams", "Content"),
    "dedup": ("corpusforge.steps.dedup", "DedupParams", "not_a_plain_step"),
    "decontaminate": ("corpusforge.steps.decontaminate", "DecontaminateParams", "Decontaminate"),
    "language": ("corpusforge.steps.language", "LanguageParams", "LanguageID"),
    "length": ("corpusforge.steps.length", "LengthParams", "Length"),
    "normalize": ("corpusforge.steps.normalize", "NormalizeParams", "Normalize"),
    "perplexity": ("corpusforge.steps.perplexity", "PerplexityParams", "Perplexity"),
    "pii": ("corpusforge.steps.pii", "PIIParams", "PII"),
    "quality": ("corpusforge.steps.quality.step", "QualityParams", "QualityFilter"),
    "zh_region": ("corpusforge.steps.region", "RegionParams", "ZhRegion"),
    "tag": ("corpusforge.steps.tagging", "TagParams", "InsCPTag"),
    "tokens": ("corpusforge.steps.tokens", "TokensParams", "TokenCounter"),
}


def _ensure_builtins() -> None:
    for name, (module_name, params, build) in BUILTIN_STEPS.items():
        if name not in _REGISTRY:
            module = importlib.import_module(module_name)
            register_builtin(name, getattr(module, params), getattr(module, build))


def known_step_names() -> list[str]:
    _ensure_builtins()
    return sorted(_REGISTRY)


def builtin_specs() -> dict[str, StepSpec]:
    _ensure_builtins()
    return {n: s for n, s in _REGISTRY.items() if s.params_model is not None}


def get_step(name: str) -> StepSpec | None:
    _ensure_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except SystemExit as err:
            raise StepImportError(f"cannot import module '{module_name}': {_exit_at_import(err, 'it')}") from None
        except Exception as err:  # a missing dependency of the plugin, a syntax error in it …
            if isinstance(err, ModuleNotFoundError) and err.name == module_name.split(".")[0]:
                return None  # no such module at all: an unknown step
            raise StepImportError(f"cannot import module '{module_name}': {type(err).__name__}: {err}") from err
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise StepImportError(f"module '{module_name}' has no attribute '{attr}'") from None
        spec = _REGISTRY.get(getattr(obj, "__corpusforge_step__", None) or "") or _spec_for(name, obj, kind="auto")
        _REGISTRY[name] = spec
        return spec
    return None


# --------------------------------------------------------------------------------------------- user steps
class FunctionFilter(BaseFilter):
    """Wraps ``fn(doc, **params) -> bool | (bool, reason)`` as a datatrove filter."""

    type = "🔻 - FILTER"

    def __init__(self, fn: Callable, step_name: str, params: dict):
        super().__init__()
        self.fn, self.params, self.name = fn, params, step_name

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.fn(doc, **self.params)

    def __reduce__(self):
        return _reduce_plugin_step(self)


class FunctionStep(PipelineStep):
    """Wraps ``fn(doc, **params) -> Document | None`` (None drops the doc) as a datatrove step."""

    type = "✂️ - MAP"

    def __init__(self, fn: Callable, step_name: str, params: dict):
        super().__init__()
        self.fn, self.params, self.name = fn, params, step_name

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            self.stat_update("total")
            out = self.fn(doc, **self.params)
            if out is None:
                self.stat_update("dropped")
                continue
            self.stat_update("forwarded")
            yield out

    def __reduce__(self):
        return _reduce_plugin_step(self)


# Plugin files imported so far: module name → path (what a worker imports to rebuild a step of that module).
PLUGIN_FILES: dict[str, str] = {}


def import_plugin_file(path: str | Path) -> str:
    """Import a ``.py`` plugin file as module ``corpusforge_plugin_<stem>`` (once); returns the module name."""
    path = Path(path).resolve()
    mod_name = f"corpusforge_plugin_{path.stem}"
    if PLUGIN_FILES.get(mod_name) == str(path) and mod_name in sys.modules:
        return mod_name
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    PLUGIN_FILES[mod_name] = str(path)
    try:
        module_spec.loader.exec_module(module)
    except BaseException as err:
        sys.modules.pop(mod_name, None)
        PLUGIN_FILES.pop(mod_name, None)
        if isinstance(err, SystemExit):
            raise _exit_at_import(err, str(path)) from None
        raise
    return mod_name


def _reduce_plugin_step(step):
    ref = getattr(step, "__corpusforge_ref__", None)
    if ref is None:  # code the workers import themselves: pickle the object as it is (what object.__reduce_ex__
        # would do, were __reduce__ not overridden)
        return copyreg.__newobj__, (type(step),), dict(step.__dict__)
    return _rebuild, ref


def _rebuild(origin: tuple[str, str | None], name: str, params: dict) -> PipelineStep:
    """In a worker: import the step's plugin (by file path, or module name) and build the step again."""
    module, path = origin
    if module not in sys.modules:
        if path is not None:
            import_plugin_file(path)
        else:
            importlib.import_module(module)
    spec = get_step(name)
    if spec is None:
        raise RuntimeError(f"step '{name}' is not registered after importing {path or module}")
    return spec.create(params)


def _spec_for(name: str, obj: Any, kind: str) -> StepSpec:
    if inspect.isclass(obj):
        if not issubclass(obj, PipelineStep):
            raise TypeError(f"step '{name}': {obj.__name__} is not a datatrove PipelineStep subclass")
        return StepSpec(name, obj, signature=inspect.signature(obj.__init__), doc=inspect.getdoc(obj) or "")
    if not callable(obj):
        raise TypeError(f"step '{name}': {obj!r} is neither a function nor a PipelineStep class")
    wrapper = FunctionFilter if kind in ("filter", "auto") else FunctionStep
    sig = inspect.signature(obj)
    params_sig = sig.replace(parameters=list(sig.parameters.values())[1:])

    def build(**params):
        return wrapper(obj, name, params)

    build.__corpusforge_module__ = obj.__module__

    return StepSpec(name, build, signature=params_sig, doc=inspect.getdoc(obj) or "")


def _register(obj: Any, name: str | None, kind: str) -> Any:
    step_name = name or obj.__name__
    if step_name in _REGISTRY and _REGISTRY[step_name].params_model is not None:
        raise ValueError(f"'{step_name}' is a built-in step name; register your {kind} under another name")
    _REGISTRY[step_name] = _spec_for(step_name, obj, kind)
    obj.__corpusforge_step__ = step_name
    return obj


def filter(obj: Callable | None = None, *, name: str | None = None):  # noqa: A001  (the public API reads cf.filter)
    """Register a filter usable from YAML by name.

    A function ``fn(doc, **params) -> bool | (bool, reason)`` keeps the doc when it returns True; a BaseFilter
    subclass is built with the YAML params as keyword arguments.
    """
    if obj is None:
        return lambda o: _register(o, name, "filter")
    return _register(obj, name, "filter")


def step(obj: Callable | None = None, *, name: str | None = None):
    """Register a step usable from YAML by name: ``fn(doc, **params) -> Document | None`` or a PipelineStep class."""
    if obj is None:
        return lambda o: _register(o, name, "step")
    return _register(obj, name, "step")
