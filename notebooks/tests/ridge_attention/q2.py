from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=1, hidden=False)
def test_ridge_sums_worked_example(ridge_sums):
    from autograder.checks import ridge_attention as check
    check.ridge_sums_worked_example(ridge_sums)

