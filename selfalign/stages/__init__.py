"""Stages: pure functions from a batch of samples to the same batch, given an engine.

None of them opens a file; the runner owns I/O. Each makes exactly one engine call.
"""

from selfalign.stages.critique import critique
from selfalign.stages.generate import generate
from selfalign.stages.revise import revise
from selfalign.stages.sample import Round, Sample

__all__ = ["generate", "critique", "revise", "Sample", "Round"]
