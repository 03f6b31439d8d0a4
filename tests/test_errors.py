"""The error registry, checked: codes unique and well formed, every message says what was wrong and what to do, and
every code the code base raises, stores or documents is registered (an AST scan of qa_pipeline/ and flows/)."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest

from qa_pipeline import errors
from qa_pipeline.errors import CODES, RETIRED, Errors, IngestError, Message, QAPipelineError, Warnings

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "qa_pipeline").rglob("*.py")) + sorted((ROOT / "flows").rglob("*.py"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = re.compile(r"^[EW]\d{3}$")
# Errors whose construction sites may still pass a plain message (they get their class's registered code):
# scoring.load_rubric's messages (RubricError, E620) are being reworked with the rubric's type checks.
FREE_TEXT_OK: set[str] = set()  # exception classes allowed to take a free message (none)


class _Any:
    """Stands in for any template field, whatever its format spec."""

    def __format__(self, spec):
        return "x"

    def __repr__(self):
        return "x"


def _trees():
    for path in SOURCES:
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _error_classes() -> set[str]:
    """Names of QAPipelineError and its subclasses, in errors.py and anywhere in the code base."""
    names = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, QAPipelineError)}
    classes = [(node.name, {ast.unparse(b).split(".")[-1] for b in node.bases})
               for _, tree in _trees() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for name, bases in classes:
            if name not in names and bases & names:
                names.add(name)
                grew = True
    return names


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


# --- the registry itself


def test_codes_are_unique_and_well_formed():
    assert all(CODE.match(c) for c in CODES), [c for c in CODES if not CODE.match(c)]
    assert {c for c in CODES if c[0] == "E"} == {n for n in vars(Errors) if CODE.match(n)}
    assert {c for c in CODES if c[0] == "W"} == {n for n in vars(Warnings) if CODE.match(n)}
    assert all(isinstance(getattr(Errors if c[0] == "E" else Warnings, c), Message) for c in CODES)
    assert all(entry.code == code for code, entry in CODES.items())
    assert not set(RETIRED) & set(CODES), "a retired code is never given a new meaning"
    assert all(RETIRED[c].split()[0] in CODES or RETIRED[c].startswith("none (") for c in RETIRED), (
        "a retired code says where its meaning went, or why it has none")


def test_no_two_codes_mean_the_same():
    def shape(text: str) -> str:  # the template with its fields blanked
        return re.sub(r"\{[^}]*\}", "{}", text).lower().strip()

    seen: dict[str, str] = {}
    for code, entry in CODES.items():
        key = shape(entry.problem)
        assert key not in seen, f"{code} and {seen[key]} describe the same problem: {entry.problem!r}"
        seen[key] = code


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_message_says_what_was_wrong_and_what_to_do(code):
    entry = CODES[code]
    assert entry.problem.strip() and entry.action.strip(), code
    assert entry.action.strip() != entry.problem.strip()
    assert len(entry.action.split()) >= 2, f"{code}: {entry.action!r} does not say what to do"
    text = entry.format(**{f: _Any() for f in entry.fields})
    assert "{" not in text and "}" not in text, text  # every field filled
    assert text.startswith(entry.problem.split("{")[0])


def test_warnings_keep_their_stored_flag_text():
    """calls.flags holds these strings: changing one would split old and new calls."""
    assert errors.W_SILENT == "W001 silent: no speech found"
    assert errors.W_DECLARED_STEREO_IS_MONO == "W002 declared stereo, file is mono"
    assert errors.W_DUAL_MONO == "W003 both channels carry the same signal: handled as mono"
    assert errors.W_UNKNOWN_AGENT == "W004 unknown agent"
    assert errors.W_MISSING_METADATA == "W005 missing metadata"
    assert errors.W_LOW_ROLE_CONFIDENCE == "W006 low-confidence role decision"
    assert errors.W_DECLARED_MONO_IS_STEREO == "W007 declared mono, file is stereo"


# --- the exceptions


def test_an_error_carries_code_stage_and_the_filled_message():
    err = IngestError(Errors.E104, path="/calls/a.wav", when="before it could be read")
    assert (err.code, err.stage) == ("E104", "ingest")
    assert str(err).startswith("/calls/a.wav: the file disappeared before it could be read; check that")
    back = pickle.loads(pickle.dumps(err))  # errors cross process boundaries (Dask workers)
    assert (type(back), back.code, back.stage, str(back)) == (IngestError, "E104", "ingest", str(err))
    moved = err.located("config x.yaml")
    assert (type(moved), moved.code, str(moved)) == (IngestError, "E104", f"config x.yaml: {err}")


def test_a_template_missing_a_field_still_gives_a_message():
    err = IngestError(Errors.E104, path="a.wav")  # `when` forgotten: the failure must not turn into a KeyError
    assert err.code == "E104" and "a.wav" in str(err)


def test_fields_need_a_registry_entry():
    with pytest.raises(TypeError):
        QAPipelineError("plain text", path="x")


def test_an_unexpected_exception_is_recorded_as_e999(tmp_path):
    from qa_pipeline.pipeline.runner import record_failure
    from qa_pipeline.store.folder import read_dataset

    record_failure(tmp_path, "a.wav", ZeroDivisionError("division by zero"))
    (row,) = read_dataset(tmp_path, "failures").to_pylist()
    assert row["error_code"] == "E999" and row["stage"] == "pipeline"
    assert row["message"].startswith("unexpected ZeroDivisionError: division by zero; this is a bug")


# --- the code base uses registered codes only


def test_every_code_in_the_code_base_is_registered():
    found = []
    for path, tree in _trees():
        retired_dict = set()
        if path.name == "errors.py":
            retired_dict = {id(k) for n in ast.walk(tree) if isinstance(n, ast.Dict) for k in n.keys}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
                if node.value not in CODES and id(node) not in retired_dict:
                    found.append(f"{_where(path, node)} {node.value!r}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id in ("Errors", "Warnings") and CODE.match(node.attr):
                if node.attr not in CODES or not node.attr.startswith("E" if node.value.id == "Errors" else "W"):
                    found.append(f"{_where(path, node)} {node.value.id}.{node.attr}")
    assert not found, "unregistered codes (add them to qa_pipeline/errors.py):\n" + "\n".join(found)


def test_every_raise_site_takes_its_code_and_message_from_the_registry():
    classes = _error_classes()
    bad = []
    for path, tree in _trees():
        if path.name == "errors.py":
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func).split(".")[-1]
            if name not in classes:
                continue
            first = node.args[0] if node.args else None
            keywords = {k.arg for k in node.keywords}
            if "code" in keywords:
                bad.append(f"{_where(path, node)} {name}(..., code=...): use the registry entry, Errors.Exxx")
            if not (isinstance(first, ast.Attribute) and ast.unparse(first).startswith("Errors.")):
                if name not in FREE_TEXT_OK:
                    bad.append(f"{_where(path, node)} {name}({ast.unparse(first) if first else ''}...): "
                               "raise with an Errors.Exxx entry and its fields")
                continue
            entry = CODES.get(first.attr)
            if entry is None or None in keywords:  # unregistered (reported above) or **fields
                continue
            given = keywords - {"stage"}
            if given != entry.fields:
                bad.append(f"{_where(path, node)} {first.attr} needs fields {sorted(entry.fields)}, "
                           f"given {sorted(given)}")
    assert not bad, "\n".join(bad)


def test_class_level_codes_are_registered():
    bad = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and [ast.unparse(t) for t in stmt.targets] == ["code"]:
                        value = ast.literal_eval(stmt.value)
                        if value not in CODES:
                            bad.append(f"{_where(path, stmt)} {node.name}.code = {value!r}")
    assert not bad, bad


def test_the_docs_mention_registered_codes_only():
    bad = []
    for doc in DOCS:
        for m in re.finditer(r"\b[EW]\d{3}\b", doc.read_text(encoding="utf-8")):
            if m.group(0) not in CODES:
                bad.append(f"{doc.relative_to(ROOT)}: {m.group(0)}")
    assert not bad, bad
