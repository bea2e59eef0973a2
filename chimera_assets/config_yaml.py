"""Reading the YAML configuration files (universe, regimes): a loader that refuses duplicate keys, and
the one-line description of a pydantic ``ValidationError`` that names the offending key and value.

Pure (PyYAML + pydantic, no Dagster). The models themselves live next to what they configure
(``universe.py``, ``features/regimes.py``); each caller prefixes the file name to the message.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml
from pydantic import ConfigDict, ValidationError

#: Every configuration model: unknown keys are refused and values are not coerced ("false" is no bool).
STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
#: The same strictness for a single value checked with a ``TypeAdapter``.
STRICT_VALUE = ConfigDict(strict=True)


class DuplicateKeyError(ValueError):
    def __init__(self, key: object, line: int):
        super().__init__(f"duplicate key {key!r} (line {line})")


#: Nodes a document may expand to once its aliases are followed. PyYAML shares an aliased node, but
#: everything after it (validation, an error message echoing a value) walks the expanded tree: nine
#: nested lists of nine aliases ("billion laughs") are 387M nodes, ~1 GB and a 226 MB message. The
#: largest real configuration (the universe with every product) is a few hundred nodes.
MAX_EXPANDED_NODES = 100_000
#: Characters of a value echoed in an error message.
MAX_EXCERPT = 300
#: Characters of a validator's own message (it may list the valid choices, e.g. the CME calendars).
MAX_VALIDATOR_TEXT = 2000


class AliasBudgetError(yaml.YAMLError):
    """The document's anchors and aliases expand beyond ``MAX_EXPANDED_NODES``."""


def excerpt(value: object, limit: int = MAX_EXCERPT) -> str:
    """``repr(value)`` cut to ``limit`` characters (a value is never rendered whole: it may be huge)."""
    short = reprlib.Repr()  # keyword arguments only from Python 3.12
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 3, 8, 8, limit, limit
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expanded_size(root: yaml.Node, budget: int) -> int:
    """Nodes of ``root`` with every alias expanded, counted on the shared graph (each node once, with
    memo): linear in the document's size however deep the aliases nest. Raises past ``budget``."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        got = memo.get(id(node))
        if got is not None:
            return got
        memo[id(node)] = 1  # a recursive alias (a node inside itself) counts once
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > budget:
            raise AliasBudgetError(
                f"anchors and aliases expand to more than {budget:,} values (line {node.start_mark.line + 1}); "
                "the file is refused (an alias bomb, or a configuration far larger than any real one)"
            )
        memo[id(node)] = total
        return total

    return size(root)


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (PyYAML keeps the last silently) and a
    document whose aliases expand beyond ``MAX_EXPANDED_NODES``."""

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, MAX_EXPANDED_NODES)
        return node

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_unique_yaml(text: str) -> Any:
    """``yaml.safe_load`` semantics, but a repeated key raises :class:`DuplicateKeyError`."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - UniqueKeyLoader is a SafeLoader


def describe_validation_error(
    exc: ValidationError,
    where: Callable[[tuple[str | int, ...]], str],
    phrases: Mapping[str, str] | None = None,
) -> str:
    """The problems of ``exc`` as one ``"; "``-joined line, each ``"<where>: <key> <value!r> <phrase>"``.

    ``where(loc)`` names the mapping at ``loc`` (e.g. ``"root ZL"``; ``""`` for the document itself).
    ``phrases`` maps a key to the rule it breaks (``"weight" -> "must be an integer in 50..1000"``);
    without one pydantic's wording is used. A validator's own ``ValueError`` text is kept as written.
    Unknown and missing keys of one mapping are grouped: ``unknown key(s) [...], missing key(s) [...]``.
    """
    phrases = phrases or {}
    parts: list[str] = []
    keys: dict[tuple, tuple[list[str], list[str]]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] in ("extra_forbidden", "missing"):
            unknown, missing = keys.setdefault(loc[:-1], ([], []))
            (unknown if err["type"] == "extra_forbidden" else missing).append(str(loc[-1]))
            continue
        named = [p for p in loc if isinstance(p, str) and p != "[key]"]
        if loc and loc[-1] == "[key]":
            key, container = "[key]", loc[:-2]
        else:
            key = named[-1] if named else ""
            container = loc[: max(i for i, p in enumerate(loc) if p == key)] if key else loc
        if err["type"] in ("model_type", "dict_type"):  # a mapping was expected at ``loc``
            key, container = "", loc
        if err["type"] == "value_error":
            text = str(err["ctx"]["error"])[:MAX_VALIDATOR_TEXT]
        elif key == "[key]":  # a mapping key itself (e.g. a root name): the phrase formats {value}
            text = phrases.get("[key]", "key {value} is not valid").replace("{value!r}", "{value}").format(
                value=excerpt(err["input"]))
        elif key in phrases:
            text = f"{key} {excerpt(err['input'])} {phrases[key]}"
        elif not key:
            text = f"expected a mapping, got {excerpt(err['input'])}"
        else:
            text = f"{key} {excerpt(err['input'])}: {err['msg'][:1].lower()}{err['msg'][1:]}"
        parts.append(_prefixed(where(container), text))
    for container, (unknown, missing) in keys.items():
        text = ", ".join(
            f"{label} key(s) {sorted(names)}" for label, names in (("unknown", unknown), ("missing", missing))
            if names
        )
        parts.append(_prefixed(where(container), text))
    return "; ".join(parts)


def _prefixed(where: str, text: str) -> str:
    return f"{where}: {text}" if where else text


def name_at(doc: Any, path: Sequence[str | int], key: str = "name") -> Any:
    """``doc[path...][key]`` when every step exists (the raw value, for naming an entry), else None."""
    node = doc
    for step in (*path, key):
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node
