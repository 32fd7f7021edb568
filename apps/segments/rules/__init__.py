"""The segment rule language (the tree in DESIGN.md), checked, compiled to SQL, and
evaluated in Python for tests.

Semantics every part shares:
- `all` is true when every child is (empty: true); `any` when one is (empty: false);
  `not` inverts its child.
- A leaf about a value the contact does not have (missing attribute, JSON null, empty
  built-in text) is false, whatever the op, except `not_exists`. So `not` of
  "plan eq pro" matches contacts without a plan.
- Typed: eq/neq/in/not_in compare JSON values (the number 5 is not the text "5");
  gt/gte/lt/lte need a number value and match number attributes only; contains and
  starts_with are case-insensitive on text (contains also finds an element of a
  list attribute); before/after/within_last_days read ISO 8601 text as a date-time
  (a date alone is midnight UTC).
- Event leaves count the contact's events of that name (within the last N days,
  whose properties match every `where` condition) against `count` (default: at
  least one).
"""

from apps.segments.rules.compile import compile_rule
from apps.segments.rules.evaluate import ContactFacts, evaluate_rule, properties_match
from apps.segments.rules.spec import (
    BUILTIN_FIELDS,
    COUNT_OPS,
    DATETIME_FIELDS,
    OPS,
    iter_leaves,
    rule_has_time_window,
)
from apps.segments.rules.validate import validate_rule

__all__ = [
    "BUILTIN_FIELDS",
    "COUNT_OPS",
    "DATETIME_FIELDS",
    "OPS",
    "ContactFacts",
    "compile_rule",
    "evaluate_rule",
    "iter_leaves",
    "properties_match",
    "rule_has_time_window",
    "validate_rule",
]
