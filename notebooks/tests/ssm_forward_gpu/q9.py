from otter.test_files import test_case

OK_FORMAT = False

name = "q9"
points = None

@test_case(points=1, hidden=False)
def test_scan_follows_recurrence(scan_ssm_forward):
    from autograder.checks import ssm_forward_gpu as check
    check.scan_follows_recurrence(scan_ssm_forward)

