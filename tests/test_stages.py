"""The requests each conversation sends, pinned turn by turn, on the scripted stand-in engine."""

import asyncio

from selfalign.constitution import load_constitution
from selfalign.engine.base import SamplingSettings
from selfalign.generate.flow import Recipe, run_prompt
from selfalign.records import PromptRecord

from run_helpers import write_constitution
from scripted_engine import ScriptedEngine

EXEMPLAR_TURNS = [
    {"role": "user", "content": "EX-PROMPT"},
    {"role": "assistant", "content": "EX-RESPONSE"},
    {"role": "user", "content": "CRIT-A Did the answer break rule A?"},
    {"role": "assistant", "content": "EX-CRITIQUE"},
    {"role": "user", "content": "REV-A Rewrite it to follow rule A."},
    {"role": "assistant", "content": "EX-REVISION"},
]
SYS = {"role": "system", "content": "SYS"}


def run_flow(tmp_path, rounds=1, prompts=("What is 2+2?",), samples=1, records=None,
             **engine_kw):
    constitution = load_constitution([write_constitution(tmp_path, rounds=rounds)])
    engine = ScriptedEngine(**engine_kw)
    recipe = Recipe(constitution, SamplingSettings(), seed=7, rounds=rounds, samples=samples)
    records = records or [PromptRecord(id=f"id{i}", prompt=p) for i, p in enumerate(prompts)]

    async def everything():
        groups = await asyncio.gather(*(run_prompt(r, recipe, engine.complete)
                                        for r in records))
        return [s for group in groups for s in group]

    return asyncio.run(everything()), engine, constitution


def stages(engine):
    return [request.stage for request in engine.calls]


def test_one_round_sends_exact_conversations(tmp_path):
    samples, engine, constitution = run_flow(tmp_path)
    drawn = constitution.draw(7, "id0", 1)
    crit = {"role": "user", "content": drawn.critique_request}
    rev = {"role": "user", "content": drawn.revision_request}
    user = {"role": "user", "content": "What is 2+2?"}
    first = {"role": "assistant", "content": "first answer to: What is 2+2?"}
    critique_text = {"role": "assistant", "content": "critique of: first answer to: What is 2+2?"}
    assert stages(engine) == ["answer", "critique r1", "revise r1"]
    # The first answer sees no exemplars; critique and revision put the shared prefix first.
    assert engine.calls[0].messages == [SYS, user]
    assert engine.calls[1].messages == [SYS, *EXEMPLAR_TURNS, user, first, crit]
    assert engine.calls[2].messages == [SYS, *EXEMPLAR_TURNS, user, first, crit, critique_text,
                                        rev]
    sample = samples[0]
    assert sample.initial == "first answer to: What is 2+2?"
    assert sample.rounds[0].principle == drawn.name
    assert sample.rounds[0].raw_revision.startswith("Sure, here is a revised response:")
    assert sample.final == "revised(first answer to: What is 2+2?)"


def test_second_round_continues_the_conversation_with_a_fresh_draw(tmp_path):
    samples, engine, constitution = run_flow(tmp_path, rounds=2)
    assert stages(engine) == ["answer", "critique r1", "revise r1", "critique r2", "revise r2"]
    round2 = engine.calls[3].messages
    assert round2[-1]["content"] == constitution.draw(7, "id0", 2).critique_request
    assert round2[-2] == {"role": "assistant",
                          "content": "revised(first answer to: What is 2+2?)"}
    assert samples[0].final == "revised(revised(first answer to: What is 2+2?))"
    assert [r.principle for r in samples[0].rounds] == [constitution.draw(7, "id0", r).name
                                                        for r in (1, 2)]


def test_samples_multiply_and_every_conversation_is_in_flight_at_once(tmp_path):
    samples, engine, _ = run_flow(tmp_path, prompts=("a", "b", "c"), samples=2)
    assert [(s.record.id, s.index) for s in samples] == [
        ("id0", 0), ("id0", 1), ("id1", 0), ("id1", 1), ("id2", 0), ("id2", 1)]
    assert stages(engine).count("answer") == 6 and stages(engine).count("revise r1") == 6
    assert engine.most_in_flight == 6  # all six first answers were asked together


def test_a_conversation_goes_on_without_waiting_for_a_slow_one(tmp_path):
    # "slow" takes 0.5 s for its first answer; "fast" must finish all three turns meanwhile.
    def delay(request):
        return 0.5 if request.stage == "answer" and "slow" in request.messages[-1]["content"] \
            else 0.0

    samples, engine, _ = run_flow(tmp_path, prompts=("slow", "fast"), delay=delay)
    order = [(r.stage, r.messages[1]["content"] if r.stage == "answer" else None)
             for r in engine.calls]
    assert order[:2] == [("answer", "slow"), ("answer", "fast")]
    fast_done = [r.stage for r in engine.calls[2:4]]
    assert fast_done == ["critique r1", "revise r1"]  # fast's later turns came before slow's
    assert all(s.final.startswith("revised(") for s in samples)


def test_a_failed_request_ends_that_conversation_only(tmp_path):
    samples, engine, _ = run_flow(tmp_path, prompts=("ok", "TOO-LONG here"))
    assert sorted(stages(engine)) == ["answer", "answer", "critique r1", "revise r1"]
    assert samples[1].failure == "too_long" and samples[1].failed_stage == "generate"
    assert samples[0].alive and samples[0].final == "revised(first answer to: ok)"


def test_request_seeds_depend_only_on_which_request_it_is(tmp_path):
    _, first, _ = run_flow(tmp_path / "a", prompts=("x", "y"))
    _, second, _ = run_flow(tmp_path / "b", prompts=("y",),
                            records=[PromptRecord(id="id1", prompt="y")])
    seeds = {(r.stage, r.messages[1]["content"] if r.stage == "answer" else None): r.seed
             for r in first.calls}
    alone = {r.stage: r.seed for r in second.calls}
    assert alone["answer"] == seeds[("answer", "y")]  # the same with or without "x" beside it
    assert len({r.seed for r in first.calls}) == 6  # every request of the run differs


def test_template_like_text_reaches_the_engine_verbatim(tmp_path):
    text = "Fill {{ name }} and {0} and %s then </s> <|im_end|>"
    samples, engine, _ = run_flow(tmp_path, prompts=(text,))
    assert engine.calls[0].messages[-1]["content"] == text
    assert samples[0].final == f"revised(first answer to: {text})"
