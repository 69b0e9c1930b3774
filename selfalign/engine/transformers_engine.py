"""Plain transformers `generate`, for machines where vLLM cannot run.

Requests arrive one at a time; a worker thread takes whatever is waiting (up to BATCH_SIZE
requests with the same sampling settings), generates them as one left-padded batch, and answers
each. Multiple-choice requests (`options`) are one forward pass: the log-probability of each
option token at the first answer position. Sampling is seeded per batch (from its requests'
seeds), so it repeats for the same batches but, unlike vLLM, not across batch make-ups.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from selfalign.engine.base import Completion, EngineFailure, Request, option_token_ids
from selfalign.engine.provenance import model_name
from selfalign.stable_hash import derived_seed

BATCH_SIZE = 16


class TransformersEngine:
    name = "transformers"

    def __init__(self, model: str, seed: int = 0, dtype: str = "auto",
                 max_model_len: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model
        self.seed = seed
        self.capacity = BATCH_SIZE
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
        self._waiting: deque[tuple[Request, asyncio.Future, asyncio.AbstractEventLoop]] = deque()
        self._lock = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False

    # -- the Engine protocol -------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, daemon=True,
                                                name="selfalign-transformers")
                self._worker.start()
            self._waiting.append((request, future, loop))
            self._lock.notify()
        return await future

    def describe(self) -> dict:
        import transformers

        return {"backend": self.name, "model": model_name(self.model), "device": self.device,
                "transformers_version": transformers.__version__, "batch_size": BATCH_SIZE}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        if self._worker is not None:
            self._worker.join(timeout=60)
        self.net = None

    # -- the worker thread ---------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                batch = self._take_batch()
            try:
                results = self._run(batch)
            except Exception as err:  # noqa: BLE001 - a broken model fails every caller
                failure = EngineFailure(f"the transformers engine failed: {err}")
                results = [failure] * len(batch)
            for (_, future, loop), result in zip(batch, results):
                loop.call_soon_threadsafe(_settle, future, result)

    def _take_batch(self) -> list:
        """The oldest request and up to BATCH_SIZE - 1 waiting ones that run the same way."""
        first = self._waiting.popleft()
        key = _batch_key(first[0])
        batch, keep = [first], deque()
        while self._waiting and len(batch) < BATCH_SIZE:
            item = self._waiting.popleft()
            (batch if _batch_key(item[0]) == key else keep).append(item)
        self._waiting.extendleft(reversed(keep))
        return batch

    def _run(self, batch: list) -> list[Completion]:
        requests = [request for request, _, _ in batch]
        prompts = [self.tokenizer.apply_chat_template(r.messages, add_generation_prompt=True,
                                                      tokenize=False) for r in requests]
        lengths = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        results: dict[int, Completion] = {i: Completion.failed("too_long", n)
                                          for i, n in enumerate(lengths)
                                          if n >= self.max_model_len}
        fits = [i for i in range(len(requests)) if i not in results]
        if fits:
            tokens = self.tokenizer([prompts[i] for i in fits], return_tensors="pt",
                                    padding=True, add_special_tokens=False).to(self.device)
            run = self._options if requests[0].options else self._generate
            for i, completion in zip(fits, run(tokens, [requests[i] for i in fits],
                                               [lengths[i] for i in fits])):
                results[i] = completion
        return [results[i] for i in range(len(requests))]

    def _generate(self, tokens, requests: list[Request], lengths: list[int]) -> list[Completion]:
        import torch

        sampling = requests[0].sampling
        greedy = sampling.temperature == 0
        torch.manual_seed(derived_seed(self.seed, *(r.seed for r in requests)))
        with torch.no_grad():
            output = self.net.generate(
                **tokens, max_new_tokens=sampling.max_tokens, do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                pad_token_id=self.tokenizer.pad_token_id)
        new_tokens = output[:, tokens["input_ids"].shape[1]:]
        return [self._completion(new_tokens[row], n, sampling.max_tokens)
                for row, n in enumerate(lengths)]

    def _options(self, tokens, requests: list[Request], lengths: list[int]) -> list[Completion]:
        import torch

        options = requests[0].options
        ids = option_token_ids(self.tokenizer, options, self.model)
        with torch.no_grad():
            logits = self.net(**tokens).logits[:, -1, :].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        results = []
        for row, n in enumerate(lengths):
            values = {o: float(logprobs[row, i]) for o, i in zip(options, ids)}
            best = int(torch.argmax(logprobs[row]))
            results.append(Completion(text=self.tokenizer.decode([best]), prompt_tokens=n,
                                      output_tokens=1, finish_reason="length",
                                      option_logprobs=values))
        return results

    def _completion(self, tokens, prompt_tokens: int, max_tokens: int) -> Completion:
        ids = tokens.tolist()
        stop_ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        end = next((k for k, t in enumerate(ids) if t in stop_ids), None)
        kept = ids if end is None else ids[:end]
        finish = "length" if end is None and len(ids) >= max_tokens else "stop"
        return Completion(text=self.tokenizer.decode(kept, skip_special_tokens=True),
                          prompt_tokens=prompt_tokens, output_tokens=len(kept) + (end is not None),
                          finish_reason=finish)


def _batch_key(request: Request) -> tuple:
    return (request.options, None) if request.options else ((), request.sampling)


def _settle(future: asyncio.Future, result) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
