"""What each command does once its config is valid; the torch-free entry points (`fer_lightning.train`, ...)
import these modules only after parsing, so `--help` and a rejected override answer at once."""
