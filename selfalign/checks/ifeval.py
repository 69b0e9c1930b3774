"""IFEval's 25 verifiable instructions (arXiv 2311.07911), in IFEval's group order, and its
input format (`instruction_id_list` + one `kwargs` mapping per id).

Each IFEval group is a module of this package named after it (`length_constraints.py` holds
`length_constraints:*`), with IFEval's own ids, argument names and meanings.
"""

from __future__ import annotations

from selfalign.checks import (change_case, combination, detectable_content, detectable_format,
                              keywords, language, length_constraints, punctuation, startend)

KINDS = (*keywords.KINDS, *language.KINDS, *length_constraints.KINDS,
         *detectable_content.KINDS, *detectable_format.KINDS, *combination.KINDS,
         *startend.KINDS, *change_case.KINDS, *punctuation.KINDS)
