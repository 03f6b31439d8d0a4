"""One query layer over the datasets: DuckDB views defined once, for the scoring, the reports and the notebooks.

    with Queries(DataFolder("qa-data")) as q:                 # or Queries("s3://qa/data")
        cards = q.scorecards(week="2026-W48")                 # a pyarrow Table
        utts = q.utterances(call_ids, ["call_id", "text"])   # reads only those calls' date partitions
        q.sql("SELECT * FROM latest_reviews").show()          # ad hoc, on the same views

Each `Queries` holds its own DuckDB connection (closed with it; none is shared between threads or kept at module
level). Every dataset is a view, `<dataset>`, over its Parquet files:

    SELECT <the schema's columns>, <partition> FROM read_parquet('<data>/<dataset>/*/*.parquet',
        hive_partitioning = true, hive_types_autocast = false)

(the partition folder `call_date=...` becomes a VARCHAR column; a dataset with nothing written yet is an empty
view of the same columns), and `<dataset>__rows` is the same with `_file` and `_row`, each row's file and position
in it: the order rows were written in. Before a dataset is first read, its files' footers are checked and a file
that is not one of its files is quarantined (`DataFolder.check_dataset`); a file that turns out unreadable during a
query is quarantined the same way and the query is run again.

Derived views, each defined here and nowhere else:

- `call_weeks`: calls with `iso_week`, the ISO week of `started_at` in UTC (how weeks are counted everywhere);
- `latest_reviews`: the latest QA verdict per target (call_id, target_type, target): "the latest verdict wins";
- `orphaned_reviews`: the latest verdicts whose target is gone (`gone`: "flag", the call's flags no longer hold
  it; "item", the item is no longer scored for the call; "call", the call is no longer stored), kept in `reviews`
  and never dropped; `flag_type` is "customer_complaint" when the flag id says it was one (a flag id is made of
  the call, the flag type, the rule and a rank: `store.keys.flag_id`). `orphaned_flag_reviews`: those on flags;
- `customer_complaints`: customer-complaint flags with their latest verdict and `status` (justified / pending /
  not_justified: `justified` or `confirmed` counts, no verdict yet is pending and does not count), plus the
  verdicts on complaint flags that are gone (`orphaned` true, no reason or span): a justified complaint whose flag
  a re-analysis no longer raises still counts, for the operator and week of its call (a call no longer stored has
  neither: its verdict is only listed in `orphaned_reviews`);
- `justified_complaints`: what counts against an operator: justified customer complaints and justified complaints
  from other divisions, with the agent and the ISO week;
- `scorecards`: the stored weekly scorecards (`scorecards_weekly`).

Object stores: DuckDB's own httpfs is not used (it would be downloaded); the folder's fsspec filesystem is
registered with the connection instead, so the same views read `s3://...` through s3fs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa

from qa_pipeline.store.folder import DataFolder, as_folder, partition_of
from qa_pipeline.store.keys import flag_kind_sql
from qa_pipeline.store.schema import DATASETS, PARTITION

_FILE_IN_ERROR = re.compile(r"""['"]([^'"]+?\.parquet)['"]""")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RETRIES = 4

DERIVED_VIEWS = {
    "call_weeks": """
        SELECT *, strftime(started_at, '%G-W%V') AS iso_week FROM calls""",
    "latest_reviews": """
        SELECT * EXCLUDE (_n) FROM (
            SELECT *, row_number() OVER (PARTITION BY call_id, target_type, target
                                         ORDER BY reviewed_at DESC, review_id DESC) AS _n
            FROM reviews)
        WHERE _n = 1""",
    "orphaned_flag_reviews": f"""
        SELECT *, CASE WHEN {flag_kind_sql("call_id", "target", "customer_complaint")}
                       THEN 'customer_complaint' END AS flag_type
        FROM (SELECT l.*, CASE WHEN c.call_id IS NULL THEN 'call' ELSE 'flag' END AS gone
              FROM latest_reviews l LEFT JOIN calls c ON c.call_id = l.call_id
              WHERE l.target_type = 'flag' AND (c.call_id IS NULL OR NOT EXISTS (
                  SELECT 1 FROM flags f WHERE f.call_id = l.call_id AND f.flag_id = l.target)))""",
    "orphaned_reviews": """
        SELECT * FROM orphaned_flag_reviews
        UNION ALL BY NAME
        SELECT l.*, CASE WHEN c.call_id IS NULL THEN 'call' ELSE 'item' END AS gone,
               CAST(NULL AS VARCHAR) AS flag_type
        FROM latest_reviews l LEFT JOIN calls c ON c.call_id = l.call_id
        WHERE l.target_type = 'item' AND (c.call_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM call_scores s WHERE s.call_id = l.call_id AND s.criterion || '.' || s.item = l.target
                                          AND s.points IS NOT NULL))""",
    "customer_complaints": """
        SELECT f.call_id, f.flag_id, f.reason, f.severity, f.utterance_index, f.start_s, f.end_s, c.agent_id,
               c.team, c.started_at, c.iso_week, f.call_date, l.verdict, l.reviewer, l.reviewed_at,
               CASE WHEN l.verdict IS NULL THEN 'pending'
                    WHEN l.verdict IN ('justified', 'confirmed') THEN 'justified'
                    ELSE 'not_justified' END AS status, false AS orphaned
        FROM flags f JOIN call_weeks c ON c.call_id = f.call_id
        LEFT JOIN latest_reviews l ON l.target_type = 'flag' AND l.call_id = f.call_id AND l.target = f.flag_id
        WHERE f.flag_type = 'customer_complaint'
        UNION ALL
        SELECT o.call_id, o.target, NULL, NULL, NULL, NULL, NULL, c.agent_id, c.team, c.started_at, c.iso_week,
               c.call_date, o.verdict, o.reviewer, o.reviewed_at,
               CASE WHEN o.verdict IN ('justified', 'confirmed') THEN 'justified' ELSE 'not_justified' END, true
        FROM orphaned_flag_reviews o JOIN call_weeks c ON c.call_id = o.call_id
        WHERE o.flag_type = 'customer_complaint'""",
    "justified_complaints": """
        SELECT 'customer' AS source, agent_id, iso_week, call_id, flag_id AS ref, CAST(started_at AS DATE) AS date
        FROM customer_complaints WHERE status = 'justified'
        UNION ALL
        SELECT 'division' AS source, agent_id, strftime(date, '%G-W%V') AS iso_week, NULL AS call_id,
               complaint_id AS ref, date
        FROM division_complaints WHERE justified""",
    "scorecards": "SELECT * FROM scorecards_weekly",
}
# the datasets each derived view reads
DERIVED_FROM = {
    "call_weeks": ("calls",),
    "latest_reviews": ("reviews",),
    "orphaned_flag_reviews": ("reviews", "calls", "flags"),
    "orphaned_reviews": ("reviews", "calls", "flags", "call_scores"),
    "customer_complaints": ("flags", "calls", "reviews"),
    "justified_complaints": ("flags", "calls", "reviews", "division_complaints"),
    "scorecards": ("scorecards_weekly",),
}


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type of an Arrow type (those the dataset schemas use)."""
    if pa.types.is_map(t):
        return f"MAP({duckdb_type(t.key_type)}, {duckdb_type(t.item_type)})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{duckdb_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{_q(t.field(i).name)} {duckdb_type(t.field(i).type)}"
                                     for i in range(t.num_fields)) + ")"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    simple = {pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.int8(): "TINYINT", pa.int16(): "SMALLINT",
              pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.float32(): "FLOAT", pa.float64(): "DOUBLE",
              pa.bool_(): "BOOLEAN", pa.date32(): "DATE"}
    if t in simple:
        return simple[t]
    raise TypeError(f"no DuckDB type for {t}")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Queries:
    """DuckDB views over one data folder (see the module docstring). Use as a context manager, or `close()`."""

    def __init__(self, folder: DataFolder | str | Path, *, threads: int | None = None):
        import duckdb

        self.folder = as_folder(folder)
        self.con = duckdb.connect()
        self.con.sql("SET TimeZone = 'UTC'")  # weeks and times as the pipeline computes them
        if threads:
            self.con.sql(f"SET threads = {int(threads)}")
        if self.folder.is_uri:
            self.con.register_filesystem(self.folder.fs)
        # dataset -> "unchecked" (not read yet), "empty" (no file yet) or "open" (files, their footers checked)
        self._state: dict[str, str] = {}
        self._parts_checked: dict[str, set[str]] = {}  # partitions checked for partition-restricted reads
        for name in DATASETS:
            self._define(name, files=False)
            self._state[name] = "unchecked"
        for name, sql in DERIVED_VIEWS.items():
            self.con.sql(f"CREATE OR REPLACE VIEW {_q(name)} AS {sql}")

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Queries":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- views --------------------------------------------------------------------------------------------

    def _glob(self, dataset: str, partitions: Iterable[str] | None = None) -> str:
        """The read_parquet argument: the dataset's files, or only those partitions' (a list literal)."""
        base = self.folder.url(dataset) if self.folder.is_uri else os.path.abspath(self.folder.path(dataset))
        if partitions is None:
            return _lit(f"{base}/*/*.parquet")
        part = partition_of(dataset)
        return "[" + ", ".join(_lit(f"{base}/{part}={v}/*.parquet") for v in sorted(partitions)) + "]"

    def _columns(self, dataset: str) -> list[str]:
        return DATASETS[dataset].names + [partition_of(dataset)]

    def _define(self, dataset: str, *, files: bool) -> None:
        cols = ", ".join(_q(c) for c in self._columns(dataset))
        rows = _q(f"{dataset}__rows")
        if files:
            src = (f"read_parquet({self._glob(dataset)}, hive_partitioning = true, hive_types_autocast = false, "
                   "filename = true, file_row_number = true)")
            self.con.sql(f"CREATE OR REPLACE VIEW {rows} AS SELECT {cols}, filename AS _file, "
                         f"file_row_number AS _row FROM {src}")
        else:  # no file yet: the same columns, typed, no rows
            full = DATASETS[dataset].append(pa.field(partition_of(dataset), pa.string()))
            typed = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {_q(f.name)}" for f in full)
            self.con.sql(f"CREATE OR REPLACE VIEW {rows} AS SELECT {typed}, CAST(NULL AS VARCHAR) AS _file, "
                         "CAST(NULL AS BIGINT) AS _row WHERE false")
        self.con.sql(f"CREATE OR REPLACE VIEW {_q(dataset)} AS SELECT {cols} FROM {rows}")
        self._state[dataset] = "open" if files else "empty"

    def _has_files(self, dataset: str) -> bool:
        part = partition_of(dataset)
        if self.folder.is_uri:
            return bool(self.folder.glob(f"{dataset}/{part}=*/*.parquet"))
        root = Path(self.folder.path(dataset))
        if not root.is_dir():
            return False
        for d in root.iterdir():
            if d.name.startswith(f"{part}=") and d.is_dir():
                with os.scandir(d) as it:
                    if any(e.name.endswith(".parquet") and e.is_file() for e in it):
                        return True
        return False

    def _prepare(self, datasets: Iterable[str]) -> None:
        """Before reading these datasets: check the files of those not read yet, and look again for files in
        those empty so far (rescore writes call_scores, then reads it back)."""
        if self.folder.is_uri:
            self.folder.fs.invalidate_cache()  # DuckDB lists through it: see what others wrote since
        for name in datasets:
            if self._state.get(name) in ("unchecked", "empty"):
                if self._has_files(name):
                    self._open(name)
                else:
                    self._state[name] = "empty"

    def _datasets_in(self, sql: str) -> set[str]:
        """The datasets a query may read: the dataset and view names it mentions (a name that is only a column
        costs a needless footer check, nothing more)."""
        out: set[str] = set()
        for word in set(_WORD.findall(sql)):
            name = word[: -len("__rows")] if word.endswith("__rows") else word
            if name in DATASETS:
                out.add(name)
            out.update(DERIVED_FROM.get(name, ()))
        return out

    def _open(self, dataset: str) -> None:
        """Check the dataset's files (quarantining foreign ones), then point its view at them."""
        self.folder.check_dataset(dataset, read=False)
        self._define(dataset, files=self._has_files(dataset))

    def refresh(self, *datasets: str) -> None:
        """Check again and redefine these datasets' views (all when none given): after files were removed or
        replaced from outside."""
        for name in datasets or DATASETS:
            if self._has_files(name):
                self._open(name)
            else:
                self._define(name, files=False)

    def _recover(self, error: Exception) -> bool:
        """After a failed query: quarantine the bad files it names, or redefine views whose files are gone.
        True when something changed and the query is worth running again."""
        message = str(error)
        if "No files found" in message:  # a dataset lost all its files since its view was made
            self.refresh(*(name for name, state in self._state.items() if state == "open"))
            return True
        changed = False
        for path in dict.fromkeys(_FILE_IN_ERROR.findall(message)):
            if self.folder.is_uri:
                rel = self.folder._rel(path)
            else:
                rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(self.folder.root))).as_posix()
            dataset = rel.split("/", 1)[0]
            if dataset in DATASETS and self.folder.check_dataset(dataset, [rel]):
                changed = True
        return changed

    # ---- running queries ----------------------------------------------------------------------------------

    def fetch(self, sql: str, params: dict | Sequence | None = None, *,
              datasets: Iterable[str] | None = None) -> pa.Table:
        """Run `sql` (on the views; `$name` parameters) and return the result as a pyarrow Table. `datasets`: the
        datasets whose views it reads (found in the SQL when not given), checked first if not read yet."""
        import duckdb

        datasets = self._datasets_in(sql) if datasets is None else set(datasets)
        for attempt in range(_RETRIES):
            self._prepare(datasets)
            try:
                return self.con.sql(sql, params=params).to_arrow_table()
            except duckdb.Error as e:
                if attempt == _RETRIES - 1 or not self._recover(e):
                    raise
        raise AssertionError("unreachable")

    def sql(self, sql: str, params: dict | Sequence | None = None):
        """Run `sql` now and return the result as a DuckDB relation (`.show()`, `.fetchall()`, more SQL)."""
        return self.con.from_arrow(self.fetch(sql, params))

    def counts(self, datasets: Iterable[str]) -> dict[str, int]:
        return {name: self.fetch(f"SELECT count(*) AS n FROM {_q(name)}").column("n")[0].as_py() for name in datasets}

    def table(self, dataset: str, columns: Sequence[str] | None = None, *, where: str = "", order: str = "",
              params: dict | None = None, partitions: Iterable[str] | None = None) -> pa.Table:
        """Columns of a dataset (or a derived view), optionally filtered (`where`: SQL on its columns) and, for
        a dataset, restricted to those partition values: only their folders are listed, checked and read."""
        cols = ", ".join(_q(c) for c in columns) if columns else "*"
        tail = f"{'WHERE ' + where if where else ''} {'ORDER BY ' + order if order else ''}"
        if partitions is None or dataset not in DATASETS:
            return self.fetch(f"SELECT {cols} FROM {_q(dataset)} {tail}", params)
        present = self._prepare_partitions(dataset, partitions)
        if not present:
            return self._empty(dataset, columns)
        source = (f"(SELECT {', '.join(_q(c) for c in self._columns(dataset))} FROM read_parquet("
                  f"{self._glob(dataset, present)}, hive_partitioning = true, hive_types_autocast = false))")
        return self.fetch(f"SELECT {cols} FROM {source} {tail}", params, datasets=())

    def _prepare_partitions(self, dataset: str, partitions: Iterable[str]) -> list[str]:
        """Check the files of these partitions of `dataset` (once per Queries); returns those that have files."""
        wanted = sorted({p for p in partitions if p is not None})
        done = self._parts_checked.setdefault(dataset, set())
        present = []
        for value in wanted:
            files = self.folder.dataset_files(dataset, [value])
            if files and value not in done and self._state.get(dataset) != "open":
                moved = set(self.folder.check_dataset(dataset, files, read=False))
                files = [f for f in files if f not in moved]
            done.add(value)
            if files:
                present.append(value)
        return present

    def _empty(self, dataset: str, columns: Sequence[str] | None) -> pa.Table:
        """No rows, the dataset's columns (or these of them), typed; reads nothing."""
        full = DATASETS[dataset].append(pa.field(partition_of(dataset), pa.string()))
        fields = [full.field(c) for c in columns] if columns else list(full)
        typed = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {_q(f.name)}" for f in fields)
        return self.fetch(f"SELECT {typed} WHERE false", datasets=())

    # ---- the questions asked of the data ------------------------------------------------------------------

    def weeks(self) -> list[str]:
        """ISO weeks that have scorecards, oldest first."""
        t = self.fetch("SELECT DISTINCT iso_week FROM scorecards ORDER BY iso_week")
        return t.column("iso_week").to_pylist()

    def scorecards(self, *, week: str | None = None, weeks: Sequence[str] | None = None, team: str | None = None,
                   rubric_versions: Sequence[str] | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Stored weekly scorecards, by team and rank."""
        where, params = _filters(iso_week=week, iso_weeks=weeks, team=team, rubric_version=rubric_versions)
        return self.table("scorecards", columns, where=where, order="iso_week, team, rank_in_team, agent_id",
                          params=params)

    def call_scores(self, *, week: str | None = None, team: str | None = None, call_ids: Sequence[str] | None = None,
                    rubric_versions: Sequence[str] | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Stored per-call item scores (with evidence)."""
        where, params = _filters(iso_week=week, team=team, call_id=call_ids, rubric_version=rubric_versions)
        return self.table("call_scores", columns, where=where, params=params)

    def calls(self, *, call_ids: Sequence[str] | None = None, week: str | None = None, team: str | None = None,
              columns: Sequence[str] | None = None) -> pa.Table:
        """Calls with their `iso_week` (view `call_weeks`)."""
        where, params = _filters(call_id=call_ids, iso_week=week, team=team)
        return self.table("call_weeks", columns, where=where, params=params)

    def call_dates(self, call_ids: Sequence[str]) -> list[str]:
        """The date partitions that hold these calls."""
        if not call_ids:
            return []
        t = self.fetch("SELECT DISTINCT call_date FROM calls WHERE list_contains($ids, call_id)",
                       {"ids": list(call_ids)})
        return t.column("call_date").to_pylist()

    def _of_calls(self, dataset: str, call_ids: Sequence[str], columns: Sequence[str] | None) -> pa.Table:
        """Rows of a per-call dataset for these calls, reading only their date partitions."""
        ids = list(dict.fromkeys(call_ids))
        if not ids:
            return self._empty(dataset, columns)
        return self.table(dataset, columns, where="list_contains($ids, call_id)", params={"ids": ids},
                          partitions=self.call_dates(ids))

    def utterances(self, call_ids: Sequence[str], columns: Sequence[str] | None = None) -> pa.Table:
        """Utterances of these calls only (their date partitions are read, no other)."""
        return self._of_calls("utterances", call_ids, columns)

    def flags(self, *, call_ids: Sequence[str] | None = None, week: str | None = None,
              columns: Sequence[str] | None = None) -> pa.Table:
        """Flags of these calls, or of the calls started in that ISO week."""
        ids = list(call_ids or [])
        if week is not None:
            ids += self.calls(week=week, columns=["call_id"]).column("call_id").to_pylist()
        if call_ids is None and week is None:
            return self.table("flags", columns)
        return self._of_calls("flags", ids, columns)

    def latest_reviews(self, *, target_type: str | None = None, call_ids: Sequence[str] | None = None) -> pa.Table:
        """The latest verdict per target (view `latest_reviews`)."""
        where, params = _filters(target_type=target_type, call_id=call_ids)
        return self.table("latest_reviews", None, where=where, params=params)

    def orphaned_reviews(self, *, call_ids: Sequence[str] | None = None) -> pa.Table:
        """The latest verdicts whose target is gone (view `orphaned_reviews`), by call and target."""
        where, params = _filters(call_id=call_ids)
        return self.table("orphaned_reviews", None, where=where, order="call_id, target_type, target",
                          params=params)

    def customer_complaints(self, *, week: str | None = None, status: str | None = None) -> pa.Table:
        where, params = _filters(iso_week=week, status=status)
        return self.table("customer_complaints", None, where=where, params=params)

    def justified_complaints(self, *, week: str | None = None) -> pa.Table:
        where, params = _filters(iso_week=week)
        return self.table("justified_complaints", None, where=where, params=params)

    def division_complaints(self, *, week: str | None = None) -> pa.Table:
        """Complaints from other divisions, those dated in that ISO week when given."""
        where = "strftime(date, '%G-W%V') = $week" if week else ""
        return self.table("division_complaints", None, where=where, params={"week": week} if week else None)

    def calibration(self, *, rubric_versions: Sequence[str] | None = None) -> pa.Table:
        where, params = _filters(rubric_version=rubric_versions)
        return self.table("calibration", None, where=where, params=params)


def _filters(**conditions: Any) -> tuple[str, dict]:
    """`column = $column` (or, for a list, membership) for each condition given (None: no condition)."""
    clauses, params = [], {}
    for key, value in conditions.items():
        if value is None:
            continue
        column = "iso_week" if key == "iso_weeks" else key
        if isinstance(value, (list, tuple, set, frozenset)):
            clauses.append(f"list_contains(${key}, {_q(column)})")
            params[key] = list(value)
        else:
            clauses.append(f"{_q(column)} = ${key}")
            params[key] = value
    return " AND ".join(clauses), (params or None)


__all__ = ["Queries", "DERIVED_VIEWS", "PARTITION"]
