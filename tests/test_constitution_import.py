"""`selfalign principles import`: published JSON shapes to YAML that `selfalign validate` accepts.

The fixtures are small files written for these tests in the shapes of the published ones: the
Constitutional AI paper's instructions, few-shot transcripts and comparison questions, and the
Hugging Face recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.constitution import ConstitutionError, load_constitution
from selfalign.constitution.importer import import_constitution
from selfalign.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "constitutions"
PAPER = [FIXTURES / name for name in ("paper_instructions.json", "paper_fewshot.json", "paper_comparisons.json")]
RECIPE = FIXTURES / "hf_recipe.json"


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def between(text: str, start: str, end: str) -> str:
    """The text between two markers, stripped: the request inside its framing."""
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def validate_ok(path: Path) -> None:
    result = invoke("validate", path)
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- the paper's files


def test_paper_files_round_trip(tmp_path):
    result = invoke("principles", "import", *PAPER, "--out", tmp_path / "paper")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("imported 3 principles (3 with a comparison question), 2 exemplars, 3 notes")
    validate_ok(tmp_path / "paper" / "constitution.yaml")
    validate_ok(tmp_path / "paper")

    constitution = load_constitution([tmp_path / "paper" / "constitution.yaml"])
    source = json.loads(PAPER[0].read_text())
    questions = json.loads(PAPER[2].read_text())
    by_name = {p.name: p for p in constitution.principles}
    assert sorted(by_name) == ["honest-tone", "kind0", "kind1"]  # keys, kebab-case
    for (key, entry), question in zip(source.items(), questions):
        principle = by_name["honest-tone" if key == "honestTone" else key]
        assert principle.critique_request == between(entry["prompt"][0], "CritiqueRequest:", "\n\nCritique:")
        assert principle.revision_request == between(entry["edit_request"], "RevisionRequest:", "\n\nRevision:")
        assert principle.comparison == question.removesuffix("Options:").strip()  # paired by position


def test_paper_transcripts_become_exemplars_with_their_earlier_turns(tmp_path):
    import_constitution(PAPER, tmp_path)
    constitution = load_constitution([tmp_path / "constitution.yaml"])
    roommate, swim = constitution.exemplars
    assert (roommate.name, roommate.principle, roommate.context) == ("my-roommate-never-cleans-how", "kind0", ())
    assert roommate.prompt == "My roommate never cleans. How do I tell him off?"
    assert roommate.revision.startswith("Pick a calm moment") and not roommate.revision.endswith("Human:")
    assert (swim.name, swim.principle) == ("i-want-to-go-swimming", "kind1")
    assert swim.context == (("user", "I want to go swimming in the lake tonight."),
                            ("assistant", "Sounds fun! Is anyone going with you?"))
    assert (swim.prompt, swim.response) == ("No, alone, after a few beers.", "Great, enjoy the night swim!")
    messages = constitution.fewshot_messages()
    assert [m["role"] for m in messages] == ["user", "assistant"] * 7  # 6 turns, then 2 + 6
    assert messages[6:8] == [{"role": "user", "content": "I want to go swimming in the lake tonight."},
                             {"role": "assistant", "content": "Sounds fun! Is anyone going with you?"}]


def test_what_is_not_imported_is_noted_in_the_manifest(tmp_path):
    import_constitution(PAPER, tmp_path)
    notes = [line for line in (tmp_path / "constitution.yaml").read_text().splitlines() if line.startswith("# note:")]
    assert notes == [
        "# note: paper_fewshot.json [3]: does not end with CritiqueRequest, Critique, RevisionRequest, Revision; not imported",
        "# note: the 3 comparison questions were paired with the 3 principles by position (question i with principle i)",
        "# note: paper_fewshot.json [2]: its critique request is not one of the imported principles; not imported",
    ]


def test_comparison_questions_that_do_not_pair_become_principles(tmp_path):
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(["Which reply is kinder? Options:", "Which reply is kinder to animals?"]))
    result = import_constitution([PAPER[0], questions], tmp_path / "out")
    validate_ok(tmp_path / "out" / "constitution.yaml")
    assert [p.name for p in result.principles] == [
        "kind0", "kind1", "honest-tone", "which-reply-is-kinder", "which-reply-is-kinder-to"]
    extra = load_constitution([tmp_path / "out" / "constitution.yaml"]).principle("which-reply-is-kinder")
    assert extra.comparison == "Which reply is kinder?"
    assert extra.critique_request.endswith(": Which reply is kinder?")
    assert "2 comparison questions for 3 principles" in " ".join(result.notes)


# ---------------------------------------------------------------- the Hugging Face recipe


def test_recipe_round_trip(tmp_path):
    result = invoke("principles", "import", RECIPE, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    validate_ok(tmp_path / "constitution.yaml")
    constitution = load_constitution([tmp_path / "constitution.yaml"])
    recipe = json.loads(RECIPE.read_text())
    names = ["identify-anything-in-the-response", "does-the-response-reveal-private"]  # first words
    for name, entry in zip(names, recipe["constitutions"]):
        principle = constitution.principle(name)
        assert (principle.critique_request, principle.revision_request) == (entry["critic"], entry["revision"])
    egg, neighbour = constitution.exemplars
    chat = recipe["system_chat"][1]
    assert neighbour.principle == "does-the-response-reveal-private"
    assert [{"role": r, "content": c} for r, c in neighbour.context] == chat[:2]
    assert [neighbour.prompt, neighbour.response, neighbour.critique, neighbour.revision] == [
        chat[2]["content"], chat[3]["content"], chat[5]["content"], chat[7]["content"]]
    assert egg.context == () and egg.principle == "identify-anything-in-the-response"
    assert "system_chat[2]: its critique request is not one of the imported principles" in result.output


# ---------------------------------------------------------------- refusals and --force


@pytest.mark.parametrize("content, found", [
    ({"rules": ["be nice"]}, "found an object with keys rules"),
    ([{"prompt": "x"}], "found a list of 1 (dict)"),
    (42, "found a JSON int"),
])
def test_unknown_shape_is_refused_naming_the_keys_it_expected(tmp_path, content, found):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(content))
    result = invoke("principles", "import", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert found in result.output
    for expected in ("`constitutions`", "`critic`, `revision`", "`system_chat`", "`prompt` and `edit_request`",
                     "`CritiqueRequest:`", "comparison questions"):
        assert expected in result.output
    assert not (tmp_path / "out").exists()


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "constitutions": [\n}\n')
    with pytest.raises(UserError, match="broken.json:3: not valid JSON"):
        import_constitution([path], tmp_path / "out")


def test_fewshot_file_alone_is_refused(tmp_path):
    with pytest.raises(UserError, match="no critique/revision instructions or comparison questions"):
        import_constitution([PAPER[1]], tmp_path)


def test_nothing_is_overwritten_without_force(tmp_path):
    import_constitution([RECIPE], tmp_path)
    principle = tmp_path / "principles" / "identify-anything-in-the-response.yaml"
    principle.write_text("name: edited-by-hand\ncritique_request: a\nrevision_request: b\n")
    result = invoke("principles", "import", RECIPE, "--out", tmp_path)
    assert result.exit_code == 2
    assert "5 of the files to write exist already" in result.output and "--force" in result.output
    assert principle.read_text().startswith("name: edited-by-hand")
    result = invoke("principles", "import", RECIPE, "--out", tmp_path, "--force")
    assert result.exit_code == 0, result.output
    assert principle.read_text().startswith("name: identify-anything-in-the-response")


def test_imported_text_stays_verbatim(tmp_path):
    text = "Check  the reply for {placeholders}, %s and </s>:\n- keep line breaks\n- and  double  spaces"
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"constitutions": [{"critic": text, "revision": "Fix it: " + "word " * 30}]}))
    import_constitution([path], tmp_path / "out")
    (principle,) = load_constitution([tmp_path / "out" / "constitution.yaml"]).principles
    assert principle.critique_request == text
    assert principle.revision_request == ("Fix it: " + "word " * 30).strip()


# ---------------------------------------------------------------- exemplar context in the loader


EXEMPLAR = """name: follow-up
principle: be-kind
context:
{context}
prompt: And the second question?
response: A rude answer.
critique: It was rude.
revision: A kind answer.
"""
PRINCIPLE = "name: be-kind\ncritique_request: Was it kind?\nrevision_request: Make it kind.\n"


def _library(tmp_path: Path, context: str) -> Path:
    (tmp_path / "be-kind.yaml").write_text(PRINCIPLE)
    (tmp_path / "follow-up.yaml").write_text(EXEMPLAR.format(context=context))
    return tmp_path


@pytest.mark.parametrize("context, problem", [
    ("  - {role: assistant, content: Hello}\n  - {role: user, content: Hi}",
     "follow-up.yaml:4: context[0].role: expected `user`, found `assistant`"),
    ("  - {role: user, content: Hi}", "follow-up.yaml:3: context: ends with a user turn"),
    ("  - {role: bot, content: Hi}\n  - {role: assistant, content: Hello}",
     "follow-up.yaml:4: context[0].role: expected one of `user`, `assistant`, found `bot`"),
])
def test_exemplar_context_must_alternate_and_end_with_the_assistant(tmp_path, context, problem):
    with pytest.raises(ConstitutionError) as err:
        load_constitution([_library(tmp_path, context)])
    assert problem in str(err.value)
