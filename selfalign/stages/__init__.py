"""Stages: what one sample asks the engine next, and how the answer is read back into it.

A stage never opens a file and never waits for another sample; the flow in
`selfalign.generate.flow` strings them together per conversation.
"""

from selfalign.stages.answer import answer_request, take_answer
from selfalign.stages.critique import critique_request, take_critique
from selfalign.stages.revise import revise_request, take_revision
from selfalign.stages.sample import Round, Sample

__all__ = ["answer_request", "take_answer", "critique_request", "take_critique",
           "revise_request", "take_revision", "Sample", "Round"]
