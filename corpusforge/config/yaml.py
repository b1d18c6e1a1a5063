"""YAML with line numbers, within a budget: every YAML corpusforge reads (recipes, training and eval configs, `--set`
values) goes through ``load_yaml``.

Safe tags only, a key given twice in one mapping refused, and a budget on nodes (aliases counted as what they expand
to) and nesting, so an alias bomb is refused while it is parsed rather than expanded by whatever walks the data next.
The key path → line map lets an error name the line of the key it is about (``problems.lines_for``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from corpusforge.errors import RecipeError

# The largest recipe or config in the repository has about 100 nodes; validation, fingerprints and the manifest all
# walk the expanded data, so this bounds their work too.
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 100


class YAMLOverBudget(yaml.MarkedYAMLError):
    """A YAML document over the node or nesting budget, with an alias inside the node it names, or with a key given
    twice in one mapping: refused, not loaded."""


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that sizes each node as it is composed (an alias weighs what it repeats) and refuses a document
    over ``MAX_YAML_NODES`` or ``MAX_YAML_DEPTH`` there, before anything walks the expansion."""

    def __init__(self, stream):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) → its size with aliases expanded (nodes live while loading)
        self._depth = 0

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:  # its anchor is still being composed: `a: &a [*a]`
                raise YAMLOverBudget(None, None, "an alias inside the node it refers to (a recursive alias)", mark)
            return node
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise YAMLOverBudget(None, None, f"refused: nested more than {MAX_YAML_DEPTH} levels deep", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        sizes = self._sizes
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(node)
            size = 1 + sum(sizes[id(k)] + sizes[id(v)] for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(sizes[id(item)] for item in node.value)
        else:
            size = 1
        if size > MAX_YAML_NODES:
            raise YAMLOverBudget(
                None,
                None,
                f"refused: more than {MAX_YAML_NODES:,} nodes with its aliases expanded (an alias bomb?)",
                mark,
            )
        sizes[id(node)] = size
        return node


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    """A key given twice in one mapping: YAML would keep the last one and drop the first without a word."""
    first: dict[str, yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        if key.value in first:
            raise YAMLOverBudget(
                None,
                None,
                f"the key '{key.value}' is given twice (first on line {first[key.value].start_mark.line + 1}); "
                "YAML would keep only the last one",
                key.start_mark,
            )
        first[key.value] = key


def load_yaml(text: str, lines: bool = True) -> tuple[Any, dict[tuple, int]]:
    """``text``'s data and (``lines``) its key path → line map, within the budget; raises ``yaml.YAMLError``."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        line_map = _line_map(node) if lines else {}
        return loader.construct_document(node), line_map
    finally:
        loader.dispose()


def yaml_problem(err: yaml.YAMLError) -> str:
    """What is wrong, in words: a refused budget or tag as such, anything else as invalid YAML."""
    problem = getattr(err, "problem", None) or str(err)
    if isinstance(err, YAMLOverBudget):
        return problem
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        name = tag[1].replace("tag:yaml.org,2002:", "!!")
        return f"the tag '{name}' is not allowed (plain YAML only: strings, numbers, booleans, lists, mappings)"
    return f"not valid YAML: {problem}"


def _line_map(node: yaml.Node, loc: tuple = (), out: dict | None = None, seen: set | None = None) -> dict[tuple, int]:
    """Key path → 1-based line for every mapping key and sequence item under ``node``. Each node is walked once:
    a key path through a repeated alias gets the line of the alias."""
    out = {} if out is None else out
    seen = set() if seen is None else seen
    out.setdefault(loc, node.start_mark.line + 1)
    if id(node) in seen:
        return out
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a list or mapping as a key: no key path reaches it
            key = key_node.value
            out[loc + (key,)] = key_node.start_mark.line + 1
            _line_map(value_node, loc + (key,), out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[loc + (i,)] = item.start_mark.line + 1
            _line_map(item, loc + (i,), out, seen)
    return out


def read_yaml(
    path: str | Path, what: str = "file", error: type[RecipeError] = RecipeError, loc: tuple = ()
) -> tuple[Any, dict[tuple, int]]:
    """A YAML file's data and its key path → line map; a missing or unreadable file or bad YAML raises ``error``
    about ``loc``, naming the file (as ``what``) and the line."""
    path = Path(path)
    if not path.is_file():
        raise error([(loc, f"{what} '{path}' does not exist (cwd={Path.cwd()})")])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error([(loc, f"{what} '{path}' is not UTF-8 text (byte {err.start})")]) from None
    except OSError as err:
        raise error([(loc, f"{what} '{path}' cannot be read: {err.strerror}")]) from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error([(loc, f"{where}: {yaml_problem(err)}")]) from None
