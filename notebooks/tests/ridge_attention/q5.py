from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = None

@test_case(points=1, hidden=False)
def test_causal_prefix_definition(causal_ridge_attention):
    from autograder.checks import ridge_attention as check
    check.causal_matches_prefix_solves(causal_ridge_attention)

