"""Spec YAML: reading a spec's text safely (size, depth and alias limits, no duplicate
keys) while remembering the line of every key, and writing a resolved spec back."""

from __future__ import annotations

import re
from typing import Any, Union

import yaml

from nnctl.app.errors import SpecError

KeyPath = tuple[Union[str, int], ...]

_MAX_NODES = 100_000  # guards against alias bombs ("billion laughs")
_YAML_PREFIX = "tag:yaml.org,2002:"


def format_path(path: KeyPath) -> str:
    """``('model', 'layers', 1, 'units')`` → ``model.layers[1].units``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_PREFIX):] if tag.startswith(_YAML_PREFIX) else tag


class SpecLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys, non-text keys and custom tags, and records lines.

    ``lines`` maps each key path to its 1-based line: a mapping entry to its key's line, a
    list item to the item's first line, the root ``()`` to the document's first line.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[str] = []
        self._visited = 0

    def load_document(self) -> Any:
        """Compose, check and construct the single document; None for an empty stream."""
        node = self.get_single_node()
        if node is None:
            return None
        self._record(node, (), set())
        if self.problems:
            raise SpecError("\n".join(self.problems))
        return self.construct_document(node)

    def _record(self, node: yaml.Node, path: KeyPath, active: set[int]) -> None:
        self._visited += 1
        if self._visited > _MAX_NODES:
            raise SpecError(f"spec is too large: more than {_MAX_NODES} YAML nodes (after expanding aliases)")
        if id(node) in active:  # a recursive alias: validation will reject the value itself
            return
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        if node.tag not in self.yaml_constructors or node.tag is None:
            where = format_path(path) or "the spec"
            self.problems.append(f"{where}: YAML tag '{_short_tag(node.tag)}' is not allowed (line {line})")
            return
        active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            self._record_mapping(node, path, active)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[path + (index,)] = item.start_mark.line + 1
                self._record(item, path + (index,), active)

    def _record_mapping(self, node: yaml.MappingNode, path: KeyPath, active: set[int]) -> None:
        first_seen: dict[str, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _YAML_PREFIX + "merge":
                continue
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _YAML_PREFIX + "str"):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a " + key_node.id
                self.problems.append(
                    f"{format_path(path) or 'the spec'}: key {shown!r} must be text (line {line}); quote it"
                )
                continue
            key = key_node.value
            if key in first_seen:
                self.problems.append(
                    f"{format_path(path + (key,))}: duplicate key (line {line}); first set at line {first_seen[key]}"
                )
            first_seen.setdefault(key, line)
        self.flatten_mapping(node)  # merge keys (<<): explicit keys come last and win
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _YAML_PREFIX + "str":
                child = path + (key_node.value,)
                self.lines[child] = key_node.start_mark.line + 1
                self._record(value_node, child, active)


class SpecDumper(yaml.SafeDumper):
    """Writes specs so that ``SpecLoader`` reads them back unchanged: a string it would read
    as a number (``0E0``) is quoted."""


# YAML 1.1 reads 1e-3 as text; accept the YAML 1.2 / JSON spelling of exponent floats too.
# (add_implicit_resolver copies the table for each subclass; yaml.SafeLoader is unchanged.)
for _cls in (SpecLoader, SpecDumper):
    _cls.add_implicit_resolver(
        _YAML_PREFIX + "float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


_MAX_BYTES = 1_000_000
_MAX_FLOW_DEPTH = 100


def _check_size(text: str, source: str) -> None:
    """Refuse, before parsing, a spec over 1 MB or with brackets nested over 100 deep
    (a spec is a few hundred bytes; parsing such documents would take seconds)."""
    if len(text) > _MAX_BYTES:
        raise SpecError(f"{source}: spec is too large: {len(text):,} characters (the limit is {_MAX_BYTES:,})")
    depth = 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
            if depth > _MAX_FLOW_DEPTH:
                line = text.count("\n", 0, i) + 1
                raise SpecError(f"{source}: line {line}: the YAML is nested too deeply (more than {_MAX_FLOW_DEPTH} levels)")
        elif ch in "]}":
            depth = max(depth - 1, 0)


def load_yaml(text: str, source: str) -> tuple[Any, dict[KeyPath, int]]:
    _check_size(text, source)
    try:
        loader = SpecLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        raise SpecError(f"{source}: line {line}: character U+{code:04X} is not allowed in YAML") from None
    try:
        return loader.load_document(), loader.lines
    except SpecError as exc:
        raise SpecError(exc.message, hint=f"in {source}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and not exc.context.startswith("while"):
            problem = f"{exc.context}, {exc.problem}"  # e.g. "expected a single document in the stream, but ..."
        kind = "cannot read a value" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{source}: {kind}{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: YAML error: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: the YAML is nested too deeply") from None
    finally:
        loader.dispose()
