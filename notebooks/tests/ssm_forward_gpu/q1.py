from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_follows_recurrence(unrolled_ssm_forward):
    from autograder.checks import ssm_forward_gpu as check
    check.unrolled_follows_recurrence(unrolled_ssm_forward)

