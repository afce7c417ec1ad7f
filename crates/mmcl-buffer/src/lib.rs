//! Compact replay memory for continual learning: reservoir, ring and class-balanced selection of un-augmented samples with stored logits.
