"""Plain transformers `generate`, batched with left padding: for where vLLM cannot run."""

from __future__ import annotations

import time
from typing import Sequence

from selfalign.engine.base import Completion, Conversation, SamplingSettings, StageStats
from selfalign.engine.progress import stage_bar

BATCH_SIZE = 16


class TransformersEngine:
    name = "transformers"

    def __init__(self, model: str, seed: int = 0, dtype: str = "auto",
                 max_model_len: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"  # decoder-only: pad before the prompt
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.net = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(self.device)
        self.net.eval()
        self.max_model_len = max_model_len or getattr(self.net.config,
                                                      "max_position_embeddings", 2048)
        self.reseed(seed)
        self.last_stats: StageStats | None = None

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingSettings,
             desc: str = "") -> list[Completion]:
        started = time.perf_counter()
        prompts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True,
                                                      tokenize=False) for c in conversations]
        results: list[Completion] = []
        with stage_bar(total=len(prompts), stage=desc or "engine", unit="req") as bar:
            for start in range(0, len(prompts), BATCH_SIZE):
                results.extend(self._batch(prompts[start:start + BATCH_SIZE], sampling))
                bar.update(min(BATCH_SIZE, len(prompts) - start))
                out_tokens = sum(c.output_tokens for c in results)
                bar.set_postfix(tok_s=f"{out_tokens / (time.perf_counter() - started):.0f}")
        self.last_stats = StageStats(len(results), sum(c.prompt_tokens for c in results),
                                     sum(c.output_tokens for c in results),
                                     time.perf_counter() - started)
        return results

    def _batch(self, prompts: list[str], sampling: SamplingSettings) -> list[Completion]:
        import torch

        lengths = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        fits = [i for i, n in enumerate(lengths) if n < self.max_model_len]
        results = {i: Completion.failed("too_long", lengths[i])
                   for i in range(len(prompts)) if i not in fits}
        if fits:
            batch = self.tokenizer([prompts[i] for i in fits], return_tensors="pt",
                                   padding=True, add_special_tokens=False).to(self.device)
            greedy = sampling.temperature == 0
            with torch.no_grad():
                output = self.net.generate(
                    **batch, max_new_tokens=sampling.max_tokens, do_sample=not greedy,
                    temperature=None if greedy else sampling.temperature,
                    top_p=None if greedy else sampling.top_p,
                    pad_token_id=self.tokenizer.pad_token_id)
            new_tokens = output[:, batch["input_ids"].shape[1]:]
            for row, i in enumerate(fits):
                results[i] = self._completion(new_tokens[row], lengths[i], sampling.max_tokens)
        return [results[i] for i in range(len(prompts))]

    def _completion(self, tokens, prompt_tokens: int, max_tokens: int) -> Completion:
        ids = tokens.tolist()
        stop_ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        end = next((k for k, t in enumerate(ids) if t in stop_ids), None)
        kept = ids if end is None else ids[:end]
        finish = "length" if end is None and len(ids) >= max_tokens else "stop"
        return Completion(text=self.tokenizer.decode(kept, skip_special_tokens=True),
                          prompt_tokens=prompt_tokens, output_tokens=len(kept) + (end is not None),
                          finish_reason=finish)

    def reseed(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)

    def describe(self) -> dict:
        import transformers

        return {"backend": self.name, "model": self.model, "device": self.device,
                "transformers_version": transformers.__version__, "batch_size": BATCH_SIZE}

    def close(self) -> None:
        self.net = None
