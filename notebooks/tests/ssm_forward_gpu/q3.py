from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = None

@test_case(points=1, hidden=False)
def test_agrees_with_unrolled(conv_ssm_forward, unrolled_ssm_forward):
    from autograder.checks import ssm_forward_gpu as check
    check.conv_agrees_with_unrolled(conv_ssm_forward, unrolled_ssm_forward)

