"""EventBridge event-pattern matching, for tests and the local stack.

Hand-written because no maintained Python library implements EventBridge's pattern language
(moto carries a private copy inside its events backend). Covers what the documented syntax
offers: exact values (strings, numbers, booleans, null), `prefix`, `suffix`,
`equals-ignore-case`, `wildcard`, `anything-but` (values, prefix, suffix, wildcard), `numeric`,
`exists` and `$or`. Array values in the event match when any element matches, as in AWS.
Reference: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any

_MISSING = object()
_NUMERIC_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
}


class PatternError(ValueError):
    """The pattern itself is malformed (EventBridge would reject it at PutRule)."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True when `event` (a parsed EventBridge event) matches `pattern` (a parsed pattern)."""
    if not isinstance(pattern, Mapping):
        raise PatternError(f"an event pattern is a JSON object, got {type(pattern).__name__}")
    return _match_object(pattern, event)


def _match_object(pattern: Mapping[str, Any], event: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not isinstance(rule, list) or not rule:
                raise PatternError("$or takes a non-empty list of patterns")
            if not any(_match_object(branch, event) for branch in rule):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if value is _MISSING or not isinstance(value, Mapping):
                return False
            if not _match_object(rule, value):
                return False
        elif isinstance(rule, list):
            if not _match_field(rule, value):
                return False
        else:
            raise PatternError(f"{key!r}: leaf values of a pattern must be arrays, got {rule!r}")
    return True


def _match_field(rules: list[Any], value: Any) -> bool:
    if not rules:
        raise PatternError("empty array in pattern")
    # An `exists` rule looks at the field itself, not at its (array) elements.
    for rule in rules:
        if isinstance(rule, Mapping) and "exists" in rule:
            present = value is not _MISSING
            if bool(rule["exists"]) == present and (not present or _has_leaf(value)):
                return True
    if value is _MISSING:
        return False
    candidates = value if isinstance(value, list) else [value]
    return any(_match_rule(rule, candidate) for rule in rules for candidate in candidates)


def _has_leaf(value: Any) -> bool:
    # EventBridge's `exists: true` only matches leaf values (not objects).
    return not isinstance(value, Mapping)


def _match_rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        return _equal(rule, value)
    if len(rule) != 1:
        raise PatternError(f"a content filter has exactly one operator, got {sorted(rule)}")
    ((op, arg),) = rule.items()
    if op == "exists":
        return False  # handled in _match_field
    if op == "prefix":
        return _string_op(arg, value, str.startswith)
    if op == "suffix":
        return _string_op(arg, value, str.endswith)
    if op == "equals-ignore-case":
        return isinstance(value, str) and isinstance(arg, str) and value.lower() == arg.lower()
    if op == "wildcard":
        return isinstance(value, str) and _wildcard(arg, value)
    if op == "numeric":
        return _numeric(arg, value)
    if op == "anything-but":
        return not _anything_but_excludes(arg, value)
    if op == "cidr":
        raise PatternError("cidr filters are not supported by the local matcher")
    raise PatternError(f"unknown pattern operator {op!r}")


def _equal(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(expected) is type(value) and expected == value
    if isinstance(expected, (int, float)) and isinstance(value, (int, float)):
        return float(expected) == float(value)
    return expected == value


def _string_op(arg: Any, value: Any, test: Any) -> bool:
    if not isinstance(value, str):
        return False
    if isinstance(arg, Mapping) and set(arg) == {"equals-ignore-case"}:
        return test(value.lower(), str(arg["equals-ignore-case"]).lower())
    if not isinstance(arg, str):
        raise PatternError(f"prefix/suffix takes a string, got {arg!r}")
    return test(value, arg)


def _wildcard(pattern: str, value: str) -> bool:
    # Only `*` is special in EventBridge wildcards; every other character matches itself.
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _numeric(arg: Any, value: Any) -> bool:
    if not isinstance(arg, list) or len(arg) % 2:
        raise PatternError(f"numeric takes [op, number, ...], got {arg!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if op not in _NUMERIC_OPS:
            raise PatternError(f"numeric operator {op!r} (use one of {sorted(_NUMERIC_OPS)})")
        if not _NUMERIC_OPS[op](float(value), float(bound)):
            return False
    return True


def _anything_but_excludes(arg: Any, value: Any) -> bool:
    if isinstance(arg, Mapping):
        if len(arg) != 1:
            raise PatternError(f"anything-but takes one operator, got {sorted(arg)}")
        ((op, inner),) = arg.items()
        if op in {"prefix", "suffix", "equals-ignore-case", "wildcard"}:
            inner_values = inner if isinstance(inner, list) else [inner]
            return any(_match_rule({op: item}, value) for item in inner_values)
        raise PatternError(f"anything-but does not take {op!r}")
    excluded = arg if isinstance(arg, list) else [arg]
    return any(_equal(item, value) for item in excluded)
