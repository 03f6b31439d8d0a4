"""Operators scored against the job description's evaluation criteria: per-call item scores with their evidence,
weekly scorecards per operator and team, human verdicts and the agreement between the automatic answers and them.

Everything is computed from the stored datasets through the query layer (`qa_pipeline.store.queries`: DuckDB over
the Parquet files), so a rubric change rescores all history without transcribing anything again:
`qa-pipeline rescore`. The parts: `rubric` (the rubric file), `call_scores` (per-call items), `scorecards`
(weekly), `reviews` (QA verdicts, division complaints), `calibration`; this module runs them in order and keeps
the names other modules import."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from qa_pipeline.scoring.calibration import calibration, cohen_kappa
from qa_pipeline.scoring.call_scores import score_calls
from qa_pipeline.scoring.reviews import FLAG_VERDICTS, ITEM_VERDICTS, import_division_complaints, import_reviews
from qa_pipeline.scoring.rubric import (
    CRITERIA,
    DEFAULT_RUBRIC,
    ITEMS,
    SALES,
    Rubric,
    RubricError,
    Thresholds,
    iso_week,
    load_rubric,
)
from qa_pipeline.scoring.scorecards import weekly_scorecards
from qa_pipeline.store.folder import DataFolder, as_folder
from qa_pipeline.store.lock import DATASETS_LOCK
from qa_pipeline.store.queries import Queries


def _by_partition(table: pa.Table, column: str) -> dict[str, pa.Table]:
    """The table split by the values of `column` (without it): zero-copy slices when it is sorted by it."""
    if table.num_rows == 0:
        return {}
    runs = pc.run_end_encode(table.column(column).combine_chunks())
    data = table.drop_columns([column])
    pieces: dict[str, list[pa.Table]] = {}
    start = 0
    for value, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist()):
        pieces.setdefault(value, []).append(data.slice(start, end - start))
        start = end
    return {value: p[0] if len(p) == 1 else pa.concat_tables(p) for value, p in pieces.items()}


def _safe_version(v: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in v)


def rescore(data_dir: str | Path | DataFolder, rubric_path: str | Path | None = None, *,
            overrides: dict | None = None) -> dict:
    """Recompute call_scores, scorecards_weekly and calibration from the stored datasets, under the data folder's
    DATASETS_LOCK from the first read to the last write (two rescores, or a rescore and an import, run one after
    the other: `qa_pipeline.store.lock`). Returns a summary; `orphaned_verdicts` counts the latest verdicts whose
    flag, scored item or call is gone (view `orphaned_reviews`: kept, listed in the weekly report).

    Raises:
        StorageError: E705, the lock could not be had.
    """
    rubric = load_rubric(rubric_path, overrides)
    folder = as_folder(data_dir)
    with folder.lock(DATASETS_LOCK), Queries(folder) as q:
        scores = score_calls(q, rubric)
        folder.replace_partitions("call_scores", _by_partition(scores, "call_date"), key="scores")
        cards = weekly_scorecards(q, rubric)
        folder.replace_partitions("scorecards_weekly", cards, key="scorecards")
        folder.replace_partitions("calibration", {_safe_version(rubric.version): calibration(q, rubric)},
                                  key="calibration")
        orphaned = q.fetch("SELECT count(*) AS n FROM orphaned_reviews").column("n")[0].as_py()
    return {"rubric_version": rubric.version, "calls": pc.count_distinct(scores.column("call_id")).as_py(),
            "score_rows": scores.num_rows, "weeks": sorted(cards),
            "scorecards": sum(len(v) for v in cards.values()), "orphaned_verdicts": orphaned}


__all__ = ["CRITERIA", "DEFAULT_RUBRIC", "FLAG_VERDICTS", "ITEMS", "ITEM_VERDICTS", "SALES", "Rubric", "RubricError",
           "Thresholds", "calibration", "cohen_kappa", "import_division_complaints", "import_reviews", "iso_week",
           "load_rubric", "rescore", "score_calls", "weekly_scorecards"]
