"""seofp-lab: sign-exponent-only floating-point networks for speech enhancement."""

__version__ = "0.1.0"
