"""The rows a run writes, made from samples; their columns are the run folder's (store/columns.py).

prefs and sft follow TRL's conversational formats exactly: message lists only, never a string
`prompt` beside message-list `chosen`/`rejected` (TRL fails on that mix).
"""

from __future__ import annotations

from pathlib import Path

from selfalign.engine.provenance import model_name
from selfalign.prompts.behavior import BEHAVIOR
from selfalign.records import Reject
from selfalign.stages.cleaning import same_text
from selfalign.stages.echo import ECHOES_INSTRUCTION
from selfalign.stages.sample import RankedPair, Sample


CHECK_FAILED = "check_failed"


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def sample_status(sample: Sample, ranked: bool = False) -> str:
    """'pair' (its final revision ≻ its first answer), 'ranked' (in rank mode: its final answer
    is compared with the other samples'), or the reason this sample yields no pair."""
    if not sample.alive:
        return f"{sample.failed_stage}:{sample.failure}"
    if not sample.initial:
        return "empty_response"
    if not sample.final:
        return "empty_revision"
    if ranked:
        return "ranked"
    if sample.final_check_failures:
        return CHECK_FAILED
    if sample.echo is not None:
        return ECHOES_INSTRUCTION
    if same_text(sample.final, sample.initial):
        return "chosen_equals_rejected"
    if sample.judge_reject:
        return sample.judge_reject[0]
    return "pair"


def usable_for_sft(sample: Sample, status: str) -> bool:
    """A revision equal to the first answer is still a good SFT target; failures, and revisions
    the judge found worse, are not. In rank mode the prompt's best-ranked answer is."""
    if status == "ranked":
        return sample.rank == 1
    return status in ("pair", "chosen_equals_rejected")


def provenance(sample: Sample, model: str) -> dict:
    record = sample.record
    return {"prompt_id": record.id, "sample_index": sample.index, "split": record.split,
            "user_id": record.user_id, "source": portable_source(record.source),
            "principle_ids": [r.principle for r in sample.rounds],
            "rounds": len(sample.rounds), "model": model_name(model),
            "behavior": record.metadata.get(BEHAVIOR)}


def portable_source(source: str | None) -> str | None:
    """An input as the user named it, but an absolute path only by its file name: the data
    travels and the path would not (the manifest's `settings` keep it, for resume)."""
    return Path(source).name if source and Path(source).is_absolute() else source


def _judged(judgment, preference: float | None = None) -> dict:
    if judgment is None:
        return {"preference": None, "judge_principle_ids": None, "position_consistent": None}
    return {"preference": judgment.preference if preference is None else preference,
            "judge_principle_ids": list(judgment.principle_ids),
            "position_consistent": judgment.position_consistent}


def pref_row(sample: Sample, model: str) -> dict:
    """(final revision ≻ first answer) of one sample."""
    return {"prompt": sample.record.conversation(), "chosen": _assistant(sample.final),
            "rejected": _assistant(sample.initial), **provenance(sample, model),
            "critique": sample.rounds[-1].critique if sample.rounds else "",
            **_judged(sample.judgment), "rejected_sample_index": None}


def ranked_pair_row(chosen: Sample, pair: RankedPair, model: str) -> dict:
    """(one sample's final ≻ another's), oriented by the judge, `preference` = P(chosen ≻ it)."""
    return {"prompt": chosen.record.conversation(), "chosen": _assistant(chosen.final),
            "rejected": _assistant(pair.rejected.final), **provenance(chosen, model),
            "critique": chosen.rounds[-1].critique if chosen.rounds else "",
            **_judged(pair.judgment, pair.preference),
            "rejected_sample_index": pair.rejected.index}


def sft_row(sample: Sample, model: str) -> dict:
    return {"messages": sample.record.conversation() + _assistant(sample.final),
            **provenance(sample, model)}


def trace_row(sample: Sample, model: str, status: str) -> dict:
    record = sample.record
    return {**provenance(sample, model), "prompt": record.prompt, "context": record.context,
            "line": record.line,
            "language": record.language, "metadata": record.metadata_json(),
            "initial": sample.initial, "initial_finish": sample.initial_finish,
            "round_details": [vars(r) for r in sample.rounds], "final": sample.final,
            "status": status, "prompt_tokens": sample.prompt_tokens,
            "output_tokens": sample.output_tokens, "cached_prompt_tokens": sample.cached_tokens,
            **_judged(sample.judgment),
            "first_position_probs": (list(sample.judgment.first_position_probs)
                                     if sample.judgment else None),
            "rank": sample.rank, "score": sample.score,
            "check_verdicts": [vars(v) for v in sample.verdicts],
            "check_retries": [vars(r) for r in sample.retries],
            "check_retry_output_tokens": sum(r.output_tokens for r in sample.retries)}


def sample_reject(sample: Sample, status: str) -> Reject:
    stage = sample.failed_stage or "pairs"
    detail = {"chosen_equals_rejected": "the revision repeats the first answer",
              "empty_response": "the first answer was empty",
              "empty_revision": "the revision was empty after cleaning"}.get(status)
    if sample.judge_reject and status == sample.judge_reject[0]:
        stage, detail = "judge", sample.judge_reject[1]
    if status == CHECK_FAILED:
        stage, detail = "checks", check_failed_detail(sample)
    if status == ECHOES_INSTRUCTION:
        stage, detail = "revise", sample.echo.detail()
    detail = detail or f"the engine could not answer at stage {stage}"
    return Reject(reason=status, detail=detail, source=sample.record.source,
                  line=sample.record.line, id=sample.record.id, stage=stage,
                  sample_index=sample.index)


def check_failed_detail(sample: Sample) -> str:
    """Which checks the final text failed, and what each said."""
    failed = "; ".join(f"{v.check}: {v.message}" for v in sample.final_check_failures)
    what = "the final revision" if sample.rounds else "the answer"
    return f"{what} fails {failed}"


def unpaired_rejects(sample: Sample) -> list[Reject]:
    """Comparisons of a ranked sample that gave no pair (identical answers, judge failures)."""
    record = sample.record
    return [Reject(reason=reason, detail=detail, source=record.source, line=record.line,
                   id=record.id, stage="judge", sample_index=sample.index)
            for reason, detail in sample.unpaired]


def reject_row(reject: Reject) -> dict:
    return {"reason": reject.reason, "detail": reject.detail, "stage": reject.stage,
            "source": portable_source(reject.source), "line": reject.line, "id": reject.id,
            "sample_index": reject.sample_index}
