from otter.test_files import test_case

OK_FORMAT = False

name = "q9"
points = None

@test_case(points=1, hidden=False)
def test_low_rank_examples(low_rank_ssm_kernel):
    from autograder.checks import ssm_forward_cpu as check
    check.low_rank_kernel_matches_examples(low_rank_ssm_kernel)

