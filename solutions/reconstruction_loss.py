# Solution to the exercise 'reconstruction_exercise' (generated from the master notebook).
def reconstruction_loss(x, x_decoded):
    return original_dim * keras.losses.binary_crossentropy(x, x_decoded)
