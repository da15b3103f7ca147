"""Exceptions that reach users (CLI, node): each carries a message that says what to fix."""


class Pinpoint3DError(Exception):
    """Base class of every error the core raises on purpose."""


class InvalidCloudError(Pinpoint3DError, ValueError):
    """The point cloud is empty, all non-finite, malformed or too large."""


class ClickError(Pinpoint3DError, ValueError):
    """A click cannot be used: too far from any point, unknown object, bad part, too many."""


class CheckpointError(Pinpoint3DError):
    """A checkpoint is missing, truncated, or belongs to another model configuration."""


class SceneFormatError(Pinpoint3DError, ValueError):
    """A scene file does not follow the project's scene format."""
