"""Training through archfit's Cython API from another package's own C loop."""
from archfit_embedding_example._loop import fit_adam, predict_proba, validation_loss

__all__ = ["fit_adam", "predict_proba", "validation_loss"]
