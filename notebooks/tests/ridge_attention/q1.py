from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_update_mean_examples(update_mean):
    from autograder.checks import ridge_attention as check
    check.update_mean_examples(update_mean)

