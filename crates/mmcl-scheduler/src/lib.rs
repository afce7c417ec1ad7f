//! Continual-learning scenarios (Seq, Dom, GCIL) and the train/eval loop.
