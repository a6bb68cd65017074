"""What a soak must show: no crash, prescribed statuses, one message per 200, no re-send, flat RSS.

Each check returns a Check; the soak fails when one is not ok.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bench.soak_mix import MIX, Answer

MB = 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def alive(master_running: bool, workers_before: list[int], workers_after: list[int]) -> Check:
    """The gunicorn master still runs and its workers are the ones it started with."""
    same = workers_before == workers_after
    return Check(
        "service never crashed",
        master_running and same,
        f"master {'running' if master_running else 'GONE'}; worker pids {workers_before} "
        f"{'unchanged' if same else f'became {workers_after} (a worker died or was killed)'}",
    )


def statuses(answers: Sequence[Answer]) -> Check:
    """Every answer has the status and problem type docs/api.md's error table prescribes."""
    wrong = Counter(
        (a.kind.name, a.status, a.slug) for a in answers if not a.as_prescribed
    )  # fmt: skip
    detail = f"{len(answers)} requests, {sum(wrong.values())} answered otherwise"
    if wrong:
        detail += ": " + ", ".join(f"{k} got {s} {slug} x{n}" for (k, s, slug), n in wrong.items())
    return Check("every request got the prescribed status", not wrong, detail)


def one_message_per_200(answers: Sequence[Answer], accepted: dict[str, str], total: int) -> Check:
    """The 200s' message_uuids and the emulator's accepted messages are the same set."""
    uuids = [a.message_uuid for a in answers if a.status == 200]
    duplicates = len(uuids) - len(set(uuids))
    complete = len(accepted) == total  # every accepted message was seen in a snapshot
    same = set(uuids) == set(accepted)
    return Check(
        "every 200 matches exactly one accepted message",
        duplicates == 0 and complete and same,
        f"{len(uuids)} answers 200, {duplicates} duplicate message_uuids; emulator accepted "
        f"{total}, {len(accepted)} collected; sets {'equal' if same else 'DIFFER'} "
        f"({len(set(uuids) - set(accepted))} only ours, {len(set(accepted) - set(uuids))} only "
        "the emulator's)",
    )


def no_resend(answers: Sequence[Answer], attempts: dict[str, int], max_retries: int) -> Check:
    """Only what Vonage certainly refused was retried; the rest reached it exactly once."""
    sent = Counter(a.kind.to.lstrip("+") for a in answers)
    problems, parts = [], []
    for kind in MIX:
        number = kind.to.lstrip("+")
        got, count = attempts.get(number, 0), sent[number]
        if kind.resend_safe:
            ok = count <= got <= count * (1 + max_retries)
            parts.append(f"{kind.name}: {count} requests, {got} attempts (retried, never accepted)")
        else:
            ok = got == count
            parts.append(f"{kind.name}: {count} requests, {got} attempts")
        if not ok:
            problems.append(kind.name)
    return Check(
        "no retried request produced a second message",
        not problems,
        "; ".join(parts) + (f"; WRONG for {', '.join(problems)}" if problems else ""),
    )


def rss_bound(
    samples: Sequence[tuple[float, int]], warmup_s: float, duration_s: float, bound_mb: float
) -> Check:
    """RSS in the last window is at most the first window's (after warm-up) plus `bound_mb`."""
    window = min(60.0, (duration_s - warmup_s) / 2)
    first = [rss for t, rss in samples if warmup_s <= t < warmup_s + window]
    last = [rss for t, rss in samples if t >= duration_s - window]
    if not first or not last:
        return Check("memory stayed flat", False, "too few RSS samples")
    grew = (max(last) - max(first)) / MB
    return Check(
        "memory stayed flat",
        grew <= bound_mb,
        f"process tree RSS, peak of the first {window:.0f} s after warm-up {max(first) / MB:.1f} "
        f"MB, peak of the last {window:.0f} s {max(last) / MB:.1f} MB: grew {grew:+.1f} MB "
        f"(bound +{bound_mb:g} MB)",
    )
