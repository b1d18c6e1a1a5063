"""The recipe language: these pydantic models are the one schema for YAML, ``--set`` overrides, JSON Schema and docs.

A recipe names its sources, a list of steps (each a one-key mapping ``{step_name: {params}}``), an output folder
and an executor. Steps are looked up in the step registry (built-in steps plus ``@corpusforge.filter`` /
``@corpusforge.step`` functions and ``module:function`` plugins); each step's parameters are validated by that
step's own params model.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from corpusforge.config import StrictModel
from corpusforge.config.problems import lines_for, model_keys, pydantic_problems
from corpusforge.errors import RecipeError, did_you_mean
from corpusforge.kd.config import GenerateConfig
from corpusforge.recipe.executor_config import EXECUTORS, Executor, LocalExecutor
from corpusforge.recipe.loader import prepare, read_recipe
from corpusforge.steps.registry import StepImportError, builtin_specs, get_step, known_step_names


# --------------------------------------------------------------------------------------------- sources
class _SourceBase(StrictModel):
    name: str | None = Field(
        None, description="Name stored in the `source` column; defaults to the glob or dataset path."
    )
    text_field: str = Field("text", description="Field holding the document text.")
    id_field: str | None = Field(None, description="Field holding a unique id; default: `<source>/<file>/<row>`.")
    fields: list[str] = Field(
        default_factory=list,
        description="Extra input fields carried along in `metadata` (e.g. `url`, or `question`/`answer` for `tag.split_qa`).",
    )
    limit: int | None = Field(None, ge=1, description="Read at most this many documents per task (for trials).")


class FilesSource(_SourceBase):
    """Local files matched by a glob. Compression (.gz, .zst, .bz2, .xz) is inferred from the file name."""

    glob: str | list[str] = Field(
        ...,
        description="Glob(s), relative to the working directory; `builtin:NAME` names a sample shipped with corpusforge.",
    )
    format: Literal["auto", "jsonl", "parquet", "csv", "txt", "arrow"] = Field(
        "auto", description="File format; `auto` infers it from the extension."
    )
    txt_unit: Literal["line", "file"] = Field("line", description="For txt files: one document per line or per file.")


class HFDataset(StrictModel):
    path: str = Field(..., description="Hub id or local path (a dataset folder or a builder name like `json`).")
    name: str | None = Field(None, description="Dataset config name.")
    split: str = "train"
    data_files: str | list[str] | dict[str, str | list[str]] | None = None
    revision: str | None = None
    streaming: bool = Field(False, description="Stream instead of downloading the whole dataset first.")


class HFSource(_SourceBase):
    """A Hugging Face `datasets` dataset (Hub id or local path)."""

    hf: HFDataset


def _source_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "<hf>" if "hf" in value else "<files>"
    return "<hf>" if isinstance(value, HFSource) else "<files>"


Source = Annotated[
    Annotated[FilesSource, Tag("<files>")] | Annotated[HFSource, Tag("<hf>")],
    Discriminator(_source_kind),
]


# --------------------------------------------------------------------------------------------- output / executor
BUILTIN_PREFIX = "builtin:"  # `glob: builtin:NAME` names a sample bundled with corpusforge


def source_name(source: FilesSource | HFSource, index: int) -> str:
    """A source's name in the manifest, the budget mix and KD tasks: its `name`, else derived from where it reads."""
    if source.name:
        return source.name
    if isinstance(source, HFSource):
        return source.hf.path
    pattern = source.glob if isinstance(source.glob, str) else source.glob[0]
    return pattern.removeprefix(BUILTIN_PREFIX) if pattern.startswith(BUILTIN_PREFIX) else f"source{index}"


class OutputConfig(StrictModel):
    path: str = Field(
        ...,
        description="Output folder: Arrow shards, dataset_info.json, state.json, manifest.json. An fsspec URL "
        "(`s3://bucket/corpora/zh-tw`, `gs://…`, `memory://…`) builds in `staging` and uploads the finished corpus "
        "there; `datasets.load_from_disk` opens it through the same URL.",
    )
    staging: str | None = Field(
        None,
        description="Where a build for a URL `path` runs (task shards, resume state); a local folder, shared by "
        "every node on Slurm or Ray. Default (local executor only): ~/.cache/corpusforge/builds/<hash of the URL>.",
    )
    batch_rows: int = Field(1000, ge=1, description="Rows per Arrow record batch inside a shard.")


class BudgetConfig(StrictModel):
    """Stop the corpus at a token total and/or mix sources by token share (needs a `tokens` step).

    Rows are taken in a fixed pseudo-random order (a hash of `seed` and the row id), so the selection is a sample
    of the whole build, the same for any number of tasks or workers, and the same on every rerun.
    """

    tokens: int | None = Field(None, ge=1, description="Token total to stop at (reached within one document).")
    mix: dict[str, float] | None = Field(
        None, description="Token share per source name, e.g. `{zh: 0.9, en: 0.1}` (shares sum to 1)."
    )
    seed: int = Field(0, description="Changes which rows a budget keeps.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.tokens is None and not self.mix:
            raise ValueError("a budget needs `tokens`, `mix`, or both")
        if self.mix:
            if any(share <= 0 for share in self.mix.values()):
                raise ValueError(f"mix shares must be > 0, got {self.mix}")
            if abs(sum(self.mix.values()) - 1.0) > 1e-6:
                raise ValueError(f"mix shares must sum to 1, got {sum(self.mix.values()):g}")
        return self


# --------------------------------------------------------------------------------------------- steps
class StepCall(BaseModel):
    """One step of a recipe: its registry name and its validated parameters (defaults filled in)."""

    model_config = ConfigDict(frozen=True)
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_serializer
    def _as_yaml_form(self) -> dict[str, Any]:
        return {self.name: self.params}


def parse_step(raw: Any, index: int) -> StepCall:
    """Validate one ``{name: params}`` entry against the step registry."""
    loc = ("steps", index)
    if isinstance(raw, StepCall):
        raw = {raw.name: raw.params}
    if isinstance(raw, str):
        raw = {raw: {}}
    if not isinstance(raw, dict) or len(raw) != 1:
        raise RecipeError([(loc, f"a step is a one-key mapping like `- language: {{keep: [th]}}`, got {raw!r}")])
    ((name, params),) = raw.items()
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise RecipeError([(loc + (name,), f"step parameters must be a mapping, got {params!r}")])
    try:
        spec = get_step(name)
    except StepImportError as err:
        raise RecipeError([(loc, f"step '{name}': {err}")]) from None
    if spec is None:
        hint = did_you_mean(name, known_step_names())
        if ":" in name:
            hint = " (a `module:function` plugin must be importable and decorated or be a function/step class)"
        raise RecipeError([(loc, f"unknown step '{name}'{hint}")])
    try:
        validated = spec.validate_params(params)
    except ValidationError as err:
        raise RecipeError(pydantic_problems(err, known_keys, loc + (name,))) from None
    except ValueError as err:
        raise RecipeError([(loc + (name,), str(err))]) from None
    return StepCall(name=name, params=validated)


# --------------------------------------------------------------------------------------------- recipe
class Recipe(StrictModel):
    """A declarative corpus build: sources → steps → Arrow shards."""

    name: str = Field(..., description="Recipe name, recorded in the manifest.")
    description: str = Field("", description="Free text, recorded in the manifest and dataset card.")
    plugins: list[str] = Field(
        default_factory=list,
        description="Python modules (dotted names) or .py files imported before the steps are resolved (this runs "
        "their code, also on `corpusforge validate`); workers import them again by path.",
    )
    sources: list[Source] = Field(..., min_length=1, description="Inputs; every source feeds every task.")
    steps: list[StepCall] = Field(default_factory=list, description="Processing steps, in order.")
    output: OutputConfig = Field(..., description="Where the shards go.")
    executor: Executor = Field(default_factory=LocalExecutor, description="Where the tasks run.")
    budget: BudgetConfig | None = Field(None, description="Token budget and source mixing (after all steps).")
    generate: GenerateConfig | None = Field(
        None,
        description="Self-generated KD: the sources (after the steps) are prompts and the output is a KD dataset "
        "(`id, messages, kind, source_id, model, params_hash, finish_reason, n_tokens`).",
    )

    @model_validator(mode="after")
    def _cross_checks(self):
        dedups = [i for i, call in enumerate(self.steps) if call.name == "dedup"]
        if len(dedups) > 1:
            raise RecipeError(
                [(("steps", dedups[1]), "only one `dedup` step per recipe (it splits the build into stages)")]
            )
        if self.generate is not None:
            self._check_generate()
        if self.budget is None:
            return self
        problems = []
        if not any(call.name == "tokens" for call in self.steps):
            problems.append(
                (
                    ("budget",),
                    "a budget needs token counts: add a `tokens` step (e.g. `- tokens: {tokenizer: /models/llama3}`)",
                )
            )
        if self.budget.mix:
            names = [source_name(s, i) for i, s in enumerate(self.sources)]
            for key in self.budget.mix:
                if key not in names:
                    problems.append((("budget", "mix", key), f"no source is named '{key}' (sources: {names})"))
        if problems:
            raise RecipeError(problems)
        return self

    def _check_generate(self) -> None:
        gen, problems = self.generate, []
        names = [source_name(s, i) for i, s in enumerate(self.sources)]
        for i, call in enumerate(self.steps):
            if call.name in ("tag", "tokens"):
                problems.append(
                    (("steps", i), f"`{call.name}` acts on corpus text, not on prompts: remove it from a KD recipe")
                )
        if self.budget is not None:
            problems.append((("budget",), "a token budget applies to corpora, not to KD datasets"))
        for t, task in enumerate(gen.tasks):
            for name in task.sources or []:
                if name not in names:
                    problems.append(
                        (("generate", "tasks", t, "sources"), f"no source is named '{name}' (sources: {names})")
                    )
        fields = {"text"} | {f for s in self.sources for f in s.fields}
        for t, task in enumerate(gen.tasks):
            for key in ("query_en_field", "answer_field", "pair_field"):
                name = getattr(task, key, None)
                if name and name not in fields:
                    problems.append(
                        (
                            ("generate", "tasks", t, key),
                            f"'{name}' is not a field of any source (available: {sorted(fields)}); list it in the "
                            "source's `fields`",
                        )
                    )
        for _, placeholder, _, _ in string.Formatter().parse(gen.prompts.template):
            if placeholder and placeholder not in fields:
                problems.append(
                    (
                        ("generate", "prompts", "template"),
                        f"'{{{placeholder}}}' is not a field of any source (available: {sorted(fields)}); "
                        "list it in the source's `fields`",
                    )
                )
        if gen.prompts.max_tokens and gen.backend.type == "openai" and not gen.backend.tokenizer:
            problems.append(
                (("generate", "prompts", "max_tokens"), "the openai backend needs `backend.tokenizer` to count tokens")
            )
        if problems:
            raise RecipeError(problems)

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_type_and_keys(cls, raw: Any) -> Any:
        """Name the executor type a key belongs to, instead of a bare "unknown key" (`partition` on local)."""
        if not isinstance(raw, dict):
            return raw
        kind = raw.get("type", "local")
        if kind not in EXECUTORS:
            hint = did_you_mean(str(kind), EXECUTORS)
            raise RecipeError([(("executor", "type"), f"unknown executor '{kind}'{hint} (one of: local, slurm, ray)")])
        problems = []
        for key in raw:
            owners = [name for name, model in EXECUTORS.items() if key in model.model_fields]
            if key not in EXECUTORS[kind].model_fields and owners:
                problems.append(
                    (
                        ("executor", key),
                        f"'{key}' is a key of executor type {' / '.join(owners)}, not {kind}: "
                        f"set `type: {owners[0]}`, or remove it",
                    )
                )
        if problems:
            raise RecipeError(problems)
        return raw

    @field_validator("steps", mode="before")
    @classmethod
    def _resolve_steps(cls, raw: Any) -> list[StepCall]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise RecipeError([(("steps",), f"steps must be a list, got {type(raw).__name__}")])
        problems, steps = [], []
        for i, item in enumerate(raw):
            try:
                steps.append(parse_step(item, i))
            except RecipeError as err:
                problems.extend(err.problems)
        if problems:
            raise RecipeError(problems)
        return steps

    # -- constructors ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> Recipe:
        """Load and validate a recipe file (``overrides``: ``key.path=value`` strings, YAML-parsed); each problem
        names its key path and YAML line."""
        data, lines = read_recipe(path)
        return cls._load(data, overrides, str(path), lines)

    @classmethod
    def from_dict(cls, data: dict, overrides: list[str] | None = None) -> Recipe:
        return cls._load(data, overrides)

    @classmethod
    def _load(cls, data: Any, overrides: list[str] | None, source: str | None = None, lines: dict | None = None):
        data, problems = prepare(data, overrides, source)  # plugins imported: their steps are in the registry
        try:
            recipe = cls.model_validate(data)
        except ValidationError as err:
            problems = problems + pydantic_problems(err, known_keys)
        except RecipeError as err:
            problems = problems + err.problems
        else:
            if not problems:
                return recipe
        raise RecipeError(problems, source, lines_for(problems, lines or {}))

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


@cache
def known_keys() -> frozenset[str]:
    """Every key the recipe language knows (the recipe's and every built-in step's): what "did you mean" offers."""
    specs = builtin_specs().values()
    return model_keys(
        Recipe, FilesSource, HFSource, HFDataset, OutputConfig, LocalExecutor, *(s.params_model for s in specs)
    )
