from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = None

@test_case(points=1, hidden=False)
def test_sherman_morrison_example(sherman_morrison):
    from autograder.checks import ridge_attention as check
    check.sherman_morrison_inverts_update(sherman_morrison)

