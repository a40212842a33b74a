from otter.test_files import test_case

OK_FORMAT = False

name = "q8"
points = None

@test_case(points=1, hidden=False)
def test_fft_follows_recurrence(fft_ssm_forward):
    from autograder.checks import ssm_forward_gpu as check
    check.fft_follows_recurrence(fft_ssm_forward)

