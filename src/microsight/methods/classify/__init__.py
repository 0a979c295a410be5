"""Classification of crops, images and the objects of a label image."""

from microsight.methods.classify.config import ClassifyConfig
from microsight.methods.classify.module import (
    ClassifyModule,
    classify_crops,
    classify_folder,
    classify_objects,
)

__all__ = ["ClassifyConfig", "ClassifyModule", "classify_crops", "classify_folder",
           "classify_objects"]
