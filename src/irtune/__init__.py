"""irtune: evaluate and honestly fine-tune text-embedding models for retrieval."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("irtune")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
