"""`checks:` in principle files and manifests: built by the checks registry, refused with the
file, the line, the field and the nearest valid name; the JSON Schema made from the registry."""

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from selfalign.checks import build_check, check_kinds
from selfalign.checks.schema import SCHEMA_DIR, SCHEMA_FILES, check_schema, with_checks
from selfalign.cli import main
from selfalign.constitution import ConstitutionError, load_constitution

REPO = Path(__file__).resolve().parent.parent
# The registry's kinds in its own order: every "Unknown check kind" message lists them.
ALL_KINDS = ", ".join(check_kinds())
PRINCIPLE = """name: brief
critique_request: Too long?
revision_request: Shorter, please.
checks:
{checks}"""
MANIFEST = """principles: [p.yaml]
checks:
  - kind: regex
    pattern: "(?i)as an ai"
    must: not_match
"""


def write(folder: Path, checks: str) -> Path:
    path = folder / "p.yaml"
    path.write_text(PRINCIPLE.format(checks=checks))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConstitutionError) as caught:
        load_constitution([path])
    return [str(p).removeprefix(f"{path}:") for p in caught.value.problems]


def test_a_principle_and_its_manifest_carry_their_checks(tmp_path):
    write(tmp_path, "  - kind: length_constraints:number_words\n"
                    "    relation: less than\n    num_words: 40\n")
    (tmp_path / "c.yaml").write_text(MANIFEST)
    constitution = load_constitution([tmp_path / "c.yaml"])
    (principle,) = constitution.principles
    assert [c.spec() for c in principle.checks] == [
        {"kind": "length_constraints:number_words", "relation": "less than", "num_words": 40}]
    assert [c.spec() for c in constitution.checks] == [
        {"kind": "regex", "pattern": "(?i)as an ai", "must": "not_match"}]
    # Built, not only parsed: 39 words pass, 40 do not.
    assert principle.checks[0].verify("w " * 39, "").passed
    assert not principle.checks[0].verify("w " * 40, "").passed


def test_the_same_manifest_check_twice_applies_once(tmp_path):
    write(tmp_path, "  - kind: regex\n    pattern: x\n")
    (tmp_path / "c.yaml").write_text(MANIFEST)
    (tmp_path / "d.yaml").write_text(MANIFEST)
    constitution = load_constitution([tmp_path / "c.yaml", tmp_path / "d.yaml"])
    assert len(constitution.checks) == 1


WRONG = [
    ("  - kind: length_constraints:number_word\n    relation: less than\n    num_words: 40\n",
     "5: checks[0].kind: Unknown check kind 'length_constraints:number_word'. Did you mean: "
     "length_constraints:number_words? Available: " + ALL_KINDS),
    ("  - kind: length_constraints:number_words\n    relation: less than\n    num_wrds: 40\n",
     "7: checks[0].num_wrds: Unknown argument 'num_wrds' of length_constraints:number_words. "
     "Did you mean: num_words? Available: relation, num_words"),
    ("  - kind: length_constraints:number_words\n    relation: less than\n    num_words: forty\n",
     "7: checks[0].num_words: 'forty' is not a whole number"),
    ("  - kind: length_constraints:number_words\n    relation: fewer than\n    num_words: 4\n",
     "6: checks[0].relation: 'fewer than' is not one of: 'less than', 'at least'"),
    ("  - kind: length_constraints:number_words\n    relation: less than\n    num_words: 0\n",
     "7: checks[0].num_words: 0 is below the minimum 1"),
    ("  - kind: length_constraints:number_words\n    relation: less than\n",
     "5: checks[0].num_words: length_constraints:number_words needs `num_words` (the bound)"),
    ("  - kind: regex\n    pattern: '(unclosed'\n",
     "6: checks[0].pattern: not a valid regular expression: missing ), unterminated subpattern "
     "at position 0"),
    ("  - pattern: x\n", "5: checks[0]: a check needs `kind:` (see `selfalign checks list`)"),
    ("  - regex\n", "5: checks[0]: expected a mapping (`key: value` lines), found text `regex`"),
    ("  kind: regex\n", "4: checks: expected a list (`- item` lines), found a mapping"),
]


@pytest.mark.parametrize("checks, expected", WRONG)
def test_a_wrong_check_is_one_problem_at_its_line(tmp_path, checks, expected):
    assert problems(write(tmp_path, checks)) == [expected]


def test_a_wrong_manifest_check_names_the_manifest(tmp_path):
    write(tmp_path, "  - kind: regex\n    pattern: x\n")
    manifest = tmp_path / "c.yaml"
    manifest.write_text(MANIFEST.replace("must: not_match", "mustn't: match"))
    assert problems(manifest) == [
        "5: checks[0].mustn't: Unknown argument 'mustn't' of regex. Did you mean: must? "
        "Available: pattern, must"]


def test_validate_and_generate_refuse_a_typo_before_any_model_loads(tmp_path):
    path = write(tmp_path, "  - kind: regx\n    pattern: x\n")
    expected = (f"{path}:5: checks[0].kind: Unknown check kind 'regx'. Did you mean: regex? "
                f"Available: {ALL_KINDS}")
    validated = CliRunner().invoke(main, ["validate", str(path)])
    assert validated.exit_code == 1 and validated.stdout == expected + "\n"
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    generated = CliRunner().invoke(main, ["generate", "--principles", str(path), "--prompts",
                                          str(prompts), "--out", str(tmp_path / "out"),
                                          "--model", str(tmp_path / "no-model-here")])
    assert generated.exit_code == 2 and expected in generated.output
    assert "Traceback" not in generated.output and not (tmp_path / "out").exists()


def test_the_shipped_example_principle_checks_its_length():
    (principle,) = load_constitution([REPO / "principles/checked/brief.yaml"]).principles
    assert [c.spec() for c in principle.checks] == [
        {"kind": "length_constraints:number_words", "relation": "less than", "num_words": 40}]


# -- the JSON Schema editors read ---------------------------------------------------------------

@pytest.mark.parametrize("kind", SCHEMA_FILES)
def test_schema_files_carry_the_registry_check_schema(kind):
    on_disk = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
    assert on_disk["$defs"]["check"] == check_schema(), (
        "the checks registry changed: run `python -m selfalign.checks.schema`")
    assert with_checks(on_disk, kind) == on_disk


def test_an_editor_with_the_schema_sees_the_same_rules():
    validator = jsonschema.Draft202012Validator(
        json.loads((SCHEMA_DIR / "principle.schema.json").read_text()))
    base = {"name": "x", "critique_request": "c", "revision_request": "r"}

    def refused(check: dict) -> list[str]:
        return [e.validator for e in validator.iter_errors({**base, "checks": [check]})]

    good = {"kind": "length_constraints:number_words", "relation": "at least", "num_words": 1}
    assert refused(good) == [] and build_check(good).args["num_words"] == 1
    assert refused({"kind": "regex", "pattern": "x"}) == []
    assert refused({"kind": "regx", "pattern": "x"}) == ["enum"]
    assert refused({**good, "num_wrds": 3}) == ["additionalProperties"]
    assert refused({**good, "num_words": 0}) == ["minimum"]
    assert refused({**good, "num_words": "4"}) == ["type"]
    assert refused({**good, "relation": "fewer than"}) == ["enum"]
    assert refused({"kind": "regex"}) == ["required"]
