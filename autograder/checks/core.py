"""Assertions every test is written with.

A failing check raises `AssertionError` with a message a student can act on: what was
expected, what came back, and, where we can tell, the likely mistake.
"""
import math
import os
import secrets
from pathlib import Path

import torch

# The dtypes a check runs a function in: the reference precision first, then single precision.
FLOAT_DTYPES = (torch.float64, torch.float32)


def dtype_name(dtype: torch.dtype) -> str:
    """A dtype as the feedback names it: "float32" for torch.float32."""
    return str(dtype).removeprefix("torch.")


STUB_HINT = "it returned None: the function is still a stub (replace `...` with your code)"


class CheckFailure(AssertionError):
    """A check that did not pass; the message is written for the student."""


def fail(message: str):
    """Stop the check with `message` for the student (raises CheckFailure)."""
    raise CheckFailure(message)


def fresh_generator(seed=None) -> torch.Generator:
    """A generator for test inputs. Hidden tests draw a fresh secret seed on every run."""
    if seed is None:
        env = os.environ.get("SEQMOD_TEST_SEED")
        seed = int(env) if env else secrets.randbits(62)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def require_function(fn, name: str):
    """`fn` when it is a function; otherwise fail saying `name` is undefined or not callable."""
    if fn is None:
        fail(f"`{name}` is not defined. Run the cell that defines it, and every cell above it.")
    if not callable(fn):
        fail(f"`{name}` should be a function, but it is a {type(fn).__name__}.")
    return fn


class StudentCodeError(Exception):
    """Raised when the student's function itself raised; carries a short description."""


def call(fn, name: str, *args, where: str = None, **kwargs):
    """Call a graded function, turning its exceptions into readable check failures.

    `where` describes the inputs in words (never their values), e.g. "T = 7, float32"; it is
    added to the message when the function raises. (No graded function has a `where` argument.)
    """
    require_function(fn, name)
    context = f" (inputs: {where})" if where else ""
    try:
        return fn(*args, **kwargs)
    except StudentCodeError as error:
        fail(f"`{name}` raised an error{context}: {error}")
    except Exception as error:  # noqa: BLE001 - any error in student code is a failed check
        fail(f"`{name}` raised {type(error).__name__}{context}: {error}")


def _python_numbers(value) -> bool:
    """A (nested) list or tuple whose leaves are all Python numbers (bool excluded)."""
    if isinstance(value, (list, tuple)):
        return all(_python_numbers(item) for item in value)
    return isinstance(value, (int, float, complex)) and not isinstance(value, bool)


def _has_complex(value) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_has_complex(item) for item in value)
    return isinstance(value, complex)


def as_tensor(value, name: str) -> torch.Tensor:
    """A student's result as a detached tensor (Python numbers kept in float64); fails on None
    or on something that is not numbers."""
    if value is None:
        fail(f"`{name}`: {STUB_HINT}.")
    if isinstance(value, torch.Tensor):
        return torch.Tensor.detach(value)
    if _python_numbers(value):
        # Python floats are float64: torch.as_tensor would round them (and lists of them) to float32
        dtype = torch.complex128 if _has_complex(value) else torch.float64
        try:
            return torch.tensor(value, dtype=dtype)
        except Exception:  # noqa: BLE001 - ragged nesting
            fail(f"`{name}` returned a nested list whose rows have different lengths; return a "
                 "torch.Tensor.")
    if isinstance(value, (list, tuple)) and len(value) and all(isinstance(v, torch.Tensor) for v in value):
        items = [torch.Tensor.detach(v) for v in value]
        try:
            return torch.stack(items)
        except Exception:  # noqa: BLE001 - whatever stops stacking, the list is not one tensor
            fail(f"`{name}` returned a list of tensors of different shapes; return one torch.Tensor.")
    try:
        return torch.as_tensor(value)
    except Exception:  # noqa: BLE001 - whatever stops the conversion, the value is not a tensor
        fail(f"`{name}` should return a torch.Tensor, but it returned a {type(value).__name__}.")


def as_float(value, name: str) -> float:
    """A student's result as one Python float; fails on None, on a tensor of more than one
    element, or on something that is not a number."""
    if value is None:
        fail(f"`{name}`: {STUB_HINT}.")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            fail(f"`{name}` should return one number, but it returned a tensor of shape "
                 f"{tuple(value.shape)}.")
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        fail(f"`{name}` should return a number, but it returned a {type(value).__name__}.")


def _shape_text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def expect_shape(actual: torch.Tensor, expected_shape, name: str, dims: str = None):
    """Check a shape; `dims` names the axes ("N T H") so the message can say which got swapped."""
    actual_shape, expected_shape = tuple(actual.shape), tuple(int(s) for s in expected_shape)
    if actual_shape == expected_shape:
        return
    message = f"`{name}` returned shape {_shape_text(actual_shape)}, expected {_shape_text(expected_shape)}"
    if dims:
        letters = dims.split()
        message += f" = ({', '.join(letters)})"
        if sorted(actual_shape) == sorted(expected_shape) and len(set(expected_shape)) == len(expected_shape):
            got = [letters[expected_shape.index(s)] for s in actual_shape]
            message += f"; you returned ({', '.join(got)}): the axes are in the wrong order"
    fail(message + ".")


def expect_device(actual, device_type: str, name: str):
    """The result lives where the inputs did (e.g. CUDA in, CUDA out)."""
    actual = as_tensor(actual, name)
    if actual.device.type != device_type:
        fail(f"`{name}` returned a tensor on {actual.device.type}, but its inputs were on {device_type}: "
             "create new tensors on the input's device (x.new_zeros, torch.zeros(..., device=x.device)) "
             "and do not move results.")


def tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance for a result computed in `dtype`, measured against the result's scale."""
    if dtype in (torch.float64, torch.complex128):
        return 1e-9
    if dtype in (torch.float16, torch.bfloat16):
        return 2e-2
    return 2e-5


def relative_error(actual: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest absolute difference, relative to the reference's largest magnitude."""
    diff = (actual.to(torch.complex128 if actual.is_complex() else torch.float64)
            - reference.to(torch.complex128 if reference.is_complex() else torch.float64))
    scale = reference.abs().max().item() if reference.numel() else 0.0
    return diff.abs().max().item() / max(scale, 1e-12) if diff.numel() else 0.0


def close(actual: torch.Tensor, reference: torch.Tensor, rtol: float) -> bool:
    """Same shape, all finite, and within `rtol` relative error of the reference."""
    if tuple(actual.shape) != tuple(reference.shape):
        return False
    if not torch.isfinite(actual).all():
        return False
    return relative_error(actual, reference) <= rtol


def expect_close(actual, reference: torch.Tensor, name: str, *, dims: str = None,
                 input_dtype: torch.dtype = torch.float64, mistakes: dict = None,
                 where: str = None, rtol: float = None):
    """Compare a student result with a float64 reference.

    `mistakes` maps a hint ("W applied transposed") to what that mistake would have returned
    (or is a function returning that dict, called only when the result is wrong); when the
    student's result matches one, the hint becomes the message. `where` describes
    the inputs in words (never their values), e.g. "T = 7, N = 1".
    """
    actual = as_tensor(actual, name)
    reference = reference.detach().cpu()
    context = f" (inputs: {where})" if where else ""
    if callable(mistakes):
        mistakes = _Lazy(mistakes)
    if tuple(actual.shape) != tuple(reference.shape):
        for hint, wrong in (mistakes or {}).items():
            if wrong is not None and close(actual.detach().cpu(), wrong.detach().cpu(), 1e-4):
                fail(f"`{name}` is wrong{context}: {hint}.")
    expect_shape(actual, reference.shape, name, dims)
    actual = actual.detach().cpu()
    if actual.is_complex() != reference.is_complex() and not reference.is_complex():
        fail(f"`{name}` returned a complex tensor; expected real values.")
    rtol = tolerance(input_dtype) if rtol is None else rtol
    if not torch.isfinite(actual).all():
        fail(f"`{name}` returned NaN or infinite values{context}.")
    err = relative_error(actual, reference)
    if err <= rtol:
        return
    for hint, wrong in (mistakes or {}).items():
        if wrong is not None and close(actual, wrong.detach().cpu(), max(rtol, 1e-6)):
            fail(f"`{name}` is wrong{context}: {hint}.")
    fail(f"`{name}` does not match the reference{context}: largest error {err:.3g} relative to "
         f"the output's scale (allowed {rtol:.0e}){_first_mismatch(actual, reference, rtol, dims)}.")


class _Lazy:
    """A mistakes dict computed on first use (mistake models cost time; most results are right)."""

    def __init__(self, make):
        self._make, self._value = make, None

    def items(self):
        if self._value is None:
            self._value = self._make() or {}
        return self._value.items()

    def __bool__(self):
        return True


def _first_mismatch(actual, reference, rtol, dims):
    scale = max(reference.abs().max().item(), 1e-12)
    bad = ((actual.to(torch.float64) - reference.to(torch.float64)).abs() > rtol * scale)
    if not bad.any():
        return ""
    index = tuple(int(i) for i in torch.nonzero(bad)[0])
    if dims:
        letters = dims.split()
        return "; first mismatch at " + ", ".join(f"{letter.lower()}={i}" for letter, i in zip(letters, index))
    return f"; first mismatch at index {index}"


def expect(condition: bool, message: str):
    """Fail with `message` unless `condition` holds."""
    if not condition:
        fail(message)


def log2_ceil(n: int) -> int:
    """ceil(log2(n)), at least 1: the rounds a log-depth algorithm needs for n items."""
    return max(1, math.ceil(math.log2(max(n, 2))))


class SkipCheck(Exception):
    """This check cannot run here (e.g. it needs CUDA). The grade report lists it as not run."""


# Set by the course grader's judge: skipped checks are reported, and the points policy is
# applied there. Elsewhere (otter: student checks, Gradescope) the shipped policy decides.
JUDGE_REPORTS_SKIPS = False


def gpu_policy() -> str:
    """'exclude' (not graded without a GPU) or 'required'; the build ships the course's choice."""
    shipped = Path(__file__).with_name("gpu_policy.txt")
    if shipped.exists():
        return shipped.read_text().strip()
    # The default is settings.DEFAULT_GPU_POLICY's value: this module ships without the grader's
    # settings, so it cannot import them.
    return os.environ.get("SEQMOD_GPU_POLICY", "exclude")


def require_cuda(reason="this check times CUDA kernels") -> bool:
    """True when a GPU is present. Otherwise the check must not run; write checks as

        if not require_cuda():
            return

    Under the course grader this raises SkipCheck, and the report lists the test as not run.
    Under otter, policy 'required' fails the test; 'exclude' lets it pass with a printed note
    (otter cannot leave a test out of the total, so everyone gets those points alike).
    """
    if torch.cuda.is_available():
        return True
    message = f"needs a CUDA GPU ({reason}); none is available on this machine"
    if JUDGE_REPORTS_SKIPS or gpu_policy() == "required":
        raise SkipCheck(message)
    print(f"not run: {message}")
    return False
