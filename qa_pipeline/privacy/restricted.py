"""The original (unredacted) utterance text, kept only with `privacy.keep_raw_text: true`, in its own folder
`<data>/_restricted/utterances_raw/call_date=<date>/<call>.parquet`.

Locally `_restricted/` and everything under it is the owner's only (folders 0700, files 0600), whatever
QA_DATA_GROUP shares of the rest of the data folder: the QA team reads redacted datasets, only the process that
serves the unredacted permission reads this. On an object store there are no file modes: give the
`_restricted/` prefix its own access policy.

Readers: `read_raw_utterances` (one call, for the review app's `can_view_unredacted` permission, which audits each
read; `has_raw_utterances` says whether there is anything to read, without reading it), `raw_texts` (a call's texts
by utterance, for a re-analysis) and the role swap (`qa_pipeline.pipeline.swap`, which rewrites the roles). Nothing
else in the library reads it."""

from __future__ import annotations

import os
from pathlib import Path

from qa_pipeline.store.folder import DataFolder, as_folder, partition_of
from qa_pipeline.store.keys import file_key
from qa_pipeline.store.schema import RESTRICTED_DIR

RAW_DATASET = "utterances_raw"
FILE_MODE = 0o600
DIR_MODE = 0o700


def restricted_folder(data_dir: str | Path | DataFolder) -> DataFolder:
    """The restricted folder of a data folder, as a DataFolder of its own; locally created (and kept) owner-only."""
    folder = as_folder(data_dir)
    if folder.is_uri:
        return DataFolder(folder.url(RESTRICTED_DIR))
    root = Path(folder.path(RESTRICTED_DIR))
    root.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    try:
        os.mkdir(root, DIR_MODE)
    except FileExistsError:
        pass
    os.chmod(root, DIR_MODE)
    return DataFolder(root)


def _tighten(folder: DataFolder, relpath: str) -> None:
    """A written file and the folders above it (inside the restricted folder): owner only."""
    if folder.is_uri:
        return
    root = Path(folder.root)
    path = root / relpath
    os.chmod(path, FILE_MODE)
    for parent in path.parents:
        if parent == root.parent:
            break
        os.chmod(parent, DIR_MODE)


def write_raw_utterances(data_dir: str | Path | DataFolder, call_date: str, call_id: str, rows: list[dict]) -> None:
    """Replace the call's original utterance texts (rows of schema UTTERANCES_RAW)."""
    folder = restricted_folder(data_dir)
    written = folder.write_parquet(RAW_DATASET, call_date, call_id, rows)
    _tighten(folder, folder._rel(written))


def remove_raw_utterances(data_dir: str | Path | DataFolder, call_id: str) -> None:
    """The call's original texts removed (privacy.keep_raw_text turned off, the call replaced or forgotten)."""
    folder = as_folder(data_dir)
    if not folder.is_uri and not Path(folder.path(RESTRICTED_DIR)).is_dir():
        return
    restricted_folder(folder).remove_key(RAW_DATASET, call_id)


def _raw_files(folder: DataFolder, call_id: str) -> tuple[DataFolder | None, list[str]]:
    """The restricted folder and the call's files in it (None, [] when there is no restricted folder)."""
    if not folder.is_uri and not Path(folder.path(RESTRICTED_DIR)).is_dir():
        return None, []
    restricted = restricted_folder(folder)
    return restricted, restricted.glob(f"{RAW_DATASET}/{partition_of(RAW_DATASET)}=*/{file_key(call_id)}.parquet")


def has_raw_utterances(data_dir: str | Path | DataFolder, call_id: str) -> bool:
    """True when the call's original texts are kept (a file exists; its text is not read)."""
    return bool(_raw_files(as_folder(data_dir), call_id)[1])


def read_raw_utterances(data_dir: str | Path | DataFolder, call_id: str) -> list[dict]:
    """The original utterances of one call (call_id, utterance_index, speaker, role, start_s, end_s, text), in
    order; [] when none are kept. For the review app's unredacted permission only: the caller checks the
    permission and audits the read."""
    import pyarrow.parquet as pq

    restricted, files = _raw_files(as_folder(data_dir), call_id)
    rows: list[dict] = []
    for rel in files:
        try:
            with restricted.fs.open(restricted.path(rel), "rb") as f:
                rows += [r for r in pq.read_table(f).to_pylist() if r["call_id"] == call_id]
        except FileNotFoundError:
            continue
    return sorted(rows, key=lambda r: r["utterance_index"])


def raw_texts(data_dir: str | Path | DataFolder, call_id: str) -> dict[int, str]:
    """utterance_index -> original text of one call ({} when none are kept)."""
    return {r["utterance_index"]: r["text"] for r in read_raw_utterances(data_dir, call_id)}
