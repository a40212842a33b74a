"""Hidden checks for the linear purification assignment: fresh inputs, float64 references."""

import torch

from ..checks.core import (
    FLOAT_DTYPES,
    CheckFailure,
    as_float,
    as_tensor,
    call,
    dtype_name,
    expect_close,
    expect_shape,
    fail,
    fresh_generator,
    relative_error,
    tolerance,
)
from ..checks.purification import compare_range, gradient_descent_settings, purifier_data
from ..references import purification as ref

F64 = torch.float64


def _uniform(gen, lo, hi):
    return lo + (hi - lo) * float(torch.rand(1, generator=gen, dtype=F64))


def _spectrum(gen, r, repeated=False, zero=False):
    """r singular values in [0.6, 3], largest first; optionally with repeats or a zero."""
    values = sorted((_uniform(gen, 0.6, 3.0) for _ in range(r)), reverse=True)
    if repeated and r >= 2:
        values[1] = values[0]
        if r >= 4:
            values[3] = values[2]
    if zero:
        values[-1] = 0.0
    return values


# -- question 1 -----------------------------------------------------------------------------

def reconstruction_loss_on_fresh_inputs(reconstruction_loss):
    """`reconstruction_loss` matches the reference on fresh W and X, in float64 and float32."""
    gen = fresh_generator()
    for m, n in [(3, 5), (4, 2), (1, 6), (3, 3)]:
        for dtype in FLOAT_DTYPES:
            while True:  # skip draws where W X nearly equals X (the residual would be all rounding)
                W = torch.randn(m, m, generator=gen, dtype=F64).to(dtype)
                X = torch.randn(m, n, generator=gen, dtype=F64).to(dtype)
                W64, X64 = W.to(F64), X.to(F64)
                terms = float((X64 ** 2).sum() + ((W64.abs() @ X64.abs()) ** 2).sum())
                if terms <= 100 * float(((X64 - W64 @ X64) ** 2).sum()):
                    break
            got = as_float(call(reconstruction_loss, "reconstruction_loss", W, X,
                                 where=f"W {m} x {m}, X {m} x {n}, {dtype_name(dtype)}"), "reconstruction_loss")
            mistakes = {h: torch.tensor(v, dtype=F64) for h, v in ref.reconstruction_mistakes(W, X).items()}
            expected = ref.reconstruction_loss(W, X)
            # X - W X cancels where W X is close to X: rounding in `dtype` is relative to the terms
            # subtracted, not to the (smaller) residual; the draw above keeps that ratio below 100
            rtol = tolerance(dtype) * max(1.0, terms / max(expected, 1e-300))
            expect_close(torch.tensor(got, dtype=F64), torch.tensor(expected, dtype=F64),
                         "reconstruction_loss", input_dtype=dtype, mistakes=mistakes, rtol=rtol,
                         where=f"W {m} x {m}, X {m} x {n}, {dtype_name(dtype)}")


def regularization_loss_on_fresh_inputs(regularization_loss):
    """`regularization_loss` matches the reference on fresh W, in float64 and float32."""
    gen = fresh_generator()
    for m in (1, 3, 5):
        for dtype in FLOAT_DTYPES:
            W = torch.randn(m, m, generator=gen, dtype=F64).to(dtype)
            got = as_float(call(regularization_loss, "regularization_loss", W,
                                 where=f"W {m} x {m}, {dtype_name(dtype)}"), "regularization_loss")
            mistakes = {h: torch.tensor(v, dtype=F64) for h, v in ref.regularization_mistakes(W).items()}
            expect_close(torch.tensor(got, dtype=F64), torch.tensor(ref.regularization_loss(W), dtype=F64),
                         "regularization_loss", input_dtype=dtype, mistakes=mistakes,
                         where=f"W {m} x {m}, {dtype_name(dtype)}")


# -- question 2 -----------------------------------------------------------------------------

def crossover_on_fresh_inputs(crossover_lambda):
    """`crossover_lambda` matches the reference on fresh pairs of purifiers."""
    gen = fresh_generator()
    for m, n in [(3, 5), (2, 6), (4, 4)]:
        for dtype in FLOAT_DTYPES:
            while True:
                W_a = (torch.eye(m, dtype=F64) + 0.3 * torch.randn(m, m, generator=gen, dtype=F64)).to(dtype)
                W_b = (0.6 * torch.randn(m, m, generator=gen, dtype=F64)).to(dtype)
                X = torch.randn(m, n, generator=gen, dtype=F64).to(dtype)
                a64, b64, X64 = W_a.to(F64), W_b.to(F64), X.to(F64)
                terms = sum(float((X64 ** 2).sum() + ((W.abs() @ X64.abs()) ** 2).sum()) for W in (a64, b64))
                reg = float((a64 ** 2).sum() + (b64 ** 2).sum())
                r_gap = abs(ref.reconstruction_loss(W_a, X) - ref.reconstruction_loss(W_b, X))
                g_gap = abs(ref.regularization_loss(W_a) - ref.regularization_loss(W_b))
                # rounding in `dtype` scales with the terms subtracted; keep the gaps well above it
                condition = terms / max(r_gap, 1e-300) + reg / max(g_gap, 1e-300)
                if condition <= 50:
                    break
            got = as_float(call(crossover_lambda, "crossover_lambda", W_a, W_b, X,
                                 where=f"m = {m}, n = {n}, {dtype_name(dtype)}"), "crossover_lambda")
            mistakes = {h: torch.tensor(v, dtype=F64) for h, v in ref.crossover_mistakes(W_a, W_b, X).items()}
            try:
                expect_close(torch.tensor(got, dtype=F64),
                             torch.tensor(ref.crossover_lambda(W_a, W_b, X), dtype=F64), "crossover_lambda",
                             input_dtype=dtype, mistakes=mistakes, rtol=tolerance(dtype) * condition,
                             where=f"m = {m}, n = {n}, {dtype_name(dtype)}")
            except CheckFailure as failure:
                raise CheckFailure(f"{failure} (It uses your two loss functions: if question 1 fails, "
                                   "fix those first.)") from None


# -- question 3 -----------------------------------------------------------------------------

def _purifier_cases(gen, cases):
    for m, n, options in cases:
        sigmas = _spectrum(gen, min(m, n), **options)
        lam = _uniform(gen, 0.5, 3.0)
        X = purifier_data(gen, m, n, sigmas)
        words = [f"m = {m} features", f"n = {n} points"]
        words += [w for w, on in (("repeated singular values", options.get("repeated")),
                                  ("a zero singular value", options.get("zero"))) if on]
        for dtype in FLOAT_DTYPES:
            yield X.to(dtype), lam, ", ".join(words + [dtype_name(dtype)]), dtype


def _purifier_matches(optimal_purifier, cases):
    gen = fresh_generator()
    for X, lam, where, dtype in _purifier_cases(gen, cases):
        got = call(optimal_purifier, "optimal_purifier", X, lam, where=where)
        expect_close(got, ref.optimal_purifier(X, lam), "optimal_purifier", dims="m m", input_dtype=dtype,
                     mistakes=ref.purifier_mistakes(X, lam), where=where)


def purifier_on_fresh_data(optimal_purifier):
    """More points than features (the homework's setting), and a square X."""
    _purifier_matches(optimal_purifier, [(3, 8, {}), (4, 4, {}), (2, 5, {}), (5, 9, {"zero": True})])


def purifier_more_features_and_repeats(optimal_purifier):
    """m > n (X X^T is singular) and repeated singular values (U is not unique, W is)."""
    _purifier_matches(optimal_purifier, [(6, 3, {}), (5, 2, {"repeated": True}), (5, 8, {"repeated": True}),
                                         (4, 4, {"repeated": True}), (3, 1, {})])


# -- question 5 -----------------------------------------------------------------------------

def trained_purifier_matches_closed_form(train_purifier):
    """The learned W is within 1e-4 (relative) of the closed form; tests give settings under which
    plain gradient descent from W = 0 gets within 1e-8."""
    gen = fresh_generator()
    # the last two spread their energies widely (and m > n adds directions with energy 0), so
    # gradient descent needs a few hundred steps there: a run that stops early shows
    for (m, n), dtype, lams, spread in [((3, 7), F64, (1.0, 3.0), None), ((2, 6), torch.float32, (1.0, 3.0), None),
                                        ((5, 5), torch.float32, (1.0, 3.0), None),
                                        ((4, 3), F64, (0.3, 0.6), (0.2, 0.4)),
                                        ((3, 6), torch.float32, (0.3, 0.6), (0.2, 0.4))]:
        sigmas = _spectrum(gen, min(m, n))
        if spread is not None:
            sigmas[0], sigmas[-1] = 3.0, _uniform(gen, *spread)
        X = purifier_data(gen, m, n, sigmas)
        lam = _uniform(gen, *lams)
        steps, lr = gradient_descent_settings(X, lam)
        where = f"m = {m}, n = {n}, {dtype_name(dtype)}"
        got = as_tensor(call(train_purifier, "train_purifier", X.to(dtype), lam, steps, lr, where=where),
                        "train_purifier")
        expect_shape(got, (m, m), "train_purifier")
        if not torch.isfinite(got).all():
            fail(f"`train_purifier` returned NaN or infinite values ({where}): gradients that are never "
                 "zeroed pile up from step to step.")
        target = ref.optimal_purifier(X.to(dtype), lam)
        gap = relative_error(got, target)
        if gap <= 1e-4:
            continue
        for hint, wrong in ref.training_mistakes(X.to(dtype), lam).items():
            if relative_error(got, wrong) <= 1e-3:
                fail(f"`train_purifier` is wrong ({where}): {hint}.")
        fail(f"`train_purifier` ended {gap:.2g} (relative) away from the minimizer ({where}); plain "
             "gradient descent from W = 0 with these settings gets within 1e-8. Take exactly `steps` "
             "steps of size `lr` on ||X - W X||_F^2 + lam ||W||_F^2 and zero the gradient each step.")


# -- question 6 -----------------------------------------------------------------------------

def _range_case(fn, sigmas, k, keep, attenuate, where, dtype=F64):
    s = torch.tensor(sigmas, dtype=F64).to(dtype)
    got = call(fn, "feasible_lambda_range", s, k, keep, attenuate, where=where)
    compare_range(got, ref.feasible_lambda_range(s, k, keep, attenuate), "feasible_lambda_range",
                  dtype=dtype, where=where, mistakes=ref.range_mistakes(s, k, keep, attenuate))


def range_on_fresh_spectra(feasible_lambda_range):
    """Random sorted spectra; both empty and non-empty answers occur."""
    gen = fresh_generator()
    outcomes = set()
    tries = 0
    while len(outcomes) < 2 or tries < 12:
        tries += 1
        m = int(torch.randint(3, 10, (1,), generator=gen))
        sigmas = sorted((10 ** _uniform(gen, -1.5, 1.2) for _ in range(m)), reverse=True)
        k = int(torch.randint(1, m, (1,), generator=gen))
        keep, attenuate = _uniform(gen, 0.55, 0.95), _uniform(gen, 0.1, 0.6)
        answer = ref.feasible_lambda_range(sigmas, k, keep, attenuate)
        # keep clear of the knife edge lo == hi, where float32 rounding could flip the answer
        s = sorted(sigmas, reverse=True)
        hi, lo = s[k - 1] ** 2 * (1 - keep) / keep, s[k] ** 2 * (1 - attenuate) / attenuate
        if abs(hi - lo) <= 1e-3 * max(hi, lo):
            continue
        dtype = FLOAT_DTYPES[tries % 2]
        _range_case(feasible_lambda_range, sigmas, k, keep, attenuate,
                    f"{m} sorted singular values, k = {k}, {dtype_name(dtype)}", dtype)
        outcomes.add(answer is None)
        if tries > 60:
            break


def range_edge_cases(feasible_lambda_range):
    """Attained bounds are included; k = 0 leaves no upper bound; k = all leaves lo = 0."""
    gen = fresh_generator()
    scale = float(torch.randint(1, 6, (1,), generator=gen))
    # ties between the k-th and (k+1)-th singular value with keep = attenuate: one point [c, c]
    _range_case(feasible_lambda_range, [4 * scale, 2 * scale, 2 * scale, scale / 2], 2, 0.5, 0.5,
                "a tie between the k-th and (k+1)-th singular values, keep = attenuate = 0.5 "
                "(both bounds attained at one lam)")
    _range_case(feasible_lambda_range, [3 * scale, 2.0, 2.0, 1.0], 2, 0.25, 0.25,
                "a tie between the k-th and (k+1)-th singular values, keep = attenuate = 0.25")
    # a tie that is not attainable: keep > attenuate makes the point range empty
    _range_case(feasible_lambda_range, [4.0, 2.0, 2.0, 1.0], 2, 0.75, 0.5,
                "a tie between the k-th and (k+1)-th singular values, keep > attenuate")
    sigmas = sorted((_uniform(gen, 0.2, 5.0) for _ in range(5)), reverse=True)
    _range_case(feasible_lambda_range, sigmas, 0, 0.8, 0.5, "k = 0 (nothing to keep: no upper bound)")
    _range_case(feasible_lambda_range, sigmas, 5, 0.8, 0.5, "k = 5 of 5 (nothing to attenuate: lo = 0)")
    _range_case(feasible_lambda_range, [2.0], 1, 0.5, 0.5, "a single singular value, k = 1")


def range_on_unsorted_spectra(feasible_lambda_range):
    """Singular values given in ascending or shuffled order: the k strongest are the ones kept."""
    gen = fresh_generator()
    for order, feasible in (("ascending", True), ("shuffled", True), ("ascending", False)):
        m = int(torch.randint(4, 9, (1,), generator=gen))
        ranked = sorted((10 ** _uniform(gen, -1.0, 1.0) for _ in range(m)), reverse=True)
        k = int(torch.randint(1, m, (1,), generator=gen))
        keep = 0.8
        # the keep bound is ranked[k-1]^2 / 4; choose attenuate so that the lower bound lands at
        # a third of it (a proper interval) or at three times it (empty)
        ratio = ranked[k - 1] ** 2 / (4 * ranked[k] ** 2) * (1 / 3 if feasible else 3)
        attenuate = 1 / (1 + ratio)
        sigmas = ranked[::-1]
        if order == "shuffled":
            sigmas = [sigmas[i] for i in torch.randperm(m, generator=gen).tolist()]
        _range_case(feasible_lambda_range, sigmas, k, keep, attenuate,
                    f"{m} singular values in {order} order, k = {k}")
