"""Revisions that echo their instructions instead of following them.

A check passes on text that only talks about its rule: asked to end with "Hope this helps.", the
embedded model writes `Your reply must end with "Hope this helps."` and passes; asked to decline,
it repeats the retry message. Such a revision is no answer to the prompt, so it must not become
`chosen`. The rule is an overlap of word runs, not a list of phrases:

- the instructions are every critique and revision request of the conversation so far and the
  message of every check that failed (what a retry shows the model);
- what the instructions demand word for word is set aside on both sides: every quoted span of
  an instruction ("...", '...', “...”), such as the end phrase a check asks for, so a revision
  that ends with "Hope this helps." as told is not an echo of being told;
- the revision's words that lie in a run of `ECHO_WORDS` or more words copied from one
  instruction are counted. The revision echoes when they are more than half of its words, or
  when one copied run reaches `ECHO_RUN` words (a whole clause of the instruction pasted into an
  otherwise real answer);
- a revision that puts a demanded string in quotation marks among other words mentions it
  instead of using it: `The response ends with "Hope this helps."` talks about the rule, where a
  real answer ends with the line itself. Paraphrased talk of that kind has too few words in
  common with the instructions for the overlap to see it (on the embedded model, 18 of 21 kept
  revisions under an end-phrase check were such talk and only the quotation marks told them
  apart); a reply wrapped whole in quotes is not a mention.

Words are case-folded runs of letters and digits, as the checks count them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from selfalign.stages.sample import Sample

ECHOES_INSTRUCTION = "echoes_instruction"  # the reject reason
ECHO_WORDS = 4  # shorter shared runs ("make sure the", "your reply") are ordinary phrasing
ECHO_SHARE = 0.5
ECHO_RUN = 8
_WORD = re.compile(r"\w+")
# A quoted span: double quotes, curly quotes, or single quotes that are not apostrophes.
_QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”|(?<!\w)\'([^\'\n]+)\'(?!\w)')


@dataclass(frozen=True)
class Instruction:
    """One text the model was told, and how to name it in a reject's detail."""

    name: str
    text: str


@dataclass(frozen=True)
class Mention:
    """A revision that quotes a demanded string among other words: it talks about the rule."""

    phrase: str

    def detail(self) -> str:
        return (f"the revision quotes the demanded \"{self.phrase}\" among other words instead "
                f"of writing it: it talks about the rule")


@dataclass(frozen=True)
class Echo:
    """How much of a revision was copied from an instruction."""

    copied: int
    words: int
    run: str  # the longest copied run, as words
    source: str  # the instruction it came from

    def detail(self) -> str:
        return (f"the revision copies {self.copied} of its {self.words} words from the "
                f"instructions; the longest run, from the {self.source}: \"{self.run}\"")


def instructions(sample: Sample) -> list[Instruction]:
    """What the model was told about its revision: the rounds' requests and the checks'
    messages of failures."""
    told = []
    for number, round_ in enumerate(sample.rounds, start=1):
        told += [Instruction(f"critique request of round {number}", round_.critique_request),
                 Instruction(f"revision request of round {number}", round_.revision_request)]
    told += [Instruction(f"message of check {v.check}", v.message)
             for v in sample.verdicts if not v.passed]
    return told


def _segments(text: str, demanded: Iterable[str]) -> list[list[str]]:
    """The words of `text` in runs broken wherever a demanded string was cut out (as whole
    words: a demanded letter 'e' must not cut every word that has one)."""
    pieces = [text]
    for phrase in demanded:
        pattern = re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)", re.IGNORECASE)
        pieces = [part for piece in pieces for part in pattern.split(piece)]
    return [_WORD.findall(piece.casefold()) for piece in pieces]


def _windows(segment: list[str]) -> Iterable[tuple[int, tuple[str, ...]]]:
    for start in range(len(segment) - ECHO_WORDS + 1):
        yield start, tuple(segment[start:start + ECHO_WORDS])


def find_echo(revision: str, told: list[Instruction]) -> Echo | Mention | None:
    """The echo in `revision` of the instructions `told`, if it is one (see the module)."""
    demanded = sorted({next(g for g in m.groups() if g) for t in told
                       for m in _QUOTED.finditer(t.text)}, key=len, reverse=True)
    sources: dict[tuple[str, ...], str] = {}
    for instruction in told:
        for piece in _QUOTED.split(instruction.text)[::4]:  # the text between quoted spans
            for _, window in _windows(_WORD.findall((piece or "").casefold())):
                sources.setdefault(window, instruction.name)
    segments = _segments(revision, demanded)
    words = sum(len(segment) for segment in segments)
    copied, best = 0, (0, [], "")
    for segment in segments:
        marked = [False] * len(segment)
        for start, window in _windows(segment):
            if window in sources:
                marked[start:start + ECHO_WORDS] = [True] * ECHO_WORDS
        copied += sum(marked)
        best = max(best, _longest_run(segment, marked, sources), key=lambda b: b[0])
    length, run, source = best
    if not words or (copied <= ECHO_SHARE * words and length < ECHO_RUN):
        return _mention(revision, demanded)
    return Echo(copied, words, " ".join(run), source)


def _mention(revision: str, demanded: list[str]) -> Mention | None:
    """The first demanded string the revision quotes, when words stand outside the quotes."""
    for phrase in demanded:
        core = re.escape(phrase.strip(" .!?,;:"))
        if not core:
            continue
        for found in re.finditer(rf"[\"“'‘]\s*{core}", revision, re.IGNORECASE):
            if _WORD.search(revision[:found.start()]):
                return Mention(phrase)
    return None


def _longest_run(segment: list[str], marked: list[bool],
                 sources: dict[tuple[str, ...], str]) -> tuple[int, list[str], str]:
    best, start = (0, [], ""), None
    for index, flag in enumerate([*marked, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if index - start > best[0]:
                first = tuple(segment[start:start + ECHO_WORDS])
                best = (index - start, segment[start:index], sources[first])
            start = None
    return best


def echo_of_revision(sample: Sample) -> Echo | Mention | None:
    """Whether the latest round's kept revision echoes what the model was told."""
    return find_echo(sample.rounds[-1].revision, instructions(sample)) if sample.rounds else None
