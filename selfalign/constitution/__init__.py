"""Principles and constitutions: YAML files in, typed frozen objects out, with kind error messages.

Loading has three layers: `yaml_lines` (safe YAML with line numbers) → `schema_check` (the JSON
Schemas in selfalign/schemas/) → `loader` (paths, globs, manifests → dataclasses in `model`).
"""

from selfalign.constitution.loader import check_paths, load_constitution
from selfalign.constitution.model import (
    Constitution, ConstitutionError, Exemplar, Principle, Problem, summarize)

__all__ = ["Constitution", "ConstitutionError", "Exemplar", "Principle", "Problem",
           "check_paths", "load_constitution", "summarize"]
