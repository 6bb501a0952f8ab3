"""Store snapshots (the adapter's `dump`) and their structures: what the rules compare, and
how a difference is shown."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

#: A store's records: key → (value, version).
Records = dict[str, tuple[bytes, int]]


def _strings_replaced(v: Any, replace: Callable[[str], str]) -> Any:
    """A JSON value with every string replaced."""
    if isinstance(v, str):
        return replace(v)
    if isinstance(v, list):
        return [_strings_replaced(x, replace) for x in v]
    if isinstance(v, dict):
        return {k: _strings_replaced(x, replace) for k, x in v.items()}
    return v


def shape(v: Any) -> Any:
    """The structure of a JSON value: every string replaced by its length."""
    return _strings_replaced(v, lambda s: f"<{len(s)} chars>")


def outline(v: Any) -> Any:
    """The structure of an outcome: every string replaced by ``"<string>"`` (a QR code's SVG
    differs in length from secret to secret)."""
    return _strings_replaced(v, lambda _: "<string>")


def record_shape(value: bytes) -> Any:
    """The structure of a stored value: its JSON's shape, or its length if it is not JSON."""
    try:
        return shape(json.loads(value))
    except (UnicodeDecodeError, ValueError):
        return f"<{len(value)} bytes>"


def key_shape(key: str, known: Records) -> str:
    """A key as structures compare it: itself if the before-state has it, else its prefix and
    the length of its last segment (a new WebAuthn credential's key holds its random id)."""
    if key in known:
        return key
    prefix, _, last = key.rpartition("/")
    return f"{prefix}/<{len(last)} chars>"


def store_shape(records: Records, known: Records) -> list[tuple[str, str]]:
    """The structure of a store: each record's key shape and value shape, sorted."""
    return sorted((key_shape(k, known), json.dumps(record_shape(v))) for k, (v, _) in records.items())


def calls_shape(calls: list[str], known: Records) -> list[str]:
    """A calls log with the keys as `key_shape` gives them."""
    shaped = []
    for call in calls:
        verb, _, key = call.partition(" ")
        shaped.append(call if verb == "send" else f"{verb} {key_shape(key, known)}")
    return shaped


def changed(before: Records, after: Records) -> set[str]:
    """The keys whose presence, bytes or version differ."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def changed_shape(before: Records, after: Records) -> list[str]:
    """`changed` with new keys as their shapes."""
    return sorted(key_shape(k, before) for k in changed(before, after))


def show_records(records: Records, keys: Sequence[str] | None = None) -> str:
    """Records as text, one per line (`key vVERSION: value`)."""
    lines = []
    for key in sorted(records if keys is None else keys):
        if key not in records:
            lines.append(f"    {key}: <absent>")
            continue
        value, version = records[key]
        text = value.decode("utf-8", errors="backslashreplace")
        lines.append(f"    {key} v{version}: {text[:3000]}{'...' if len(text) > 3000 else ''}")
    return "\n".join(lines) or "    <empty>"


def show_diff(before: Records, after: Records) -> str:
    """The records that differ, before and after, and the keys of those that do not."""
    keys = sorted(changed(before, after))
    if not keys:
        return f"  (no difference; {len(before)} records)"
    same = sorted(before.keys() & after.keys() - set(keys))
    return (
        f"  before (records that differ):\n{show_records(before, keys)}\n"
        f"  after:\n{show_records(after, keys)}\n"
        f"  unchanged: {', '.join(same) or '-'}"
    )


def mismatch(before: Records, after: Records, reference: Records) -> str | None:
    """Why the store `after` a run from `before` does not have the structure of `reference`
    (the fault-free after-state), or where a record changed that did not change in `reference`,
    or the other way round (None: it has)."""
    got, want = store_shape(after, before), store_shape(reference, before)
    if got != want:
        keys = sorted({k for k in after.keys() | reference.keys() if after.get(k) != before.get(k)})
        return (
            f"the stored records have another structure than the fault-free after-state\n"
            f"  structure: {got}\n  fault-free: {want}\n  after:\n{show_records(after, keys)}\n"
            f"  fault-free after:\n{show_records(reference, keys)}"
        )
    if changed_shape(before, after) != changed_shape(before, reference):
        return (
            f"records changed: {sorted(changed(before, after))}; fault-free:"
            f" {sorted(changed(before, reference))}\n{show_diff(before, after)}"
        )
    return None
