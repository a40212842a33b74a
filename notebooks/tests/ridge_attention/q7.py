from otter.test_files import test_case

OK_FORMAT = False

name = "q7"
points = None

@test_case(points=1, hidden=False)
def test_weights_reproduce_outputs(ridge_attention_weights, ridge_attention):
    from autograder.checks import ridge_attention as check
    check.weights_reproduce_outputs(ridge_attention_weights, ridge_attention)

