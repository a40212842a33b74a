from otter.test_files import test_case

OK_FORMAT = False

name = "q6"
points = None

@test_case(points=1, hidden=False)
def test_range_homework(feasible_lambda_range):
    from autograder.checks import purification as check
    check.range_matches_homework(feasible_lambda_range)

