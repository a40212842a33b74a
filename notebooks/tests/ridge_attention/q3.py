from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = None

@test_case(points=1, hidden=False)
def test_ridge_normal_equations(ridge_attention):
    from autograder.checks import ridge_attention as check
    check.ridge_attention_solves_normal_equations(ridge_attention)

@test_case(points=1, hidden=False)
def test_ridge_batches(ridge_attention):
    from autograder.checks import ridge_attention as check
    check.ridge_attention_handles_batches(ridge_attention)

