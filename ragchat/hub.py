"""Models from the Hugging Face hub: the cache first, a download only where there is a network.

Used for the users' default models; tests and the demo use the bundled ones.
"""

from __future__ import annotations

import logging
import os
import socket

from ragchat.config import TRUE_VALUES
from ragchat.errors import ModelNotAvailable
from ragchat.text import HttpUrl, http_url

HUB = HttpUrl("https", "huggingface.co", None)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can we open a connection to the hub? (Fails fast instead of retrying for 20 s.)"""
    endpoint = http_url(os.environ.get("HF_ENDPOINT", "")) or HUB
    try:
        with socket.create_connection((endpoint.host, endpoint.port_or_default), timeout=timeout):
            return True
    except OSError:
        return False


def fetch(repo_id: str, filename: str | None, what: str, fix: str) -> str:
    """Local path of a hub model (a snapshot folder, or one file), downloading it if needed.

    ``what`` names the model in errors ("Embedding model 'x'"); ``fix`` says what to do instead.
    """
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import HFValidationError

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)

    def get(local_only: bool) -> str:
        if filename is None:
            return str(snapshot_download(repo_id, local_files_only=local_only))
        return str(hf_hub_download(repo_id, filename, local_files_only=local_only))

    try:
        return get(local_only=True)
    except HFValidationError as exc:
        raise ModelNotAvailable(f"{what} is neither a local path nor a hub name; {fix}") from exc
    except Exception:
        pass  # not cached: try the network
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in TRUE_VALUES:
        raise ModelNotAvailable(f"{what} is not downloaded yet and HF_HUB_OFFLINE is set; {fix}")
    if not hub_reachable():
        raise ModelNotAvailable(
            f"{what} is not downloaded yet and the hub is unreachable (offline?); {fix}"
        )
    try:
        return get(local_only=False)
    except Exception as exc:
        raise ModelNotAvailable(
            f"{what} could not be downloaded ({type(exc).__name__}: {exc}); {fix}"
        ) from exc
