"""What a student's functions return on inputs the grader chooses, recorded as plain numbers.

The function exercises of the TP (`kl_divergence`, `reconstruction_loss`, `generate_digits`,
`anomaly_scores`, `roc_auc`, the assembled `vae`, the convolutional VAE) are judged like the
decoder: a *probe* calls what the student wrote on inputs chosen from a seed, inside the
student's kernel, and keeps only what came back: arrays, or the first line of the error. That
`CallRecord` leaves the kernel as an `.npz` file (no pickle, bounded) and the checks of each
exercise judge it in a process that never ran student code.

Given a live function instead (the student's own check cell), a check records it on the spot
with the same inputs, so the check cell and the grade say the same thing.

Each exercise module (`vaetp.loss_checks`, `vaetp.generation_checks`, ...) owns its inputs
(`inputs(seed, ...)`, numpy only, so the judge can rebuild them) and its `extract(...)`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vaetp.decoder_data import DataError, first_line

FORMAT = "vaetp-calls/1"
MAX_BYTES = 32 * 2**20
MAX_CALLS = 64
#: The most numbers one call may return (a runaway output is an error, not a record).
MAX_ELEMENTS = 2 * 2**20

MISSING = "missing"
NOT_CALLABLE = "not callable"
OK = "ok"


@dataclass
class Call:
    """One call: the array it returned, or the first line of the error it raised."""

    output: np.ndarray | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.output is not None


@dataclass
class CallRecord:
    """The calls of one exercise's function (or model), by name, with the seed of the inputs."""

    exercise: str
    status: str = OK  # OK, MISSING (no such name) or NOT_CALLABLE
    type_name: str = ""
    seed: int = 0
    calls: dict[str, Call] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)  # small JSON values (shapes, counts)

    def call(self, name: str) -> Call:
        return self.calls.get(name, Call(error="the grader did not record this call"))


def to_array(value: Any) -> np.ndarray:
    """A function's return value as a numeric NumPy array (tensors of any backend included)."""
    if isinstance(value, (list, tuple)):
        parts = [to_array(v) for v in value]
        try:
            return np.stack(parts) if parts else np.zeros((0,))
        except ValueError as err:
            raise TypeError(f"returned a {type(value).__name__} of arrays of different shapes; "
                            "return one array") from err
    if value is None:
        raise TypeError("returned None: did you forget `return`?")
    if not isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        try:
            import keras

            value = keras.ops.convert_to_numpy(value)
        except Exception as err:  # noqa: BLE001
            raise TypeError(f"returned a {type(value).__name__}, not an array of numbers") from err
    array = np.asarray(value)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                      or array.dtype == bool):
        raise TypeError(f"returned a {type(value).__name__} of {array.dtype}, not numbers")
    if array.size > MAX_ELEMENTS:
        raise TypeError(f"returned {array.size:,} numbers, far more than asked")
    return array


def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Call:
    """Call the student's function; keep its output as an array, or its error's first line."""
    tf_logger = logging.getLogger("tensorflow")  # "retracing" warnings of predict on new models
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # a Keras warning is not the student's answer
            warnings.simplefilter("ignore")
            output = function(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - any failure of student code is part of the record
        return Call(error=f"{type(err).__name__}: {first_line(err)}")
    finally:
        tf_logger.setLevel(level)
    try:
        return Call(output=to_array(output))
    except Exception as err:  # noqa: BLE001
        return Call(error=f"{type(err).__name__}: {first_line(err)}")


@contextlib.contextmanager
def keeping_random_state(*models: Any) -> Iterator[None]:
    """Put back, after a probe, the random generators that it advanced: Keras' global one, the
    `SeedGenerator`s of the models' layers, NumPy's and Python's. So a probe leaves no trace: a notebook
    trains the same whether its check cells ran once, twice, or (hidden tests) more."""
    import keras

    generators = []
    try:
        from keras.src.random.seed_generator import global_seed_generator

        generators.append(global_seed_generator())
    except (ImportError, AttributeError):  # another Keras: keep the layers' own generators
        pass
    for model in models:
        try:
            for layer in model._flatten_layers() if isinstance(model, keras.layers.Layer) else ():
                generators += [v for v in vars(layer).values()
                               if isinstance(v, keras.random.SeedGenerator)]
        except Exception:  # noqa: BLE001 - a broken student model: its generators stay as they are
            continue
    saved = [(g, keras.ops.convert_to_numpy(g.state.value)) for g in generators]
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        for generator, state in saved:
            generator.state.assign(state)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def start(exercise: str, function: Any, seed: int, **facts: Any) -> CallRecord:
    """An empty record for `function`, with MISSING / NOT_CALLABLE decided, and `facts` (the
    sizes it is recorded with) in it whatever the status."""
    if function is None:
        record = CallRecord(exercise, MISSING, seed=seed)
    elif not callable(function):
        record = CallRecord(exercise, NOT_CALLABLE, type(function).__name__, seed)
    else:
        record = CallRecord(exercise, OK, type(function).__name__, seed)
    record.facts.update(facts)
    return record


# --------------------------------------------------------------------------------------------
# Bytes (no pickle: only arrays of numbers and one JSON string)
# --------------------------------------------------------------------------------------------

def to_bytes(record: CallRecord) -> bytes:
    arrays = {}
    calls = {}
    for i, (name, call) in enumerate(record.calls.items()):
        calls[name] = {"error": call.error, "array": None if call.output is None else f"a{i}"}
        if call.output is not None:
            arrays[f"a{i}"] = np.asarray(call.output)
    meta = {"format": FORMAT, "exercise": record.exercise, "status": record.status,
            "type_name": record.type_name, "seed": int(record.seed), "calls": calls,
            "facts": record.facts}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    return buffer.getvalue()


def _text(value: Any, limit: int = 400) -> str:
    if not isinstance(value, str):
        raise DataError("a text field is not text")
    return value[:limit]


def from_bytes(blob: bytes, exercise: str) -> CallRecord:
    """Read a record, refusing anything but the expected format for `exercise`."""
    if len(blob) > MAX_BYTES:
        raise DataError(f"the record is {len(blob):,} bytes, over the {MAX_BYTES:,} limit")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise DataError("not a record of function calls")
            if meta.get("exercise") != exercise:
                raise DataError(f"a record for {meta.get('exercise')!r}, not {exercise!r}")
            if meta.get("status") not in (OK, MISSING, NOT_CALLABLE):
                raise DataError("unknown status")
            entries = meta.get("calls")
            if not isinstance(entries, dict) or len(entries) > MAX_CALLS:
                raise DataError("bad list of calls")
            calls, total = {}, 0
            for name, entry in entries.items():
                key = entry.get("array") if isinstance(entry, dict) else None
                output = None
                if key is not None:
                    output = np.asarray(npz[_text(key, 16)])
                    if not (np.issubdtype(output.dtype, np.number) or output.dtype == bool):
                        raise DataError("an output is not numbers")
                    total += output.size
                calls[_text(name, 64)] = Call(output, _text(entry.get("error", ""), 1000))
            if total > MAX_CALLS * MAX_ELEMENTS:
                raise DataError("too many numbers")
            facts = meta.get("facts", {})
            if not isinstance(facts, dict) or len(json.dumps(facts)) > 100_000:
                raise DataError("bad facts")
            return CallRecord(exercise, meta["status"], _text(meta.get("type_name", ""), 200),
                              int(meta.get("seed", 0)), calls, facts)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001
        raise DataError(f"unreadable record ({type(err).__name__})") from err


# --------------------------------------------------------------------------------------------
# Verdicts (shared by the exercise modules)
# --------------------------------------------------------------------------------------------

class AnswerMismatch(AssertionError):
    """A function exercise's answer differs from the TP; the message says how, in plain words."""


def live_or_recorded(obj: Any, extract: Callable[[Any], CallRecord], *models: Any) -> CallRecord:
    """The record itself (when judging), or a record made now from the live object (check
    cell), leaving the random generators as they were (of `obj` and `models`, if models)."""
    if isinstance(obj, CallRecord):
        return obj
    with keeping_random_state(obj, *models):
        return extract(obj)


def require_function(record: CallRecord, name: str, cell: str, **sizes: int) -> None:
    """Fail with a plain sentence when the student's `name` is missing or not a function, or
    when the record was made for other sizes than the TP's `sizes` (e.g. latent_dim=2)."""
    for key, value in sizes.items():
        if key in record.facts and record.facts[key] != int(value):
            raise AnswerMismatch(f"`{name}` was recorded with {key} = {record.facts[key]}; the "
                                 f"TP's is {int(value)} (set it back in the parameters cell).")
    if record.status == MISSING:
        raise AnswerMismatch(f"there is no `{name}`: write it in {cell} and run that cell.")
    if record.status == NOT_CALLABLE:
        raise AnswerMismatch(f"`{name}` is a {record.type_name}, not a function: define it with "
                             f"`def {name}(...)` in {cell}.")


def function_record(function: Any, name: str, cell: str, extract: Callable[..., CallRecord],
                    **sizes: int) -> CallRecord:
    """The record every check of a function exercise judges: the one handed in (judge), or one
    made now from the live function (check cell). It is refused with a plain sentence when the
    function is missing, is not a function, or was recorded for other sizes than the master's;
    from then on its sizes are the master's, whatever the record said."""
    record = live_or_recorded(function, lambda f: extract(f, **sizes))
    require_function(record, name, cell, **sizes)
    record.facts.update({key: int(value) for key, value in sizes.items()})
    return record


def output_of(record: CallRecord, call: str, what: str) -> np.ndarray:
    """The output of one recorded call, or a plain failure saying what the call raised."""
    found = record.call(call)
    if not found.ok:
        raise AnswerMismatch(f"{what} raised {found.error}")
    return np.asarray(found.output, dtype="float64")


@dataclass
class Verdict:
    """One check of a check cell: its name, whether it passed, and why it failed (or, when it
    passed, what it found, or '')."""

    name: str
    passed: bool
    message: str = ""


def run_verdicts(checks: dict[str, Callable[[], str | None]]) -> list[Verdict]:
    """Run named checks, the one runner of every check cell: a check passes when it raises
    nothing (it may return what it found, for the ✔ line), fails with its `AssertionError`'s
    message, and never crashes the cell."""
    verdicts = []
    for name, check in checks.items():
        try:
            found = check()
        except AssertionError as err:
            verdicts.append(Verdict(name, False, str(err)))
        except Exception as err:  # noqa: BLE001 - a check cell must never crash
            verdicts.append(Verdict(name, False, f"could not be checked ({type(err).__name__}: "
                                                 f"{first_line(err)})"))
        else:
            verdicts.append(Verdict(name, True, found or ""))
    return verdicts


def print_verdicts(title: str, verdicts: list[Verdict], success: str) -> None:
    """The student's check cell, the one printer of every exercise: one line per check (✔ or ✘
    and why), then what to do."""
    print(title)
    for verdict in verdicts:
        mark, text = ("✔", verdict.message) if verdict.passed else ("✘", verdict.message)
        print(f"  {mark} {verdict.name}: {text}" if text else f"  {mark} {verdict.name}")
    failed = sum(not v.passed for v in verdicts)
    if failed:
        plural = "s" if failed > 1 else ""
        print(f"{failed} problem{plural} to fix: edit the exercise cell, run it, then run this cell.")
    else:
        print(success)
