"""Training through archfit's Cython API from another package's own C loop."""
from archfit_embedding_example._loop import (COMPILED_API_VERSION, describe, fit_adam,
                                             fit_adam_resnet, predict_proba, validation_loss)

__all__ = ["COMPILED_API_VERSION", "describe", "fit_adam", "fit_adam_resnet", "predict_proba",
           "validation_loss"]
