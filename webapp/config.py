"""The review app's settings: one frozen record, built by `qa-pipeline serve` (or a test) and handed to
`webapp.app.create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from webapp.db import default_url

RESCORE_MODES = ("on-submit", "inline", "flow")


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Everything the app is configured with.

    data_dir: the data folder the datasets are read from (local path or object-store URI).
    db_url: the review database (SQLAlchemy URL); default: SQLite `<data_dir>/review.sqlite3`.
    calls_roots: the folders audio may be served from (a call's `calls.path` must resolve inside one of them).
        None: automatic: the demo calls folder when the data folder holds the demo's calls, else none (audio
        disabled, the call page says so). An empty tuple: audio disabled.
    cookie_secure: the cookies' Secure attribute; None: set when the request came over HTTPS.
    session_max_age_s / session_idle_s: a session ends this long after login / after its last request.
    login_max_failures_user / login_max_failures_ip: failed logins within `login_window_s` after which that
        username / address gets 429 for `login_lockout_s` (from its latest failure).
    login_delay_base_s / login_delay_max_s: a failed login is answered after base * 2^(failures-1) seconds,
        at most max: guessing slows down long before the lockout.
    sync_on_start / sync_interval_s: rebuild the queue index at start / look for changed datasets this often
        (0: never; `qa-pipeline db sync` does it by hand).
    require_redacted_audio: users without `can_view_unredacted` never hear personal data: they get the call's
        redacted copy, or its original when the call was searched and found without personal data; a call with
        neither (processed with privacy off, or before audio redaction existed, or its copy failed) is refused with
        a message (True, the default). False (`serve --allow-original-audio`): such a call plays its original to
        them, with a note on the page. The audit log records which copy was served either way.
    password_min_length: for `users add` / `users passwd`.
    argon2_time_cost / argon2_memory_kib: the password hash's cost (argon2-cffi's defaults; tests lower them).
    peaks_per_second: waveform resolution of /calls/{id}/peaks.json (capped at `peaks_max`).
    dispute_window_days: how long after an evaluation is submitted its agent (or their manager) may acknowledge or
        dispute it; after that the buttons are gone and the request is refused.
    rescore: when scorecards follow the verdicts. "on-submit": submitted and resolved verdicts are exported to the
        `reviews` dataset at once and the scorecards and calibration recomputed right after, in the background
        (`webapp.rescoring`); "inline": the same inside the request (tests, small data); "flow": verdicts are
        exported at once, the scores follow with the next `qa-pipeline rescore` / nightly flow.
    rescore_min_interval_s: background rescores start at least this long apart (and at least 9 times the last
        run's length apart: see `webapp.rescoring.Rescorer`); verdicts are exported at once whatever it is.
    rubric_path: the rubric the app rescores with (None: the default rubric); it must be the one the stored
        scores were made with (the app checks the version and otherwise leaves rescoring to the flow).
    pipeline_config: the pipeline configuration file "swap speakers" re-analyses a call with (scripts, lexicons,
        companies); None: the demo's for the demo data, else the defaults.
    """
    data_dir: str | Path
    db_url: str | None = None
    calls_roots: tuple[Path, ...] | None = None
    cookie_secure: bool | None = None
    session_max_age_s: int = 12 * 3600
    session_idle_s: int = 2 * 3600
    login_max_failures_user: int = 5
    login_max_failures_ip: int = 30
    login_window_s: int = 15 * 60
    login_lockout_s: int = 15 * 60
    login_delay_base_s: float = 0.25
    login_delay_max_s: float = 2.0
    sync_on_start: bool = True
    sync_interval_s: float = 60.0
    require_redacted_audio: bool = True
    password_min_length: int = 10
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    peaks_per_second: int = 20
    peaks_max: int = 24_000
    page_sizes: tuple[int, ...] = field(default=(25, 50, 100))
    dispute_window_days: float = 7.0
    rescore: str = "on-submit"
    rescore_min_interval_s: float = 30.0
    rubric_path: Path | None = None
    pipeline_config: Path | None = None

    def __post_init__(self):
        if self.rescore not in RESCORE_MODES:
            raise ValueError(f"rescore must be one of {RESCORE_MODES}, not {self.rescore!r}")
        if not self.dispute_window_days >= 0:
            raise ValueError(f"dispute_window_days must be >= 0, not {self.dispute_window_days!r}")

    @property
    def database_url(self) -> str:
        return self.db_url or default_url(self.data_dir)
