"""The transformers fallback engine on the tiny random Llama: batching, rejects, options."""

import asyncio
import math

from selfalign.engine.base import Request, SamplingSettings
from selfalign.engine.transformers_engine import TransformersEngine

CONVERSATIONS = [[{"role": "user", "content": "Say something kind."}],
                 [{"role": "user", "content": "word " * 400}],
                 [{"role": "user", "content": "Keep {0} %s </s> verbatim"}]]


def complete_all(engine, requests):
    async def run():
        return await asyncio.gather(*(engine.complete(r) for r in requests))

    return asyncio.run(run())


def test_requests_in_flight_share_a_batch_and_too_long_is_one_reject(tiny_model_dir):
    engine = TransformersEngine(str(tiny_model_dir), seed=0, max_model_len=256)
    greedy = SamplingSettings(max_tokens=6, temperature=0)
    first = complete_all(engine, [Request(c, greedy) for c in CONVERSATIONS])
    assert [c.error for c in first] == [None, "too_long", None]
    assert first[0].text.strip() and first[0].output_tokens == 6
    assert first[0].finish_reason == "length"
    assert first == complete_all(engine, [Request(c, greedy) for c in CONVERSATIONS])

    sampled = SamplingSettings(max_tokens=6, temperature=1.0, top_p=1.0)
    requests = [Request(c, sampled, seed=11 + i) for i, c in enumerate(CONVERSATIONS)]
    a, b = complete_all(engine, requests), complete_all(engine, requests)
    assert [c.text for c in a] == [c.text for c in b]  # the same batch, the same draws

    judge = Request(CONVERSATIONS[:1][0], greedy, options=("A", "B"))
    (answer,) = complete_all(engine, [judge])
    assert set(answer.option_logprobs) == {"A", "B"}
    assert all(v < 0 for v in answer.option_logprobs.values())
    assert sum(math.exp(v) for v in answer.option_logprobs.values()) < 1
    assert engine.describe()["backend"] == "transformers"
    engine.close()
