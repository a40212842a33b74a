"""The result dataclasses read and write exactly the saved JSON; statuses are typed, their text is
presentation; one constructor records a test that did not run."""
import json
from types import SimpleNamespace

import pytest

from autograder.report import align_gpu_exclusions, status_text
from autograder.results import (
    NOT_RUN_PREFIX,
    CaseResult,
    Outcome,
    QuestionResult,
    Status,
    SubmissionResult,
    outcome_of,
)

# Results saved by `python -m autograder grade ssm_forward_cpu ...` (output_tail shortened): a
# completed row with notes, a row whose notebook ran out of time, and a zip file that never ran.
PARTIAL = r'''{
 "assignment": "ssm_forward_cpu",
 "notebook": "/tmp/seqmod-judge-x/submission.ipynb",
 "isolation": "namespaces",
 "device": "cpu",
 "questions": {
  "q1": {
   "score": 4.0,
   "possible": 4.0,
   "cases": [
    {
     "name": "test_homework_examples",
     "points": 1.0,
     "hidden": false,
     "passed": true,
     "message": "passed",
     "seconds": 0.005
    },
    {
     "name": "test_direct_term_first",
     "points": 1.0,
     "hidden": false,
     "passed": true,
     "message": "passed",
     "seconds": 0.002
    },
    {
     "name": "test_kernel_fresh_systems",
     "points": 2.0,
     "hidden": true,
     "passed": true,
     "message": "passed",
     "seconds": 0.011
    }
   ]
  },
  "q2": {
   "score": 4.0,
   "possible": 4.0,
   "cases": [
    {
     "name": "test_follows_recurrence",
     "points": 1.0,
     "hidden": false,
     "passed": true,
     "message": "passed",
     "seconds": 0.004
    },
    {
     "name": "test_unrolled_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": true,
     "message": "passed",
     "seconds": 0.023
    }
   ]
  },
  "q3": {
   "score": 0.0,
   "possible": 5.0,
   "cases": [
    {
     "name": "test_kernel_is_powers",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "`make_conv_kernel`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.001
    },
    {
     "name": "test_kernel_fresh_inputs",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "`make_conv_kernel`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.001
    },
    {
     "name": "test_kernel_doubling",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "`make_conv_kernel`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.007
    }
   ]
  },
  "q4": {
   "score": 0.0,
   "possible": 6.0,
   "cases": [
    {
     "name": "test_agrees_with_unrolled",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "`conv_ssm_forward`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.002
    },
    {
     "name": "test_conv_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": false,
     "message": "`conv_ssm_forward`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.002
    },
    {
     "name": "test_conv_no_time_loop",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "`conv_ssm_forward`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.007
    }
   ]
  },
  "q9": {
   "score": 0.0,
   "possible": 6.0,
   "cases": [
    {
     "name": "test_low_rank_examples",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "`low_rank_ssm_kernel`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.001
    },
    {
     "name": "test_low_rank_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": false,
     "message": "`low_rank_ssm_kernel`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.001
    },
    {
     "name": "test_low_rank_never_forms_A",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "`low_rank_ssm_kernel`: it returned None: the function is still a stub (replace `...` with your code).",
     "seconds": 0.005
    }
   ]
  }
 },
 "status": "Completed (2 cell(s) raised errors)",
 "gpu_policy": "exclude",
 "cell_errors": [
  {
   "cell": 11,
   "error": "TypeError: unsupported operand type(s) for -: 'Tensor' and 'NoneType'"
  },
  {
   "cell": 15,
   "error": "TypeError: unsupported operand type(s) for -: 'NoneType' and 'Tensor'"
  }
 ],
 "output_tail": "(grader.check is skipped while grading)\n",
 "integrity": {
  "review": false,
  "accepted": false,
  "voided": [],
  "notes": [],
  "hits": []
 },
 "notebook_seconds": 0.34,
 "total": 8.0,
 "possible": 25.0,
 "seconds": 0.72,
 "skipped": [],
 "started_at": 1796305935.8053694,
 "returned_at": 1796305936.5307035,
 "file": "partial.ipynb",
 "source": "/tmp/r1mix/partial.ipynb",
 "key": "c87106c14cb0386aa4c79110e4186802f25fb20aa9b61e70fd908df85a36ebe9",
 "reused": false
}'''

TIMED_OUT = r'''{
 "assignment": "ssm_forward_cpu",
 "notebook": "/tmp/seqmod-judge-x/submission.ipynb",
 "isolation": "namespaces",
 "device": "cpu",
 "questions": {
  "q1": {
   "score": 0.0,
   "possible": 4.0,
   "cases": [
    {
     "name": "test_homework_examples",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_direct_term_first",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_kernel_fresh_systems",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: timeout after 15 s"
    }
   ]
  },
  "q2": {
   "score": 0.0,
   "possible": 4.0,
   "cases": [
    {
     "name": "test_follows_recurrence",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_unrolled_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": false,
     "message": "not run: timeout after 15 s"
    }
   ]
  },
  "q3": {
   "score": 0.0,
   "possible": 5.0,
   "cases": [
    {
     "name": "test_kernel_is_powers",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_kernel_fresh_inputs",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_kernel_doubling",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: timeout after 15 s"
    }
   ]
  },
  "q4": {
   "score": 0.0,
   "possible": 6.0,
   "cases": [
    {
     "name": "test_agrees_with_unrolled",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_conv_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_conv_no_time_loop",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: timeout after 15 s"
    }
   ]
  },
  "q9": {
   "score": 0.0,
   "possible": 6.0,
   "cases": [
    {
     "name": "test_low_rank_examples",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_low_rank_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": false,
     "message": "not run: timeout after 15 s"
    },
    {
     "name": "test_low_rank_never_forms_A",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: timeout after 15 s"
    }
   ]
  }
 },
 "status": "timeout after 15 s",
 "gpu_policy": "exclude",
 "cell_errors": [],
 "output_tail": "",
 "integrity": {
  "review": false,
  "accepted": false,
  "voided": [],
  "notes": [],
  "hits": []
 },
 "total": 0.0,
 "possible": 25.0,
 "seconds": 15.02,
 "skipped": [],
 "started_at": 1796305936.9350502,
 "returned_at": 1796305951.9655278,
 "file": "spin.ipynb",
 "source": "/tmp/r1mix/spin.ipynb",
 "key": "d331d7b31f3ef88bd70a0fd0d24e8af03df7e71c1d6f353ca3dab0496a3e8417",
 "reused": false
}'''

NOT_A_ZIP = r'''{
 "assignment": "ssm_forward_cpu",
 "status": "not a zip file: no end-of-central-directory record (not a zip file, or cut short)",
 "total": 0.0,
 "gpu_policy": "exclude",
 "possible": 25.0,
 "questions": {
  "q1": {
   "score": 0.0,
   "possible": 4.0,
   "cases": [
    {
     "name": "test_homework_examples",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_direct_term_first",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_kernel_fresh_systems",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    }
   ]
  },
  "q2": {
   "score": 0.0,
   "possible": 4.0,
   "cases": [
    {
     "name": "test_follows_recurrence",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_unrolled_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    }
   ]
  },
  "q3": {
   "score": 0.0,
   "possible": 5.0,
   "cases": [
    {
     "name": "test_kernel_is_powers",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_kernel_fresh_inputs",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_kernel_doubling",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    }
   ]
  },
  "q4": {
   "score": 0.0,
   "possible": 6.0,
   "cases": [
    {
     "name": "test_agrees_with_unrolled",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_conv_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_conv_no_time_loop",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    }
   ]
  },
  "q9": {
   "score": 0.0,
   "possible": 6.0,
   "cases": [
    {
     "name": "test_low_rank_examples",
     "points": 1.0,
     "hidden": false,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_low_rank_fresh_inputs",
     "points": 3.0,
     "hidden": true,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    },
    {
     "name": "test_low_rank_never_forms_A",
     "points": 2.0,
     "hidden": true,
     "passed": false,
     "message": "not run: not a zip file: no end-of-central-directory record (not a zip file, or cut short)"
    }
   ]
  }
 },
 "cell_errors": [],
 "skipped": [],
 "file": "bad.zip",
 "source": "/tmp/r1mix/bad.zip",
 "key": "f092b9d16a7ceda17d8c6294cad78e05a3fb0321707d36e7302496905d24eb61",
 "reused": false
}'''

JUDGED = {"partial": PARTIAL, "timed_out": TIMED_OUT}


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(JUDGED))
def test_a_judged_result_round_trips_to_the_same_bytes(name):
    text = JUDGED[name]
    result = SubmissionResult.from_dict(json.loads(text))
    assert json.dumps(result.to_dict(), indent=1) == text


def test_an_unrunnable_result_round_trips_to_the_same_dict():
    saved = json.loads(NOT_A_ZIP)
    result = SubmissionResult.from_dict(saved)
    assert result.to_dict() == saved
    assert result.outcome.status is Status.FAILED
    assert not any(case.reached for case in result.all_cases())


def test_fields_are_typed_after_reading():
    result = SubmissionResult.from_dict(json.loads(PARTIAL))
    assert result.outcome == Outcome(Status.COMPLETED_WITH_NOTES, "2 cell(s) raised errors")
    assert isinstance(result.questions["q1"], QuestionResult)
    first = result.questions["q1"].cases[0]
    assert isinstance(first, CaseResult) and first.passed and first.reached and first.seconds == 0.005
    assert (result.total, result.possible, result.file) == (8.0, 25.0, "partial.ipynb")


def test_a_timed_out_result_has_the_timeout_status_and_unreached_cases():
    result = SubmissionResult.from_dict(json.loads(TIMED_OUT))
    assert result.outcome == Outcome.timeout(15)
    assert all(not case.reached and case.message == "not run: timeout after 15 s" for case in result.all_cases())


def test_keys_the_module_does_not_know_are_kept_in_place_at_the_end():
    saved = dict(json.loads(PARTIAL), future_field={"x": 1})
    assert SubmissionResult.from_dict(saved).to_dict() == saved
    assert list(SubmissionResult.from_dict(saved).to_dict())[-1] == "future_field"


def test_a_case_writes_its_keys_in_the_saved_order():
    skipped = CaseResult("t", 1.0, False, message="not run: needs a CUDA GPU", skipped=True, seconds=0.1)
    assert list(skipped.to_dict()) == ["name", "points", "hidden", "passed", "skipped", "message", "seconds"]
    voided = CaseResult("t", 1.0, True, message="measurement voided", voided=True, seconds=0.1)
    assert list(voided.to_dict()) == ["name", "points", "hidden", "passed", "message", "voided", "seconds"]
    for case in (skipped, voided):
        assert CaseResult.from_dict(case.to_dict()) == case
    assert CaseResult.from_dict(skipped.to_dict()).reached, "a CUDA skip is reached, not a stopped grading"


def test_optional_lists_appear_only_when_they_hold_something():
    result = SubmissionResult("a", {"q1": QuestionResult(0.0, 1.0)})
    assert not {"incidents", "grader_errors", "notes"} & set(result.to_dict())
    result.incidents.append("t: timeout after 5 s")
    result.notes.append("the zip file holds 2 notebooks; graded a.ipynb")
    data = result.to_dict()
    assert data["incidents"] == ["t: timeout after 5 s"] and data["notes"] == result.notes
    assert SubmissionResult.from_dict(data) == result


# -- statuses ---------------------------------------------------------------------------------

TEXTS = [
    (Outcome(Status.COMPLETED), "Completed"),
    (Outcome.completed_with([]), "Completed"),
    (Outcome.completed_with(["output truncated", "2 cell(s) raised errors"]),
     "Completed (output truncated; 2 cell(s) raised errors)"),
    (Outcome(Status.INTEGRITY_REVIEW, "time.perf_counter was replaced"),
     "integrity review: time.perf_counter was replaced"),
    (Outcome.timeout(120), "timeout after 120 s"),
    (Outcome.timeout(80.5), "timeout after 80.5 s"),
    (Outcome(Status.CALL_TIMEOUT, "60"), "a call into the notebook did not return within 60 s"),
    (Outcome(Status.MEMORY, "4096"), "killed: memory limit 4096 MB"),
    (Outcome(Status.CRASHED, "the notebook's process died with signal SIGSEGV"),
     "crashed: the notebook's process died with signal SIGSEGV"),
    (Outcome.grader_error("the judge process died"), "grader error: the judge process died"),
    (Outcome(Status.NOT_A_NOTEBOOK, "the file is not JSON"), "not a notebook: the file is not JSON"),
    (Outcome(Status.NOT_READABLE, "Permission denied"), "not readable: Permission denied"),
    (Outcome(Status.NOT_GRADED, "the notebook is larger than 50 MB"), "not graded: the notebook is larger than 50 MB"),
    (Outcome(Status.FAILED, "the notebook exited the interpreter (exit code 3)"),
     "the notebook exited the interpreter (exit code 3)"),
]


@pytest.mark.parametrize("outcome,text", TEXTS, ids=[t for _, t in TEXTS])
def test_status_text_is_computed_from_the_status_and_detail(outcome, text):
    assert outcome.text == text
    assert Outcome.from_text(text).text == text
    if outcome != Outcome.completed_with([]):
        assert Outcome.from_text(text) == outcome


@pytest.mark.parametrize("text", ["Completed (", "timeout after 5", "Completedness", "", "grader error", "not run"])
def test_a_line_of_no_known_shape_is_failed_and_kept_whole(text):
    assert Outcome.from_text(text) == Outcome(Status.FAILED, text)


def test_completed_covers_both_completed_statuses_only():
    assert {s for s in Status if Outcome(s).completed} == {Status.COMPLETED, Status.COMPLETED_WITH_NOTES}


def test_a_row_without_a_status_completed():
    assert outcome_of({}) == Outcome(Status.COMPLETED)
    assert outcome_of({"status": "grader error: boom"}).status is Status.GRADER_ERROR


def test_status_text_adds_row_notes_to_the_outcome():
    assert status_text({"status": "Completed (2 cell(s) raised errors)", "notes": ["n"]}) == \
        "Completed (2 cell(s) raised errors; n)"
    assert status_text({"status": "grader error: boom", "notes": ["n"]}) == "grader error: boom (n)"


# -- not run ------------------------------------------------------------------------------------

QUESTIONS = [SimpleNamespace(name="q1", possible=3.0, cases=[SimpleNamespace(name="a", points=1.0, hidden=False),
                                                                  SimpleNamespace(name="b", points=2.0, hidden=True)]),
             SimpleNamespace(name="q2", possible=1.0, cases=[SimpleNamespace(name="c", points=1.0, hidden=False)])]


def test_the_not_run_record():
    case = CaseResult.not_run(QUESTIONS[0].cases[1], Outcome.timeout(30))
    assert case.to_dict() == {"name": "b", "points": 2.0, "hidden": True, "passed": False,
                              "message": "not run: timeout after 30 s"}
    assert not case.reached and case.message.startswith(NOT_RUN_PREFIX)
    assert CaseResult.from_dict(case.to_dict()) == case


def test_an_unrunnable_submission_has_every_case_not_run():
    outcome = Outcome(Status.NOT_A_NOTEBOOK, "the file is not JSON")
    data = SubmissionResult.unrunnable("ssm_forward_cpu", QUESTIONS, outcome, "exclude").to_dict()
    assert data == {
        "assignment": "ssm_forward_cpu", "status": "not a notebook: the file is not JSON", "total": 0.0,
        "gpu_policy": "exclude", "possible": 4.0, "cell_errors": [], "skipped": [],
        "questions": {
            "q1": {"score": 0.0, "possible": 3.0, "cases": [
                {"name": "a", "points": 1.0, "hidden": False, "passed": False,
                 "message": "not run: not a notebook: the file is not JSON"},
                {"name": "b", "points": 2.0, "hidden": True, "passed": False,
                 "message": "not run: not a notebook: the file is not JSON"}]},
            "q2": {"score": 0.0, "possible": 1.0, "cases": [
                {"name": "c", "points": 1.0, "hidden": False, "passed": False,
                 "message": "not run: not a notebook: the file is not JSON"}]}}}


def test_mark_not_run_keeps_the_cases_that_ran():
    result = SubmissionResult("a", {q.name: QuestionResult(0.0, q.possible) for q in QUESTIONS})
    ran = CaseResult("a", 1.0, False, passed=True, message="passed", seconds=0.2)
    result.questions["q1"].cases.append(ran)
    result.mark_not_run(QUESTIONS, Outcome(Status.MEMORY, "4096"))
    assert result.questions["q1"].cases[0] is ran
    assert [c.message for c in result.all_cases()[1:]] == ["not run: killed: memory limit 4096 MB"] * 2


def test_rows_that_never_ran_leave_out_the_cuda_tests_the_others_skipped():
    ran = {"gpu_policy": "exclude", "skipped": ["c"], "possible": 3.0, "questions": {
        "q1": {"possible": 3.0, "cases": [{"name": "a", "points": 1.0, "hidden": False, "passed": True,
                                           "message": "passed"}]}}}
    never = SubmissionResult.unrunnable("a", QUESTIONS, Outcome.grader_error("x"), "exclude").to_dict()
    stopped = SubmissionResult.unrunnable("a", QUESTIONS, Outcome.timeout(5), "exclude").to_dict()
    stopped["questions"]["q1"]["cases"][0]["message"] = "this test stopped the notebook: timeout after 5 s"
    align_gpu_exclusions([ran, never, stopped])
    assert never["possible"] == 3.0 and never["questions"]["q2"]["possible"] == 0.0
    assert stopped["possible"] == 4.0, "a row that reached a test is left as it is"
