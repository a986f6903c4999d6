# Solution to the exercise 'anomaly_exercise' (generated from the master notebook).
def anomaly_scores(stats_encoder, decoder, x):
    z_mean, z_log_var = stats_encoder.predict(x, verbose=0)
    x_decoded = decoder.predict(z_mean, verbose=0)
    loss = reconstruction_loss(x, x_decoded) + kl_divergence(z_mean, z_log_var)
    return ops.convert_to_numpy(loss)


def roc_auc(normal_scores, anomalous_scores):
    normal = np.asarray(normal_scores)[None, :]
    anomalous = np.asarray(anomalous_scores)[:, None]
    return float(np.mean(anomalous > normal) + 0.5 * np.mean(anomalous == normal))
