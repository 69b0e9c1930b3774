"""Two versions of the files on the same prompts and seeds: where their final texts differ, and
each version's figures."""

from __future__ import annotations

from selfalign.author.render import Page, summary_lines, trial_json
from selfalign.author.trial import Trial, pass_rate, verdicts_on
from selfalign.stages import Sample


def differs(old: Sample, new: Sample) -> bool:
    return old.final != new.final or _final_verdicts(old) != _final_verdicts(new)


def _final_verdicts(sample: Sample) -> list[tuple[str, bool]]:
    return [(v.check, v.passed) for v in verdicts_on(sample, len(sample.rounds))]


def render_comparison(old: Trial, new: Trial, page: Page) -> list[str]:
    """Per prompt: nothing but a line where both versions end the same; otherwise the new final
    text as a diff against the old one, and both versions' verdicts on it. Then each version's
    summary, and how many prompts differ."""
    lines = [f"old: {old.label}", f"new: {new.label}", ""]
    pairs = _pairs(old, new)
    for index, (o, n) in enumerate(pairs, 1):
        title = f"{index}/{len(pairs)} {n.record.id}"
        if not differs(o, n):
            lines.append(page.paint(f"== {title}: the same final text and verdicts", "dim"))
            continue
        lines.append(page.rule(title))
        lines += page.wrap(((w, None) for w in n.record.prompt.split()), " " * 9,
                           first=page.paint("prompt", "head") + "   ")
        words = f"old {len(o.final.split())} words -> new {len(n.final.split())} words"
        lines.append(f"{page.paint('final', 'head')}    {page.paint(words, 'dim')}")
        lines += page.diff(o.final, n.final)
        for who, sample in (("old ", o), ("new ", n)):
            for verdict in verdicts_on(sample, len(sample.rounds)):
                lines += page.verdict(verdict, who)
            if sample.failure:
                lines.append(f"  {who}failed at {sample.failed_stage}: {sample.failure}")
    lines.append("")
    lines += summary_lines(old, page, who="old ") + summary_lines(new, page, who="new ")
    changed = sum(differs(o, n) for o, n in pairs)
    (p_old, f_old), (p_new, f_new) = pass_rate(old), pass_rate(new)
    lines.append(f"{changed} of {len(pairs)} differ; final texts passing every check: "
                 f"old {p_old}/{f_old} -> new {p_new}/{f_new}")
    return lines


def comparison_json(old: Trial, new: Trial) -> dict:
    return {"old": trial_json(old), "new": trial_json(new),
            "differ": [{"id": n.record.id, "sample": n.index, "old": o.final,
                        "new": n.final} for o, n in _pairs(old, new) if differs(o, n)]}


def _pairs(old: Trial, new: Trial) -> list[tuple[Sample, Sample]]:
    """The same prompt's same sample under each version."""
    return [(o, n) for old_group, new_group in zip(old.samples, new.samples)
            for o, n in zip(old_group, new_group)]
