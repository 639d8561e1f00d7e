"""Inference on real photos and videos: face detection, the checkpoint's preprocessing, annotation."""

from fer_lightning.inference.detect import (
    Box,
    DlibFaceDetector,
    FaceDetector,
    HaarFaceDetector,
    MTCNNFaceDetector,
    WholeImageDetector,
    default_detector,
)
from fer_lightning.inference.predictor import FaceResult, Predictor, crop_face

__all__ = ["Box", "DlibFaceDetector", "FaceDetector", "FaceResult", "HaarFaceDetector", "MTCNNFaceDetector",
           "Predictor", "WholeImageDetector", "crop_face", "default_detector"]
