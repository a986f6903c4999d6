"""What the grader puts in the notebook in place of an exercise a student skipped, so that the
exercises built on it are still judged on their own (a mistake counts once).

While grading, right after an exercise is recorded (`vaetp.grading.exercises`), the grader
checks the name the exercise defines in the notebook. When it is missing, or cannot be called as
the next cells call it, the grader puts a stand-in there:

- `kl_divergence` (section 8), used by the encoder's Sampling layer, hence by the VAE (section
  11) and the convolutional VAE (section 18): a finite function of the same arguments, one value
  per image. It is *not* the KL: those later exercises only need a loss to be added, and the
  stand-in gives nothing of the answer away;
- `decoder` (section 10), used by the VAE (section 11): a model of the TP's shapes, latent vector
  in, image out, with random weights. The VAE is judged on calling `decoder`, whatever it
  computes.

The exercise itself was recorded before: its points are lost, and only its own. The stand-ins
are used for grading only; a student's own notebook never gets them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The shape the grader calls a stand-in candidate on, to tell whether it can be used.
TRY_ROWS = 2


def usable_kl(function: Any, latent_dim: int) -> bool:
    """`kl_divergence` gives one finite value per row of two (TRY_ROWS, latent_dim) tensors."""
    if not callable(function):
        return False
    try:
        from keras import ops

        z = ops.zeros((TRY_ROWS, int(latent_dim)))
        out = np.asarray(ops.convert_to_numpy(function(z, z)))
        return out.shape == (TRY_ROWS,) and bool(np.all(np.isfinite(out)))
    except Exception:  # noqa: BLE001 - student code: any failure means "not usable"
        return False


def stand_in_kl() -> Any:
    """The grader's `kl_divergence` for a notebook without a usable one (not the KL)."""

    def kl_divergence(z_mean: Any, z_log_var: Any) -> Any:
        from keras import ops

        return 0.5 * ops.mean(ops.square(z_mean) + ops.square(z_log_var), axis=-1)

    return kl_divergence


def usable_decoder(decoder: Any, latent_dim: int, original_dim: int) -> bool:
    """`decoder` maps a (TRY_ROWS, latent_dim) batch to (TRY_ROWS, original_dim) finite values."""
    if not callable(decoder):
        return False
    try:
        from keras import ops

        out = np.asarray(ops.convert_to_numpy(decoder(ops.zeros((TRY_ROWS, int(latent_dim))))))
        return out.shape == (TRY_ROWS, int(original_dim)) and bool(np.all(np.isfinite(out)))
    except Exception:  # noqa: BLE001 - student code: any failure means "not usable"
        return False


def stand_in_decoder(latent_dim: int, intermediate_dim: int, original_dim: int) -> Any:
    """The grader's `decoder` for a notebook without a usable one: the TP's shapes, random
    weights."""
    import keras

    return keras.Sequential([keras.Input(shape=(int(latent_dim),)),
                             keras.layers.Dense(int(intermediate_dim), activation="relu"),
                             keras.layers.Dense(int(original_dim), activation="sigmoid")],
                            name="decoder")


def put_in_place(names: dict[str, Any], exercise: str, parameters: dict[str, int]) -> bool:
    """Put the stand-in of `exercise` ("kl_divergence" or "decoder") in the notebook's names
    when its own is missing or unusable. Returns whether it did."""
    if exercise == "kl_divergence":
        if usable_kl(names.get("kl_divergence"), parameters["latent_dim"]):
            return False
        names["kl_divergence"] = stand_in_kl()
        return True
    if exercise == "decoder":
        if usable_decoder(names.get("decoder"), parameters["latent_dim"],
                          parameters["original_dim"]):
            return False
        names["decoder"] = stand_in_decoder(parameters["latent_dim"],
                                            parameters["intermediate_dim"],
                                            parameters["original_dim"])
        return True
    raise ValueError(f"no stand-in for the exercise {exercise!r}")
