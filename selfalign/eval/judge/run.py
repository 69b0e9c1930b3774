"""`selfalign eval judge`: a judge (and a reward model) scored against human-labelled pairs.

Each pair goes through the judge of `generate --feedback` (both orders, drawn principles, the
same prompt), human-chosen answer as `first`, so the figures describe the labels generate
writes. Every check that can fail on bad input runs in `plan_judge_eval`, before a model loads.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from selfalign import __version__
from selfalign.constitution import Constitution, load_constitution
from selfalign.errors import UserError
from selfalign.eval.judge.agreement import Scores, Verdict, grouped, warnings
from selfalign.eval.judge.human_pairs import HumanPair
from selfalign.eval.judge.pair_files import read_pairs, sample_pairs
from selfalign.eval.run import Judge, RewardScorer, bounded, close_engine, in_flight_limit
from selfalign.eval.settings import EngineFields
from selfalign.records import Reject
from selfalign.stable_hash import derived_seed

FORMAT = "selfalign.eval-judge/1"
PAIR_KEY = "eval-judge"  # principle draws depend on (seed, pair id) only
BACKENDS = ("vllm", "transformers")  # for a local judge; --judge-base-url means a server
# Published agreement figures to read a judge's accuracy against (see the docs page).
REFERENCE_SCALE = ("InstructGPT: labellers agreed with each other on about 73% of comparisons "
                   "(77% for held-out labellers); its 6B reward model predicted labellers' "
                   "choices about 72% of the time. Near 70% is strong; 50% is a coin.")


@dataclass(frozen=True)
class JudgeEvalSettings(EngineFields):
    """What is judged, by which judge, and how its engine runs."""

    pairs: tuple[str, ...] = ()
    principles: tuple[str, ...] = ()
    out: str = ""
    judge_model: str | None = None  # None: the embedded model (or, with a server, --model)
    judge_base_url: tuple[str, ...] = ()  # an OpenAI-compatible server judges
    model: str | None = None  # the name the server gives the judge model
    reward_model: str | None = None
    limit: int | None = None
    seed: int = 0
    subset_field: str | None = None
    judge_principles: int = 1
    judge_cot: bool = False
    max_tokens: int = 512  # of the judge's reasoning, with --judge-cot
    backend: str = "vllm"

    def __post_init__(self) -> None:
        for name in ("pairs", "principles", "judge_base_url"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.judge_base_url:
            object.__setattr__(self, "backend", "openai")
        problems = self._problems()
        if problems:
            raise UserError("invalid eval judge settings:\n  " + "\n  ".join(problems))

    def _problems(self) -> list[str]:
        problems = []
        if not self.pairs:
            problems.append("pairs: required; pass --pairs with a file or folder of "
                            "human-labelled pairs")
        if not self.principles:
            problems.append("principles: required; pass --principles with a file, folder or "
                            "manifest whose principles have a `comparison` question")
        if not self.out:
            problems.append("out: required; pass --out")
        if self.backend not in (*BACKENDS, "openai"):
            problems.append(f"backend: expected one of {', '.join(BACKENDS)}, got "
                            f"{self.backend!r}")
        if self.judge_base_url and not self.judge_name:
            problems.append("model: --judge-base-url needs --model with the name the server "
                            "gives the judge model")
        if not self.judge_base_url and self.model is not None:
            problems.append("model: --model names a served judge; pass --judge-base-url too, "
                            "or give a local judge with --judge-model")
        for name in ("limit", "judge_principles", "max_tokens", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name}: must be at least 1, got {value}")
        return problems

    @property
    def judge_name(self) -> str | None:
        """The judge model as given: a served name, a local folder or id, None for the embedded."""
        return self.model or self.judge_model

    @property
    def base_url(self) -> tuple[str, ...]:
        """The servers, under the name `make_engine` reads."""
        return self.judge_base_url

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# ---------------------------------------------------------------- checks before any model loads


@dataclass
class JudgeEvalPlan:
    settings: JudgeEvalSettings
    out: Path
    constitution: Constitution
    pairs: list[HumanPair]
    read: int  # usable pairs found, before --limit
    rejects: list[Reject]
    judge_model: str
    reward_model: str | None = None


def plan_judge_eval(settings: JudgeEvalSettings, judge: Judge,
                    resolve_judge: Callable[[str | None], str],
                    check_judge: Callable[[str], None] | None = None) -> JudgeEvalPlan:
    """Principles, pairs, judge, reward model and output folder checked; nothing heavy loaded.

    `resolve_judge` resolves the judge model (a folder, id or served name); `check_judge`
    refuses one that cannot give option log-probabilities (the CLI passes the engine's).
    """
    constitution = load_constitution(settings.principles)
    judge.check(constitution)
    found, rejects = read_pairs(settings.pairs, settings.subset_field)
    if not found:
        reasons = dict(Counter(r.reason for r in rejects))
        raise UserError(f"--pairs {', '.join(settings.pairs)}: no usable pair ({len(rejects)} "
                        f"rows rejected: {reasons}). A row needs `chosen` and `rejected` (and "
                        f"`prompt`, unless both are whole conversations or HH-RLHF transcripts)")
    out = Path(settings.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    if (out / "judge.json").exists():
        raise UserError(f"--out {out} already holds an eval of a judge (judge.json); choose "
                        f"another folder or remove that one")
    judge_model = resolve_judge(settings.judge_name)
    if check_judge is not None:
        check_judge(judge_model)
    reward_model = None
    if settings.reward_model is not None:
        from selfalign.eval.reward import check_reward_model

        reward_model = check_reward_model(settings.reward_model)
    pairs = sample_pairs(found, settings.limit, settings.seed)
    return JudgeEvalPlan(settings, out, constitution, pairs, len(found), rejects, judge_model,
                         reward_model)


# ---------------------------------------------------------------- the run


@dataclass
class JudgedPair:
    """One human-labelled pair and what the judge and the reward model made of it."""

    pair: HumanPair
    principles: tuple[str, ...] = ()
    judgment: Any = None  # a selfalign.stages.judge.Judgment
    rm_chosen: float | None = None
    rm_rejected: float | None = None
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        if self.judgment is None:
            return "not_judged"
        return None if self.judgment.preference is not None else (self.judgment.error
                                                                  or "no preference")


def run_judge_eval(plan: JudgeEvalPlan, make_engine: Callable, judge: Judge,
                   score_rewards: RewardScorer | None = None,
                   log: Callable[[str], None] = lambda message: None) -> dict:
    """Judge every pair, score it with the reward model, write judge.json and the rest."""
    from selfalign.eval.judge.report import write_judge_report

    started = time.time()
    rows = [JudgedPair(pair) for pair in plan.pairs]
    began = time.perf_counter()
    engine_info = asyncio.run(_judge_all(plan, rows, make_engine, judge))
    log(f"judge {plan.judge_model}: {sum(r.error is None for r in rows)} of {len(rows)} pairs "
        f"judged in both orders, {time.perf_counter() - began:.1f} s")
    if plan.reward_model is not None:
        if score_rewards is None:
            from selfalign.eval.reward import score_answers as score_rewards
        log(f"reward model {plan.reward_model}: scoring both answers of {len(rows)} pairs")
        _add_rewards(plan.reward_model, rows, score_rewards)
    cot = plan.settings.judge_cot
    for index, row in enumerate(rows):
        row.verdicts = verdicts_of(index, row, cot)
    result = figures_of(rows)
    failures = Counter(r.error for r in rows if r.error is not None)
    evaluation = {
        "format": FORMAT, "version": __version__, "judge": plan.judge_model,
        "reward_model": plan.reward_model,
        "pairs": {"read": plan.read + len(plan.rejects), "usable": plan.read,
                  "sampled": len(rows), "judged": len(rows) - sum(failures.values()),
                  "judge_failures": dict(sorted(failures.items()))},
        "rejects": dict(sorted(Counter(r.reason for r in plan.rejects).items())),
        **result,
        "warnings": warnings(result["overall"]),
        "reference_scale": REFERENCE_SCALE,
        "interval": "Wilson score, 95%, over pairs",
        "engine": engine_info, "principle_files": dict(plan.constitution.files),
        "settings": plan.settings.as_dict(), "started": started, "finished": time.time()}
    write_judge_report(plan.out, evaluation, rows, plan.rejects)
    return evaluation


async def _judge_all(plan: JudgeEvalPlan, rows: list[JudgedPair], make_engine: Callable,
                     judge: Judge) -> dict:
    """The engine is built inside the running loop and closed when every pair is judged."""
    settings = plan.settings
    engine = make_engine(settings, plan.judge_model)
    try:
        async def one(row: JudgedPair) -> None:
            pair = row.pair
            principles = judge.draw(plan.constitution, settings.seed, pair.id, PAIR_KEY,
                                    settings.judge_principles)
            row.principles = tuple(p.name for p in principles)
            row.judgment = await judge.compare(engine.complete, pair.conversation, pair.chosen,
                                               pair.rejected, principles,
                                               derived_seed(settings.seed, pair.id, "judge"))

        await bounded(rows, one, in_flight_limit(engine), desc="judge (both orders)")
        return engine.describe()
    finally:
        await close_engine(engine)


def _add_rewards(model: str, rows: list[JudgedPair], score: RewardScorer) -> None:
    """Both answers of every pair in one call, so the reward model loads once."""
    conversations = [r.pair.conversation for r in rows] * 2
    answers = [r.pair.chosen for r in rows] + [r.pair.rejected for r in rows]
    scores = score(model, conversations, answers)
    for row, chosen, rejected in zip(rows, scores[:len(rows)], scores[len(rows):]):
        row.rm_chosen, row.rm_rejected = float(chosen), float(rejected)


def verdicts_of(index: int, row: JudgedPair, cot: bool) -> list[Verdict]:
    """One Verdict per principle from the judgment's raw P(A)s: for each principle the judge
    asked order 1 (chosen in A) and then order 2 (chosen in B)."""
    if row.error is not None:
        return []
    from selfalign.stages.judge import COT_CLAMP

    low, high = COT_CLAMP if cot else (0.0, 1.0)
    raw = row.judgment.first_position_probs
    if len(raw) != 2 * len(row.principles):
        raise ValueError(f"{len(raw)} answers for {len(row.principles)} principles in both orders")
    verdicts = []
    for name, a_first, a_second in zip(row.principles, raw[0::2], raw[1::2]):
        label = (min(max(a_first, low), high) + min(max(1 - a_second, low), high)) / 2
        verdicts.append(Verdict(index, name, a_first, a_second, label))
    return verdicts


def figures_of(rows: list[JudgedPair]) -> dict:
    verdicts = [v for r in rows for v in r.verdicts]
    scores = [Scores(i, r.rm_chosen, r.rm_rejected) for i, r in enumerate(rows)
              if r.rm_chosen is not None and r.rm_rejected is not None]
    return grouped(verdicts, scores, {i: r.pair.subset for i, r in enumerate(rows)})
