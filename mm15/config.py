"""Configuration as data: YAML files under catalogs/ read into typed, validated models.

One loader for every config file: YAML that rejects duplicate keys, then a pydantic model with
`extra="forbid"`, so a typo is an error rather than a silently ignored field. Every problem becomes
one line that names the file and the field, e.g.
``catalogs/mixtures/foo.yaml: groups.single_image.alpha.text_rich: input should be a valid number``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from mm15.errors import UserError


class ConfigError(UserError, ValueError):
    """A configuration file or value that cannot be used; the message is one line naming file and field."""


class StrictModel(BaseModel):
    """Base of every config model: unknown fields are errors, values are not mutated after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Model = TypeVar("Model", bound=BaseModel)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", node.value[i][0].start_mark
                )
        return super().construct_mapping(node, deep=deep)


def display_path(path: Path | str) -> str:
    """`path` relative to the working directory when it lies below it (as a user typed it), else absolute."""
    path = Path(path)
    try:
        return os.path.relpath(path.resolve()) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _plain_name(name: str) -> str:
    if not PLAIN_NAME.match(name):
        raise ValueError("bad name, use letters, digits, '_', '.', '-'")
    return name


# a config's name: it names a file in a folder, so it cannot hold a path
PlainName = Annotated[str, AfterValidator(_plain_name)]


def named_config_path(name: str, folder: Path, kind: str) -> Path:
    """`folder/NAME.yaml`; `name` must be a plain name (letters, digits, '_', '.', '-'), so it cannot leave
    the folder."""
    if not PLAIN_NAME.match(name):
        raise ConfigError(f"bad {kind} name {name!r}: use letters, digits, '_', '.', '-'")
    return Path(folder) / f"{name}.yaml"


def config_file(name_or_path: str | Path, folder: Path, kind: str) -> Path:
    """A config file given by path (a Path, a '/' or a .yaml suffix) or by name under `folder`; an unknown
    name is a ConfigError that lists the known ones."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        return Path(name_or_path)
    path = named_config_path(text, folder, kind)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(folder).glob("*.yaml"))) or "none"
        raise ConfigError(f"no {kind} {text!r} in {display_path(folder)} (known: {known})")
    return path


def read_yaml(path: Path | str) -> Any:
    """Parse a YAML file; duplicate keys, syntax errors and unreadable files are one-line ConfigErrors."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{display_path(path)}: malformed YAML: {_yaml_problem(err)}") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConfigError(f"{display_path(path)}: cannot read: {reason}") from None


def validate(model: type[Model], data: Any, where: str, context: dict[str, Any] | None = None) -> Model:
    """`data` as a `model`, or a ConfigError "WHERE: FIELD: PROBLEM" for the first thing wrong."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        raise ConfigError(f"{where}: {describe_error(err)}") from None


def load_config(path: Path | str, model: type[Model], context: dict[str, Any] | None = None) -> Model:
    """Read the YAML file at `path` as a `model` (see `validate`)."""
    return validate(model, read_yaml(path), display_path(path), context)


def describe_error(err: ValidationError) -> str:
    """The first problem of a validation error as "field.path: problem (and N more)", one line."""
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"])
    message = _message(first)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    text = f"{loc}: {message}" if loc else message
    return " ".join(f"{text}{more}".split())  # one line, whatever the value held


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "missing field"
    message = error["msg"]
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = message[:1].lower() + message[1:]
    if error["type"].endswith("_type") and not isinstance(error.get("input"), dict | list):
        message += f", got {error.get('input')!r}"
    return message


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return " ".join(f"{getattr(err, 'problem', None) or err}{where}".split())
