//! Continual-learning methods behind one trait: SGD, JOINT, ER and SAMM, with their inference modes.
