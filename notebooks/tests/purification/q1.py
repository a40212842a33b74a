from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_homework_table(reconstruction_loss, regularization_loss):
    from autograder.checks import purification as check
    check.loss_table_matches_homework(reconstruction_loss, regularization_loss)

