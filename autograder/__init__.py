"""Build, check and grade the sequence-models course module.

`autograder.checks` is the public checks library: it ships with the student notebooks.
Everything else (hidden checks, references, the grader) stays with the course staff.
"""
