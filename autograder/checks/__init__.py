"""The public checks library: what every test calls, in student notebooks and in the grader.

Each assignment has a module here with its public checks. Hidden checks live elsewhere
(`autograder.hidden`) and never ship to students.
"""
