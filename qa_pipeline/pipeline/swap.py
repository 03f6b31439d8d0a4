"""Swap the agent and the customer of a stored call whose roles came out wrong (a QA decision, e.g. from the
review app), keeping the datasets the single source of truth: the call's own rows are rewritten, nothing is kept
aside for the scoring to patch in later.

What changes, all from the stored rows (nothing is decoded or transcribed again):

- `utterances` and `words`: `role` agent <-> customer (unknown stays unknown); the utterances are the same ones,
  with the same indexes, so evidence references stay valid;
- the original text kept in the restricted folder (`_restricted/utterances_raw`, privacy.keep_raw_text), when the
  call has one: the same role swap (its text is untouched), written before the `calls` row, owner-only as always;
- `metrics`: the per-party columns trade places (talk time, talk ratio, interruptions, words per minute: each is a
  function of one role's words, so relabelling the roles relabels them), the longest monologue's role flips and the
  time to the agent's first word is taken from the new agent's first utterance; silence, holds and overtalk do not
  depend on roles and stay;
- the analysis (`compliance`, `events`, `flags`, `sentiment`) runs again on the swapped transcript, as after a
  script change (`reanalyse_stored`: with privacy.keep_raw_text on the original text, its evidence redacted again
  with the stored findings, as `runner.reanalyse` does);
- `calls`: `agent_channel` flips (stereo), `role_method` becomes "qa_swap", `role_confidence` 1.0 (a person decided),
  `role_evidence` says who swapped, when, and what the roles were decided by before; the low-role-confidence flag
  (W006) goes, since the roles are now a person's decision.

The `calls` row is written last (as for any call). Scores follow with the next rescore (`qa-pipeline rescore`, or
the review app's rescoring). A later *re-analysis* (scripts or lexicons changed) keeps the swap: it reads the stored
utterances. A full *reprocessing* of the recording (a configuration change that re-transcribes, `--replace`)
decides the roles again from the audio; `role_method` then no longer says "qa_swap", which is how a caller sees that
a recorded swap needs doing again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import W_LOW_ROLE_CONFIDENCE
from qa_pipeline.pipeline.process import reanalyse_stored
from qa_pipeline.pipeline.resources import Resources
from qa_pipeline.pipeline.rows import CallResult
from qa_pipeline.pipeline.runner import write_result
from qa_pipeline.privacy.restricted import read_raw_utterances, write_raw_utterances
from qa_pipeline.store.folder import DataFolder, as_folder
from qa_pipeline.store.queries import Queries
from qa_pipeline.types import AGENT, CUSTOMER

SWAP_METHOD = "qa_swap"
_OTHER = {AGENT: CUSTOMER, CUSTOMER: AGENT}
_CHANNEL = {"left": "right", "right": "left"}
# metrics columns of one party: agent_<x> <-> customer_<x>
_PARTY_COLUMNS = ("talk_s", "talk_ratio", "interruptions", "wpm")


class SwapError(ValueError):
    """The call cannot be swapped (not stored, not complete, or no agent/customer roles to swap)."""


def swapped(role: str | None) -> str | None:
    return _OTHER.get(role, role)


def swap_metrics(m_row: dict, utterances: list[dict]) -> dict:
    """A metrics row with the roles swapped (`utterances`: the call's rows with their roles already swapped)."""
    out = dict(m_row)
    for c in _PARTY_COLUMNS:
        a, b = f"agent_{c}", f"customer_{c}"
        if a in m_row or b in m_row:
            out[a], out[b] = m_row.get(b), m_row.get(a)
    out["longest_monologue_role"] = swapped(m_row.get("longest_monologue_role"))
    starts = [u["start_s"] for u in utterances if u["role"] == AGENT]
    out["agent_first_word_s"] = round(min(starts), 2) if starts else None
    return out


def swap_roles(data_dir: str | Path | DataFolder, call_id: str, call_date: str, config: PipelineConfig,
               resources: Resources, *, by: str, reason: str | None = None,
               now: dt.datetime | None = None) -> dict:
    """Swap agent and customer on the stored call `call_id` of date partition `call_date` (see the module
    docstring) and return what changed: {"before": {...}, "after": {...}, "flags_before": n, "flags_after": n}.

    Args:
        config: the pipeline configuration the analysis runs with (scripts, lexicons, companies).
        resources: its loaded analysis resources (`ResourcePool.for_config(config)`).
        by: who decided (recorded in `role_evidence`).

    Raises:
        SwapError: the call is not stored in that partition, is not complete, or has no agent/customer roles."""
    folder = as_folder(data_dir)
    now = now or dt.datetime.now(dt.timezone.utc)
    with Queries(folder, threads=1) as q:
        def rows(dataset: str) -> list[dict]:
            return q.table(dataset, where="call_id = $id", params={"id": call_id},
                           partitions=[call_date]).to_pylist()

        calls, utts, words, metrics, flags, pii = (rows(d) for d in ("calls", "utterances", "words", "metrics",
                                                                      "flags", "pii"))
    if len(calls) != 1:
        raise SwapError(f"call {call_id!r} is not stored in partition {call_date}")
    call = calls[0]
    if call.get("status") != "ok" or not utts:
        raise SwapError(f"call {call_id!r} has no transcript to swap (status {call.get('status')!r})")
    if not any(u["role"] in _OTHER for u in utts):
        raise SwapError(f"call {call_id!r} has no agent or customer utterance: nothing to swap")
    new_utts = [{**u, "role": swapped(u["role"])} for u in utts]
    new_words = [{k: v for k, v in {**w, "role": swapped(w["role"])}.items() if k != "call_date"} for w in words]
    m_row = {k: v for k, v in (metrics[0] if metrics else {}).items() if k != "call_date"}
    new_metrics = swap_metrics(m_row, new_utts) if m_row else {}
    before = {k: call.get(k) for k in ("agent_channel", "role_method", "role_confidence", "role_evidence")}
    evidence = (f"agent and customer swapped by QA ({by}) at {now.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
                + (f": {reason}" if reason else "")
                + f"; before: {before['role_method']} (confidence {before['role_confidence']}): "
                  f"{before['role_evidence'] or ''}")[:2000]
    new_call = {**call, "agent_channel": _CHANNEL.get(call.get("agent_channel"), call.get("agent_channel")),
                "role_method": SWAP_METHOD, "role_confidence": 1.0, "role_evidence": evidence,
                "flags": [f for f in (call.get("flags") or []) if not f.startswith(W_LOW_ROLE_CONFIDENCE[:4])]}
    raw = read_raw_utterances(folder, call_id)  # the original text, when kept: its roles swap too
    new_raw = [{k: v for k, v in {**r, "role": swapped(r["role"])}.items() if k != "call_date"} for r in raw]
    texts = {r["utterance_index"]: r["text"] for r in raw} if config.privacy.keep_raw_text else {}
    analysed = reanalyse_stored(new_call, new_utts, new_metrics, config, resources,
                                pii_rows=pii if texts else None, raw_texts=texts)
    if new_raw:  # before the calls row (written last by write_result)
        write_raw_utterances(folder, call_date, call_id, new_raw)
    if not new_metrics and new_words:  # write_result writes words and metrics together: words alone here
        folder.write_parquet("words", call_date, call_id, new_words)
    result = CallResult(call_date=call_date, calls=analysed.calls, utterances=analysed.utterances,
                        words=new_words if new_metrics else [], metrics=new_metrics, analysis=analysed.analysis)
    write_result(folder, result)
    after = {k: result.calls.get(k) for k in ("agent_channel", "role_method", "role_confidence", "role_evidence")}
    return {"before": before, "after": after, "flags_before": len(flags),
            "flags_after": len(result.analysis.get("flags", []))}


__all__ = ["SWAP_METHOD", "SwapError", "swap_metrics", "swap_roles", "swapped"]
