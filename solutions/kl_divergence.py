# Solution to the exercise 'kl_exercise' (generated from the master notebook).
def kl_divergence(z_mean, z_log_var):
    """KL( N(z_mean, diag exp(z_log_var)) || N(0, I) ), one value per image."""
    return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
