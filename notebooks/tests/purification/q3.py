from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = None

@test_case(points=1, hidden=False)
def test_purifier_zeroes_gradient(optimal_purifier):
    from autograder.checks import purification as check
    check.purifier_zeroes_the_gradient(optimal_purifier)

