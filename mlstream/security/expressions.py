"""The safe subset of SQL that row filters (``filterExpr``) and CUSTOM masks (``valueExpr``) are written in.

Parsed by hand into a small tree and evaluated over a decoded record; never ``eval``, never
SQL text handed to an engine as written (Spark gets SQL printed back from the tree, every
literal quoted by :func:`to_sql`). What parses:

* literals: ``'text'`` (``''`` for a quote), numbers, ``TRUE``, ``FALSE``, ``NULL``;
* columns: ``name``, ``record.field`` (nested), or ```back quoted```; ``{col}`` in a CUSTOM
  mask is the column being masked;
* Ranger's user macro ``${{USER.attr}}``, resolved from the directory's attributes;
* ``=``, ``!=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``, ``[NOT] IN (...)``, ``IS [NOT] NULL``,
  ``[NOT] BETWEEN a AND b``, ``[NOT] LIKE 'pattern'`` (``%``, ``_``), ``AND``, ``OR``, ``NOT``,
  parentheses;
* the functions in :data:`FUNCTIONS` (``lower``, ``upper``, ``substr``, ``concat``, Hive's
  ``mask*`` and ``mask_hash``, ``sha2(x, 256)``, ...).

Anything else (a ``;``, a comment, a sub-select, an unknown function) is a parse error naming
the position. Logic is SQL's three-valued one: a comparison with NULL is unknown, and a row
filter keeps a row only where the expression is TRUE.

>>> tree = parse("region = ${{USER.region}} AND consent AND age BETWEEN 18 AND 65")
>>> sorted(columns(tree)), macros(tree)
(['age', 'consent', 'region'], {'region'})
>>> keeps(tree, {"region": "EU", "consent": True, "age": 40}, {"region": "EU"})
True
>>> keeps(tree, {"region": "EU", "consent": None, "age": 40}, {"region": "EU"})  # NULL: unknown, not kept
False
>>> to_sql(tree, {"region": "EU"})
"(((`region` = 'EU') AND `consent`) AND (`age` BETWEEN 18 AND 65))"
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlstream.errors import UserError
from mlstream.security import masks

MAX_LENGTH = 4000
MAX_DEPTH = 64


class ExpressionError(UserError):
    """An expression that is not in the safe subset, or that cannot be evaluated on a record."""


@dataclass(frozen=True)
class Node:
    kind: str  # lit | col | macro | placeholder | call | not | and | or | cmp | in | isnull | between | like
    value: Any = None  # a literal, a column path, a macro attribute, a function name, an operator
    args: tuple["Node", ...] = ()
    negated: bool = False


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<macro>\$\{\{\s*USER\.(?P<attr>[A-Za-z_][A-Za-z0-9_]*)\s*\}\})
  | (?P<placeholder>\{col\})
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>`[^`]+`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|<>|!=|=|<|>|\(|\)|,|\.|-)
""", re.VERBOSE)
KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "BETWEEN", "LIKE"}


def _date_year(value):
    return value.year if isinstance(value, datetime.date) else None


def _substr(value, start, length=None):
    if value is None or start is None:
        return None
    text = masks.sql_string(value)
    begin = start - 1 if start > 0 else (len(text) + start if start < 0 else 0)
    return text[begin:] if length is None else text[begin:begin + max(length, 0)]


def _sha2(value, bits):
    if bits != 256:
        raise ExpressionError("sha2 takes 256 bits here (as Ranger's MASK_HASH)")
    return masks.mask_hash(value)


#: name -> (function, least arguments, most arguments); each returns NULL for a NULL where SQL does.
FUNCTIONS: dict[str, tuple[Callable, int, int]] = {
    "lower": (lambda v: None if v is None else masks.sql_string(v).lower(), 1, 1),
    "upper": (lambda v: None if v is None else masks.sql_string(v).upper(), 1, 1),
    "length": (lambda v: None if v is None else len(masks.sql_string(v)), 1, 1),
    "substr": (_substr, 2, 3),
    "substring": (_substr, 2, 3),
    "concat": (lambda *vs: None if any(v is None for v in vs) else "".join(map(masks.sql_string, vs)), 1, 16),
    "coalesce": (lambda *vs: next((v for v in vs if v is not None), None), 1, 16),
    "year": (_date_year, 1, 1),
    "mask": (masks.mask, 1, 9),
    "mask_first_n": (masks.mask_first_n, 1, 7),
    "mask_last_n": (masks.mask_last_n, 1, 7),
    "mask_show_first_n": (masks.mask_show_first_n, 1, 7),
    "mask_show_last_n": (masks.mask_show_last_n, 1, 7),
    "mask_hash": (masks.mask_hash, 1, 1),
    "sha2": (_sha2, 2, 2),
}


def _tokens(text: str) -> list[tuple[str, Any, int]]:
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    found, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"{text!r}: at character {position + 1}: {text[position]!r} is not part of the "
                                  f"expressions mlstream evaluates (see docs/security.md)")
        kind = match.lastgroup if match.lastgroup != "attr" else "macro"
        if kind == "macro":
            found.append(("macro", match.group("attr"), position))
        elif kind == "word" and match.group().upper() in KEYWORDS:
            found.append(("kw", match.group().upper(), position))
        elif kind == "string":
            found.append(("string", match.group()[1:-1].replace("''", "'"), position))
        elif kind == "number":
            number = match.group()
            found.append(("number", float(number) if any(c in number for c in ".eE") else int(number), position))
        elif kind == "quoted":
            found.append(("word", match.group()[1:-1], position))
        elif kind != "space":
            found.append((kind, match.group(), position))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str):
        self.text, self.tokens, self.at, self.depth = text, _tokens(text), 0, 0

    def fail(self, message: str):
        where = self.tokens[self.at][2] + 1 if self.at < len(self.tokens) else len(self.text) + 1
        raise ExpressionError(f"{self.text!r}: at character {where}: {message}")

    def peek(self, kind: str | None = None, value: Any = None) -> bool:
        if self.at >= len(self.tokens):
            return False
        token = self.tokens[self.at]
        return (kind is None or token[0] == kind) and (value is None or token[1] == value)

    def take(self, kind: str, value: Any = None, what: str = "") -> Any:
        if not self.peek(kind, value):
            got = repr(self.tokens[self.at][1]) if self.at < len(self.tokens) else "the end"
            self.fail(f"expected {what or value or kind}, found {got}")
        self.at += 1
        return self.tokens[self.at - 1][1]

    def accept(self, kind: str, value: Any = None) -> bool:
        if self.peek(kind, value):
            self.at += 1
            return True
        return False

    def parse(self) -> Node:
        if not self.tokens:
            raise ExpressionError("the expression is empty")
        node = self.disjunction()
        if self.at < len(self.tokens):
            self.fail(f"unexpected {self.tokens[self.at][1]!r} (one expression, nothing after it)")
        return node

    def nested(self, parse: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nested deeper than {MAX_DEPTH}")
        try:
            return parse()
        finally:
            self.depth -= 1

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.accept("kw", "OR"):
            node = Node("or", args=(node, self.conjunction()))
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.accept("kw", "AND"):
            node = Node("and", args=(node, self.negation()))
        return node

    def negation(self) -> Node:
        if self.accept("kw", "NOT"):
            return Node("not", args=(self.nested(self.negation),))
        return self.predicate()

    def predicate(self) -> Node:
        left = self.operand()
        if self.peek("op") and self.tokens[self.at][1] in ("=", "!=", "<>", "<", "<=", ">", ">="):
            operator = self.take("op")
            return Node("cmp", "!=" if operator == "<>" else operator, (left, self.operand()))
        if self.accept("kw", "IS"):
            negated = self.accept("kw", "NOT")
            self.take("kw", "NULL", "NULL after IS [NOT]")
            return Node("isnull", args=(left,), negated=negated)
        negated = self.accept("kw", "NOT")
        if self.accept("kw", "IN"):
            self.take("op", "(", "'(' after IN")
            items = [self.operand()]
            while self.accept("op", ","):
                items.append(self.operand())
            self.take("op", ")", "')' closing IN (...)")
            return Node("in", args=(left, *items), negated=negated)
        if self.accept("kw", "BETWEEN"):
            low = self.operand()
            self.take("kw", "AND", "AND in BETWEEN ... AND ...")
            return Node("between", args=(left, low, self.operand()), negated=negated)
        if self.accept("kw", "LIKE"):
            return Node("like", args=(left, self.operand()), negated=negated)
        if negated:
            self.fail("expected IN, BETWEEN or LIKE after NOT")
        return left

    def operand(self) -> Node:
        if self.accept("op", "("):
            node = self.nested(self.disjunction)
            self.take("op", ")", "')'")
            return node
        if self.accept("op", "-"):
            number = self.take("number", what="a number after '-'")
            return Node("lit", -number)
        for kind in ("string", "number"):
            if self.peek(kind):
                return Node("lit", self.take(kind))
        if self.peek("kw") and self.tokens[self.at][1] in ("TRUE", "FALSE", "NULL"):
            return Node("lit", {"TRUE": True, "FALSE": False, "NULL": None}[self.take("kw")])
        if self.peek("macro"):
            return Node("macro", self.take("macro"))
        if self.accept("placeholder"):
            return Node("placeholder")
        if self.peek("word"):
            name = self.take("word")
            if self.accept("op", "("):
                return self.call(name)
            path = [name]
            while self.accept("op", "."):
                path.append(self.take("word", what="a field name after '.'"))
            return Node("col", tuple(path))
        self.fail("expected a value, a column or a function")

    def call(self, name: str) -> Node:
        if name.lower() not in FUNCTIONS:
            self.fail(f"function {name!r} is not one mlstream evaluates ({', '.join(sorted(FUNCTIONS))})")
        args = []
        if not self.accept("op", ")"):
            args.append(self.nested(self.disjunction))
            while self.accept("op", ","):
                args.append(self.nested(self.disjunction))
            self.take("op", ")", f"')' closing {name}(...)")
        _, least, most = FUNCTIONS[name.lower()]
        if not least <= len(args) <= most:
            self.fail(f"{name} takes {least}" + (f" to {most}" if most != least else "") + f" arguments, not "
                      f"{len(args)}")
        return Node("call", name.lower(), tuple(args))


def parse(text: str) -> Node:
    """The tree of ``text``, or ExpressionError naming the position of what is not in the subset."""
    return _Parser(text).parse()


def _walk(node: Node):
    yield node
    for arg in node.args:
        yield from _walk(arg)


def columns(node: Node) -> set[str]:
    """The columns (dotted paths) an expression reads."""
    return {".".join(n.value) for n in _walk(node) if n.kind == "col"}


def functions(node: Node) -> set[str]:
    """The functions an expression calls."""
    return {n.value for n in _walk(node) if n.kind == "call"}


def macros(node: Node) -> set[str]:
    """The user attributes (``${{USER.attr}}``) an expression needs."""
    return {n.value for n in _walk(node) if n.kind == "macro"}


def _lookup(record: dict, path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, dict) or part not in value:
            raise ExpressionError(f"column {'.'.join(path)!r} is not in the record")
        value = value[part]
    return value


def _compare(operator: str, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    numbers = (int, float)
    if isinstance(left, numbers) and not isinstance(left, bool) and isinstance(right, str) or \
            isinstance(right, numbers) and not isinstance(right, bool) and isinstance(left, str):
        raise ExpressionError(f"cannot compare {left!r} with {right!r} (a number with a text)")
    try:
        return {"=": left == right, "!=": left != right}[operator] if operator in ("=", "!=") else \
            {"<": lambda: left < right, "<=": lambda: left <= right, ">": lambda: left > right,
             ">=": lambda: left >= right}[operator]()
    except TypeError:
        raise ExpressionError(f"cannot compare {left!r} {operator} {right!r}") from None


def _like(value: Any, pattern: Any) -> bool | None:
    if value is None or pattern is None:
        return None
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, masks.sql_string(value), re.DOTALL) is not None


def evaluate(node: Node, record: dict, user: dict[str, Any], column: Any = None) -> Any:
    """The value of ``node`` on ``record`` (``user``: the attributes; ``column``: ``{col}``'s value)."""
    kind, args = node.kind, node.args

    def value(n: Node) -> Any:
        return evaluate(n, record, user, column)

    if kind == "lit":
        return node.value
    if kind == "col":
        return _lookup(record, node.value)
    if kind == "placeholder":
        return column
    if kind == "macro":
        if node.value not in user:
            raise ExpressionError(f"${{{{USER.{node.value}}}}}: the user has no attribute {node.value!r} in the "
                                  f"directory")
        return user[node.value]
    if kind == "call":
        return FUNCTIONS[node.value][0](*map(value, args))
    if kind == "not":
        inner = _truth(value(args[0]))
        return None if inner is None else not inner
    if kind in ("and", "or"):
        left, right = _truth(value(args[0])), _truth(value(args[1]))
        decisive = kind == "or"  # OR: a TRUE decides; AND: a FALSE decides
        if left is decisive or right is decisive:
            return decisive
        return None if left is None or right is None else not decisive
    if kind == "cmp":
        return _compare(node.value, value(args[0]), value(args[1]))
    if kind == "isnull":
        return (value(args[0]) is None) != node.negated
    if kind == "in":
        subject = value(args[0])
        results = [_compare("=", subject, value(item)) for item in args[1:]]
        found = True if True in results else (None if None in results else False)
    elif kind == "between":
        subject, low, high = map(value, args)
        low_ok, high_ok = _compare(">=", subject, low), _compare("<=", subject, high)
        found = False if False in (low_ok, high_ok) else (None if None in (low_ok, high_ok) else True)
    elif kind == "like":
        found = _like(value(args[0]), value(args[1]))
    else:
        raise ExpressionError(f"unknown node {kind}")
    return None if found is None else found != node.negated


def _truth(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ExpressionError(f"{value!r} is not TRUE, FALSE or NULL (a condition must be a boolean)")


def keeps(node: Node, record: dict, user: dict[str, Any]) -> bool:
    """Whether a row filter keeps ``record``: only where the expression is TRUE (not FALSE, not NULL)."""
    return _truth(evaluate(node, record, user)) is True


# ----- back to SQL, for Spark -----------------------------------------------------------------------------------

def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted_column(path: tuple[str, ...] | str) -> str:
    parts = path.split(".") if isinstance(path, str) else path
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def to_sql(node: Node, user: dict[str, Any], column_sql: str = "") -> str:
    """Spark SQL of the tree, every literal and macro quoted by us (``column_sql``: what ``{col}`` is)."""
    kind, args = node.kind, node.args

    def sql(n: Node) -> str:
        return to_sql(n, user, column_sql)

    not_ = "NOT " if node.negated else ""
    if kind == "lit":
        return sql_literal(node.value)
    if kind == "col":
        return quoted_column(node.value)
    if kind == "placeholder":
        return column_sql
    if kind == "macro":
        return sql_literal(evaluate(node, {}, user))
    if kind == "call":
        return f"{node.value}({', '.join(map(sql, args))})"
    if kind == "not":
        return f"(NOT {sql(args[0])})"
    if kind in ("and", "or"):
        return f"({sql(args[0])} {kind.upper()} {sql(args[1])})"
    if kind == "cmp":
        return f"({sql(args[0])} {node.value} {sql(args[1])})"
    if kind == "isnull":
        return f"({sql(args[0])} IS {not_}NULL)"
    if kind == "in":
        return f"({sql(args[0])} {not_}IN ({', '.join(map(sql, args[1:]))}))"
    if kind == "between":
        return f"({sql(args[0])} {not_}BETWEEN {sql(args[1])} AND {sql(args[2])})"
    if kind == "like":
        return f"({sql(args[0])} {not_}LIKE {sql(args[1])})"
    raise ExpressionError(f"unknown node {kind}")
