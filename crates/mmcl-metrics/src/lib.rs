//! Continual-learning metrics (accuracy matrices, BWT, forgetting, FWT, ECE, stability/plasticity), paper-style tables and plots.
