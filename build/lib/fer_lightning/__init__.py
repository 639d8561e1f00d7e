"""fer_lightning: facial emotion recognition on FER-2013 with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
