"""A trial as a person reads it (80 columns, colour only on a terminal) and as tools read it.

Text is plain ASCII apart from the model's own words. Without colour, a revision's changes are
marked as git's `--word-diff=plain` marks them, [-removed-] {+added+}; with colour they are red
(struck through) and green, and the markers are left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Iterable

from selfalign.author.trial import Trial, pass_rate, principle_figures, verdicts_on
from selfalign.stages import Sample
from selfalign.stages.check import FIRST_ANSWER
from selfalign.stages.sample import CheckVerdict
from selfalign.word_diff import word_diff

WIDTH = 80
INDENT = "    "
_CODES = {"-": "31;9", "+": "32", "pass": "32", "fail": "31;1", "head": "1", "dim": "2"}
_MARKS = {"-": ("[-", "-]"), "+": ("{+", "+}")}


def wants_colour(stream: IO) -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set (no-color.org)."""
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


@dataclass(frozen=True)
class Page:
    """How text is laid out: the width, and whether styles are ANSI colours or nothing."""

    colour: bool = False
    width: int = WIDTH

    def paint(self, text: str, style: str | None) -> str:
        if not self.colour or style is None:
            return text
        return f"\x1b[{_CODES[style]}m{text}\x1b[0m"

    def wrap(self, words: Iterable[tuple[str, str | None]], indent: str = INDENT,
             first: str | None = None) -> list[str]:
        """Words laid into lines no wider than the page (a word longer than a line gets its
        own), each painted in its style; `first` replaces the indent of the first line."""
        lines: list[str] = []
        lead = indent if first is None else first
        line, used = [], len(lead)
        for word, style in words:
            if line and used + 1 + len(word) > self.width:
                lines.append(lead + " ".join(line))
                lead, line, used = indent, [], len(indent)
            used += len(word) + (1 if line else 0)
            line.append(self.paint(word, style))
        if line or not lines:
            lines.append(lead + " ".join(line))
        return [text.rstrip() for text in lines]

    def text(self, text: str, indent: str = INDENT) -> list[str]:
        """A model's text wrapped, its line breaks and indents kept (runs of blank lines become
        one)."""
        lines: list[str] = []
        for raw in text.strip().splitlines() or [""]:
            if raw.strip():
                own = indent + " " * (len(raw.expandtabs(4)) - len(raw.expandtabs(4).lstrip()))
                lines += self.wrap(((word, None) for word in raw.split()), own)
            elif lines and lines[-1]:
                lines.append("")
        return lines or [indent + self.paint("(empty)", "dim")]

    def diff(self, old: str, new: str, indent: str = INDENT) -> list[str]:
        """`new` wrapped, with the words it removed from `old` and the words it added shown."""
        words: list[tuple[str, str | None]] = []
        for op, run in word_diff(old, new):
            style = None if op == "=" else op
            run_words = run.split()
            if not run_words:  # only whitespace changed: a reflowed text reads the same
                continue
            if not self.colour and style:
                start, end = _MARKS[style]
                run_words[0] = start + run_words[0]
                run_words[-1] = run_words[-1] + end
            words += [(word, style) for word in run_words]
        return self.wrap(words, indent) if words else [indent + self.paint("(empty)", "dim")]

    def rule(self, title: str) -> str:
        head = f"== {title} "
        return self.paint(head + "=" * max(0, self.width - len(head)), "head")

    def verdict(self, verdict: CheckVerdict, who: str = "") -> list[str]:
        """`  pass brief/length_constraints:number_words: 36 words ...`, wrapped under itself."""
        word = "pass" if verdict.passed else "FAIL"
        text = f"{who}{word} {verdict.check}: {verdict.message}"
        lines = Page(False, self.width).wrap(((w, None) for w in text.split()), " " * 7,
                                             first="  ")
        lines[0] = lines[0].replace(word, self.paint(word, "pass" if verdict.passed else "fail"),
                                    1)
        return lines


# -- one trial ----------------------------------------------------------------------------------

def render_trial(trial: Trial, page: Page) -> list[str]:
    """Every prompt's answer, critique, revision (as a diff) and verdicts, then one line per
    principle and one for the trial."""
    lines: list[str] = []
    total = len(trial.samples)
    for index, group in enumerate(trial.samples, 1):
        record = group[0].record
        lines.append(page.rule(f"{index}/{total} {record.id}"))
        lines += page.wrap(((w, None) for w in record.prompt.split()), " " * 9,
                           first=page.paint("prompt", "head") + "   ")
        for sample in group:
            if len(group) > 1:
                lines.append(page.paint(f"-- sample {sample.index + 1}", "head"))
            lines += render_sample(sample, page)
        lines.append("")
    lines += summary_lines(trial, page)
    return lines


def render_sample(sample: Sample, page: Page) -> list[str]:
    lines = [_label(page, "answer", f"{len(sample.initial.split())} words")]
    if sample.initial_finish:
        lines += page.text(sample.initial)
        for verdict in verdicts_on(sample, FIRST_ANSWER, 0):
            lines += page.verdict(verdict)
    previous = sample.initial
    for r, round_ in enumerate(sample.rounds, 1):
        lines.append(_label(page, "critique", f"round {r} . {round_.principle}"))
        lines += page.text(round_.critique) if round_.critique_finish else []
        if not round_.revision_finish:
            break
        retries = [retry for retry in sample.retries if retry.round == r]
        about = f"round {r} . {round_.principle} . {len(round_.revision.split())} words"
        about += f" . {len(retries)} retr{'y' if len(retries) == 1 else 'ies'}" if retries else ""
        lines.append(_label(page, "revision", about))
        lines += page.diff(previous, round_.revision)
        for retry in retries:
            lines += page.wrap([(w, "dim") for w in (
                f"retry {retry.attempt} replaced a revision of {len(retry.replaced.split())} "
                f"words that failed {', '.join(retry.failed)}").split()], "      ", first="  ")
        for verdict in verdicts_on(sample, r):
            lines += page.verdict(verdict)
        previous = round_.revision
    if sample.failure:
        lines.append(f"  {page.paint('failed', 'fail')} at {sample.failed_stage}: "
                     f"{sample.failure}")
    return lines


def _label(page: Page, name: str, about: str) -> str:
    return f"{page.paint(name, 'head')}{' ' * max(1, 9 - len(name))}{page.paint(about, 'dim')}"


def summary_lines(trial: Trial, page: Page, who: str = "") -> list[str]:
    """One line per principle: checks passed before and after, mean words, retries; then the
    trial's pass rate and time."""
    lines = []
    for fig in principle_figures(trial):
        checks = (f"checks {fig.passed_before}/{fig.checked} -> {fig.passed_after}/"
                  f"{fig.checked} passed" if fig.checked else "no checks")
        words = (f"words {fig.words_before / fig.rounds:.0f} -> "
                 f"{fig.words_after / fig.rounds:.0f}")
        text = (f"{who}{fig.principle}: {fig.rounds} round{'s' * (fig.rounds != 1)}, {checks}, "
                f"{words}, {fig.retries} retr{'y' if fig.retries == 1 else 'ies'}")
        lines += page.wrap(((w, None) for w in text.split()), "    ", first="")
    passed, finished = pass_rate(trial)
    share = f" ({passed / finished:.0%})" if finished else ""
    reused = f", {trial.reused} answered from earlier in this session" if trial.reused else ""
    text = (f"{who}{passed} of {finished} final texts pass every check{share}; "
            f"{trial.seconds:.1f}s for {trial.requests} requests{reused}")
    return lines + page.wrap(((w, None) for w in text.split()), "    ", first="")


# -- as data ------------------------------------------------------------------------------------

def trial_json(trial: Trial) -> dict:
    """The trial for tools: everything the text shows, and the diff as [op, words] runs."""
    passed, finished = pass_rate(trial)
    return {
        "version": trial.label, "rounds": trial.recipe.rounds, "seed": trial.recipe.seed,
        "seconds": round(trial.seconds, 3), "requests": trial.requests, "reused": trial.reused,
        "prompts": [{"id": group[0].record.id, "prompt": group[0].record.prompt,
                     "samples": [sample_json(s) for s in group]} for group in trial.samples],
        "principles": [fig.as_dict() for fig in principle_figures(trial)],
        "pass_rate": {"passed": passed, "finished": finished},
    }


def sample_json(sample: Sample) -> dict:
    rounds, previous = [], sample.initial
    for r, round_ in enumerate(sample.rounds, 1):
        rounds.append({
            "round": r, "principle": round_.principle, "critique": round_.critique,
            "revision": round_.revision,
            "diff": [list(run) for run in word_diff(previous, round_.revision)],
            "verdicts": [_verdict_json(v) for v in verdicts_on(sample, r)],
            "retries": [{"attempt": x.attempt, "failed": x.failed, "replaced": x.replaced}
                        for x in sample.retries if x.round == r]})
        previous = round_.revision
    return {"sample": sample.index, "answer": sample.initial,
            "verdicts": [_verdict_json(v) for v in verdicts_on(sample, FIRST_ANSWER, 0)],
            "rounds": rounds, "final": sample.final, "failure": sample.failure}


def _verdict_json(verdict: CheckVerdict) -> dict:
    return {"check": verdict.check, "passed": verdict.passed, "message": verdict.message}
