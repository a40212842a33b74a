from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_homework_examples(ssm_kernel):
    from autograder.checks import ssm_forward_cpu as check
    check.kernel_matches_homework_examples(ssm_kernel)

@test_case(points=1, hidden=False)
def test_direct_term_first(ssm_kernel):
    from autograder.checks import ssm_forward_cpu as check
    check.kernel_starts_with_direct_term(ssm_kernel)

