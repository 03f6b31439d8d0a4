"""Review samples: N calls per agent per ISO week, drawn at random or stratified, from the calls a QA lead may see
(optionally filtered by team, week, language and call type), reproducibly (a seed, drawn when not given and
stored). The sample's id, method, seed and filters are stored with it and copied onto every evaluation made from it
(`evaluations.sample_id`, `sample_filters`) and into the `source` of its exported verdicts, so what was sampled,
how, and what the reviews of it found can be compared with the population (sampling bias).

- random: within each (agent, week), N calls drawn uniformly without replacement;
- stratified: within each (agent, week), N calls spread over the strata of one column (call type, language,
  campaign or direction) in proportion to their size (largest remainders), then drawn uniformly in each stratum;
  a stratum with calls gets at least one call when N allows it, so rare call types are not left out.

The draw depends only on the seed and on the calls present (sorted by call_id), not on the database's order."""

from __future__ import annotations

import random
import secrets
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp import audit
from webapp.models import CallIndex, Sample, SampleCall, User, utcnow
from webapp.scope import require, scope_of, scoped

METHODS = ("random", "stratified")
STRATA = ("call_type", "language", "campaign", "direction")
MAX_PER_AGENT = 100


class SampleError(ValueError):
    pass


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """How many of `n` to take from each stratum (sizes: stratum -> calls): proportional, largest remainders,
    at least one per non-empty stratum when n allows it, never more than a stratum holds."""
    total = sum(sizes.values())
    n = min(n, total)
    if n <= 0:
        return {k: 0 for k in sizes}
    keys = sorted(sizes)
    out = {k: 0 for k in keys}
    nonempty = [k for k in keys if sizes[k] > 0]
    if n >= len(nonempty):
        for k in nonempty:
            out[k] = 1
    left = n - sum(out.values())
    if left > 0:
        capacity = {k: sizes[k] - out[k] for k in keys}
        cap_total = sum(capacity.values())
        exact = {k: left * capacity[k] / cap_total for k in keys} if cap_total else {k: 0 for k in keys}
        floor = {k: min(capacity[k], int(exact[k])) for k in keys}
        for k in keys:
            out[k] += floor[k]
        rest = left - sum(floor.values())
        for k in sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), k)):
            if rest <= 0:
                break
            if out[k] < sizes[k]:
                out[k] += 1
                rest -= 1
    return out


def draw(calls: list[CallIndex], *, method: str, per_agent: int, stratum: str, seed: int) -> list[CallIndex]:
    """The sampled calls (see the module docstring), grouped by agent and week, in a stable order."""
    rng = random.Random(seed)
    groups: dict[tuple, list[CallIndex]] = defaultdict(list)
    for c in sorted(calls, key=lambda c: c.call_id):
        groups[(c.agent_id or "", c.iso_week or "")].append(c)
    picked: list[CallIndex] = []
    for key in sorted(groups):
        pool = groups[key]
        if method == "random":
            picked += sorted(rng.sample(pool, min(per_agent, len(pool))), key=lambda c: c.call_id)
            continue
        strata: dict[str, list[CallIndex]] = defaultdict(list)
        for c in pool:
            strata[str(getattr(c, stratum) or "")].append(c)
        quota = allocate({k: len(v) for k, v in strata.items()}, per_agent)
        chosen = []
        for k in sorted(strata):
            chosen += rng.sample(strata[k], quota[k])
        picked += sorted(chosen, key=lambda c: c.call_id)
    return picked


def create_sample(s: Session, user: User, *, name: str | None, method: str, per_agent: int,
                  team: str | None = None, week: str | None = None, language: str | None = None,
                  call_type: str | None = None, stratum: str = "call_type", seed: int | None = None,
                  ip: str | None = None) -> Sample:
    """Draw a sample from the calls `user` may see and store it (with its filters and seed); audited."""
    require(user, "sample")
    if method not in METHODS:
        raise SampleError(f"method must be one of {', '.join(METHODS)}")
    if stratum not in STRATA:
        raise SampleError(f"stratify by one of {', '.join(STRATA)}")
    if not 1 <= per_agent <= MAX_PER_AGENT:
        raise SampleError(f"calls per agent and week: 1 to {MAX_PER_AGENT}")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    stmt = scoped(select(CallIndex), user, CallIndex)
    filters = {"team": team, "week": week, "language": language, "call_type": call_type}
    for column, value in filters.items():
        if value:
            stmt = stmt.where(getattr(CallIndex, "iso_week" if column == "week" else column) == value)
    population = list(s.scalars(stmt))
    picked = draw(population, method=method, per_agent=per_agent, stratum=stratum, seed=seed)
    scope = scope_of(user)
    recorded = {k: v for k, v in filters.items() if v}
    recorded.update(per_agent_per_week=per_agent, population=len(population), drawn=len(picked),
                    agents=len({c.agent_id for c in picked}),
                    scope="all teams" if scope.all_teams else sorted(scope.teams))
    if method == "stratified":
        recorded["stratum"] = stratum
    sample = Sample(name=(name or "").strip()[:200] or None, method=method, filters=recorded, seed=seed,
                    created_by=user.id, created_at=utcnow())
    s.add(sample)
    s.flush()
    s.add_all([SampleCall(sample_id=sample.id, call_id=c.call_id, position=i) for i, c in enumerate(picked)])
    audit.record(s, "sample_created", user=user, target_type="sample", target_id=sample.id, ip=ip,
                 detail={"method": method, "seed": seed, "filters": recorded, "calls": len(picked)})
    return sample
