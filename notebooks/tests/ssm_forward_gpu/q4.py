from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = None

@test_case(points=1, hidden=False)
def test_times_cpu_work(cuda_time):
    from autograder.checks import ssm_forward_gpu as check
    check.cuda_time_measures_cpu_work(cuda_time)

