from otter.test_files import test_case

OK_FORMAT = False

name = "q9"
points = None

@test_case(points=1, hidden=False)
def test_answers_are_options(noncausal_cost, sherman_morrison_cost, causal_cost, gradient_inputs, ridge_attention):
    from autograder.checks import ridge_attention as check
    check.cost_answer_is_an_option(noncausal_cost, 'noncausal_cost', check.NONCAUSAL_COST_OPTIONS)
    check.cost_answer_is_an_option(sherman_morrison_cost, 'sherman_morrison_cost', check.SHERMAN_MORRISON_COST_OPTIONS)
    check.cost_answer_is_an_option(causal_cost, 'causal_cost', check.CAUSAL_COST_OPTIONS)
    check.ridge_gradient_answer_matches_autograd(gradient_inputs, ridge_attention)

