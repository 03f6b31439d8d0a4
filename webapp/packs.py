"""Coaching packs from the app's side: the trainers' marks read from the review database, handed to the library's
pack builder (`qa_pipeline.render.coaching.build_pack`); the `qa-pipeline coach` command (dispatched here by
flows/cli.py) and the trainers' page's "build pack" action (webapp/routes/coaching.py) both come through here.

    qa-pipeline coach --data DATA --out DIR [--agent A] [--team T] [--criterion C] [--week W] [--db URL]
                      [--rubric FILE] [--format opus|wav]"""

from __future__ import annotations

import argparse
import io
import os
import sys
import zipfile
from pathlib import Path

from sqlalchemy import select

from webapp.db import Database, default_url
from webapp.models import CoachingMark, User


def marks_from_db(db_url: str | None) -> list[dict]:
    """Every coaching mark (call, agent, span, criterion, kind, note, trainer's name) in the review database."""
    if not db_url:
        return []
    db = Database(db_url)
    try:
        with db.read() as s:
            rows = list(s.execute(select(CoachingMark, User.display_name)
                                  .join(User, User.id == CoachingMark.trainer_id)))
            return [dict(call_id=m.call_id, agent_id=m.agent_id, start_s=m.start_s, end_s=m.end_s,
                         criterion=m.criterion, kind=m.kind, note=m.note, trainer=name) for m, name in rows
                    if not m.call_id.startswith("forgotten:")]
    finally:
        db.dispose()


def build(data_dir, out_dir, *, db_url: str | None = None, marks: list[dict] | None = None, **filters) -> Path:
    from qa_pipeline.render.coaching import build_pack

    return build_pack(data_dir, out_dir, marks=marks if marks is not None else marks_from_db(db_url), **filters)


def zipped(pack_dir: Path) -> bytes:
    """The pack folder as a zip (what the app hands a trainer to copy onto a USB stick)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for p in sorted(pack_dir.rglob("*")):
            if p.is_file():
                z.write(p, f"coaching-pack/{p.relative_to(pack_dir).as_posix()}")
    return buf.getvalue()


def main(argv: list[str]) -> int:
    from qa_pipeline.errors import QAPipelineError

    p = argparse.ArgumentParser(prog="qa-pipeline coach", description="build a coaching pack (plays offline)")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--agent")
    p.add_argument("--team")
    p.add_argument("--criterion")
    p.add_argument("--week")
    p.add_argument("--db", default=os.environ.get("QA_REVIEW_DB"),
                   help="the review database (trainers' marks); default $QA_REVIEW_DB, else DATA/review.sqlite3 "
                        "when it exists")
    p.add_argument("--rubric")
    p.add_argument("--format", choices=("opus", "wav"), default="opus", help="the clips' format")
    a = p.parse_args(argv)
    url = a.db or (default_url(a.data) if (Path(a.data) / "review.sqlite3").is_file() else None)
    try:
        index = build(a.data, a.out, db_url=url, agent=a.agent, team=a.team, criterion=a.criterion, week=a.week,
                      rubric=a.rubric, audio_format=a.format)
    except QAPipelineError as e:
        print(f"error [{e.code}]: {e}", file=sys.stderr)
        return 2
    print(f"coaching pack: {index.resolve()} (open it in a browser; copy the folder to hand it out; "
          f"acknowledgement sheet: {index.parent.resolve() / 'ack.html'})")
    return 0
