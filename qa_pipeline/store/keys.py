"""File keys: the file name (without `.parquet`) a key such as a call_id is stored under, one-to-one.

Every per-call dataset file is `<dataset>/call_date=<date>/<file_key(call_id)>.parquet`, so two call_ids must never
share a file name: the old mapping replaced every character outside [A-Za-z0-9-_.] with `_`, and `A/1`, `A 1` and
`A_1` were one file, each call overwriting the other.

The encoding:
- letters and digits (`str.isalnum`, as the old mapping kept them) and `-`, `_`, `.` are kept: a key made of those
  only, up to MAX_KEY_CHARS bytes long, is its own file name, so the files of data folders written before keep
  their names;
- every other character is written as the `%XX` of each of its UTF-8 bytes (`A/1` -> `A%2F1`, `A 1` -> `A%201`,
  `A_1` -> `A_1`, `%` -> `%25`): one-to-one, since `%` itself is always encoded;
- a name longer than MAX_KEY_CHARS bytes (UTF-8) is cut and ends with `~` and 32 hex digits of the key's SHA-256
  (`~` is always encoded, so such a name cannot be another key's encoding).

A file name therefore never holds a path separator or a glob character, and stays under file-system name limits
(255 bytes) with the temp-file suffix added while it is written. On a case-insensitive file system (macOS, Windows)
`A1` and `a1` are still one file: give such calls ids that differ by more than case."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

MAX_KEY_CHARS = 128  # bytes (UTF-8) of a file name, without `.parquet`
_PUNCTUATION_KEPT = frozenset("-_.")
_HASH_CHARS = 32


def file_key(key: str) -> str:
    """The file name (without extension) of `key`; one-to-one (see the module docstring).

    Raises:
        ValueError: an empty key (it would name a hidden `.parquet` file).
    """
    if not key:
        raise ValueError("an empty key has no file name")
    encoded = "".join(c if _kept(c) else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
                      for c in key)
    if _size(encoded) <= MAX_KEY_CHARS:
        return encoded
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    kept, used = [], 0
    for c in encoded:
        used += _size(c)
        if used > MAX_KEY_CHARS - _HASH_CHARS - 1:
            break
        kept.append(c)
    head = "".join(kept)
    cut = head.rfind("%")
    if 0 <= cut >= len(head) - 2:  # do not end on half an escape (cosmetic: the hash decides)
        head = head[:cut]
    return f"{head}~{digest}"


def _kept(c: str) -> bool:
    return c in _PUNCTUATION_KEPT or (c.isalnum() and c.isprintable())


def _size(name: str) -> int:
    return len(name.encode("utf-8", "surrogatepass"))


def call_id_of_key(name: str) -> str | None:
    """The key a file name stands for (`name` without `.parquet`); None for a shortened one (it holds a hash)."""
    if "~" in name:
        return None
    return unquote(name, errors="strict") if "%" in name else name


# ---- flag ids ----------------------------------------------------------------------------------------------------

FLAG_ID_CHARS = 16
MAX_FLAG_RANK = 100  # ranks searched when a flag id is read back (see flag_kind_sql)


def flag_id(call_id: str, flag_type: str, rule_id: str | None, rank: int) -> str:
    """The id of a flag: what identifies the finding (call, flag type, rule) and its rank among the call's
    findings of that kind in time order (`qa_pipeline.pipeline.rows.flag_ids` ranks them). Since the id is made of
    those only, a verdict whose flag is gone still tells what kind of finding it was on (`flag_kind_sql`)."""
    return hashlib.sha256(f"{call_id}|{flag_type}|{rule_id or ''}|{rank}".encode()).hexdigest()[:FLAG_ID_CHARS]


def flag_kind_sql(call_id: str, flag_id_: str, flag_type: str, rule_id: str = "") -> str:
    """SQL: true when the flag id `flag_id_` (an SQL expression) of the call `call_id` (an SQL expression) is a
    flag of `flag_type` (a literal type, rule `rule_id`) of any rank below MAX_FLAG_RANK: `flag_id` in DuckDB."""
    prefix = f"|{flag_type}|{rule_id}|".replace("'", "''")
    return (f"list_contains(list_transform(range(0, {MAX_FLAG_RANK}), lambda n: substr(sha256({call_id} || '{prefix}' "
            f"|| CAST(n AS VARCHAR)), 1, {FLAG_ID_CHARS})), {flag_id_})")
