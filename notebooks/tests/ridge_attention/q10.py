from otter.test_files import test_case

OK_FORMAT = False

name = "q10"
points = None

@test_case(points=1, hidden=False)
def test_refactored_prefix_definition(refactored_causal_ridge_attention):
    from autograder.checks import ridge_attention as check
    check.refactored_matches_prefix_solves(refactored_causal_ridge_attention)

