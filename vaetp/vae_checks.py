"""The VAE's assembly, as an exercise: `vae`, the model from images through the encoder's sample
to the decoder's reconstruction.

The probe (`extract_vae`, kernel side) calls the student's `vae` twice on a few images chosen
from a seed and records, as numbers: the output shapes, whether two calls differ (the VAE
samples z), the losses the call added (the KL of the `Sampling` layer), and which of the VAE's
weights are the encoder's and the decoder's own variables (shared, not copies). The checks judge
that record with NumPy alone:

- `check_vae_shapes`: images in, images out, (None, original_dim);
- `check_vae_uses_encoder_and_decoder`: every weight of both models, and no other;
- `check_vae_samples_and_adds_kl` (hidden): two calls differ, and each call adds one loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vaetp import calls
from vaetp.calls import AnswerMismatch, CallRecord

CELL = "the exercise cell of section 11"
N_IMAGES = 5


def vae_inputs(seed: int, original_dim: int) -> np.ndarray:
    return np.random.default_rng([seed, 11]).random((N_IMAGES, int(original_dim))).astype("float32")


def _paths(variables: list[Any]) -> list[str]:
    return [str(getattr(v, "path", getattr(v, "name", "?"))) for v in variables]


def extract_vae(vae: Any, encoder: Any, decoder: Any, original_dim: int, seed: int = 0) -> CallRecord:
    """Record the student's `vae` (runs student code: kernel side)."""
    record = calls.start("vae", vae, seed)
    record.facts["original_dim"] = int(original_dim)
    if record.status != calls.OK:
        return record
    if not hasattr(vae, "trainable_weights"):
        record.status, record.type_name = calls.NOT_CALLABLE, type(vae).__name__
        return record
    try:
        record.facts["input_shape"] = [None if d is None else int(d) for d in vae.inputs[0].shape]
    except Exception:  # noqa: BLE001 - a subclassed model has no declared input
        record.facts["input_shape"] = None
    x = vae_inputs(seed, original_dim)
    losses = []
    for name in ("first", "second"):
        record.calls[name] = calls.run(vae, x)
        try:
            losses.append([float(np.asarray(_numpy(loss)).reshape(-1)[0]) for loss in vae.losses])
        except Exception:  # noqa: BLE001
            losses.append(None)
    record.facts["losses"] = losses
    try:
        owners = {}
        for owner, model in (("encoder", encoder), ("decoder", decoder)):
            for v in getattr(model, "weights", []) or []:
                owners[id(v)] = owner
        vae_weights = list(vae.weights)
        mine = {id(v) for v in vae_weights}
        record.facts["weights"] = {
            "vae": len(vae_weights),
            "encoder": sum(owners.get(id(v)) == "encoder" for v in vae_weights),
            "decoder": sum(owners.get(id(v)) == "decoder" for v in vae_weights),
            "other": _paths([v for v in vae_weights if id(v) not in owners])[:20],
            "encoder_missing": _paths([v for v in getattr(encoder, "weights", []) or []
                                       if id(v) not in mine])[:20],
            "decoder_missing": _paths([v for v in getattr(decoder, "weights", []) or []
                                       if id(v) not in mine])[:20],
            "encoder_found": encoder is not None, "decoder_found": decoder is not None,
        }
    except Exception as err:  # noqa: BLE001
        record.facts["weights_error"] = f"{type(err).__name__}: {calls.first_line(err)}"
    return record


def _numpy(value: Any) -> Any:
    from keras import ops

    return ops.convert_to_numpy(value)


def _record(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> CallRecord:
    record = calls.live_or_recorded(vae, lambda v: extract_vae(v, encoder, decoder, original_dim))
    if record.status == calls.MISSING:
        raise AnswerMismatch(f"there is no `vae`: build it in {CELL} and run that cell.")
    if record.status == calls.NOT_CALLABLE:
        raise AnswerMismatch(f"`vae` is a {record.type_name}, not a Keras model: build it with "
                             "keras.Model(inputs, ...).")
    return record


def check_vae_shapes(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> None:
    """The VAE maps a batch of images to a batch of images: (None, original_dim) both ways."""
    record = _record(vae, encoder, decoder, original_dim)
    declared = record.facts.get("input_shape")
    if declared is not None and declared[1:] != [original_dim]:
        raise AnswerMismatch(f"your VAE's input has shape {tuple(declared)}; it takes images, "
                             f"(None, {original_dim}): start it from the encoder's `inputs`.")
    out = calls.output_of(record, "first", f"vae on a batch of {N_IMAGES} images")
    if out.shape != (N_IMAGES, original_dim):
        raise AnswerMismatch(f"vae on {N_IMAGES} images returns shape {out.shape}, not "
                             f"({N_IMAGES}, {original_dim}): its output must be the decoder's "
                             "reconstruction of the images.")


def check_vae_uses_encoder_and_decoder(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> None:
    """The VAE is made of the encoder and the decoder themselves: all their weights, no others."""
    record = _record(vae, encoder, decoder, original_dim)
    found = record.facts.get("weights")
    if not isinstance(found, dict):
        raise AnswerMismatch("the grader could not list your VAE's weights "
                             f"({record.facts.get('weights_error', 'no record')}).")
    if not found.get("encoder_found") or not found.get("decoder_found"):
        raise AnswerMismatch("there is no `encoder` or no `decoder`: run sections 7 to 10 first.")
    if found.get("other"):
        raise AnswerMismatch(
            f"your VAE has weights of its own ({', '.join(found['other'][:3])}): it created new "
            "layers instead of calling the encoder and the decoder. Build it as "
            "keras.Model(inputs, decoder(encoder(inputs))).")
    missing = found.get("encoder_missing", []) + found.get("decoder_missing", [])
    if found.get("decoder_missing") and not found.get("decoder"):
        raise AnswerMismatch("your VAE never calls the decoder: its output must be "
                             "decoder(encoder(inputs)).")
    if missing and all("log_var" in m for m in missing):
        raise AnswerMismatch("your VAE never uses z_log_var: it decodes z_mean, not the sample z. "
                             "Decode the encoder's output: decoder(encoder(inputs)).")
    if missing:
        raise AnswerMismatch(f"your VAE does not use these weights of the encoder or the decoder: "
                             f"{', '.join(missing[:3])}. Build it as "
                             "keras.Model(inputs, decoder(encoder(inputs))).")


def check_vae_samples_and_adds_kl(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> None:
    """Hidden: two calls on the same images differ (z is sampled) and each adds one loss, the KL."""
    record = _record(vae, encoder, decoder, original_dim)
    first = calls.output_of(record, "first", "vae")
    second = calls.output_of(record, "second", "vae")
    if first.shape == second.shape and np.allclose(first, second, atol=1e-7):
        raise AnswerMismatch("your VAE gives the same output twice for the same images: it must "
                             "decode the random sample z, drawn anew on each call.")
    losses = record.facts.get("losses") or [None]
    if any(not isinstance(found, list) or len(found) != 1 for found in losses):
        counts = [len(found) if isinstance(found, list) else "?" for found in losses]
        raise AnswerMismatch(f"each call of your VAE should add exactly one loss, the KL term of "
                             f"the Sampling layer; it added {counts[0]}. Call the encoder once.")
    if not all(np.isfinite(found[0]) for found in losses):
        raise AnswerMismatch("the loss your VAE adds is not finite: check kl_divergence "
                             "(section 8).")


def check_vae(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> None:
    """The student's check cell."""
    record = calls.live_or_recorded(vae, lambda v: extract_vae(v, encoder, decoder, original_dim))
    verdicts = calls.run_verdicts({
        "images in, images out": lambda: check_vae_shapes(record, encoder, decoder, original_dim),
        "built from the encoder and the decoder":
            lambda: check_vae_uses_encoder_and_decoder(record, encoder, decoder, original_dim),
    })
    calls.print_verdicts("Checking vae:", verdicts,
                         "All checks passed: your VAE chains the encoder and the decoder.")
