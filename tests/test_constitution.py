"""The constitution loader: every error shape, safe YAML, merging, and the few-shot prefix."""

from pathlib import Path

import pytest

from selfalign.constitution import ConstitutionError, Problem, load_constitution

REPO = Path(__file__).resolve().parent.parent
BAD = "tests/fixtures/principles_bad"
CLARITY = "principles/helpful/clarity.yaml"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    # Problems name files relative to the working folder; pin it so messages are exact.
    monkeypatch.chdir(REPO)


def _problems(*paths) -> list[str]:
    with pytest.raises(ConstitutionError) as caught:
        load_constitution(list(paths))
    assert str(caught.value) == "\n".join(map(str, caught.value.problems))
    return [str(p) for p in caught.value.problems]


ERROR_SHAPES = [
    ("unknown_key.yaml",
     "3: critque_request: unknown key `critque_request` — did you mean `critique_request`?"),
    ("unknown_key_far.yaml",
     "4: colour: unknown key `colour`. Valid keys: kind, name, description, critique_request, "
     "revision_request, comparison, tags, weight, version, examples, checks"),
    ("empty.yaml",
     ": file is empty: expected a principle (`name`, `critique_request`, `revision_request`), "
     "an exemplar, or a constitution manifest (`principles:`)"),
    ("top_level_list.yaml",
     "1: expected a mapping (`key: value` lines) at the top level of the file, found a list"),
    ("list_item_not_mapping.yaml",
     "5: examples[0]: expected a mapping (`key: value` lines), found text `Explain DNS.`"),
    ("wrong_type.yaml", "4: weight: expected a number, found text `heavy`"),
    ("version_number.yaml",
     "4: version: expected text or a whole number, found a number (1.5); "
     "put it in quotes to keep it as text: \"1.5\""),
    ("blank_request.yaml", "2: critique_request: is empty or only whitespace: write it as text"),
    ("nonpositive_weight.yaml",
     "4: weight: must be greater than 0, found 0 (a weight is a relative drawing frequency: "
     "0.5 draws half as often as 1)"),
    ("not_kebab.yaml",
     "1: name: `Clarity Check` is not kebab-case: use lowercase letters, digits and single hyphens, "
     "like `clarity-check`"),
    ("missing_required.yaml",
     ": revision_request: missing required key `revision_request` (the user turn that asks the model "
     "to rewrite its answer so the critique no longer applies)"),
    ("python_tag.yaml",
     "2: the tag `!!python/object/apply:os.system` is not allowed: these files hold plain data "
     "(text, numbers, lists, mappings) and nothing in them is run; remove the tag"),
    ("syntax_error.yaml",
     "4: this is not valid YAML: while scanning a quoted scalar that starts on line 2, "
     "found unexpected end of stream (column 1)"),
    ("repeated_key.yaml",
     "4: name: key `name` appears twice (lines 1 and 4); YAML keeps only the last one, "
     "so delete or rename one of them"),
    ("glob_nothing.yaml",
     "2: principles[0]: `../../../principles/helpfull/*.yaml` matches no file (relative to the folder "
     "`tests/fixtures/principles_bad`); did you mean `../../../principles/helpful/*.yaml`?"),
    ("unknown_weight_name.yaml",
     "4: weights.clarty: Unknown principle 'clarty'. Did you mean: clarity? Available: clarity"),
    ("unknown_exemplar_principle.yaml",
     "2: principle: Unknown principle 'clarty'. Did you mean: clarity? Available: clarity"),
]


@pytest.mark.parametrize("fixture, expected", ERROR_SHAPES, ids=[f for f, _ in ERROR_SHAPES])
def test_error_message_shape(fixture, expected):
    # The shipped clarity principle is loaded alongside, so references to `clarity` resolve.
    extra = [] if fixture in ("glob_nothing.yaml", "unknown_weight_name.yaml") else [CLARITY]
    separator = "" if expected.startswith(":") else ":"
    assert _problems(f"{BAD}/{fixture}", *extra) == [f"{BAD}/{fixture}{separator}{expected}"]


def test_every_bad_fixture_has_a_test():
    tested = {f for f, _ in ERROR_SHAPES} | {"duplicate_names"}
    assert {p.name for p in (REPO / BAD).iterdir()} == tested


def test_duplicate_names_name_both_files():
    assert _problems(f"{BAD}/duplicate_names") == [
        f"{BAD}/duplicate_names/b.yaml:2: name: principle `clarity` is also defined in "
        f"{BAD}/duplicate_names/a.yaml:1; names must be unique, so rename one of them"]


def test_all_problems_are_collected_not_just_the_first():
    files = {problem.split(":")[0] for problem in _problems(BAD)}
    expected = {f"{BAD}/{name}" for name, _ in ERROR_SHAPES}
    assert expected | {f"{BAD}/duplicate_names/b.yaml"} <= files


def test_missing_path_suggests_the_nearest(tmp_path):
    assert _problems("principles/helpfull") == [
        "principles/helpfull: `principles/helpfull` no such file or folder (relative to the working "
        "folder); did you mean `principles/helpful`?"]


def test_yaml_tag_does_not_execute(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.yaml"
    bad.write_text(f'name: evil\ncritique_request: !!python/object/apply:os.system ["touch {marker}"]\n'
                   "revision_request: r\n")
    problems = _problems(bad)
    assert not marker.exists()
    assert problems == [f"{bad}:2: the tag `!!python/object/apply:os.system` is not allowed: these files "
                        "hold plain data (text, numbers, lists, mappings) and nothing in them is run; "
                        "remove the tag"]


def test_problem_str_leaves_out_what_is_unknown():
    assert str(Problem("a.yaml", 3, "name", "bad")) == "a.yaml:3: name: bad"
    assert str(Problem("a.yaml", None, None, "bad")) == "a.yaml: bad"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


PRINCIPLE = "name: {name}\ncritique_request: Critique {name}.\nrevision_request: Revise {name}.\n"


def test_manifest_resolves_globs_relative_to_itself_and_overrides_weights(tmp_path):
    for name in ("alpha", "beta"):
        _write(tmp_path, f"lib/{name}.yaml", PRINCIPLE.format(name=name) + "weight: 3\n")
    manifest = _write(tmp_path, "sub/c.yaml", "principles: ['../lib/*.yaml']\nweights: {beta: 0.5}\n"
                      "rounds: 2\nsystem_prompt: Be good.\n")
    constitution = load_constitution([manifest])
    assert [(p.name, p.weight) for p in constitution.principles] == [("alpha", 3.0), ("beta", 0.5)]
    assert (constitution.rounds, constitution.system_prompt) == (2, "Be good.")
    assert sorted(Path(f).name for f in constitution.files) == ["alpha.yaml", "beta.yaml", "c.yaml"]


def test_manifests_loaded_together_must_agree(tmp_path):
    _write(tmp_path, "alpha.yaml", PRINCIPLE.format(name="alpha"))
    one = _write(tmp_path, "one.yaml", "principles: [alpha.yaml]\nrounds: 1\n")
    two = _write(tmp_path, "two.yaml", "principles: [alpha.yaml]\nrounds: 2\n")
    assert _problems(one, two) == [f"{two}:2: rounds: `rounds` is 2 here but 1 in {one}; manifests loaded "
                                   "together must agree: load one of them, or make them equal"]


def test_text_is_data_not_a_template(tmp_path):
    text = "Say {0} and %s and {{ x }} and </s> verbatim."
    path = _write(tmp_path, "t.yaml", f"name: t\ncritique_request: '{text}'\nrevision_request: r\n")
    assert load_constitution([path]).principle("t").critique_request == text


def test_fewshot_messages_use_the_exemplars_principle(tmp_path):
    _write(tmp_path, "p.yaml", PRINCIPLE.format(name="p"))
    _write(tmp_path, "ex.yaml", "name: ex\nprinciple: p\nprompt: Q?\nresponse: Bad.\n"
           "critique: It is bad.\nrevision: Good.\n")
    constitution = load_constitution([tmp_path])
    assert constitution.fewshot_messages() == [
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": "Bad."},
        {"role": "user", "content": "Critique p."},
        {"role": "assistant", "content": "It is bad."},
        {"role": "user", "content": "Revise p."},
        {"role": "assistant", "content": "Good."},
    ]


def test_inline_examples_belong_to_their_principle(tmp_path):
    path = _write(tmp_path, "p.yaml", PRINCIPLE.format(name="p") + "examples:\n  - prompt: Q\n"
                  "    response: A\n    critique: C\n    revision: R\n")
    (example,) = load_constitution([path]).principle("p").examples
    assert (example.name, example.principle, example.revision) == ("p-example-1", "p", "R")


def test_unknown_principle_lookup_suggests_the_nearest():
    constitution = load_constitution(["principles/helpful"])
    with pytest.raises(ConstitutionError, match="Unknown principle 'clarty'. Did you mean: clarity?"):
        constitution.principle("clarty")


def test_shipped_library_loads_with_hashes():
    constitution = load_constitution(["constitution/3h.yaml"])
    assert len(constitution.principles) >= 22 and len(constitution.exemplars) >= 3
    principle = constitution.principle("no-fabrication")
    assert constitution.files[principle.path] == principle.sha256
    assert len(constitution.fewshot_messages()) == 6 * len(constitution.exemplars)
