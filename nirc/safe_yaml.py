"""YAML for target files, read within a budget: PyYAML's safe loader plus limits.

``yaml.safe_load`` builds no Python objects from tags, but it still follows every alias
(a "billion laughs" file expands 9 aliases per level into 10^9 nodes) and recurses once
per nesting level (10,000 levels end in RecursionError). This loader counts, while
composing, how many nodes the document would have with every alias expanded, and how
deep it nests, and stops with a YAMLError at the first limit — before anything is built:

- MAX_BYTES of text (a target file is a page or two),
- MAX_ALIASES alias uses (``*name``),
- MAX_EXPANDED_NODES nodes after expanding aliases,
- MAX_DEPTH levels of nesting.

It also refuses a key given twice in one mapping, which PyYAML would let the second
occurrence win silently (a limit edited in one place and overridden further down).
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1 << 20
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000
MAX_DEPTH = 50


class BudgetError(yaml.YAMLError):
    """The document exceeds one of this module's limits."""

    def __init__(self, problem: str, mark: Any = None):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _BudgetLoader(yaml.SafeLoader):
    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._weight: dict[int, int] = {}   # id(node) -> nodes it stands for, aliases expanded
        self._total = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise BudgetError(f"more than {MAX_ALIASES} aliases (*name); nirc refuses "
                                  f"alias-heavy files", self.peek_event().start_mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise BudgetError(f"nested more than {MAX_DEPTH} levels deep",
                              self.peek_event().start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.MappingNode) and id(node) not in self._weight:
            seen: set[str] = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in seen:
                        raise BudgetError(f"key '{key.value}' appears twice in one mapping "
                                          f"(the second would silently win)", key.start_mark)
                    seen.add(key.value)
        if id(node) not in self._weight:      # aliases return the anchored node again
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = []
            self._weight[id(node)] = 1 + sum(self._weight.get(id(c), 1) for c in children)
        weight = self._weight[id(node)]
        if weight > MAX_EXPANDED_NODES:
            raise BudgetError(f"expands to more than {MAX_EXPANDED_NODES:,} values once its "
                              f"aliases are followed (an alias bomb?)", node.start_mark)
        return node


def safe_load(text: str) -> Any:
    """The YAML document in ``text`` as plain Python data; yaml.YAMLError (with ``problem``
    and, where known, ``problem_mark``) when it is invalid or exceeds a limit."""
    if len(text) > MAX_BYTES:
        raise BudgetError(f"is {len(text):,} characters long, more than the {MAX_BYTES:,} "
                          f"nirc reads from a target file")
    loader = _BudgetLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
