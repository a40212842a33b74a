from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=1, hidden=False)
def test_homework_threshold(crossover_lambda):
    from autograder.checks import purification as check
    check.crossover_matches_homework(crossover_lambda)

