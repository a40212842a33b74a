from otter.test_files import test_case

OK_FORMAT = False

name = "q6"
points = None

@test_case(points=1, hidden=False)
def test_diag_kernel_is_powers(make_diag_conv_kernel):
    from autograder.checks import ssm_forward_gpu as check
    check.diag_kernel_is_powers_of_w(make_diag_conv_kernel)

