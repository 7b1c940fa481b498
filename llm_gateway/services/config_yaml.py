"""YAML read with the line of every mapping, key, sequence and item, for messages that name the line.

A safe loader (plain YAML types only) whose mappings and sequences are dict and list subclasses that
remember where they were written; dates stay text (``api_version: 2024-02-01`` is a version), and
binary and set values are refused, as a JSON field cannot store them.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml


class YamlMapping(dict):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    def __init__(self) -> None:
        super().__init__()
        self.line = 0
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []


class YamlSequence(list):
    """A YAML sequence that remembers its line and the line of each item (1-based)."""

    def __init__(self) -> None:
        super().__init__()
        self.line = 0
        self.item_lines: list[int] = []


class LineLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with mappings and sequences that know their lines."""


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode):
    mapping = YamlMapping()
    mapping.line = node.start_mark.line + 1
    yield mapping
    loader.flatten_mapping(node)  # resolves "<<" merge keys, as SafeLoader does
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            )
        if key in mapping:
            mapping.duplicates.append((key, key_node.start_mark.line + 1))
        mapping.key_lines[key] = key_node.start_mark.line + 1
        mapping[key] = loader.construct_object(value_node, deep=True)


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode):
    sequence = YamlSequence()
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield sequence
    sequence.extend(loader.construct_object(item, deep=True) for item in node.value)


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)
# Dates stay the text they were written as (api_version: 2024-02-01 is a version, not a date).
LineLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)


def _construct_unstorable(loader: LineLoader, node: yaml.Node):
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"{node.tag} values cannot be stored (use plain strings, numbers, lists, mappings)",
        node.start_mark,
    )


for _tag in ("tag:yaml.org,2002:binary", "tag:yaml.org,2002:set"):
    LineLoader.add_constructor(_tag, _construct_unstorable)


def yaml_plain(value: Any) -> Any:
    """Return a YAML value as plain dicts and lists (what JSONField stores)."""
    if isinstance(value, dict):
        return {key: yaml_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [yaml_plain(item) for item in value]
    return value
