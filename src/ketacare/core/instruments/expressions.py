"""A tiny, safe condition language for instrument data files.

Flags and rule-based decisions (C-SSRS risk level, Budapest criteria, ACR 2016
fibromyalgia criteria) are written in the data files as short conditions a
clinician can read, for example::

    wpi >= 7 and sss >= 5 or wpi >= 4 and wpi <= 6 and sss >= 9

Names refer to item ids, subscale ids, ``total`` or ``band``. Literals are
numbers, ``true``/``false`` and double-quoted strings. Operators are
``== != > >= < <=``, ``and``, ``or`` and parentheses (``and`` binds tighter
than ``or``). There is deliberately no ``not``: a comparison that involves a
missing answer is simply false, so a flag never fires on an unanswered item.

Examples
--------
>>> cond = parse_condition("q9 > 0")
>>> cond.evaluate({"q9": 2})
True
>>> cond.evaluate({"q9": None})
False
>>> sorted(parse_condition('band == "high" or (a >= 1 and b == true)').names())
['a', 'b', 'band']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ketacare.core.errors import InvalidInput

__all__ = ["Condition", "parse_condition"]

Value = int | float | bool | str | None

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>\"[^\"]*\")|(?P<op>==|!=|>=|<=|>|<)"
    r"|(?P<paren>[()])|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)
_OPS = ("==", "!=", ">=", "<=", ">", "<")


@dataclass(frozen=True, slots=True)
class _Ref:
    name: str


@dataclass(frozen=True, slots=True)
class _Lit:
    value: Value


@dataclass(frozen=True, slots=True)
class _Compare:
    left: _Ref | _Lit
    op: str
    right: _Ref | _Lit


@dataclass(frozen=True, slots=True)
class _BoolOp:
    op: str  # "and" | "or"
    parts: tuple[_Node, ...]


_Node = _Compare | _BoolOp


def _resolve(operand: _Ref | _Lit, context: Mapping[str, Value]) -> Value:
    if isinstance(operand, _Lit):
        return operand.value
    return context.get(operand.name)


def _compare(left: Value, op: str, right: Value) -> bool:
    if left is None or right is None:
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        if not (isinstance(left, bool) and isinstance(right, bool)):
            return False
        if op == "==":
            return left is right
        if op == "!=":
            return left is not right
        return False
    if isinstance(left, str) or isinstance(right, str):
        if op == "==":
            return left == right
        if op == "!=":
            return left != right
        return False
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    return left <= right


def _eval(node: _Node, context: Mapping[str, Value]) -> bool:
    if isinstance(node, _Compare):
        return _compare(_resolve(node.left, context), node.op, _resolve(node.right, context))
    if node.op == "and":
        return all(_eval(part, context) for part in node.parts)
    return any(_eval(part, context) for part in node.parts)


def _names(node: _Node) -> set[str]:
    if isinstance(node, _Compare):
        return {o.name for o in (node.left, node.right) if isinstance(o, _Ref)}
    found: set[str] = set()
    for part in node.parts:
        found |= _names(part)
    return found


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition; :meth:`evaluate` it against named values.

    Examples
    --------
    >>> Condition.parse("total >= 10").evaluate({"total": 10})
    True
    """

    source: str
    _tree: _Node

    @staticmethod
    def parse(text: str) -> Condition:
        """Parse ``text`` (see the module docstring for the grammar)."""
        return parse_condition(text)

    def evaluate(self, context: Mapping[str, Value]) -> bool:
        """True when the condition holds; comparisons with a missing value are false."""
        return _eval(self._tree, context)

    def names(self) -> frozenset[str]:
        """Every name the condition refers to (for validation on load)."""
        return frozenset(_names(self._tree))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            match = _TOKEN.match(stripped, pos)
            if match is None or match.end() == pos:
                raise InvalidInput(f"condition {text!r}: cannot read from {stripped[pos:]!r}")
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise InvalidInput(f"condition {self.text!r}: ends too early")
        self.pos += 1
        return token

    def parse(self) -> _Node:
        node = self.expr()
        extra = self.peek()
        if extra is not None:
            raise InvalidInput(f"condition {self.text!r}: unexpected {extra[1]!r}")
        return node

    def expr(self) -> _Node:
        parts = [self.conj()]
        while self.peek() == ("name", "or"):
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else _BoolOp("or", tuple(parts))

    def conj(self) -> _Node:
        parts = [self.atom()]
        while self.peek() == ("name", "and"):
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else _BoolOp("and", tuple(parts))

    def atom(self) -> _Node:
        if self.peek() == ("paren", "("):
            self.take()
            node = self.expr()
            if self.take() != ("paren", ")"):
                raise InvalidInput(f"condition {self.text!r}: missing ')'")
            return node
        left = self.operand()
        kind, op = self.take()
        if kind != "op" or op not in _OPS:
            raise InvalidInput(f"condition {self.text!r}: expected a comparison, got {op!r}")
        return _Compare(left, op, self.operand())

    def operand(self) -> _Ref | _Lit:
        kind, value = self.take()
        if kind == "num":
            return _Lit(float(value) if "." in value else int(value))
        if kind == "str":
            return _Lit(value[1:-1])
        if kind == "name":
            if value in ("true", "false"):
                return _Lit(value == "true")
            if value in ("and", "or", "not"):
                raise InvalidInput(f"condition {self.text!r}: misplaced {value!r}")
            return _Ref(value)
        raise InvalidInput(f"condition {self.text!r}: unexpected {value!r}")


def parse_condition(text: str) -> Condition:
    """Parse a condition string into a :class:`Condition`.

    Raises
    ------
    InvalidInput
        When the text is not a valid condition.

    Examples
    --------
    >>> parse_condition("q4 == true or q5 == true").evaluate({"q4": False, "q5": True})
    True
    """
    return Condition(text, _Parser(text).parse())
