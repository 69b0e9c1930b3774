"""The eval run: checks, both models' answers (one engine at a time), judgments, the report.

With `--checks-only` no judge is built: both models answer and their answers are scored with the
principles' checks only. With `--ifeval FILE` both models also answer that file's prompts, which
are scored with their own instructions and never judged; with `--xstest`, XSTest's prompts, whose
safety figures are reported by prompt type. Either alone needs no --prompts, and then no judge.

Every check that can fail on bad input runs in `plan_eval`, before any model loads. Then each
model answers every prompt with all requests in flight at once (the engine batches them); the
engine is closed before the next model's is built, and the judge reuses the engine of the model
it is (the baseline by default) so no checkpoint is loaded twice.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence

from tqdm.auto import tqdm

from selfalign import __version__
from selfalign.constitution import Constitution, Principle, load_constitution
from selfalign.engine.base import Completion, Engine, Request, SamplingSettings
from selfalign.errors import UserError
from selfalign.eval.checks import checks_block, has_checks, score_checks
from selfalign.eval.ifeval import InstructedPrompt, ifeval_figures, load_ifeval
from selfalign.eval.outcomes import outcome_of
from selfalign.eval.refusal import expected_of
from selfalign.eval.results import MODEL_ROLES, PromptResult, figures
from selfalign.eval.safety import safety_block
from selfalign.eval.settings import EvalSettings
from selfalign.eval.xstest import load_xstest, xstest_block
from selfalign.prompts.behavior import BehaviorRule
from selfalign.prompts.sources import (PREPARED_REPORT, FieldMap, prepared_splits,
                                       read_prompts)
from selfalign.records import PromptRecord, Reject
from selfalign.stable_hash import derived_seed

FORMAT = "selfalign.eval/1"
ANSWER_STAGE = "eval-answer"
PREPARED_DEFAULT_SPLIT = "test"
PAIR_KEY = "eval"  # principle draws depend on (seed, prompt), not on which models are compared
IN_FLIGHT_PER_CAPACITY = 4  # requests kept open per request the engine can run at once

EngineFactory = Callable[[EvalSettings, str], Engine]
RewardScorer = Callable[[str, list[list[dict]], list[str]], list[float]]


# ---------------------------------------------------------------- the judge, injectable


@dataclass(frozen=True)
class Judge:
    """The AI judge an eval asks.

    `compare(ask, context, first, second, principles, seed)` returns a Judgment (preference =
    P(first ≻ second) over both orders); `draw(constitution, seed, prompt_id, pair_key, n)` picks
    the comparison principles; `check(constitution)` raises UserError if it cannot judge under it.
    """

    compare: Callable[..., Awaitable[Any]]
    draw: Callable[[Constitution, int, str, str, int], list[Principle]]
    check: Callable[[Constitution], None]


def constitution_judge(cot: bool = False, max_tokens: int = 256) -> Judge:
    """The judge of `selfalign.stages.judge`, imported only now."""
    try:
        from selfalign.stages import judge as stage
    except ImportError as err:
        raise UserError(f"this installation has no AI judge (selfalign.stages.judge: {err}); "
                        f"`selfalign eval` needs it") from None

    cot_sampling = SamplingSettings(max_tokens=max_tokens, temperature=0.0) if cot else None

    async def compare(ask, context, first, second, principles, seed):
        return await stage.judge_pair(ask, context, first, second, principles, seed,
                                      cot=cot, cot_sampling=cot_sampling)

    return Judge(compare=compare, draw=stage.draw_comparison_principles,
                 check=stage.check_judge_ready)


# ---------------------------------------------------------------- checks before any model loads


@dataclass
class EvalPlan:
    """What was checked and resolved before any model loads."""

    settings: EvalSettings
    out: Path
    constitution: Constitution
    records: list[PromptRecord]
    models: dict[str, str | None]  # candidate, baseline, judge → resolved model (judge: None
    # with --checks-only)
    read_rejects: dict[str, int] = field(default_factory=dict)
    reward_model: str | None = None
    ifeval: list[InstructedPrompt] = field(default_factory=list)
    xstest: list[PromptRecord] = field(default_factory=list)

    @property
    def same_model(self) -> bool:
        return self.models["candidate"] == self.models["baseline"]


def plan_eval(settings: EvalSettings, resolve_model: Callable[[str | None], str],
              judge: Judge, check_judge: Callable[[str], None] | None = None) -> EvalPlan:
    """Check principles, prompts, models, reward model and output folder; load nothing heavy.

    `check_judge` refuses a judge model that cannot give option log-probabilities (the CLI
    passes the engine module's, as generate does), before either model answers a prompt.
    """
    constitution = NO_PRINCIPLES
    records, rejects = [], {}
    if settings.prompts:
        constitution = load_constitution(settings.principles)
        judge.check(constitution)
        records, rejects = load_eval_prompts(settings)
        _check_something_to_score(settings, constitution, records)
    ifeval = load_ifeval(settings.ifeval) if settings.ifeval else []
    xstest = load_xstest() if settings.xstest else []
    models = resolve_models(settings, resolve_model)
    if check_judge is not None and settings.needs_judge:
        check_judge(models["judge"])
    reward_model = None
    if settings.reward_model is not None:
        from selfalign.eval.reward import check_reward_model

        reward_model = check_reward_model(settings.reward_model)
    out = Path(settings.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    if (out / "eval.json").exists():
        raise UserError(f"--out {out} already holds an eval (eval.json); choose another folder "
                        f"or remove that one")
    return EvalPlan(settings, out, constitution, records, models, rejects, reward_model, ifeval,
                    xstest)


# --xstest or --ifeval alone: no principles, nothing judged or checked.
NO_PRINCIPLES = Constitution(principles=(), exemplars=(), system_prompt=None, rounds=None, files={})


def _check_something_to_score(settings: EvalSettings, constitution: Constitution,
                              records: list[PromptRecord]) -> None:
    """Without a judge, the prompts need checks, another prompt set, or expected behaviours."""
    if not settings.checks_only or has_checks(constitution) or settings.ifeval or settings.xstest:
        return
    if any(expected_of(r.metadata, settings.harmful_categories) for r in records):
        return
    raise UserError(f"--checks-only: no principle of --principles {', '.join(settings.principles)} "
                    f"lists `checks:`, no prompt of --prompts says whether it should be answered "
                    f"or declined (a `behavior`, `benign` or XSTest `label` column, or a harmful "
                    f"`category`), and neither --ifeval nor --xstest was given, so there is "
                    f"nothing to score without a judge")


def resolve_models(settings: EvalSettings,
                   resolve_model: Callable[[str | None], str]) -> dict[str, str | None]:
    """Local folders and ids checked as generate checks them; behind --backend openai, each
    model's servers must answer and serve it (checked as generate checks its servers). With
    --checks-only there is no judge to resolve."""
    if settings.backend == "openai":
        if settings.baseline is None:
            raise UserError("--backend openai: pass --baseline with the name the server gives the "
                            "baseline model (the embedded default is not served)")
        from selfalign.engine.openai_engine import check_servers

        def served_by(role: str) -> Callable[[str | None], str]:
            return lambda model: check_servers(list(settings.urls_of(role)), model,
                                               settings.api_key_env,
                                               timeout=min(settings.request_timeout, 30.0))

        return {"candidate": _resolved(served_by("candidate"), "--model", settings.model),
                "baseline": _resolved(served_by("baseline"), "--baseline", settings.baseline),
                "judge": None if not settings.needs_judge else _resolved(
                    served_by("judge"), "--judge-model", settings.judge_model or settings.baseline)}
    candidate = _resolved(resolve_model, "--model", settings.model)
    baseline = _resolved(resolve_model, "--baseline", settings.baseline)
    judge = (None if not settings.needs_judge else baseline if settings.judge_model is None
             else _resolved(resolve_model, "--judge-model", settings.judge_model))
    return {"candidate": candidate, "baseline": baseline, "judge": judge}


def _resolved(resolve_model: Callable[[str | None], str], flag: str, model: str | None) -> str:
    """resolve_model's answer, its messages naming the flag the model came from."""
    try:
        return resolve_model(model)
    except UserError as err:
        message = str(err)
        if message.startswith("--model "):
            message = flag + message[len("--model"):]
        raise UserError(message) from None


def load_eval_prompts(settings: EvalSettings) -> tuple[list[PromptRecord], dict[str, int]]:
    """The prompts to evaluate on, and the count of unusable rows by reason.

    A prepared folder gives its `test` split unless --split names another; any other input gives
    every row, or the rows of --split if given (from a `split` column).
    """
    # Prompts are marked by the harmful categories eval counts refusals by, so `when:` on a
    # check and the answers' `behavior` column agree with the refusal figures.
    fields = FieldMap(settings.text_field, settings.id_field, settings.user_field,
                      behavior=BehaviorRule(harmful_categories=tuple(settings.harmful_categories)))
    records: list[PromptRecord] = []
    rejects: Counter[str] = Counter()
    for path in settings.prompts:
        prepared = path != "-" and (Path(path) / PREPARED_REPORT).is_file()
        split = settings.split or (PREPARED_DEFAULT_SPLIT if prepared else None)
        found: Counter[str] = Counter()
        for item in read_prompts([path], fields):
            if isinstance(item, Reject):
                rejects[item.reason] += 1
                continue
            found[item.split] += 1
            if split is None or item.split == split:
                records.append(item)
        if split is not None and found[split] == 0:
            raise UserError(_empty_split_message(path, split, found, prepared))
        if settings.limit is not None and len(records) >= settings.limit:
            break
    if settings.limit is not None:
        records = records[:settings.limit]
    if not records:
        raise UserError(f"--prompts {', '.join(settings.prompts)}: no usable prompts "
                        f"({sum(rejects.values())} rows rejected: {dict(rejects)})")
    return records, dict(sorted(rejects.items()))


def _empty_split_message(path: str, split: str, found: Counter, prepared: bool) -> str:
    if prepared:
        listed = prepared_splits(Path(path))
        have = ", ".join(f"{name} {found.get(name, 0)}" for name in listed) or "none"
        return (f"--prompts {path}: the '{split}' split is empty (rows per split: {have}). "
                f"Choose one with --split, or run `selfalign prompts prepare` again with a "
                f"share for {split} in --splits")
    have = ", ".join(f"{name} {n}" for name, n in sorted(found.items())) or "none"
    return (f"--prompts {path}: no rows in split '{split}' (rows per split: {have}); "
            f"leave --split out to use every row")


# ---------------------------------------------------------------- the run


def run_eval(plan: EvalPlan, make_engine: EngineFactory, judge: Judge,
             score_rewards: RewardScorer | None = None,
             log: Callable[[str], None] = lambda message: None) -> dict:
    """Answer, judge, score and write eval.json, answers.parquet, report.md and the plots."""
    from selfalign.eval.report import write_report

    started = time.time()
    results = [PromptResult(record) for record in plan.records]
    xstest = [PromptResult(record) for record in plan.xstest]
    ifeval_answers: dict[str, list[Completion]] = {}
    engines = asyncio.run(_answer_and_judge(plan, results, make_engine, judge, log,
                                            ifeval_answers, xstest))
    settings = plan.settings
    score_checks(results, plan.constitution, judge.draw, settings.seed, PAIR_KEY,
                 settings.judge_principles)
    if plan.reward_model is not None:
        if score_rewards is None:
            from selfalign.eval.reward import score_answers as score_rewards
        log(f"reward model {plan.reward_model}: scoring both answers of {len(results)} prompts")
        _add_rewards(plan.reward_model, results, score_rewards)
    evaluation = {"format": FORMAT, "version": __version__,
                  "candidate": plan.models["candidate"], "baseline": plan.models["baseline"],
                  "judge": plan.models["judge"], "same_model": plan.same_model,
                  "checks_only": not settings.needs_judge,
                  **figures(results, settings.harmful_categories),
                  "checks": checks_block(results),
                  "safety": safety_block(results, settings.harmful_categories),
                  "ifeval": _ifeval_block(plan, ifeval_answers),
                  "xstest": xstest_block(xstest, settings.harmful_categories) if xstest else None,
                  "tie_band": plan.settings.tie_band,
                  "interval": "Wilson score, 95%, over judged prompts; a tie counts as half a win",
                  "read_rejects": plan.read_rejects,
                  "tokens": _tokens(results),
                  "engines": engines,
                  "principle_files": dict(plan.constitution.files),
                  "settings": plan.settings.as_dict(),
                  "started": started, "finished": time.time()}
    write_report(plan.out, evaluation, results, xstest)
    return evaluation


async def _answer_and_judge(plan: EvalPlan, results: list[PromptResult],
                            make_engine: EngineFactory, judge: Judge,
                            log: Callable[[str], None],
                            ifeval_answers: dict[str, list[Completion]],
                            xstest: list[PromptResult]) -> dict[str, dict]:
    """Engines are built here, inside the running loop, one at a time; the judge's not at all
    without one. Each model's answers to the --ifeval prompts go to `ifeval_answers`, those to
    XSTest's into `xstest`."""
    engines = _EngineSlot(make_engine, plan.settings)
    asked = plan.records + [r.record for r in xstest] + [p.record for p in plan.ifeval]
    try:
        for role in answer_order(plan):
            engine = await engines.get(role, plan.models[role])
            began = time.perf_counter()
            completions = await collect_answers(engine, asked, role, plan.settings)
            for result, completion in zip(results + xstest, completions):
                setattr(result, role, completion)
            ifeval_answers[role] = completions[len(results) + len(xstest):]
            log(f"{role} {plan.models[role]}: {len(completions)} answers"
                + _extra_sets(plan) + f", {sum(c.output_tokens for c in completions)} tokens, "
                f"{sum(1 for c in completions if c.error)} failed, "
                f"{time.perf_counter() - began:.1f} s")
        if not plan.settings.needs_judge:
            return engines.described
        engine = await engines.get("judge", plan.models["judge"])
        began = time.perf_counter()
        await judge_all(engine, results, plan, judge)
        judged = sum(1 for r in results if r.outcome)
        log(f"judge {plan.models['judge']}: {judged} of {len(results)} pairs judged in both "
            f"orders, {time.perf_counter() - began:.1f} s")
    finally:
        await engines.close()
    return engines.described


def _extra_sets(plan: EvalPlan) -> str:
    sets = [f"{n} to {name} prompts" for n, name in ((len(plan.xstest), "XSTest"),
                                                     (len(plan.ifeval), "--ifeval")) if n]
    return f" ({' and '.join(sets)})" if sets else ""


def _ifeval_block(plan: EvalPlan, answers: dict[str, list[Completion]]) -> dict | None:
    if not plan.ifeval:
        return None
    return {"file": plan.settings.ifeval, "prompts": len(plan.ifeval),
            "instructions": sum(len(p.checks) for p in plan.ifeval),
            "interval": "Wilson score, 95%",
            **{role: ifeval_figures(plan.ifeval, answers[role]) for role in MODEL_ROLES}}


def answer_order(plan: EvalPlan) -> list[str]:
    """Candidate then baseline, unless the judge is the candidate: then the candidate answers
    last, and its engine stays up for judging."""
    settings = plan.settings
    judge_key = (plan.models["judge"], settings.urls_of("judge"))
    if (judge_key == (plan.models["candidate"], settings.urls_of("candidate"))
            and judge_key != (plan.models["baseline"], settings.urls_of("baseline"))):
        return ["baseline", "candidate"]
    return list(MODEL_ROLES)


class _EngineSlot:
    """Holds one engine at a time: built on first need, closed before another model's is built."""

    def __init__(self, make_engine: EngineFactory, settings: EvalSettings) -> None:
        self.make_engine, self.settings = make_engine, settings
        self.engine: Engine | None = None
        self.key: tuple | None = None
        self.described: dict[str, dict] = {}

    async def get(self, role: str, model: str) -> Engine:
        key = (model, self.settings.urls_of(role))
        if key != self.key:
            await self.close()
            self.engine = self.make_engine(self.settings.for_role(role), model)
            self.key = key
        self.described[role] = self.engine.describe()
        return self.engine

    async def close(self) -> None:
        engine, self.engine, self.key = self.engine, None, None
        if engine is not None:
            await close_engine(engine)


async def close_engine(engine: Engine) -> None:
    """Close an engine whose `close` may or may not be a coroutine."""
    closed = engine.close()
    if inspect.isawaitable(closed):
        await closed


async def bounded(items: Sequence, work: Callable[[Any], Awaitable[Any]], limit: int,
                  desc: str = "") -> list:
    """`work` over every item as asyncio tasks, at most `limit` at a time, results in order.

    If one fails (the engine broke), the others are cancelled before the error goes up. A
    progress bar shows on a terminal only.
    """
    semaphore = asyncio.Semaphore(limit)
    bar = tqdm(total=len(items), desc=desc, unit="req", file=sys.stderr, disable=None,
               dynamic_ncols=True)

    async def guarded(item):
        async with semaphore:
            result = await work(item)
        bar.update(1)
        return result

    tasks = [asyncio.create_task(guarded(item)) for item in items]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        bar.close()


def in_flight_limit(engine: Engine) -> int:
    return IN_FLIGHT_PER_CAPACITY * max(1, int(getattr(engine, "capacity", 1) or 1))


async def collect_answers(engine: Engine, records: list[PromptRecord], role: str,
                          settings: EvalSettings) -> list[Completion]:
    """One model's answer to every prompt, all requests in flight at once."""
    sampling = SamplingSettings(settings.max_tokens, settings.temperature, settings.top_p)

    async def answer(record: PromptRecord) -> Completion:
        request = Request(record.conversation(), sampling,
                          seed=derived_seed(settings.seed, record.id, role), stage=ANSWER_STAGE)
        completion = await engine.complete(request)
        if completion.error is None:
            completion = _stripped(completion)
        return completion

    return await bounded(records, answer, in_flight_limit(engine), desc=f"{role} answers")


def _stripped(completion: Completion) -> Completion:
    return replace(completion, text=completion.text.strip())


async def judge_all(engine: Engine, results: list[PromptResult], plan: EvalPlan,
                    judge: Judge) -> None:
    """Judge every pair whose two answers exist, candidate as `first`; fill in the outcomes."""
    settings = plan.settings

    async def one(result: PromptResult) -> None:
        missing = [role for role in MODEL_ROLES if not result.answered(role)]
        if missing:
            role = missing[0]
            result.skipped = f"{role}:{result.answer(role).error}"
            return
        record = result.record
        result.principles = tuple(judge.draw(plan.constitution, settings.seed, record.id,
                                             PAIR_KEY, settings.judge_principles))
        result.judgment = await judge.compare(
            engine.complete, record.conversation(), result.candidate.text, result.baseline.text,
            list(result.principles), derived_seed(settings.seed, record.id, "judge"))
        judgment = result.judgment
        if judgment.preference is None:
            result.skipped = f"judge:{judgment.error or 'no preference'}"
        else:
            result.outcome = outcome_of(judgment.preference, judgment.position_consistent,
                                        settings.tie_band)

    await bounded(results, one, in_flight_limit(engine), desc="judge (both orders)")


def _add_rewards(model: str, results: list[PromptResult], score: RewardScorer) -> None:
    """Each answered prompt's two answers scored by the reward model, in one call per model."""
    for role in MODEL_ROLES:
        answered = [r for r in results if r.answered(role)]
        scores = score(model, [r.record.conversation() for r in answered],
                       [r.answer(role).text for r in answered])
        for result, reward in zip(answered, scores):
            setattr(result, f"{role}_reward", float(reward))


def _tokens(results: Iterable[PromptResult]) -> dict:
    results = list(results)
    totals = {}
    for role in MODEL_ROLES:
        answers = [r.answer(role) for r in results if r.answer(role) is not None]
        totals[role] = {"prompt": sum(a.prompt_tokens for a in answers),
                        "output": sum(a.output_tokens for a in answers)}
    judgments = [r.judgment for r in results if r.judgment is not None]
    totals["judge"] = {"prompt": sum(getattr(j, "prompt_tokens", 0) for j in judgments),
                       "output": sum(getattr(j, "output_tokens", 0) for j in judgments)}
    return totals
