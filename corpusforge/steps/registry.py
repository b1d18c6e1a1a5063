"""The step registry: recipe step names → (params model, builder).

Built-in steps register themselves here; user code registers functions and classes with ``@corpusforge.filter``
and ``@corpusforge.step``; a step name containing ``:`` (``my_pkg.filters:no_code_blocks``) is imported on first use.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
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
        return self.build(**params)


_REGISTRY: dict[str, StepSpec] = {}


def register_builtin(name: str, params_model: type[BaseModel], build: Callable[[Any], PipelineStep]) -> None:
    _REGISTRY[name] = StepSpec(name, build, params_model, doc=inspect.getdoc(params_model) or "")


def _ensure_builtins() -> None:
    if "language" not in _REGISTRY:
        import corpusforge.steps  # noqa: F401  (registers the built-in steps)


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
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            return None
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
