"""Benchmark definitions: YAML files under ``catalogs/benchmarks/`` read into `BenchmarkConfig`.

A benchmark names where its samples come from (the catalog's eval split, or a file of a public
benchmark in one of a few layouts), how a generation is read (`parser`) and scored (`metric`, a key
of `mm15.eval.metrics.METRICS`), and the category it is averaged into. The file format is documented
at the top of ``catalogs/benchmarks/general.yaml``. Errors are one-line ConfigErrors naming the file
and the field.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mm15.config import ConfigError, PlainName, StrictModel, config_file, load_config, named_config_path
from mm15.data.record import CATEGORIES
from mm15.paths import catalogs_dir

# The categories results are averaged into (docs/RECIPE.md section 6); None: reported on its own.
BENCHMARK_CATEGORIES = (
    "general",
    "text_rich",
    "knowledge",
    "refer_ground",
    "multi_image",
    "in_context",
    "ocr",
)
FILE_FORMATS = ("vqa", "refcoco", "multiple_choice")
PARSERS = ("text", "letter", "box", "number")
# The prompt of a file source: placeholders each format fills, and its template when `prompt` is omitted.
PLACEHOLDERS = {"vqa": {"question"}, "refcoco": {"expression"}, "multiple_choice": {"question", "options"}}
DEFAULT_PROMPTS = {
    "vqa": "{question}",
    "refcoco": "Where is {expression}? Answer with a box.",
    "multiple_choice": "{question}\n{options}\nAnswer with the option's letter.",
}
# Metrics a file format has the references for (a catalog source may use any: rows lacking one are malformed).
FORMAT_METRICS = {
    "vqa": {"anls", "vqa_accuracy", "relaxed_accuracy", "exact_match"},
    "refcoco": {"grounding"},
    "multiple_choice": {"multiple_choice", "exact_match"},
}

Count = Annotated[int, Field(strict=True, ge=0)]


def _nonempty_strings(values: list[str] | None, what: str) -> list[str] | None:
    if values is not None and (not values or any(not v.strip() for v in values)):
        raise ValueError(f"expected a non-empty list of {what}")
    return values


class CatalogSource(StrictModel):
    """Samples of the catalog: one split of some categories, optionally only some sources or tasks."""

    categories: list[str]
    sources: list[str] | None = None
    tasks: list[str] | None = None
    split: Literal["train", "eval"] = "eval"

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, categories: list[str]) -> list[str]:
        _nonempty_strings(categories, "categories")
        unknown = [c for c in categories if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown category {unknown[0]!r} (known: {', '.join(CATEGORIES)})")
        return categories

    @field_validator("sources", "tasks")
    @classmethod
    def _nonempty(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return _nonempty_strings(values, str(info.field_name))


class FileSource(StrictModel):
    """A benchmark file (Parquet or JSON Lines, by suffix); a relative path is relative to the YAML's folder."""

    path: Path
    format: Literal["vqa", "refcoco", "multiple_choice"]

    @field_validator("path")
    @classmethod
    def _relative_to_the_yaml(cls, path: Path, info: ValidationInfo) -> Path:
        if not str(path).strip():
            raise ValueError("expected a file path")
        folder = (info.context or {}).get("folder")
        return path if path.is_absolute() or folder is None else Path(folder) / path

    @field_validator("path")
    @classmethod
    def _a_known_suffix(cls, path: Path) -> Path:
        if path.suffix.lower() not in (".parquet", ".jsonl"):
            raise ValueError(f"expected a .parquet or .jsonl file, got {path.name!r}")
        return path


class SourceConfig(StrictModel):
    """Exactly one of `catalog` and `file`."""

    catalog: CatalogSource | None = None
    file: FileSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceConfig:
        if (self.catalog is None) == (self.file is None):
            raise ValueError("give exactly one of `catalog` or `file`")
        return self


class BenchmarkConfig(StrictModel):
    """One benchmark file (catalogs/benchmarks/*.yaml), in the format documented in general.yaml."""

    name: PlainName
    description: str = ""
    category: Literal[BENCHMARK_CATEGORIES] | None  # type: ignore[valid-type]  # required: null or a key
    source: SourceConfig
    prompt: str | None = None  # file sources only; None: the format's DEFAULT_PROMPTS template
    parser: Literal["text", "letter", "box", "number"] = "text"
    metric: str
    max_new_tokens: Annotated[int, Field(strict=True, ge=1)] = 32
    shots: Count = 0

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            raise ValueError("a benchmark is a mapping with `source` and `metric` fields")
        default = (info.context or {}).get("name")
        return {"name": default, **data} if default is not None and "name" not in data else data

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        from mm15.eval.metrics import METRICS  # imports the tokenizer: only when a benchmark is validated

        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
        return metric

    @field_validator("prompt")
    @classmethod
    def _a_template(cls, prompt: str | None) -> str | None:
        if prompt is not None and not prompt.strip():
            raise ValueError("expected a non-empty template")
        return prompt

    @model_validator(mode="after")
    def _consistent(self) -> BenchmarkConfig:
        file = self.source.file
        if file is None:
            if self.prompt is not None:
                raise ValueError(
                    "prompt: only used with a `file` source (a catalog sample keeps its user turn)"
                )
            return self
        if self.metric not in FORMAT_METRICS[file.format]:
            allowed = ", ".join(sorted(FORMAT_METRICS[file.format]))
            raise ValueError(
                f"metric: {self.metric!r} does not fit file format {file.format} (use {allowed})"
            )
        fields = template_fields(self.prompt_template)
        unknown = sorted(fields - PLACEHOLDERS[file.format])
        if unknown:
            allowed = ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS[file.format]))
            raise ValueError(
                f"prompt: unknown placeholder {{{unknown[0]}}} (format {file.format}: {allowed})"
            )
        return self

    @property
    def prompt_template(self) -> str:
        """The template a file source's user turn is built from."""
        if self.source.file is None:
            raise ValueError(f"benchmark {self.name!r} reads the catalog: it has no prompt template")
        return self.prompt if self.prompt is not None else DEFAULT_PROMPTS[self.source.file.format]


def template_fields(template: str) -> set[str]:
    """The placeholder names of a `str.format` template; ValueError for a malformed one."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"prompt: bad template: {err}") from None
    names = {name for _, name, _, _ in parsed if name is not None}
    if "" in names or any(not n.isidentifier() for n in names):
        raise ValueError("prompt: placeholders must be names such as {question} (use {{ and }} for braces)")
    return names


def benchmarks_dir() -> Path:
    """Where the built-in benchmarks live: ``benchmarks/`` in the catalogs folder ($MM15_CATALOGS)."""
    return catalogs_dir() / "benchmarks"


def benchmark_path(name: str, folder: Path | None = None) -> Path:
    """Where the benchmark called `name` lives (a plain name: it cannot leave the folder)."""
    return named_config_path(name, Path(folder or benchmarks_dir()), "benchmark")


def known_benchmarks(folder: Path | None = None) -> list[str]:
    """Names of the benchmarks in `folder` (default: the catalogs' benchmarks folder), sorted."""
    return sorted(p.stem for p in Path(folder or benchmarks_dir()).glob("*.yaml"))


def load_benchmark(name_or_path: str | Path, folder: Path | None = None) -> BenchmarkConfig:
    """A benchmark by name (``general`` -> ``benchmarks_dir()/general.yaml``) or by path to a YAML file."""
    path = config_file(name_or_path, Path(folder or benchmarks_dir()), "benchmark")
    context = {"name": path.stem, "folder": path.resolve().parent}
    return load_config(path, BenchmarkConfig, context)


def load_benchmarks(names: list[str] | None = None, folder: Path | None = None) -> list[BenchmarkConfig]:
    """The named benchmarks (names or paths) in the order given; None: every built-in one, by name."""
    configs = [load_benchmark(n, folder) for n in (known_benchmarks(folder) if names is None else names)]
    seen: set[str] = set()
    for config in configs:
        if config.name in seen:
            raise ConfigError(f"two benchmarks are named {config.name!r}: benchmark names must be unique")
        seen.add(config.name)
    return configs


__all__ = [
    "BENCHMARK_CATEGORIES",
    "FILE_FORMATS",
    "PARSERS",
    "BenchmarkConfig",
    "CatalogSource",
    "FileSource",
    "SourceConfig",
    "benchmark_path",
    "benchmarks_dir",
    "known_benchmarks",
    "load_benchmark",
    "load_benchmarks",
]
