//! Losses and calibration for SAMM: cross-entropy, consistency with dynamic logit selection, RKD, SmoothL1, ECE, temperature scaling.
