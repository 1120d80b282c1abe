"""The pipeline package's errors, under the hw root (``hw.errors.HwError``)."""

from hw.errors import HwError


class PipelineError(HwError):
    """Root of the pipeline package's errors: a bad configuration, packet or state."""


class ConfigError(PipelineError):
    """A configuration document or memory image that is malformed: names the key and problem."""
