# Solution to the exercise 'generate_exercise' (generated from the master notebook).
def generate_digits(decoder, n, seed=None):
    z = keras.random.normal((n, latent_dim), seed=seed)
    images = decoder.predict(z, verbose=0)
    return images.reshape(n, 28, 28)
