"""Caption search over LAION-style parquet metadata with DuckDB: what a 2-billion-caption pool needs.

img2dataset writes, beside every ``NNNNN.tar`` of (jpg, txt, json) samples, ``NNNNN.parquet`` with one row per
attempted sample (``key``, ``caption``, ``status``, ``url``, sizes, ...). Searching those columns is far cheaper
than reading tar headers: DuckDB scans the caption column of every file in parallel, out of core, and evaluates one
compiled RE2 pattern per row — the alternation of every class's query — so no Python loop runs over the pool, only
over the rows the pattern keeps (a few percent). :func:`search` streams those rows, in pool order (file, then row),
as Arrow batches; :func:`synscale.studies.retrieval.match_shards` labels them with the exact rule of
:func:`synscale.studies.retrieval.match` and reads the tar headers of only the shards that hold a hit.

The patterns are supersets of the two matching semantics (:func:`pattern`): a row they drop cannot match, a row
they keep is decided by the exact rule, so the result equals the tar scan's (``tests/test_retrieval.py``).
Threads and memory follow DuckDB's settings (``threads``, ``memory_limit``; spilling goes to its temp directory).
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

MODES = ("substring", "token")
_RE2_SPECIAL = set("\\.^$|?*+()[]{}")


def re2_escape(text: str) -> str:
    """``text`` as a literal in an RE2 pattern (RE2 rejects Python's escaping of spaces and letters)."""
    return "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in text)


def pattern(queries: Sequence[tuple[str, Sequence[str]]], modes: Sequence[str]) -> str:
    """One case-insensitive RE2 alternation that every caption matching any query in any of ``modes`` matches.

    ``queries``: ``(lower-cased query, its tokens)``. Substring semantics keep the query itself; token semantics
    keep its tokens in order with anything between them (a superset of "contiguous tokens": the exact rule
    decides)."""
    alts: list[str] = []
    for q, toks in queries:
        if "substring" in modes:
            alts.append(re2_escape(q))
        if "token" in modes and toks:
            alts.append(".*".join(re2_escape(t) for t in toks))
    alts = list(dict.fromkeys(a for a in alts if a))
    if not alts:
        raise ValueError("no query to search for")
    return "(?i)(?:" + "|".join(alts) + ")"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def candidates_sql(queries: Sequence[tuple[str, Sequence[str]]], mode: str) -> str:
    """A DuckDB expression: the indices of the queries a row's caption could match in ``mode`` (substring: the
    lower-cased query occurs; token: each of its tokens occurs), so the exact rule runs on those few only. Exact
    for ASCII captions; DuckDB's and Python's lower-casing may differ elsewhere, so callers check every query
    for non-ASCII captions."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    conds = []
    for i, (q, toks) in enumerate(queries):
        parts = [q] if mode == "substring" else (list(toks) or [q])
        conds.append(f"CASE WHEN {' AND '.join(f'contains(lower(caption), {_literal(t)})' for t in parts)} "
                     f"THEN {i} END")
    return f"list_filter([{', '.join(conds)}], lambda x: x IS NOT NULL)"


def parquet_beside(urls: Sequence[str]) -> list[Path] | None:
    """The img2dataset metadata files of tar shards (``NNNNN.parquet`` beside ``NNNNN.tar``), or None when any
    shard lacks one (then the caller reads the tar headers)."""
    files = [Path(str(u)).with_suffix(".parquet") for u in urls]
    return files if files and all(f.is_file() for f in files) else None


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection; ``threads`` default: ``SYNSCALE_DUCKDB_THREADS``, else DuckDB's (all
    cores); ``memory_limit`` e.g. ``"8GB"`` (default: DuckDB's, 80% of RAM). Result order is the scan order."""
    con = duckdb.connect(":memory:")
    threads = threads or int(os.environ.get("SYNSCALE_DUCKDB_THREADS", 0) or 0)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = true")
    return con


def _status(con: duckdb.DuckDBPyConnection, file: Path | str) -> str:
    """The filter of written samples: ``status = 'success'`` (img2dataset), or every row without that column."""
    cols = [r[0] for r in con.execute("SELECT name FROM parquet_schema(?)", [str(file)]).fetchall()]
    return "status = 'success'" if "status" in cols else "true"


def success_rows(files: Sequence[Path], con: duckdb.DuckDBPyConnection | None = None) -> list[int]:
    """Samples written per file (rows with ``status = 'success'``; all rows where there is no status column)."""
    con = con or connect()
    cond = _status(con, files[0]) if files else "true"
    counts = dict(con.execute(f"SELECT filename, count(*) FILTER (WHERE {cond}) FROM read_parquet(?, filename=true)"
                              " GROUP BY filename", [[str(f) for f in files]]).fetchall())
    return [int(counts.get(str(f), 0)) for f in files]


def search(files: Sequence[Path], regex: str, limit: int | None = None, batch_rows: int = 65536,
           con: duckdb.DuckDBPyConnection | None = None, columns: dict[str, str] | None = None,
           counts: Sequence[int] | None = None) -> Iterator[pa.RecordBatch]:
    """Rows of ``files`` whose caption matches ``regex``, in pool order, as Arrow batches with columns ``file``
    (index into ``files``), ``row`` (the row in its file), ``key`` and ``caption``. Only rows with
    ``status = 'success'`` count (img2dataset lists failed downloads too; they have no image in the tar).
    ``limit``: only the first ``limit`` written samples of the pool are searched. Only the matching rows are
    sorted (by file and row); the pool itself is scanned, never held. ``columns``: more output columns, name ->
    DuckDB expression over the row (e.g. :func:`candidates_sql`), computed on the matching rows only. ``counts``:
    :func:`success_rows` of ``files`` when the caller has them (a limit needs them; one scan less)."""
    con = con or connect()
    files = [str(f) for f in files]
    if not files:
        return
    status = _status(con, files[0])
    cut = ""
    if limit is not None:  # the files the first `limit` samples lie in, and the last row of the last one
        counts = success_rows([Path(f) for f in files], con) if counts is None else counts
        kept, left = [], int(limit)
        for f, n in zip(files, counts):
            if left <= 0:
                break
            kept.append(f)
            left -= n
        files = kept
        if not files:
            return
        nth = counts[len(files) - 1] + left  # written samples of the last file inside the limit
        last = con.execute(f"SELECT max(file_row_number) FROM (SELECT file_row_number FROM read_parquet(?, "
                           f"file_row_number = true) WHERE {status} ORDER BY file_row_number LIMIT {int(nth)})",
                           [files[-1]]).fetchall()[0][0]
        cut = f"AND NOT (filename = ? AND file_row_number > {int(last)})"
    more = "".join(f", {expr} AS {name}" for name, expr in (columns or {}).items())
    sql = (f"WITH f AS (SELECT unnest(?::VARCHAR[]) AS filename, unnest(range(?))::INTEGER AS file) "
           f"SELECT f.file, r.row, r.key, r.caption{more} FROM (SELECT filename, file_row_number AS row, key, caption "
           f"FROM read_parquet(?, filename = true, file_row_number = true) WHERE {status} "
           f"AND regexp_matches(caption, ?) {cut}) r JOIN f USING (filename) ORDER BY f.file, r.row")
    params = [files, len(files), files, regex] + ([files[-1]] if cut else [])
    # only the matching rows are sorted (out of core past memory_limit) and streamed in batches
    yield from con.sql(sql, params=params).to_arrow_reader(batch_rows)
