"""Stand-in for otter inside the grader: checks and export do nothing here.

Not imported by the grader: `staging.stage_public_library` copies this file into the sandbox
as `otter/__init__.py`, so a notebook's `import otter` and `grader.check(...)` still run while
it is graded. Like `worker.py`, it imports nothing.
"""


class Notebook:
    """What a notebook's `otter.Notebook(...)` gets while it is graded."""

    def __init__(self, *args, **kwargs):
        pass

    def check(self, *args, **kwargs):
        """Public tests do not run while grading; say so in the notebook's output."""
        print('(grader.check is skipped while grading)')

    def check_all(self, *args, **kwargs):
        """Does nothing while grading."""

    def export(self, *args, **kwargs):
        """Does nothing while grading."""
