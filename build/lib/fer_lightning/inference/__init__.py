"""Inference on real photos and videos: face detection, the checkpoint's preprocessing, annotation."""

from fer_lightning.inference.detect import Box, FaceDetector, HaarFaceDetector, WholeImageDetector
from fer_lightning.inference.predictor import FaceResult, Predictor, crop_face

__all__ = ["Box", "FaceDetector", "FaceResult", "HaarFaceDetector", "Predictor", "WholeImageDetector", "crop_face"]
