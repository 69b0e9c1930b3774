"""How the vLLM engine turns a request into SamplingParams, checked without starting an engine."""

from selfalign.engine.base import Request, SamplingSettings
from selfalign.engine.vllm_engine import VLLMEngine

MESSAGES = [{"role": "user", "content": "a"}]


def test_sampled_requests_carry_their_own_seed_and_greedy_ones_none():
    engine = object.__new__(VLLMEngine)  # no engine: only the parameter building is under test
    sampled = engine._params(Request(MESSAGES, SamplingSettings(max_tokens=8, temperature=0.7),
                                     seed=123))
    greedy = engine._params(Request(MESSAGES, SamplingSettings(temperature=0), seed=123))
    unseeded = engine._params(Request(MESSAGES, SamplingSettings(temperature=0.7)))
    assert (sampled.seed, sampled.max_tokens, sampled.temperature) == (123, 8, 0.7)
    assert greedy.seed is None and unseeded.seed is None


def test_options_ask_for_exactly_the_option_tokens():
    engine = object.__new__(VLLMEngine)
    engine.option_token_ids = lambda options: [49, 50]
    params = engine._params(Request(MESSAGES, SamplingSettings(), options=("A", "B")))
    assert params.max_tokens == 1 and params.temperature == 0
    assert params.logprob_token_ids == [49, 50]
