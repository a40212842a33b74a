from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = None

@test_case(points=1, hidden=False)
def test_training_reaches_minimizer(train_purifier):
    from autograder.checks import purification as check
    check.trained_purifier_reaches_minimizer(train_purifier)

