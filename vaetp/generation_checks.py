"""Generating digits from the prior, as an exercise: `generate_digits`.

    generate_digits(decoder, n, seed=None) -> n images, shape (n, 28, 28), decoded from z ~ N(0, I)

The probe hands the student's function a *grader* decoder (`grader_decoder_weights`): a linear
Dense layer whose kernel and bias are drawn from the probe's seed, which the student cannot know
before grading. Every pixel is an affine function of z, so the judge recovers the code of each
image by least squares, and an image that no code explains (another decoder, made-up numbers)
fails. The checks judge the shape, the seeds (the same seed gives the same digits, fresh digits
when seed is None, and no repeat after a seeded call: a function that reseeds the global
generators is caught) and, hidden, that the recovered codes look like draws from N(0, I): not
uniform, not scaled, not one code repeated, not correlated coordinates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vaetp import calls
from vaetp.calls import AnswerMismatch, CallRecord

GENERATION_CELL = "the exercise cell of section 15 (Sampling new digits)"
#: The images of one probe call (at most 256 x original_dim numbers).
BATCH = 256
#: The 256-image calls whose codes are pooled to judge the prior ("seeded_b" repeats "seeded_a").
POOLED = ("seeded_a", "other_seed", "fresh_a", "fresh_b")
#: The order of the probe's calls. A fresh call follows each seeded one, so a function that
#: resets the global generators (`keras.utils.set_random_seed(seed)`, `np.random.seed(seed)`)
#: gives "fresh_a" and "fresh_b" twice the same digits.
ORDER = (("seeded_a", "first"), ("fresh_a", None), ("seeded_b", "first"), ("fresh_b", None),
         ("other_seed", "second"), ("three", None))
#: Codes are equal up to this (the decoder is deterministic).
SAME = 1e-4
#: An image is the decoder's output of some z when the least-squares fit leaves at most this.
FIT = 1e-3


def probe_seeds(seed: int) -> tuple[int, int]:
    """The two distinct integer seeds passed to `generate_digits`, derived from the probe seed."""
    first, second = np.random.default_rng([seed, 15]).choice(2**31 - 1, size=2, replace=False)
    return int(first) + 1, int(second) + 1


def grader_decoder_weights(seed: int, latent_dim: int, original_dim: int
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of the grader decoder, drawn from the probe's seed: pixel = z . a + b,
    with a kernel of full rank (its columns spread, so z is well determined by the image)."""
    d, pixels = int(latent_dim), int(original_dim)
    if not 0 < d < pixels:
        raise ValueError(f"latent_dim {d} must be between 1 and original_dim {pixels}")
    rng = np.random.default_rng([int(seed), 15, 1])
    kernel = rng.normal(0, 0.25, (d, pixels)).astype("float32")
    bias = rng.uniform(0.2, 0.8, pixels).astype("float32")
    return kernel, bias


def extract_generation(function: Any, latent_dim: int, original_dim: int,
                       seed: int = 0) -> CallRecord:
    """Record `generate_digits` with the grader decoder (runs student code: kernel side)."""
    record = calls.start("generate_digits", function, seed, latent_dim=int(latent_dim),
                         original_dim=int(original_dim))
    if record.status != calls.OK:
        return record
    import keras

    dense = keras.layers.Dense(int(original_dim), name="grader_dense")
    decoder = keras.Sequential([keras.Input((int(latent_dim),)), dense], name="decoder")
    dense.set_weights(list(grader_decoder_weights(seed, latent_dim, original_dim)))
    seeds = dict(zip(("first", "second"), probe_seeds(seed)))
    for call, which in ORDER:
        n = 3 if call == "three" else BATCH
        if which is None:
            record.calls[call] = calls.run(function, decoder, n)
        else:
            record.calls[call] = calls.run(function, decoder, n, seed=seeds[which])
    return record


def _record(generate_digits: Any, latent_dim: int, original_dim: int) -> CallRecord:
    # the sizes are the master's, never the record's: the helpers read them from its facts
    return calls.function_record(generate_digits, "generate_digits", GENERATION_CELL,
                                 extract_generation, latent_dim=latent_dim,
                                 original_dim=original_dim)


def _sizes(record: CallRecord) -> tuple[int, int, int]:
    d = int(record.facts.get("latent_dim", 0))
    pixels = int(record.facts.get("original_dim", 0))
    return d, pixels, math.isqrt(pixels)


def _decode(record: CallRecord, images: np.ndarray) -> tuple[np.ndarray, float]:
    """The codes z that the grader decoder maps closest to `images` (rows of pixels), and the
    largest pixel the fit leaves unexplained (0 when the images are decoder outputs)."""
    d, pixels, _ = _sizes(record)
    kernel, bias = (w.astype("float64") for w in grader_decoder_weights(record.seed, d, pixels))
    z = np.linalg.lstsq(kernel.T, (images - bias).T, rcond=None)[0].T
    misfit = np.abs(z @ kernel + bias - images)
    return z, float(misfit.max()) if misfit.size else 0.0


def _decoded(record: CallRecord, call: str) -> np.ndarray:
    """The codes z the call's images were decoded from, by the decoder given as argument; a
    plain failure when no code explains them (another decoder, or numbers made up)."""
    images = _images(record, call)
    if not np.all(np.isfinite(images)):
        raise AnswerMismatch("generate_digits returns inf or nan.")
    z, misfit = _decode(record, images)
    if misfit > FIT * max(1.0, float(np.abs(images).max())):
        raise AnswerMismatch(
            "the images are not what the decoder given as argument makes of z: use the "
            "decoder passed as argument (decoder.predict(z)), not a global one, and return "
            "its output as it is.")
    return z


def _what(call: str) -> str:
    n = 3 if call == "three" else BATCH
    seed = "" if call.startswith("fresh") or call == "three" else ", seed=..."
    return f"generate_digits(decoder, {n}{seed})"


def _images(record: CallRecord, call: str) -> np.ndarray:
    """The call's images as rows of pixels, whatever their layout (the shape test judges that)."""
    _, pixels, _ = _sizes(record)
    out = calls.output_of(record, call, _what(call))
    if out.size == 0 or out.size % pixels:
        raise AnswerMismatch(f"{_what(call)} returns shape {out.shape}, which does not hold "
                             f"images of {pixels} pixels.")
    return out.reshape(-1, pixels)


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------

def check_generation_shape(generate_digits: Any, latent_dim: int, original_dim: int) -> None:
    """n images of side x side pixels: shape (n, 28, 28), for n = 3 and n = 256."""
    record = _record(generate_digits, latent_dim, original_dim)
    _, pixels, side = _sizes(record)
    for call, n in (("three", 3), ("seeded_a", BATCH)):
        out = calls.output_of(record, call, _what(call))
        shape, want = out.shape, (n, side, side)
        if shape == want:
            continue
        if out.size == 0:
            raise AnswerMismatch(f"{_what(call)} returns shape {shape}; the TP asks for {want}.")
        if out.size % pixels == 0 and out.size // pixels != n:
            raise AnswerMismatch(f"{_what(call)} returns {out.size // pixels} images instead of "
                                 f"{n}: draw z of shape (n, latent_dim), one code per image.")
        if shape == (n, pixels):
            raise AnswerMismatch(f"{_what(call)} returns shape {shape}, rows of pixels: "
                                 f"reshape them to images, shape {want}.")
        if shape in ((n, side, side, 1), (n, 1, side, side)):
            raise AnswerMismatch(f"{_what(call)} returns shape {shape}: drop the channel axis, "
                                 f"reshape to {want}.")
        raise AnswerMismatch(f"{_what(call)} returns shape {shape}; the TP asks for {want}.")
    for call in ("three", "seeded_a"):
        _decoded(record, call)


def check_generation_seeds(generate_digits: Any, latent_dim: int, original_dim: int) -> None:
    """Fresh digits on each call without a seed; the same digits for the same seed; different
    digits for different seeds."""
    record = _record(generate_digits, latent_dim, original_dim)

    def same(a: str, b: str) -> bool:
        x, y = _decoded(record, a), _decoded(record, b)
        return x.shape == y.shape and np.allclose(x, y, rtol=0, atol=SAME)

    if same("fresh_a", "fresh_b"):
        raise AnswerMismatch("with seed=None, two calls give the same digits after a call with "
                             "a seed: draw fresh z on each call, and pass `seed` to "
                             "keras.random.normal(..., seed=seed) only; do not reseed the "
                             "global generators (no keras.utils.set_random_seed or "
                             "np.random.seed inside the function).")
    if not same("seeded_a", "seeded_b"):
        raise AnswerMismatch("with the same seed, the digits differ: pass `seed` to "
                             "keras.random.normal(..., seed=seed).")
    if same("seeded_a", "other_seed"):
        raise AnswerMismatch("two different seeds give the same digits: the `seed` argument must "
                             "decide z (pass it to keras.random.normal, not a number of yours).")


def _codes(record: CallRecord) -> np.ndarray:
    """The codes z of the pooled calls, after checking that they went through the decoder."""
    found = [call for call in POOLED if record.call(call).ok]
    codes = [_decoded(record, call) for call in (found or POOLED[:1])]
    for z in codes:
        if len(z) > 1 and np.all(np.ptp(z, axis=0) < 1e-6):
            raise AnswerMismatch("all the images of one call are decoded from the same z: draw "
                                 "n codes, z of shape (n, latent_dim), not one code repeated.")
    return np.concatenate(codes)


def check_generation_from_prior(generate_digits: Any, latent_dim: int, original_dim: int) -> None:
    """Hidden: decoded by the given decoder, from codes that look like N(0, I) draws."""
    record = _record(generate_digits, latent_dim, original_dim)
    z = _codes(record)
    count, d = z.shape
    mean, std = z.mean(axis=0), z.std(axis=0)
    low, high = float(z.min()), float(z.max())
    if low >= -1 - 1e-6 and high <= 1 + 1e-6 and count * d >= 64:
        raise AnswerMismatch(
            f"every code lies in [{low:.2f}, {high:.2f}] (mean {z.mean():.2f}): z looks uniform. "
            "Draw it from the prior N(0, I): keras.random.normal, not keras.random.uniform.")
    worst = int(np.argmax(np.abs(mean)))
    if abs(mean[worst]) > 6 / math.sqrt(count):
        raise AnswerMismatch(
            f"the codes have mean {mean[worst]:.2f} (coordinate {worst}) instead of 0: draw z "
            "from N(0, I), keras.random.normal with its default mean=0.")
    worst = int(np.argmax(np.abs(std - 1)))
    if abs(std[worst] - 1) > max(0.15, 6 / math.sqrt(2 * count)):
        raise AnswerMismatch(
            f"the codes have standard deviation {std[worst]:.2f} (coordinate {worst}) instead "
            "of 1: draw z from N(0, I), keras.random.normal with its default stddev=1, "
            "and do not scale it.")
    if d >= 2:
        corr = np.corrcoef(z, rowvar=False)[np.triu_indices(d, 1)]
        worst = int(np.argmax(np.abs(corr)))
        if abs(corr[worst]) > max(0.2, 6 / math.sqrt(count)):
            raise AnswerMismatch(
                f"the latent coordinates are correlated (correlation {corr[worst]:.2f}): draw "
                "every coordinate independently, z of shape (n, latent_dim).")
    tails = float(np.mean(np.abs(z) > 2))  # N(0, 1) puts 4.55 % beyond +-2
    if count * d >= 500 and tails < 0.0455 / 2:  # about 5 standard errors below, for 2048 codes
        raise AnswerMismatch(
            f"only {100 * tails:.1f} % of the codes lie beyond +-2, where N(0, I) puts 4.6 %: "
            "draw z from the normal distribution itself (keras.random.normal), not a "
            "truncated or uniform one.")


def check_generate_digits(generate_digits: Any, latent_dim: int, original_dim: int) -> None:
    """The student's check cell: every property the grader checks, in plain words."""
    record = calls.live_or_recorded(
        generate_digits, lambda f: extract_generation(f, latent_dim, original_dim))
    verdicts = calls.run_verdicts({
        "n images of 28 x 28 pixels":
            lambda: check_generation_shape(record, latent_dim, original_dim),
        "fresh digits on each call, the same digits for the same seed":
            lambda: check_generation_seeds(record, latent_dim, original_dim),
        "codes drawn from the prior N(0, I), decoded by the given decoder":
            lambda: check_generation_from_prior(record, latent_dim, original_dim),
    })
    calls.print_verdicts("Checking generate_digits:", verdicts,
                         "All checks passed: your function draws codes from the prior N(0, I), fresh on "
                         "each call, and decodes them with the decoder it is given.")
