"""Helpers for the Variational Autoencoders TP.

One job per module: `data` loads MNIST (online or offline), `checks` holds the spec of the
decoder the students build and explains what is wrong with theirs, `plots` draws the TP's
figures, `settings` reads the environment variables (fast mode, figure folder).
"""

__version__ = "1.0.0"
