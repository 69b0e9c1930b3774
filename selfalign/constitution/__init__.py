"""Principles and constitutions: YAML files in, typed frozen objects out, with kind error messages.

Loading has three layers: `selfalign.yaml_lines` (safe YAML with line numbers) →
`selfalign.schema_check` (the JSON Schemas in selfalign/schemas/; both shared with every settings
file) → `loader` (paths, globs, manifests → dataclasses in `model`).
"""

from selfalign.constitution.loader import check_paths, load_constitution
from selfalign.constitution.model import (
    Constitution, ConstitutionError, Exemplar, Principle, Problem, summarize)

__all__ = ["Constitution", "ConstitutionError", "Exemplar", "Principle", "Problem",
           "check_paths", "load_constitution", "summarize"]
