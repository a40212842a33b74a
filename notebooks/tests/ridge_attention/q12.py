from otter.test_files import test_case

OK_FORMAT = False

name = "q12"
points = None

@test_case(points=1, hidden=False)
def test_chunked_prefix_definition(chunked_causal_ridge_attention):
    from autograder.checks import ridge_attention as check
    check.chunked_matches_prefix_solves(chunked_causal_ridge_attention)

