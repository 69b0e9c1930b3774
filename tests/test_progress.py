"""The run's progress line: plain status lines when stderr is not a terminal."""

import io

from selfalign.engine.base import Completion, Request, SamplingSettings
from selfalign.generate.progress import RunProgress
from selfalign.records import PromptRecord
from selfalign.stages.sample import Sample


def test_plain_status_lines_count_prompts_pairs_and_requests_per_stage():
    stream = io.StringIO()  # not a terminal: no carriage-return redraws
    progress = RunProgress(total=3, stream=stream, interval=0)
    answer = Request([{"role": "user", "content": "q"}], SamplingSettings(), stage="answer")
    critique = Request([{"role": "user", "content": "q"}], SamplingSettings(),
                       stage="critique r1")
    progress.request_sent(answer)
    progress.request_sent(critique)
    progress.request_done(answer, Completion("a", output_tokens=7))
    sample = Sample(PromptRecord(id="p", prompt="q"), 0, initial="first", initial_finish="stop")
    progress.skipped(1)
    progress.prompt_done([sample])  # final == initial: no pair
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert "in flight/done: answer 0/1, critique 1/0" in lines[0]
    assert lines[-1].split("] ", 1)[1].startswith("prompts 2/3, pairs 0, ")
    assert progress.output_tokens == 7


def test_plain_lines_come_each_tenth_of_the_prompts_between_the_timed_ones():
    stream = io.StringIO()
    progress = RunProgress(total=20, stream=stream, interval=3600)  # no timed line in this test
    progress.last_shown = progress.started  # as if a line had just been printed
    for n in range(20):
        progress.prompt_done([Sample(PromptRecord(id=f"p{n}", prompt="q"), 0, initial="a",
                                     initial_finish="stop")])
    progress.close()
    done = [line.split("prompts ", 1)[1].split(",")[0] for line in stream.getvalue().splitlines()]
    assert done == [f"{n}/20" for n in range(2, 21, 2)]  # each tenth; close repeats nothing
