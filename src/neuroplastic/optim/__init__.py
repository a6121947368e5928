"""Optimizer add-ons: gradient activation functions (GAF; Liu et al. 2021, arXiv 2107.04228)."""

from neuroplastic.optim.gradient_activation import GAF_ALPHA, GAF_BETA, WHERE, GradientActivation, gaf

__all__ = ["gaf", "GradientActivation", "WHERE", "GAF_ALPHA", "GAF_BETA"]
