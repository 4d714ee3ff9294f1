"""The processor as a Faust app: ``from streams.faust import install`` adds its agent, table
and query view to an existing ``faust.App`` (faust-streaming, the ``faust`` extra:
``pip install 'profile-streams[faust]'``). ``streams worker --engine faust`` runs one."""

from streams.faust.install import Installed, install, prepare_topics
from streams.faust.worker import app_config

__all__ = ["Installed", "app_config", "install", "prepare_topics"]
