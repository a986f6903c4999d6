# Solution to the exercise 'decoder_exercise' (generated from the master notebook).
latent_inputs = keras.Input(shape=(latent_dim,), name="z_sampling")
x = layers.Dense(intermediate_dim, activation="relu", name="decoder_hidden")(latent_inputs)
outputs = layers.Dense(original_dim, activation="sigmoid", name="decoder_output")(x)
decoder = keras.Model(latent_inputs, outputs, name="decoder")
