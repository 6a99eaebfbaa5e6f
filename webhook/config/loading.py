"""Config text and files in, a validated Config out; an error names the key path, the value
and what is allowed (one line per problem), so a bad config is fixed from the message alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from webhook.config.model import Config
from webhook.errors import ConfigError


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at a location, so an unknown-key error can list them."""
    model: Any = Config
    parts = list(loc)
    while parts:
        field = model.model_fields.get(parts.pop(0)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        annotation = field.annotation
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            if parts:
                parts.pop(0)  # the map key (a profile name)
        candidates = [a for a in (get_args(annotation) or (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return list(model.model_fields)


def _format_errors(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        value = item.get("input")
        shown = json.dumps(value, default=str)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = _keys_at(item["loc"][:-1])
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        lines.append(f"{source}: {path}: {message} (got {shown})")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate already-parsed YAML; ConfigError names the key path, value and rule."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(data).__name__}")
    try:
        return Config.model_validate(dict(data))
    except ValidationError as error:
        raise ConfigError(_format_errors(error, source)) from None


def override(config: Config, key: str, value: Any, source: str) -> Config:
    """The config with one top-level key replaced (a command-line flag), validated again;
    None leaves it as it is. ConfigError names the flag when the value is invalid."""
    if value is None:
        return config
    return parse_config({**config.model_dump(mode="json"), key: value}, source)


def load_config_text(text: str, source: str = "config") -> Config:
    """Parse YAML text and validate it."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    return parse_config(data, source)


def load_config_file(path: Path | str) -> Config:
    """Read and validate a config file (the edge that touches disk)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: config is not UTF-8 text ({error.reason} at byte {error.start})") from None
    return load_config_text(text, str(path))


def example_config_text() -> str:
    """The built-in example config shipped inside the package (used when --config is omitted)."""
    return resources.files("webhook").joinpath("example-config.yaml").read_text(encoding="utf-8")


def example_config() -> Config:
    return load_config_text(example_config_text(), "built-in example config")
