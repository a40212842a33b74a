from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=1, hidden=False)
def test_kernel_is_powers(make_conv_kernel):
    from autograder.checks import ssm_forward_gpu as check
    check.conv_kernel_is_powers_of_W(make_conv_kernel)

