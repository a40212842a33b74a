"""The tests are sound: the reference gets full marks, a blank notebook zero, every known mistake
loses points where it should, and correct solutions written differently keep full marks."""
import pytest

from tests import batches, notebooks
from tests.conftest import mutant_module, selected_assignments

IDS = [spec.id for spec in selected_assignments()]

# Graded with the other tests' notebooks of the same assignment (tests/batches.py).
for _spec in selected_assignments():
    batches.want(_spec.id, "reference", lambda spec=_spec: spec.master)
    batches.want(_spec.id, "blank", lambda spec=_spec: spec.student)
    for _item in [*mutant_module(_spec.id).MUTANTS, *mutant_module(_spec.id).VARIANTS]:
        batches.want(_spec.id, _item.name,
                     lambda spec=_spec, item=_item: notebooks.with_replacements(spec.id, item.replace))


@pytest.fixture(scope="session")
def soundness_results(graded_batches):
    """{assignment: {label: result}} for the reference, the blank notebook, mutants and variants."""
    return graded_batches


def cases(kind):
    return [(a, item) for a in IDS for item in getattr(mutant_module(a), kind)]


def explain(result):
    lines = [f"{result['file']}: {result['total']}/{result['possible']} ({result['status']})"]
    for q, data in sorted(result["questions"].items()):
        for case in data["cases"]:
            if not case["passed"]:
                lines.append(f"  {q}/{case['name']}: {case['message'][:300]}")
    return "\n".join(lines)


@pytest.mark.parametrize("assignment", IDS)
def test_reference_gets_full_marks(soundness_results, assignment):
    result = soundness_results[assignment]["reference"]
    assert result["status"] == "Completed", explain(result)
    assert result["total"] == result["possible"] > 0, explain(result)


@pytest.mark.parametrize("assignment", IDS)
def test_blank_notebook_gets_zero(soundness_results, assignment):
    result = soundness_results[assignment]["blank"]
    assert result["total"] == 0, explain(result)


@pytest.mark.parametrize("assignment", IDS)
def test_enough_mutants(assignment):
    minimum = 10 if assignment == "ssm_forward_cpu" else 8
    assert len(mutant_module(assignment).MUTANTS) >= minimum


@pytest.mark.parametrize("assignment,mutant", cases("MUTANTS"), ids=lambda x: getattr(x, "name", x))
def test_mutant_loses_points(soundness_results, assignment, mutant):
    result = soundness_results[assignment][mutant.name]
    for question in mutant.loses:
        q = result["questions"][question]
        assert q["score"] < q["possible"], f"{mutant.why}: {question} kept full marks\n" + explain(result)
    messages = " | ".join(c["message"] for q in result["questions"].values() for c in q["cases"])
    assert mutant.says in messages, f"feedback should name the mistake ({mutant.says!r}):\n" + explain(result)
    for question in mutant.keeps:
        q = result["questions"][question]
        assert q["score"] == q["possible"], f"{mutant.why}: {question} lost points\n" + explain(result)


@pytest.mark.parametrize("assignment,variant", cases("VARIANTS"), ids=lambda x: getattr(x, "name", x))
def test_variant_gets_full_marks(soundness_results, assignment, variant):
    result = soundness_results[assignment][variant.name]
    assert result["total"] == result["possible"], f"{variant.why}\n" + explain(result)
