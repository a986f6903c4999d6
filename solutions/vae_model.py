# Solution to the exercise 'vae_exercise' (generated from the master notebook).
vae_outputs = decoder(encoder(inputs))
vae = keras.Model(inputs, vae_outputs, name="vae_mlp")
