"""Integrity review: the evidence that a submission may have forged a structure or timing measurement.

Two sources, both judged in the clean grading process:
- the measurements themselves (`trace.MeasurementVoided`: the two op-counting channels disagree,
  ops ran with the dispatch mode switched off, grader code in the sandbox was changed; and
  notes such as a helper whose exclusion from a count was refused or work done outside torch);
- a static scan of the submission's code for grader internals and for the machinery that can
  switch a measurement off. A hit alone costs nothing: it puts the submission on the review list
  with the line of code, because students may use such things honestly.

The review state lives in the result's typed `integrity` field (see `empty_record`); reports and
the grade command branch on it, never on message text.
"""
import re

# (what it is, pattern). Matched per line of code, comments stripped.
PATTERNS = [
    ("grader internals", r"autograder\s*\.\s*(checks\s*\.\s*(trace|workloads)|worker|wire|judge|remote|sandbox"
                         r"|zygote|zygote_client|limits|staging|otter_standin|integrity)\b|from\s+autograder\.checks\s+import\s+[^#]*\b(trace|workloads)\b"
                         r"|^\s*(import|from)\s+(wire|worker)\b|\bwire\s*\.\s*\w+|\b(count_ops_locally|time_locally"
                         r"|grad_locally|OpCounts|traced_call|timed_call)\b|\bjson\s*\.\s*[\w.]+\s*=(?!=)"),
    ("dispatch-mode machinery", r"_python_dispatch|TorchDispatchMode|_DisableTorchDispatch|_disable_current_modes"
                                r"|_push_on_torch_dispatch_stack|_pop_torch_dispatch_stack|_unset_dispatch_mode"
                                r"|_set_dispatch_mode|ExcludeDispatchKeyGuard|_DisablePythonDispatcher"),
    ("profiler control", r"_disable_profiler|_enable_profiler|_prepare_profiler|profiler\s*\.\s*_|kineto_results"
                         r"|_profiler_enabled|_RecordFunction|_add_record_function|_remove_record_function"),
    ("sys.modules or gc surgery", r"\bsys\s*\.\s*modules\b|\bgc\s*\.\s*(get_objects|get_referrers|get_referents)"
                                  r"|__builtins__\s*\[|\bbuiltins\s*\.\s*\w+\s*="),
    ("tracing hooks", r"\bsettrace\b|\bsetprofile\b|sys\s*\.\s*_getframe|\bf_back\b|\bf_locals\b|\bf_globals\b"
                      r"|inspect\s*\.\s*(stack|currentframe|getouterframes)"),
    ("code-object surgery", r"__code__\s*=|__closure__|__defaults__\s*=|__kwdefaults__\s*=|\.replace\s*\(\s*co_"
                            r"|\btypes\s*\.\s*(CodeType|FunctionType)\b"),
    ("ctypes", r"\bctypes\b|\bcffi\b"),
    ("timing internals", r"\btime\s*\.\s*(perf_counter|monotonic|time)\s*=|\bcuda\s*\.\s*synchronize\s*="
                         r"|\btorch\s*\.\s*cuda\s*\.\s*Event\s*="),
]
_COMPILED = [(kind, re.compile(pattern)) for kind, pattern in PATTERNS]
MAX_HITS = 20


def _code_lines(source: str):
    for number, line in enumerate(source.splitlines(), start=1):
        code = line.split("#", 1)[0] if "#" in line and not _in_string(line) else line
        if code.strip():
            yield number, line.strip()[:200], code


def _in_string(line: str) -> bool:
    """A '#' inside quotes is not a comment (rough: enough to keep the line whole)."""
    before = line.split("#", 1)[0]
    return before.count('"') % 2 == 1 or before.count("'") % 2 == 1


def scan(nb) -> list:
    """Hits of the static scan in a notebook's code cells: [{cell, line, kind, code}]."""
    hits = []
    code_cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for index, cell in enumerate(code_cells):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        for number, text, code in _code_lines(source):
            for kind, pattern in _COMPILED:
                if pattern.search(code):
                    hits.append({"cell": index + 1, "line": number, "kind": kind, "code": text})
                    break
            if len(hits) >= MAX_HITS:
                return hits
    return hits


def empty_record(accepted=False) -> dict:
    """The `integrity` field of a result.

    voided: [{test, reason}] measurements that could not be trusted (those tests scored 0, unless
    accepted); notes: [{test, note}] evidence that cost nothing by itself; hits: static-scan hits;
    review: whether the submission is on the review list; accepted: a TA accepted it
    (`--accept-review`), so its measurements were trusted."""
    return {"review": False, "accepted": bool(accepted), "voided": [], "notes": [], "hits": []}


def finish(record: dict) -> dict:
    """Mark the record for review when anything was voided, noted or hit; returns it."""
    record["review"] = bool(record["voided"] or record["notes"] or record["hits"])
    return record


def reason(record: dict) -> str:
    """One line for the grading status."""
    if record.get("voided"):
        return record["voided"][0]["reason"]
    if record.get("notes"):
        return record["notes"][0]["note"]
    if record.get("hits"):
        hit = record["hits"][0]
        return f"{hit['kind']} in the code (cell {hit['cell']}, line {hit['line']})"
    return ""


def evidence(record: dict) -> list:
    """Lines for the TA: each check that tripped and each line of code the scan found."""
    lines = [f"test `{v['test']}`: {v['reason']}" for v in record.get("voided", [])]
    lines += [f"test `{n['test']}`: {n['note']}" for n in record.get("notes", [])]
    lines += [f"{h['kind']}, cell {h['cell']} line {h['line']}: {h['code']}" for h in record.get("hits", [])]
    return lines
